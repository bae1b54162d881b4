"""A solver that hands over to another inside the same evaluation budget when the first one goes wrong.

    FallbackSolver(primary, fallback, rule).minimize(fun_and_grad, x0, max_evals=M)

runs `primary` on the whole budget M while watching every evaluation, and
switches to `fallback` (started from the best point so far, with the M - k
evaluations that are left) as soon as one of these happens after evaluation k:

  - "weights": the primary could not be built (its weight file is missing, unreadable or of
    another kind or architecture); the fallback then runs from x0 with the whole budget (k = 0);
  - "non-finite": the loss or a gradient entry is NaN or inf;
  - "divergence": the loss exceeds `rule.diverge_ratio` times the best loss so far (a cheap guard
    that acts before Optimus's own stop rule has the 10 evaluations it needs);
  - "stall": over the last `rule.window` evaluations the best loss fell by less than
    `rule.rel_tol` (relative), while the gradient norm is still above `rule.grad_ratio`
    times the first one (so the primary is stuck, not at a minimum);
  - "stop rule": the primary returned by itself before the budget was spent (Optimus's
    test-time rule, a divergence detector: f_k > 2 * mean of the previous 10).

When the best loss stops falling with the gradient norm *below* `rule.grad_ratio` times
the first one, the primary has converged: with `rule.stop_when_converged` the solve ends
there without a fallback, leaving the rest of the budget unspent; otherwise the primary
keeps the budget. The default `grad_ratio` is 0, so on the DiffPhy loss every plateau
hands over to the fallback: there a gradient 0.1x its first value was measured at losses
5x above what L-BFGS reached (see `FallbackRule`), and an early "converged" stop cost
accuracy; the fallback's own stopping test decides instead.

The result's `info` always holds
    fallback: bool, fallback_kind: str (one of the five above, "" when none),
    fallback_reason: str (a sentence, "" when none), fallback_at_eval: int (evaluations
    spent before the switch, -1 when none), primary_evals / fallback_evals: int,
    and the same counts under the solvers' names (e.g. "optimus_evals", "lbfgs_evals"),
    converged: bool (the early stop above fired).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from motionrecon.errors import InputError
from motionrecon.optim.base import BudgetExhausted, Callback, CountedObjective, FunAndGrad, SolveResult


@dataclasses.dataclass(frozen=True)
class FallbackRule:
    """When a primary solver is stuck or done; see the module docstring.

    window: evaluations over which progress is judged (checked from evaluation `window` + 1 on).
    rel_tol: the best loss must fall by more than rel_tol * |best loss `window` evaluations ago|.
    grad_ratio: gradient norm (the smallest of the last `window`) above grad_ratio * the first
      evaluation's -> "stall" (fall back); at or below -> "converged".
    diverge_ratio: a loss above diverge_ratio * the best loss so far -> "divergence" (only while
      the best loss is positive).
    stop_when_converged: end the solve early on "converged".

    Defaults from DiffPhy reconstructions of pybullet's mocap clips (docs/learned-optimizers.md,
    "When it falls back"). The shipped Optimus descends fastest over its first ~10 evaluations
    and then flattens, while L-BFGS, which builds curvature as it goes, keeps descending; so
    the hand-over comes as soon as Optimus's best loss gains less than 20 % over 3
    evaluations (`window`, `rel_tol`). Against the earlier 5 % over 10 this lowered MPJPE-G
    on 4 of 5 clips (walk 4 s 23.1 -> 16.8 mm, dance_a 63.8 -> 50.1, dance_b 71.3 -> 52.7,
    kick 55.8 -> 55.4; punch 29.8 -> 36.2). On this loss a gradient 0.1x its first value
    comes while the loss is still far from the window's minimum, so a small gradient is no
    sign of convergence and every plateau hands over (`grad_ratio` = 0: L-BFGS's own
    stopping test then decides whether the point is a minimum). One L-BFGS line-search trial
    reached 14x the best loss (so divergence is judged at 10x and only on the primary, which
    takes no trial steps).
    """

    window: int = 3
    rel_tol: float = 0.2
    grad_ratio: float = 0.0
    diverge_ratio: float = 10.0
    stop_when_converged: bool = True

    def check(self, trace: list[float], best: list[float], grad_norms: list[float]) -> Optional[str]:
        """"divergence", "stall", "converged" or None after the latest evaluation.

        trace: loss of each evaluation (inf where non-finite).
        best: best finite loss after each evaluation so far (inf until the first finite one).
        grad_norms: gradient norm of each evaluation (inf where non-finite).
        """
        k = len(best)
        if k >= 2 and 0 < best[k - 2] < np.inf and trace[k - 1] > self.diverge_ratio * best[k - 2]:
            return "divergence"
        if k <= self.window or not np.isfinite(grad_norms[0]):
            return None
        before, now = best[k - 1 - self.window], best[k - 1]
        if not np.isfinite(before) or before - now > self.rel_tol * max(abs(before), 1e-12):
            return None
        recent = min(grad_norms[k - self.window:])
        return "stall" if recent > self.grad_ratio * grad_norms[0] else "converged"


class _Switch(Exception):
    """Raised inside the primary's objective to stop it; carries why."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class _Watch(CountedObjective):
    """The objective both solvers see: a `CountedObjective` (budget, trace, best point, non-finite
    guard) that also keeps the best loss and gradient norm after each evaluation and, while the
    primary runs (`rule` set), applies the rule."""

    def __init__(self, fun_and_grad: FunAndGrad, max_evals: int, callback: Optional[Callback]):
        super().__init__(fun_and_grad, max_evals, callback)
        self.best: list[float] = []
        self.grad_norms: list[float] = []
        self.rule: Optional[FallbackRule] = None  # armed while the primary runs

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = super().__call__(x)
        k = self.n_evals
        self.best.append(self.best_f)
        self.grad_norms.append(float(np.linalg.norm(g)) if self.last_finite else np.inf)
        if self.rule is not None:
            if not self.last_finite:
                what = "loss" if not np.isfinite(self.trace[-1]) else "gradient"
                raise _Switch(f"non-finite {what} at evaluation {k}", "non-finite")
            verdict = self.rule.check(self.trace, self.best, self.grad_norms)
            if verdict == "divergence":
                raise _Switch(f"divergence: loss {f:.4g} above {self.rule.diverge_ratio:g}x the best "
                              f"{self.best[-2]:.4g} (evaluation {k})", "divergence")
            if verdict == "stall":
                raise _Switch(f"stall: best loss fell less than {self.rule.rel_tol:g} (relative) over "
                              f"{self.rule.window} evaluations with the gradient norm at "
                              f"{min(self.grad_norms[-self.rule.window:]) / self.grad_norms[0]:.3g} of its first "
                              f"value (evaluation {k})", "stall")
            if verdict == "converged" and self.rule.stop_when_converged:
                raise _Switch(f"converged at evaluation {k}", "converged")
        return f, g


