"""Full-episode antithetic ES: unbiased on a tiny problem where the exact smoothed gradient is known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon.optim.meta import es

A = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 4.0]])
B = jnp.array([1.0, -2.0, 0.5])
THETA = jnp.array([0.3, -0.7, 1.2])


def _objective(theta, key):
    """1/2 t'At + b't + c(k)'t + u(k): a quadratic (Gaussian smoothing leaves its gradient A t + b unbiased)
    with noise of mean zero in the slope, c ~ N(0, 0.5^2 I), and a large offset u ~ N(0, 10^2) that the
    common random numbers of a pair cancel."""
    kc, ku = jax.random.split(key)
    c = 0.5 * jax.random.normal(kc, theta.shape)
    return 0.5 * theta @ A @ theta + B @ theta + c @ theta + 10.0 * jax.random.normal(ku, ())


def test_plain_antithetic_estimator_is_unbiased():
    config = es.ESConfig(pairs=8, sigma=0.1)
    reps = 4000
    grads = jax.jit(jax.vmap(lambda k: es.es_gradient(_objective, config, THETA, k)[0]))(
        jax.random.split(jax.random.PRNGKey(0), reps))
    grads = np.asarray(grads, np.float64)
    exact = np.asarray(A @ THETA + B)
    # the variance, from the maths: a pair contributes z z'v, z ~ N(0, I), v = grad + c (F+ - F- = 2 eps'v
    # exactly); Var(z z'v | v)_j = v_j^2 + ||v||^2, plus Var(c_j) = 0.25 from v itself, so per pair
    # grad_j^2 + 0.25 + ||grad||^2 + 3 * 0.25 + 0.25, and the estimate averages 8 independent pairs
    var_theory = (exact**2 + exact @ exact + 1.25) / config.pairs
    np.testing.assert_allclose(grads.var(axis=0), var_theory, rtol=0.15)
    se = np.sqrt(var_theory / reps)
    assert np.all(np.abs(grads.mean(axis=0) - exact) < 5 * se), (grads.mean(axis=0), exact, se)


def test_rank_shaped_estimate_points_along_the_gradient():
    config = es.ESConfig(pairs=16, sigma=0.1, shaping="rank")
    grads = jax.vmap(lambda k: es.es_gradient(_objective, config, THETA, k)[0])(jax.random.split(jax.random.PRNGKey(1), 200))
    exact = np.asarray(A @ THETA + B)
    mean = np.asarray(grads).mean(axis=0)
    assert mean @ exact / (np.linalg.norm(mean) * np.linalg.norm(exact)) > 0.95
    with pytest.raises(ValueError):
        es.ESConfig(shaping="sign")


def test_episode_objective_over_a_subspace_of_a_learned_optimizer():
    """The issue's objective, log10(f_T / f_0), for POP's decays and step head on prior problems: finite,
    and the ES step runs on it."""
    from motionrecon.optim.meta.prior import PriorTask
    from motionrecon.optim.pop import POP

    opt = POP(model_dim=8, num_layers=1, num_heads=2, ffn_dim=16)
    meta = opt.init_meta_params(jax.random.PRNGKey(0))
    v0, to_meta = es.subspace(meta, ["decays", "net::log_step_head::b"])
    assert v0.shape == (8,)
    objective = es.episode_log_ratio(opt, to_meta, PriorTask(dims=(6,)), 6, problems=3, steps=10)
    grad, metrics = jax.jit(lambda v, k: es.es_gradient(objective, es.ESConfig(pairs=2), v, k))(v0, jax.random.PRNGKey(2))
    assert grad.shape == (8,) and np.all(np.isfinite(grad)) and float(metrics["objective"]) < 0


def test_es_training_descends_the_smoothed_objective():
    v, rows = es.es_train(_objective, jnp.zeros(3), es.ESConfig(pairs=8, sigma=0.1), steps=150, learning_rate=0.05,
                          key=jax.random.PRNGKey(3), log=lambda m: None)
    minimiser = -np.linalg.solve(np.asarray(A), np.asarray(B))
    assert len(rows) == 150 and np.linalg.norm(np.asarray(v) - minimiser) < 0.25 * np.linalg.norm(minimiser)


def test_resumed_training_draws_what_an_uninterrupted_run_would():
    config, key = es.ESConfig(pairs=4, sigma=0.1), jax.random.PRNGKey(5)
    saved = []
    v4, rows = es.es_train(_objective, jnp.zeros(3), config, steps=4, learning_rate=0.05, key=key, log=lambda m: None,
                           on_step=lambda v, rows: saved.append((np.asarray(v), len(rows))))
    assert [n for _, n in saved] == [1, 2, 3, 4] and np.array_equal(saved[-1][0], np.asarray(v4))
    # interrupted after step 2: carry on from its checkpoint, numbering (and so the keys) from step 3
    _, resumed = es.es_train(_objective, jnp.asarray(saved[1][0]), config, steps=4, learning_rate=0.05, key=key,
                             log=lambda m: None, first_step=3)
    assert [r["step"] for r in resumed] == [3, 4]
    # the same point and the same step's key: the same estimate (Adam's moments start afresh, so later points differ)
    assert resumed[0]["objective"] == rows[2]["objective"] and resumed[0]["grad_norm"] == rows[2]["grad_norm"]
