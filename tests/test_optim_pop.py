"""POP: shapes, permutation equivariance over coordinates, its start as Adam, meta-training by
backpropagation through unrolls, and the shipped weights as a solver."""

import dataclasses
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon.optim.learned import unroll
from motionrecon.optim.pop import NUM_TOKEN_FEATURES, POP

SMALL = dict(model_dim=16, num_layers=2, num_heads=2, ffn_dim=32)


def _perturbed(opt, seed=0, scale=0.3):
    """Meta-parameters with a non-zero output layer (it starts at zero, where POP is Adam)."""
    theta = opt.init_meta_params(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree_util.tree_flatten(theta)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def _loss(scales):
    return lambda x: 0.5 * jnp.sum(scales * x * x) + 0.1 * jnp.sum(jnp.cos(3.0 * x))


def test_shapes_and_any_dimension():
    opt = POP(**SMALL)
    theta = _perturbed(opt)
    for n in (2, 9, 50):
        state = opt.init(theta, jnp.ones(n))
        feat, log_lr = opt.log_step_sizes(theta, state, jnp.linspace(-1.0, 1.0, n), jnp.float32(3.0))
        assert log_lr.shape == (n,)
        tokens = opt.tokens(state, jnp.zeros((n, NUM_TOKEN_FEATURES - 6)), jnp.ones(n), jnp.float32(1.0))
        assert tokens.shape == (n, NUM_TOKEN_FEATURES)
        state, losses = unroll(opt, theta, _loss(jnp.linspace(0.5, 5.0, n)), state, 3)
        assert state.x.shape == (n,) and losses.shape == (3,) and np.all(np.isfinite(state.x))


def test_permuting_coordinates_permutes_the_steps():
    opt = POP(**SMALL)
    theta = _perturbed(opt, seed=3)
    n = 13
    rng = np.random.default_rng(4)
    scales = jnp.asarray(rng.uniform(0.3, 8.0, n), jnp.float32)
    x0 = jnp.asarray(rng.normal(size=n), jnp.float32)
    perm = rng.permutation(n)
    a, _ = unroll(opt, theta, _loss(scales), opt.init(theta, x0), 5)
    b, _ = unroll(opt, theta, _loss(scales[perm]), opt.init(theta, x0[perm]), 5)
    np.testing.assert_allclose(b.x, a.x[perm], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.log_lr, a.log_lr[perm], rtol=1e-4, atol=1e-5)
    assert np.std(np.asarray(a.log_lr)) > 1e-3, "the step sizes must differ between coordinates to test anything"


def test_untrained_pop_is_adam():
    import optax

    opt = POP(init_step=0.05, **SMALL)
    theta = opt.init_meta_params(jax.random.PRNGKey(0))
    loss = _loss(jnp.linspace(0.5, 5.0, 6))
    x0 = jnp.linspace(-1.0, 1.0, 6)
    state, _ = unroll(opt, theta, loss, opt.init(theta, x0), 4)
    tx = optax.adam(0.05, b1=0.9, b2=0.999, eps=1e-8)
    x, s = x0, tx.init(x0)
    for _ in range(4):
        u, s = tx.update(jax.grad(loss)(x), s)
        x = x + u
    np.testing.assert_allclose(state.x, x, rtol=2e-4, atol=2e-5)


def test_backprop_through_unrolls_lowers_the_meta_loss(tmp_path):
    from motionrecon.optim.meta.bptt import BPTTConfig, train_bptt

    config = BPTTConfig(optimizer_options=SMALL, task_options={"dims": [6]}, batch=8, curriculum=(8,),
                        learning_rate=3e-3, max_steps=40, eval_every=40, eval_problems=16, eval_steps=8)
    first = train_bptt(config, tmp_path, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_meta_loss"] for r in rows if "val_meta_loss" in r]
    assert vals[-1] < vals[0], vals
    assert first["best_val_meta_loss"] == min(vals) and (tmp_path / "best_weights.npz").exists()
    again = train_bptt(dataclasses.replace(config, max_steps=45), tmp_path, log=lambda m: None)
    assert first["steps"] == 40 and again["steps"] == 45  # resumed, not restarted
    assert again["best_val_meta_loss"] <= first["best_val_meta_loss"]  # the best so far carried over



def test_shipped_pop_runs_as_a_solver():
    from motionrecon.optim import get_solver

    a = np.diag(np.logspace(0, 1, 10))
    f0 = 0.5 * np.trace(a)
    for weights in ("pop_prior.npz", None):  # None: the default, pop_diffphy.npz
        options = {"default_weights": weights} if weights else {}
        res = get_solver("pop", **options).minimize(lambda x: (0.5 * x @ a @ x, a @ x), np.ones(10), max_evals=40)
        assert res.n_evals == 40 and res.fun < 0.1 * f0, (weights, res.fun)


def test_prior_problems_have_their_stated_minimum():
    from motionrecon.optim.meta.prior import PriorTask

    task = PriorTask(dims=(7,))
    problems, x0 = jax.vmap(lambda k: task.sample(k, 7))(jax.random.split(jax.random.PRNGKey(0), 24))
    kinds = np.asarray(problems.kind)
    assert set(kinds) == {0, 1, 2}
    at_min = jax.vmap(task.loss)(problems, problems.c)  # the minimiser of kinds 0 and 1
    smooth = kinds < 2
    np.testing.assert_allclose(np.asarray(at_min)[smooth], 0.0, atol=1e-6)
    assert np.all(np.asarray(problems.f_init)[smooth] > 0) and np.all(np.isfinite(problems.f_init))
    np.testing.assert_allclose(problems.f_init, jax.vmap(task.loss)(problems, x0), rtol=1e-5)


def test_prior_quadratics_follow_the_measured_window_spectrum():
    """spectrum="windows": eigenvalues drawn as log10(lam) = log_cond + r with r following WINDOW_LOG_SPECTRUM
    (its quantiles within 0.05 decades over 100 000 draws: 4 standard errors where the spectrum is steepest);
    the quadratics built from them are positive definite and dense (rotated); the first guess stays log-uniform in [1, kappa]; an
    unknown spectrum is refused."""
    from motionrecon.optim.meta import prior

    q, v = np.asarray(prior.WINDOW_SPECTRUM_QUANTILES), np.asarray(prior.WINDOW_LOG_SPECTRUM)
    windows = prior.PriorTask(dims=(12,), spectrum="windows", rotate=1.0)
    r = np.log10(np.asarray(windows.eigenvalues(jax.random.PRNGKey(0), 2.0, 100000), np.float64)) - 2.0
    inner = q[1:-1]
    np.testing.assert_allclose(np.quantile(r, inner), v[1:-1], atol=0.05)
    assert v[0] - 1e-3 <= r.min() and r.max() <= v[-1] + 1e-3
    guess = prior.PriorTask(dims=(12,))
    u = np.log10(np.asarray(guess.eigenvalues(jax.random.PRNGKey(0), 2.0, 100000), np.float64)) / 2.0
    np.testing.assert_allclose(np.quantile(u, inner), inner, atol=0.02)

    problems, _ = jax.vmap(lambda k: windows.sample(k, 12))(jax.random.split(jax.random.PRNGKey(1), 16))
    quadratic = np.asarray(problems.kind) == 0
    lam = np.linalg.eigvalsh(np.asarray(problems.A, np.float64)[quadratic])  # [n, 12]
    assert quadratic.any() and np.all(lam > 0)
    a = np.asarray(problems.A, np.float64)[quadratic]
    off = a - a * np.eye(12)
    assert np.all(np.linalg.norm(off, axis=(1, 2)) > 0.3 * np.linalg.norm(a, axis=(1, 2)))  # rotated: dense
    with pytest.raises(ValueError, match="spectrum"):
        prior.PriorTask(spectrum="guess")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import train_pop  # its --spectrum choices and card words, one per spectrum

    assert tuple(train_pop.SPECTRUM_WORDS) == prior.SPECTRA


def test_pop_runs_batched():
    from motionrecon.optim import batched, batched_solver

    solver = batched_solver("pop", 20)
    scales = jnp.linspace(0.5, 3.0, 5)
    evaluate = jax.vmap(jax.value_and_grad(lambda x: 0.5 * jnp.sum(scales * x * x)))
    carry = jax.jit(lambda x0: batched.minimize(solver, evaluate, x0, 20))(jnp.ones((3, 5)))
    out = batched.results(solver, carry.record, np.ones((3, 5)))
    assert all(r.n_evals == 20 and r.fun < 0.5 * float(jnp.sum(scales)) for r in out)
