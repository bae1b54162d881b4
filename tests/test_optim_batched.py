"""Solvers inside JAX (`optim.batched`): the fallback rule decides as the Python one does, learned optimizers take
the steps of their Python driver, every problem of a batch keeps its own record."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon.optim import batched, batched_solver, classic, fallback, get_solver
from motionrecon.optim.learned import minimize as learned_minimize

N, B, BUDGET = 12, 3, 30


def quadratics(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((B, N, N))
    h = np.einsum("bij,bkj->bik", a, a) / N + 0.1 * np.eye(N)
    c = rng.standard_normal((B, N))
    return jnp.asarray(h, jnp.float32), jnp.asarray(c, jnp.float32)


def quadratic(x, h, c):
    return 0.5 * x @ h @ x - c @ x + 10.0


def run(solver, h, c, x0, budget=BUDGET):
    evaluate = jax.vmap(jax.value_and_grad(quadratic))
    carry = jax.jit(lambda x0: batched.minimize(solver, lambda x: evaluate(x, h, c), x0, budget))(x0)
    return batched.results(solver, carry.record, np.asarray(x0))


def python_objective(h, c):
    def fg(x):
        f, g = jax.value_and_grad(quadratic)(jnp.asarray(x, jnp.float32), h, c)
        return float(f), np.asarray(g, np.float64)

    return fg


@pytest.mark.parametrize("rate,kind", [(1e-6, "stall"), (50.0, "divergence")])
def test_fallback_rule_hands_over_where_the_python_rule_does(rate, kind):
    h, c = quadratics()
    rule = fallback.FallbackRule()
    solver = batched.Fallback(batched.Optax("sgd", rate), batched.LBFGS(history=20), rule, BUDGET, name="sgd")
    out = run(solver, h, c, jnp.zeros((B, N)))
    for i in range(B):
        ref = fallback.FallbackSolver(classic.OptaxSolver("sgd", rate), classic.ScipySolver(), rule).minimize(
            python_objective(h[i], c[i]), np.zeros(N), max_evals=BUDGET)
        got = out[i].info
        assert got["fallback_kind"] == ref.info["fallback_kind"] == kind
        assert got["fallback_at_eval"] == ref.info["fallback_at_eval"], (got, ref.info)
        assert got["sgd_evals"] + got["lbfgs_evals"] == out[i].n_evals == BUDGET
        np.testing.assert_allclose(out[i].trace[:got["fallback_at_eval"]], ref.trace[:got["fallback_at_eval"]],
                                   rtol=1e-4)
        assert out[i].fun < 0.5 * out[i].trace[0]  # L-BFGS carried on from the best point and descended


def test_fallback_without_weights_runs_lbfgs_throughout_and_says_why():
    h, c = quadratics(1)
    solver = batched.Fallback(None, batched.LBFGS(history=20), fallback.FallbackRule(), BUDGET)
    out = run(solver, h, c, jnp.zeros((B, N)))
    plain = run(batched.LBFGS(history=20), h, c, jnp.zeros((B, N)))
    for r, p in zip(out, plain):
        assert r.info["fallback_kind"] == "weights" and r.info["fallback_at_eval"] == 0
        np.testing.assert_allclose(r.trace, p.trace, rtol=1e-6)


def test_batched_optimus_takes_the_steps_of_its_python_driver():
    h, c = quadratics(2)
    python = get_solver("optimus-nofallback")
    solver = batched_solver("optimus-nofallback", 12)
    out = run(solver, h, c, jnp.zeros((B, N)), budget=12)
    for i in range(B):
        ref = learned_minimize(python.optimizer, python.meta_params, python_objective(h[i], c[i]), np.zeros(N),
                               max_evals=12, stop_rule=None)
        np.testing.assert_allclose(out[i].trace, ref.trace, rtol=2e-4)


def test_each_problem_keeps_its_own_record_and_a_non_finite_one_is_contained():
    h, c = quadratics(3)
    c = c.at[1, 0].set(jnp.nan)  # problem 1 is non-finite everywhere
    out = run(batched.LBFGS(history=20), h, c, jnp.zeros((B, N)))
    clean = run(batched.LBFGS(history=20), *quadratics(3), jnp.zeros((B, N)))
    assert all(np.isinf(out[1].trace)) and not np.isfinite(out[1].fun)
    np.testing.assert_array_equal(out[1].x, np.zeros(N))  # no finite point: the start is returned
    for i in (0, 2):
        assert out[i].trace == clean[i].trace and out[i].fun == min(out[i].trace)


def test_batched_bfgs_minimises_quadratics_and_reaches_their_minimum():
    """optimistix's BFGS behind the batched interface ("bfgs"): a dense inverse Hessian finds the minimum of an
    N-dimensional quadratic within a few N evaluations (L-BFGS with the same budget is no closer)."""
    h, c = quadratics(4)
    solver = batched_solver("bfgs", BUDGET)
    assert isinstance(solver, batched.BFGS) and solver.name == "bfgs"
    out = run(solver, h, c, jnp.zeros((B, N)))
    lbfgs = run(batched.LBFGS(history=20), h, c, jnp.zeros((B, N)))
    for i in range(B):
        x_star = np.linalg.solve(np.asarray(h[i], np.float64), np.asarray(c[i], np.float64))
        f_star = float(quadratic(jnp.asarray(x_star, jnp.float32), h[i], c[i]))
        assert out[i].n_evals == BUDGET
        assert out[i].fun - f_star < 1e-3 * (out[i].trace[0] - f_star)
        assert out[i].fun - f_star <= lbfgs[i].fun - f_star + 1e-4


def test_bfgs_shortens_a_rejected_step_to_the_quadratics_minimum_along_it():
    """On 0.5 |x|^2 from |x0| = 5 a first trial of length 20 overshoots the minimum (at length 5) and is rejected;
    the interpolating search (the default) tries the minimum next (a fraction 0.25 of the step), where
    optimistix's halving needs two more trials (0.5: the mirror point, rejected; then 0.25)."""
    h = jnp.broadcast_to(jnp.eye(N), (B, N, N))
    c = jnp.zeros((B, N))
    x0 = jnp.zeros((B, N)).at[:, 0].set(3.0).at[:, 1].set(4.0)
    interpolating = run(batched.BFGS(first_step=20.0), h, c, x0, budget=6)
    halving = run(batched.BFGS(first_step=20.0, interpolate=False), h, c, x0, budget=6)
    f_min = 10.0  # quadratic() adds 10
    for i in range(B):
        assert interpolating[i].trace[:2] == pytest.approx([22.5, 122.5])
        assert interpolating[i].trace[2] == pytest.approx(f_min, abs=1e-4)
        assert halving[i].trace[1:4] == pytest.approx([122.5, 22.5, f_min], abs=1e-4)


