"""The 15 benchmark functions: value at the known minimiser, gradient against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon.optim import functions

NAMES = functions.FUNCTION_NAMES


def test_all_fifteen_functions_are_there():
    assert len(NAMES) == 15
    assert {"rosenbrock", "dixon_price", "rotated_hyper_ellipsoid", "styblinski_tang", "sum_of_powers"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [2, 3, 10, 1000])
def test_value_at_minimiser_is_the_global_minimum(name, dim):
    f = functions.get_function(name)
    x_star = f.minimiser(dim)
    lo, hi = f.domain(dim)
    assert np.all(x_star >= lo) and np.all(x_star <= hi), "minimiser outside the initialisation domain"
    with jax.default_device(jax.devices("cpu")[0]):
        value = float(f.fn(jnp.asarray(x_star, jnp.float32)))
    f_star = f.minimum(dim)
    assert value == pytest.approx(f_star, abs=1e-4 + 1e-5 * abs(f_star))
    # ... and nearby random points are not lower (a wrong minimiser or minimum would show)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = x_star + 1e-2 * (hi - lo) * rng.standard_normal(dim)
        assert float(f.fn(jnp.asarray(x, jnp.float32))) >= f_star - 1e-4 * (1 + abs(f_star))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    f = functions.get_function(name)
    dim = 7
    lo, hi = f.domain(dim)
    rng = np.random.default_rng(1)
    # float64 (x64 enabled only inside this block) so finite differences are accurate
    with jax.enable_x64(True):
        fn = jax.jit(f.fn)
        grad = jax.jit(jax.grad(f.fn))
        for _ in range(3):
            x = rng.uniform(lo, hi, dim) * 0.5 + 0.25 * (lo + hi)  # keep away from the box edges
            if name == "perm":
                x = rng.uniform(-0.9, 0.9, dim)
            g = np.asarray(grad(jnp.asarray(x, jnp.float64)))
            h = 1e-6 * max(1.0, float(np.abs(x).max()))
            fd = np.array([(float(fn(jnp.asarray(x + h * e))) - float(fn(jnp.asarray(x - h * e)))) / (2 * h)
                           for e in np.eye(dim)])
            np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * (1 + np.abs(fd).max()))


def test_offset_moves_the_minimiser_and_inits_lie_in_domain():
    f = functions.get_function("rosenbrock")
    offset = jnp.full(5, 0.3)
    assert float(functions.evaluate(f.fn, jnp.ones(5) + offset, offset)) == pytest.approx(0.0, abs=1e-6)
    assert float(functions.evaluate(f.fn, jnp.ones(5), offset)) > 1.0
    x0 = functions.sample_inits("trid", 10, 64, seed=3)
    assert x0.shape == (64, 10) and x0.min() >= -100 and x0.max() <= 100
    np.testing.assert_array_equal(x0, functions.sample_inits("trid", 10, 64, seed=3))


def test_powell_pads_dimensions_not_divisible_by_four():
    f = functions.get_function("powell")
    x = np.arange(1.0, 7.0)
    padded = np.concatenate([x, [0.0, 0.0]])
    assert float(f.fn(jnp.asarray(x))) == pytest.approx(float(f.fn(jnp.asarray(padded))))


def test_unknown_function_names_the_choices():
    with pytest.raises(KeyError, match="rosenbrock"):
        functions.get_function("rosenbrok")
