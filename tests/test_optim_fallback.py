"""Optimus with an L-BFGS fallback: the triggers, the shared budget, the best point, weight problems."""

import json
import shutil

import numpy as np
import pytest

from motionrecon.errors import InputError
from motionrecon.optim import get_solver
from motionrecon.optim.base import CountedObjective, SolveResult
from motionrecon.optim.classic import BasinHopping, ScipySolver
from motionrecon.optim.fallback import FallbackRule, FallbackSolver
from motionrecon.optim.optimus import OptimusSolver
from motionrecon.resources import resource_path


def rosenbrock(x):
    """Rosenbrock in any dimension: (loss, gradient)."""
    a, b = x[:-1], x[1:]
    f = float(np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2))
    g = np.zeros_like(x)
    g[:-1] += -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
    g[1:] += 200.0 * (b - a * a)
    return f, g


X0 = np.array([-1.2, 1.0, -1.2, 1.0, 0.5, -0.5])


class Scripted:
    """A stand-in primary: gradient descent with step `lr`, but whatever `fun_and_grad` it is given."""

    name = "scripted"

    def __init__(self, lr=1e-4):
        self.lr = lr

    def minimize(self, fun_and_grad, x0, *, max_evals, callback=None):
        obj = CountedObjective(fun_and_grad, max_evals, callback)
        x = np.asarray(x0, np.float64).copy()
        try:
            while True:
                f, g = obj(x)
                x = x - self.lr * g
        except Exception as e:  # BudgetExhausted only; anything else must reach the caller
            if type(e).__name__ != "BudgetExhausted":
                raise
        return obj.result(x0, obj.n_evals, "evaluation budget spent")


def poisoned(fun_and_grad, at_eval, what="loss"):
    """fun_and_grad whose `at_eval`-th call (1-based) returns NaN in the loss or the gradient."""
    calls = [0]

    def f(x):
        calls[0] += 1
        loss, grad = fun_and_grad(x)
        if calls[0] == at_eval:
            if what == "loss":
                return float("nan"), grad
            grad = grad.copy()
            grad[0] = np.nan
        return loss, grad

    f.calls = calls
    return f


def counting(fun_and_grad):
    calls = [0]

    def f(x):
        calls[0] += 1
        return fun_and_grad(x)

    f.calls = calls
    return f


NO_STALL = FallbackRule(window=10_000)


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_non_finite_evaluation_hands_over_to_lbfgs_from_the_best_point(what):
    primary = Scripted(lr=1e-4)
    solver = FallbackSolver(primary, ScipySolver(), NO_STALL)
    fg = poisoned(rosenbrock, at_eval=8, what=what)
    res = solver.minimize(fg, X0, max_evals=60)
    info = res.info
    assert info["fallback"] and info["fallback_kind"] == "non-finite"
    assert f"non-finite {what}" in info["fallback_reason"] and "evaluation 8" in info["fallback_reason"]
    assert info["fallback_at_eval"] == 8 == info["scripted_evals"] == info["primary_evals"]
    assert info["lbfgs_evals"] == res.n_evals - 8 > 0
    assert res.n_evals == fg.calls[0] <= 60 and len(res.trace) == res.n_evals
    assert (res.trace[7] == np.inf) == (what == "loss")  # the bad evaluation is in the trace
    # the primary alone (without the fallback) on the clean function is far worse in the same budget
    alone = Scripted(lr=1e-4).minimize(rosenbrock, X0, max_evals=60)
    assert res.fun < 0.5 * alone.fun
    assert res.fun == pytest.approx(rosenbrock(res.x)[0]) and res.fun == min(res.trace)


