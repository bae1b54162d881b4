"""Imitation of L-BFGS: the two-loop direction against SciPy, labels from a recorded trajectory, and a
teacher-initialised Optimus that reproduces its teacher."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from motionrecon.optim import imitation


def _quadratic(n=12, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.logspace(0, 2, n)) @ q.T
    b = rng.normal(size=n)
    return a, b


def _scipy_direction(s, y, g):
    """-H g with SciPy's LbfgsInvHessProduct (H_0 = I) after scaling the variables by sqrt(gamma), which
    turns H_0 = I into L-BFGS's H_0 = gamma I: H_gamma(s, y) = gamma * H_I(s / sqrt(gamma), sqrt(gamma) y)."""
    gamma = s[-1] @ y[-1] / (y[-1] @ y[-1])
    r = np.sqrt(gamma)
    return -gamma * scipy.optimize.LbfgsInvHessProduct(s / r, y * r).matvec(g)


def test_two_loop_direction_equals_scipy_on_a_quadratic():
    a, b = _quadratic()
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(9, a.shape[0]))          # any trajectory: pairs need only s'y > 0 (true for A > 0)
    gs = xs @ a - b
    s, y = np.diff(xs, axis=0), np.diff(gs, axis=0)
    m = 5
    hist = imitation.empty_history(m, a.shape[0])
    for si, yi in zip(s, y):
        hist = imitation.push(hist, jnp.asarray(si, jnp.float32), jnp.asarray(yi, jnp.float32))
    got = np.asarray(imitation.lbfgs_direction(hist, jnp.asarray(gs[-1], jnp.float32)))
    want = _scipy_direction(s[-m:], y[-m:], gs[-1])
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * np.abs(want).max())


def test_labels_from_a_trajectory_are_the_teacher_at_every_evaluation():
    a, b = _quadratic(8, seed=2)
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(6, 8))
    gs = xs @ a - b
    m = 3
    labels = imitation.trajectory_labels(xs, gs, history=m, first_step=0.5)
    assert labels.features.shape[:2] == (6, 8) and labels.teacher.shape == (6, 8)
    g0 = gs[0]
    np.testing.assert_allclose(labels.teacher[0], -0.5 * g0 / np.linalg.norm(g0), rtol=1e-5)
    s, y = np.diff(xs, axis=0), np.diff(gs, axis=0)
    for t in range(1, 6):
        lo = max(0, t - m)
        want = _scipy_direction(s[lo:t], y[lo:t], gs[t])
        np.testing.assert_allclose(labels.teacher[t], want, rtol=2e-4, atol=2e-4 * np.abs(want).max())
    np.testing.assert_allclose(labels.step[:-1], np.diff(xs, axis=0), rtol=1e-6, atol=1e-6)
    assert list(np.asarray(labels.has_step)) == [True] * 5 + [False]


def test_pairs_failing_the_curvature_condition_are_skipped():
    hist = imitation.empty_history(3, 2)
    hist = imitation.push(hist, jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0]))  # s'y < 0
    assert not bool(np.any(hist.valid))
    hist = imitation.push(hist, jnp.array([1.0, 0.0]), jnp.array([2.0, 0.0]))
    assert list(np.asarray(hist.valid)) == [False, False, True]


def _teacher_run(a, b, x0, steps, m, first_step):
    """L-BFGS with unit steps and no line search, in float64 with SciPy's two-loop product."""
    xs, gs = [x0], [a @ x0 - b]
    for k in range(steps):
        g = gs[-1]
        if k == 0:
            d = -first_step * g / np.linalg.norm(g)
        else:
            s, y = np.diff(xs, axis=0)[-m:], np.diff(gs, axis=0)[-m:]
            d = _scipy_direction(s, y, g)
        xs.append(xs[-1] + d)
        gs.append(a @ xs[-1] - b)
    return np.asarray(xs)


@pytest.mark.parametrize("variant", ["full", "no_structure"])
def test_imitation_initialised_optimus_reproduces_its_teacher(variant):
    import jax

    from motionrecon.optim.learned import unroll
    from motionrecon.optim.optimus_lbfgs import OptimusLBFGS

    a, b = _quadratic(10, seed=4)
    a = a / np.linalg.norm(a, 2) * 5.0
    x0 = np.random.default_rng(5).normal(size=10)
    opt = OptimusLBFGS(variant=variant, history=4, first_step=0.3, model_dim=32, mlp_hidden=32, ffn_dim=64)
    theta = opt.init_meta_params(jax.random.PRNGKey(0))
    aj, bj = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    want = _teacher_run(a, b, x0, 6, m=4, first_step=0.3)
    state = opt.init(theta, jnp.asarray(x0, jnp.float32))
    got = [np.asarray(state.x)]
    for _ in range(6):
        state, _ = unroll(opt, theta, lambda x: 0.5 * x @ aj @ x - bj @ x, state, 1)
        got.append(np.asarray(state.x))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    # it is the teacher, not a no-op: the quadratic's loss fell
    f = lambda x: 0.5 * x @ a @ x - b @ x  # noqa: E731
    assert f(got[-1]) < f(x0) - 0.5 * abs(f(x0))


def test_step_from_labels_is_the_update_at_initialisation():
    import jax

    from motionrecon.optim.optimus_lbfgs import OptimusLBFGS

    a, b = _quadratic(7, seed=6)
    xs = np.random.default_rng(7).normal(size=(5, 7))
    labels = imitation.relabel_with_teacher(imitation.trajectory_labels(xs, xs @ a - b, history=3))
    opt = OptimusLBFGS(history=3, model_dim=16, mlp_hidden=16, ffn_dim=32)
    theta = opt.init_meta_params(jax.random.PRNGKey(1))
    assert float(imitation.imitation_loss(opt, theta, labels)) < 1e-10


def test_optimus_lbfgs_is_a_named_solver_plain_and_batched():
    import jax

    from motionrecon.optim import batched, batched_solver, get_solver

    a = np.diag(np.logspace(0, 2, 12))
    b = np.ones(12)
    exact = -0.5 * b @ np.linalg.solve(a, b)
    res = get_solver("optimus_lbfgs").minimize(lambda x: (0.5 * x @ a @ x - b @ x, a @ x - b), np.zeros(12),
                                              max_evals=30)
    assert res.n_evals == 30 and res.fun - exact < 1e-3 * abs(exact)
    solver = batched_solver("optimus_lbfgs", 30)
    aj, bj = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    evaluate = jax.vmap(jax.value_and_grad(lambda x: 0.5 * x @ aj @ x - bj @ x))
    carry = jax.jit(lambda x0: batched.minimize(solver, evaluate, x0, 30))(jnp.zeros((2, 12)))
    out = batched.results(solver, carry.record, np.zeros((2, 12)))
    assert all(r.fun - exact < 1e-3 * abs(exact) for r in out)


def test_imitation_loss_is_finite_at_a_converged_or_huge_label():
    import jax

    from motionrecon.optim.optimus_lbfgs import OptimusLBFGS

    opt = OptimusLBFGS(history=2, model_dim=16, mlp_hidden=16, ffn_dim=32)
    theta = opt.init_meta_params(jax.random.PRNGKey(2))
    # a repeated point (zero step), huge ones
    xs = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4e30, -1e30, 2.0], [1e33, 2e33, 0.0]])
    gs = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e30, 3e30, -1.0], [1e20, -1e20, 1.0]])
    labels = imitation.concatenate([imitation.trajectory_labels(xs, gs, history=2)])
    loss, grad = jax.value_and_grad(lambda th: imitation.imitation_loss(opt, th, labels))(theta)
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grad))
