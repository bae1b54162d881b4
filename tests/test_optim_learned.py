"""Optimus and the Adafactor MLP: shapes, symmetries, the preconditioner, the stopping rule, weight files,
and the Solver interface."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon.errors import InputError
from motionrecon.optim import features, get_solver
from motionrecon.optim.adafactor_mlp import AdafactorMLP
from motionrecon.optim.learned import StopRule, load_weights, minimize, save_weights, unroll
from motionrecon.optim.optimus import Optimus


def _random_meta_params(opt, seed=0, scale=0.05):
    """Meta-parameters with every weight non-trivial (the rank-one heads start at zero otherwise)."""
    theta = opt.init_meta_params(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree_util.tree_flatten(theta)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def _quadratic_grad(x, scales):
    return scales * x


@pytest.fixture(scope="module")
def optimus():
    opt = Optimus()
    return opt, _random_meta_params(opt)


def test_features_are_normalised_and_permutation_equivariant():
    rng = np.random.default_rng(0)
    x, g = jnp.asarray(rng.normal(size=9)), jnp.asarray(1e3 * rng.normal(size=9))
    state, z = features.update(features.init_decay_params(), features.init(9), x, g)
    assert z.shape == (9, features.NUM_FEATURES)
    rms = np.sqrt(np.mean(np.asarray(z[:, :features.NUM_NORMALISED]) ** 2, axis=0))
    assert np.all(rms < 1.0 + 1e-3) and np.mean(rms) > 0.5
    perm = rng.permutation(9)
    _, zp = features.update(features.init_decay_params(), features.init(9), x[perm], g[perm])
    np.testing.assert_allclose(zp, z[perm], rtol=1e-5, atol=1e-6)
    # huge gradients (Zakharov at d = 1000) stay finite
    _, z_big = features.update(features.init_decay_params(), state, x, jnp.full(9, 1e30))
    assert np.all(np.isfinite(z_big))


def test_optimus_same_meta_params_for_any_dimension(optimus):
    opt, theta = optimus
    update = jax.jit(opt.update)
    for n in (2, 37, 1000):
        x0 = jnp.asarray(np.random.default_rng(n).normal(size=n), jnp.float32)
        state = opt.init(theta, x0)
        for _ in range(2):
            state = update(theta, state, _quadratic_grad(state.x, 1.0), jnp.float32(0.0))
        assert state.x.shape == (n,) and state.B.shape == (n, n)
        assert np.all(np.isfinite(state.x)) and not np.allclose(state.x, x0)


def test_optimus_is_permutation_equivariant(optimus):
    """Per-parameter MLP, features and the Transformer without positional encoding: permuting the
    parameters permutes the trajectory (and conjugates B)."""
    opt, theta = optimus
    n = 11
    rng = np.random.default_rng(3)
    scales = jnp.asarray(rng.uniform(0.5, 5.0, n), jnp.float32)
    perm = rng.permutation(n)
    x0 = jnp.asarray(rng.normal(size=n), jnp.float32)

    def loss(s):
        return lambda x: 0.5 * jnp.sum(s * x * x)

    a, _ = unroll(opt, theta, loss(scales), opt.init(theta, x0), 4)
    b, _ = unroll(opt, theta, loss(scales[perm]), opt.init(theta, x0[perm]), 4)
    np.testing.assert_allclose(b.x, a.x[perm], rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(b.B, a.B[np.ix_(perm, perm)], rtol=2e-4, atol=1e-5)
    assert not np.allclose(a.B, np.eye(n), atol=1e-3), "B should have moved away from I for this to test anything"


def test_preconditioner_stays_symmetric_and_normalised(optimus):
    opt, theta = optimus
    n = 23
    x = jnp.asarray(np.random.default_rng(4).normal(size=n), jnp.float32)
    state, _ = unroll(opt, theta, lambda x: jnp.sum(x**4) + jnp.sum(x[1:] * x[:-1]), opt.init(theta, x), 6)
    B = np.asarray(state.B)
    np.testing.assert_allclose(B, B.T, atol=1e-6)
    assert np.linalg.norm(B) == pytest.approx(np.sqrt(n), rel=1e-5)
    assert np.linalg.eigvalsh(B).min() > -1e-5  # I + sum of u u^T, scaled: positive semi-definite
    assert np.abs(B - np.eye(n) * np.trace(B) / n).max() > 1e-3


@pytest.mark.parametrize("variant", ["no_state", "no_structure"])
def test_optimus_ablations_run(variant):
    opt = Optimus(variant=variant, mlp_hidden=16, model_dim=16, ffn_dim=16)
    theta = _random_meta_params(opt)
    state, losses = unroll(opt, theta, lambda x: jnp.sum(x * x), opt.init(theta, jnp.ones(5)), 3)
    assert np.all(np.isfinite(losses)) and state.x.shape == (5,)
    if variant == "no_structure":
        assert state.B.size == 0
    with pytest.raises(ValueError, match="variant"):
        Optimus(variant="nope")


def test_adafactor_mlp_step_matches_its_formula():
    opt = AdafactorMLP()
    theta = opt.init_meta_params(jax.random.PRNGKey(0))
    x = jnp.asarray([0.5, -1.0, 2.0])
    g = 2.0 * x
    state = opt.init(theta, x)
    new = opt.update(theta, state, g, jnp.float32(0.0))
    _, z = features.update(theta["decays"], state.feat, x, g)
    mu, d = opt.per_parameter_outputs(theta, z)
    np.testing.assert_allclose(new.x, x - d * np.exp(0.001 * mu) * 0.001, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: Optimus(mlp_hidden=16, model_dim=16, ffn_dim=16), AdafactorMLP])
def test_step_scale_multiplies_the_step_and_keeps_the_architecture(make):
    opt = make()
    theta = _random_meta_params(opt)
    x = jnp.asarray([0.5, -1.0, 2.0, 0.1])
    g = jnp.asarray([1.0, -2.0, 0.5, 3.0])
    small = opt.with_step_scale(opt.step_scale_value / 10)
    assert small.architecture() == opt.architecture() and small != opt
    step = x - opt.update(theta, opt.init(theta, x), g, jnp.float32(1.0)).x
    small_step = x - small.update(theta, small.init(theta, x), g, jnp.float32(1.0)).x
    assert float(jnp.linalg.norm(step)) > 0
    np.testing.assert_allclose(small_step, step / 10, rtol=1e-3, atol=1e-3 * float(jnp.max(jnp.abs(step))))  # float32 x
    with pytest.raises(ValueError, match="positive"):
        opt.with_step_scale(0.0)


def test_stopping_rule():
    rule = StopRule(window=3, beta=1.5, eps=0.1)
    assert not rule.should_stop([10.0, 9.0, 8.0, 7.0])
    assert not rule.should_stop([1.0, 1.0, 1.0, 1.6])  # 1.6 = 1.5 * 1 + 0.1 is not above
    assert rule.should_stop([1.0, 1.0, 1.0, 1.61])
    assert not rule.should_stop([100.0, 100.0])  # fewer than `window` earlier values
    assert rule.should_stop([1.0, np.inf])
    trace = np.array([5.0, 4.0, 3.0, 2.0, 9.0, 1.0])
    assert rule.stop_index(trace) == 4 and StopRule(window=3, beta=10.0).stop_index(trace) == 5


def test_driver_stops_by_rule_and_keeps_the_best_point(tmp_path):
    """A deliberately bad optimizer (huge steps) makes the loss rise; the rule stops it early."""
    opt = Optimus(mlp_hidden=8, model_dim=8, ffn_dim=8, step_scale=30.0)
    theta = _random_meta_params(opt, scale=0.0)
    theta["net"]["step_head"]["b"] = jnp.array([0.0, -1.0])  # constant step of 30 along +1
    calls = []

    def fun_and_grad(x):
        calls.append(1)
        return float(np.sum(x**2)), 2.0 * x

    res = minimize(opt, theta, fun_and_grad, np.zeros(4), max_evals=50, stop_rule=StopRule(window=2, beta=1.0))
    assert res.n_evals < 50 and "stopping rule" in res.message
    assert res.fun == min(res.trace) and np.allclose(res.x, 0.0)
    res_all = minimize(opt, theta, fun_and_grad, np.zeros(4), max_evals=20, stop_rule=None)
    assert res_all.n_evals == 20


def test_weight_files_round_trip_and_reject_bad_input(tmp_path):
    opt = Optimus(mlp_hidden=8, model_dim=8, ffn_dim=8)
    theta = _random_meta_params(opt)
    path = tmp_path / "w.npz"
    save_weights(path, opt, theta)
    opt2, theta2 = load_weights(path, kind="optimus")
    assert opt2 == opt
    for a, b in zip(jax.tree_util.tree_leaves(theta), jax.tree_util.tree_leaves(theta2)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="expected 'adafactor_mlp'"):
        load_weights(path, kind="adafactor_mlp")
    with pytest.raises(InputError, match="not found"):
        load_weights(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a learned-optimizer weight file"):
        load_weights(tmp_path / "bad.npz")


@pytest.mark.parametrize("name,weights", [("optimus-nofallback", "optimus_classic.npz"),
                                          ("adafactor_mlp", "adafactor_mlp_classic.npz")])
def test_shipped_classic_learned_solver_decreases_a_quadratic(name, weights):
    # the classic weights' step multiplier suits unit-scale problems (the DiffPhy ones take 50x smaller steps)
    solver = get_solver(name, default_weights=weights)
    scales = np.linspace(0.5, 3.0, 30)
    x0 = np.random.default_rng(0).uniform(-3, 3, 30)

    def fun_and_grad(x):
        return 0.5 * float(np.sum(scales * x * x)), scales * x

    res = solver.minimize(fun_and_grad, x0, max_evals=100)
    f0 = fun_and_grad(x0)[0]
    assert res.fun < 0.05 * f0, (res.fun, f0, res.message)
    assert res.n_evals <= 100 and len(res.trace) == res.n_evals