def test_stall_with_a_large_gradient_hands_over_and_is_recorded():
    primary = Scripted(lr=1e-9)  # moves, but far too little: the loss stays flat, the gradient large
    rule = FallbackRule(window=5, rel_tol=1e-3, grad_ratio=0.1)
    res = FallbackSolver(primary, ScipySolver(), rule).minimize(rosenbrock, X0, max_evals=80)
    info = res.info
    assert info["fallback"] and info["fallback_kind"] == "stall", info
    assert info["fallback_at_eval"] == 6  # checked from evaluation window + 1 on
    assert "stall" in info["fallback_reason"]
    assert info["lbfgs_evals"] > 0 and res.n_evals == info["fallback_at_eval"] + info["lbfgs_evals"] <= 80
    assert res.fun < 0.1 * res.trace[0]


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_divergence_hands_over_before_the_loss_turns_non_finite():
    res = FallbackSolver(Scripted(lr=0.01), ScipySolver(), NO_STALL).minimize(rosenbrock, X0, max_evals=40)
    info = res.info  # lr = 0.01 on Rosenbrock blows up: the loss multiplies at every step
    assert info["fallback_kind"] == "divergence" and info["fallback_at_eval"] == 2, info
    assert res.trace[1] > 10 * res.trace[0] and res.fun < res.trace[0]
    calm = FallbackRule(window=10_000, diverge_ratio=np.inf)
    res = FallbackSolver(Scripted(lr=0.01), ScipySolver(), calm).minimize(rosenbrock, X0, max_evals=40)
    assert res.info["fallback_kind"] == "non-finite"  # without the guard, only once it overflows


def test_converged_primary_stops_early_without_fallback():
    def quadratic(x):
        return float(x @ x), 2 * x

    rule = FallbackRule(window=5, rel_tol=1e-3, grad_ratio=0.1)
    res = FallbackSolver(Scripted(lr=0.5), ScipySolver(), rule).minimize(quadratic, np.ones(4), max_evals=50)
    # lr = 0.5 jumps to the minimum at once: no decrease afterwards, gradient 0 -> converged, budget left
    assert not res.info["fallback"] and res.info["converged"]
    assert res.n_evals == 7 < 50 and res.info["lbfgs_evals"] == 0
    keep = FallbackRule(window=5, rel_tol=1e-3, grad_ratio=0.1, stop_when_converged=False)
    res = FallbackSolver(Scripted(lr=0.5), ScipySolver(), keep).minimize(quadratic, np.ones(4), max_evals=50)
    assert res.n_evals == 50 and not res.info["fallback"] and not res.info["converged"]


def test_early_stop_of_optimus_continues_with_lbfgs_in_the_budget():
    class StopsEarly(Scripted):
        def minimize(self, fun_and_grad, x0, *, max_evals, callback=None):
            return super().minimize(fun_and_grad, x0, max_evals=12)

    fg = counting(rosenbrock)
    res = FallbackSolver(StopsEarly(1e-4), ScipySolver(), NO_STALL).minimize(fg, X0, max_evals=40)
    assert res.info["fallback_kind"] == "stop rule" and res.info["fallback_at_eval"] == 12
    assert res.n_evals == fg.calls[0] == 40


@pytest.mark.parametrize("budget", [1, 2, 9, 30])
def test_total_evaluations_never_exceed_the_budget(budget):
    for fg, rule in [(poisoned(rosenbrock, at_eval=3), NO_STALL), (counting(rosenbrock), FallbackRule(window=2)),
                     (counting(rosenbrock), NO_STALL)]:
        res = get_solver("optimus", fallback_rule=rule).minimize(fg, X0, max_evals=budget)
        assert res.n_evals == fg.calls[0] <= budget and len(res.trace) == res.n_evals
        assert res.info["optimus_evals"] + res.info["lbfgs_evals"] == res.n_evals


def test_switch_at_the_last_evaluation_leaves_nothing_for_lbfgs():
    fg = poisoned(rosenbrock, at_eval=9)
    res = FallbackSolver(Scripted(1e-4), ScipySolver(), NO_STALL).minimize(fg, X0, max_evals=9)
    assert res.info["fallback"] and res.info["fallback_at_eval"] == 9 and res.info["lbfgs_evals"] == 0
    assert res.n_evals == fg.calls[0] == 9 and np.isfinite(res.fun)


def test_best_point_is_kept_across_the_switch():
    """The primary finds a good point, then diverges; the fallback starts from (and never loses) the best."""

    class GoodThenBad(Scripted):
        def minimize(self, fun_and_grad, x0, *, max_evals, callback=None):
            obj = CountedObjective(fun_and_grad, max_evals)
            obj(np.ones_like(x0))  # the minimum of Rosenbrock: loss 0
            obj(x0 * 100)  # terrible
            x = x0 * 100
            while True:
                f, g = obj(x)
                if f >= 1e30:
                    return obj.result(x0, obj.n_evals, "non-finite loss")
                x = x * 1.0

    starts = []

    class RecordingLBFGS(ScipySolver):
        def minimize(self, fun_and_grad, x0, *, max_evals, callback=None):
            starts.append(np.array(x0))
            return super().minimize(fun_and_grad, x0, max_evals=max_evals, callback=callback)

    fg = poisoned(rosenbrock, at_eval=5)
    res = FallbackSolver(GoodThenBad(), RecordingLBFGS(), NO_STALL).minimize(fg, X0, max_evals=20)
    assert res.info["fallback_at_eval"] == 5
    np.testing.assert_array_equal(starts[0], np.ones_like(X0))
    np.testing.assert_array_equal(res.x, np.ones_like(X0))
    assert res.fun == 0.0