def test_bfgs_seeded_with_pairs_along_each_axis_of_a_diagonal_quadratic_takes_the_newton_step():
    """Secant pairs along every axis of 0.5 x'Ax - c'x (A diagonal) give BFGS the exact inverse Hessian; a pair of
    negative curvature or with an unusable end is skipped; seeded, BFGS's first trial is the minimum A^-1 c."""
    a = np.linspace(1.0, 40.0, N).astype(np.float32)
    c = np.arange(1, N + 1, dtype=np.float32)
    xs = np.concatenate([np.zeros((1, N)), np.cumsum(np.eye(N), axis=0)]).astype(np.float32)  # x_i+1 = x_i + e_i
    gs = xs * a - c
    ok = np.ones(N + 1, bool)
    h = np.asarray(batched.bfgs_inverse_from_pairs(jnp.asarray(xs), jnp.asarray(gs), jnp.asarray(ok)))
    np.testing.assert_allclose(h, np.diag(1 / a), atol=1e-5)
    # a negative-curvature pair (the gradient of a concave function) and an unusable point leave the identity
    eye = np.eye(N, dtype=np.float32)
    two = jnp.asarray(xs[:2])
    assert np.allclose(batched.bfgs_inverse_from_pairs(two, -two, jnp.ones(2, bool)), eye)
    assert np.allclose(batched.bfgs_inverse_from_pairs(two, jnp.asarray(gs[:2]), jnp.asarray([True, False])), eye)
    x0 = jnp.full((N,), 0.5)
    f0, g0 = 0.5 * jnp.sum(a * x0 * x0) - c @ x0, a * x0 - c
    for solver in (batched.BFGS(), batched.BFGS(first_step=5.0, interpolate=False)):
        state = solver.start_seeded(x0, f0, g0, jnp.asarray(xs), jnp.asarray(gs), jnp.asarray(ok))
        np.testing.assert_allclose(solver.query(state), c / a, rtol=1e-4)


def test_fallback_seeds_its_bfgs_with_the_primarys_last_evaluations_in_order():
    """`Fallback(seed_pairs=M)`: the fallback's first point after the hand-over is BFGS's seeded start from the best
    point with the primary's last M evaluations, oldest first (the ring wraps: the hand-over comes after more),
    those with a loss above `seed_loss_ratio` times the best left out."""
    h, c = quadratics(5)
    m, rate, ratio = 3, 0.02, 1.03
    solver = batched.Fallback(batched.Optax("sgd", rate), batched.BFGS(), fallback.FallbackRule(window=6), BUDGET,
                              name="sgd", seed_pairs=m, seed_loss_ratio=ratio)
    evaluate = jax.vmap(jax.value_and_grad(quadratic))
    x = jnp.zeros((B, N))
    f, g = evaluate(x, h, c)
    carry = batched.start(solver, x, f, g, BUDGET)
    points, grads, losses = [x], [g], [f]
    for _ in range(BUDGET - 1):
        x = batched.query(solver, carry)
        f, g = evaluate(x, h, c)
        carry = batched.tell(solver, carry, x, f, g, BUDGET)
        points.append(x), grads.append(g), losses.append(f)
    for i in range(B):
        k = int(carry.state.switch_at[i])
        assert k > m + 1, k  # the ring has wrapped before the hand-over
        xs = jnp.stack([p[i] for p in points[k - m:k]])
        gs = jnp.stack([q[i] for q in grads[k - m:k]])
        seen = np.array([float(v[i]) for v in losses[:k]])
        best = int(np.argmin(seen))
        near = seen[k - m:] <= ratio * seen[best]
        assert 2 <= near.sum() < m  # a pair is used, and a point left out
        want = batched.BFGS().start_seeded(points[best][i], losses[best][i], grads[best][i], xs, gs, jnp.asarray(near))
        np.testing.assert_allclose(points[k][i], batched.BFGS().query(want), rtol=1e-5, atol=1e-6)
        assert float(carry.record.best_f[i]) < float(losses[k - 1][i])  # and it went on descending


@pytest.mark.parametrize("name", ["adam", "sgdm"])
def test_batched_optax_solvers_by_name_take_the_steps_of_their_python_form(name):
    """`batched_solver("adam")` (it raised a TypeError before session 17) steps as `get_solver("adam")` does."""
    h, c = quadratics(5)
    out = run(batched_solver(name, BUDGET, learning_rate=0.05), h, c, jnp.zeros((B, N)))
    for i in range(B):
        ref = get_solver(name, learning_rate=0.05).minimize(python_objective(h[i], c[i]), np.zeros(N),
                                                           max_evals=BUDGET)
        np.testing.assert_allclose(out[i].trace, ref.trace, rtol=1e-4)