@dataclasses.dataclass
class FallbackSolver:
    """`primary` watched by `rule`, `fallback` taking over inside the same budget (module docstring).

    primary: a solver, or None when it could not be built; then `primary_error` says why and the
      fallback does all the work.
    name: the solver's name in results (default: the primary's, e.g. "optimus").
    """

    primary: Optional[object]
    fallback: object
    rule: FallbackRule = FallbackRule()
    primary_error: str = ""
    primary_name: str = "optimus"
    name: str = ""

    def __post_init__(self):
        if self.primary is not None:
            self.primary_name = self.primary.name
        self.name = self.name or self.primary_name

    def minimize(self, fun_and_grad: FunAndGrad, x0: np.ndarray, *, max_evals: int,
                 callback: Optional[Callback] = None) -> SolveResult:
        x0 = np.asarray(x0, np.float64)
        watch = _Watch(fun_and_grad, max_evals, callback)
        reason, kind, message, primary_iters = "", "", "", 0
        if self.primary is None:
            reason, kind = f"weights: {self.primary_error}", "weights"
        else:
            watch.rule = self.rule
            try:
                res = self.primary.minimize(watch, x0, max_evals=max_evals)
                primary_iters, message = res.n_iters, res.message
                if len(watch.trace) < max_evals:
                    reason, kind = f"stop rule: {res.message} (evaluation {len(watch.trace)})", "stop rule"
            except _Switch as s:
                reason, kind = s.reason, s.kind
                primary_iters = len(watch.trace)
            watch.rule = None
        primary_evals = len(watch.trace)
        fallback_iters = 0
        converged = kind == "converged"
        if converged:
            message, reason, kind = reason, "", ""
        elif kind:
            start = watch.best_x if watch.best_x is not None else x0
            try:
                res = self.fallback.minimize(watch, start, max_evals=max_evals - primary_evals)
                fallback_iters, message = res.n_iters, f"{kind} -> {self.fallback.name}: {res.message}"
            except BudgetExhausted:  # nothing left to spend
                message = f"{kind} -> {self.fallback.name}: evaluation budget spent"
        fallback_evals = len(watch.trace) - primary_evals
        info = {"fallback": bool(kind), "fallback_kind": kind, "fallback_reason": reason,
                "fallback_at_eval": primary_evals if kind else -1,
                "primary_evals": primary_evals, "fallback_evals": fallback_evals, "converged": converged,
                f"{self.primary_name}_evals": primary_evals, f"{self.fallback.name}_evals": fallback_evals}
        x = watch.best_x if watch.best_x is not None else x0.copy()
        return SolveResult(x=x, fun=float(watch.best_f), n_evals=len(watch.trace),
                           n_iters=primary_iters + fallback_iters, trace=list(watch.trace),
                           message=message or "evaluation budget spent", info=info)


def build_with_fallback(build_primary: Callable[[], object], fallback: object, rule: FallbackRule = FallbackRule(),
                        *, strict: bool, primary_name: str) -> FallbackSolver:
    """FallbackSolver around `build_primary()`; when that raises InputError (weights), either re-raise
    (`strict`: the user named the file) or fall back for every solve with the reason recorded."""
    try:
        return FallbackSolver(build_primary(), fallback, rule)
    except InputError as e:
        if strict:
            raise
        return FallbackSolver(None, fallback, rule, primary_error=str(e), primary_name=primary_name)


def merge_hop_infos(infos: list[dict], offsets: list[int]) -> dict:
    """Fallback facts of several solves in one budget (basin hopping): fell back if any did, the first
    reason (with its hop), evaluation counts summed, `fallback_at_eval` counted from the budget's start."""
    fell = [(i, info) for i, info in enumerate(infos) if info.get("fallback")]
    out = {"fallback": bool(fell), "fallback_kind": "", "fallback_reason": "", "fallback_at_eval": -1,
           "fallback_hops": len(fell), "converged": any(info.get("converged") for info in infos)}
    if fell:
        i, first = fell[0]
        out["fallback_kind"] = first.get("fallback_kind", "")
        out["fallback_reason"] = f"hop {i + 1}: {first['fallback_reason']}"
        out["fallback_at_eval"] = offsets[i] + int(first["fallback_at_eval"])
    for key in sorted({k for info in infos for k in info if k.endswith("_evals")}):
        out[key] = int(sum(info.get(key, 0) for info in infos))
    return out