def test_shipped_optimus_with_fallback_records_its_facts_on_rosenbrock():
    solver = get_solver("optimus")
    assert isinstance(solver, FallbackSolver) and isinstance(solver.primary, OptimusSolver)
    assert solver.primary.weights.name == "optimus_diffphy.npz"
    res = solver.minimize(rosenbrock, X0, max_evals=100)
    assert set(res.info) >= {"fallback", "fallback_reason", "fallback_at_eval", "optimus_evals", "lbfgs_evals"}
    assert res.fun < res.trace[0] and res.n_evals <= 100
    json.dumps(res.info)  # goes into run.json as it is
    plain = get_solver("optimus-nofallback")
    assert isinstance(plain, OptimusSolver) and isinstance(get_solver("optimus", fallback=False), OptimusSolver)


def test_missing_default_weights_fall_back_to_lbfgs_for_the_whole_solve():
    solver = get_solver("optimus", default_weights="no_such_weights.npz")
    assert solver.primary is None
    fg = counting(rosenbrock)
    res = solver.minimize(fg, X0, max_evals=30)
    lbfgs = ScipySolver().minimize(rosenbrock, X0, max_evals=30)
    info = res.info
    assert info["fallback"] and info["fallback_kind"] == "weights" and info["fallback_at_eval"] == 0
    assert "no_such_weights.npz" in info["fallback_reason"] and info["optimus_evals"] == 0
    assert info["lbfgs_evals"] == res.n_evals == fg.calls[0] <= 30
    assert res.fun == pytest.approx(lbfgs.fun)  # exactly what L-BFGS alone does


def test_default_weights_of_another_kind_fall_back(tmp_path, monkeypatch):
    solver = get_solver("optimus", default_weights="adafactor_mlp_classic.npz")
    assert solver.primary is None and "'adafactor_mlp'" in solver.primary_error
    res = solver.minimize(rosenbrock, X0, max_evals=10)
    assert res.info["fallback_kind"] == "weights" and res.info["lbfgs_evals"] == res.n_evals


def test_weights_named_by_the_user_must_load(tmp_path):
    with pytest.raises(InputError, match="not found"):
        get_solver("optimus", weights=str(tmp_path / "missing.npz"))
    wrong = tmp_path / "wrong.npz"
    shutil.copy(resource_path("weights", "adafactor_mlp_classic.npz"), wrong)
    with pytest.raises(InputError, match="expected 'optimus'"):
        get_solver("optimus", weights=str(wrong))
    solver = get_solver("optimus", weights=str(resource_path("weights", "optimus_classic.npz")))
    assert solver.primary is not None


def test_basin_hopping_around_optimus_merges_the_fallback_facts():
    built = get_solver("optimus+basinhopping", evals_per_hop=10)
    assert isinstance(built, BasinHopping) and built.name == "optimus+basinhopping"
    assert isinstance(built.inner, FallbackSolver) and built.evals_per_hop == 10
    solver = BasinHopping(FallbackSolver(Scripted(1e-4), ScipySolver(), NO_STALL), evals_per_hop=10)
    fg = poisoned(rosenbrock, at_eval=14)  # inside the second hop, at its 4th evaluation
    res = solver.minimize(fg, X0, max_evals=30)
    info = res.info
    assert info["hops"] == 3 and info["fallback"] and info["fallback_hops"] == 1
    assert info["fallback_at_eval"] == 14 and info["fallback_reason"].startswith("hop 2:")
    assert info["scripted_evals"] + info["lbfgs_evals"] == res.n_evals == 30
    assert info["scripted_evals"] == 10 + 4 + 10 and info["lbfgs_evals"] == 6


def test_fallback_result_is_a_solve_result_with_the_interface_fields():
    res = get_solver("optimus").minimize(rosenbrock, X0, max_evals=5, callback=lambda n, f: None)
    assert isinstance(res, SolveResult) and res.x.shape == X0.shape and res.message
