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
