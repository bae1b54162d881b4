"""The one solver interface every optimizer implements.

    solver.minimize(fun_and_grad, x0, *, max_evals, callback=None) -> SolveResult

`fun_and_grad(x)` takes a float64 vector [N] and returns (loss: float,
gradient: float64 [N]). Each call is one *evaluation*; budgets count
evaluations, not iterations, so solvers that line-search are charged for it.
`callback(n_evals, loss)` is called after every evaluation (progress bars).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Protocol

import numpy as np

FunAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
Callback = Callable[[int, float], None]


@dataclasses.dataclass
class SolveResult:
    """Outcome of one minimisation.

    Attributes:
      x: [N] float64, the best point evaluated.
      fun: loss at `x`.
      n_evals: evaluations of fun_and_grad spent.
      n_iters: solver iterations (equal to n_evals for first-order methods).
      trace: loss of every evaluation in order (non-finite values kept as inf).
      message: why it stopped.
      info: solver-specific facts (e.g. a learned optimizer's fallback reason).
    """

    x: np.ndarray
    fun: float
    n_evals: int
    n_iters: int
    trace: list[float]
    message: str = ""
    info: dict = dataclasses.field(default_factory=dict)


class Solver(Protocol):
    name: str

    def minimize(self, fun_and_grad: FunAndGrad, x0: np.ndarray, *, max_evals: int,
                 callback: Optional[Callback] = None) -> SolveResult: ...


class BudgetExhausted(Exception):
    """Raised by `CountedObjective` when the evaluation budget is spent."""


class CountedObjective:
    """Wraps fun_and_grad: counts evaluations, records the trace, keeps the best point.

    Non-finite losses are recorded as inf and reported to the solver as a large
    finite loss with a zero gradient, so line searches back off instead of crashing.
    """

    def __init__(self, fun_and_grad: FunAndGrad, max_evals: int, callback: Optional[Callback] = None):
        self.fun_and_grad = fun_and_grad
        self.max_evals = int(max_evals)
        self.callback = callback
        self.trace: list[float] = []
        self.best_x: np.ndarray | None = None
        self.best_f = np.inf
        self.last_grad: np.ndarray | None = None
        self.last_finite = True  # whether the latest evaluation's loss and gradient were finite

    @property
    def n_evals(self) -> int:
        return len(self.trace)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.n_evals >= self.max_evals:
            raise BudgetExhausted
        x = np.asarray(x, np.float64)
        f, g = self.fun_and_grad(x)
        f = float(f)
        g = np.asarray(g, np.float64)
        finite = np.isfinite(f) and np.all(np.isfinite(g))
        self.trace.append(f if np.isfinite(f) else np.inf)
        self.last_finite = bool(finite)
        if finite and f < self.best_f:
            self.best_f, self.best_x = f, x.copy()
        if self.callback is not None:
            self.callback(self.n_evals, self.trace[-1])
        if not finite:
            return 1e30, np.zeros_like(x)
        self.last_grad = g
        return f, g

    def result(self, x0: np.ndarray, n_iters: int, message: str, **info) -> SolveResult:
        x = self.best_x if self.best_x is not None else np.asarray(x0, np.float64).copy()
        return SolveResult(x=x, fun=float(self.best_f), n_evals=self.n_evals, n_iters=n_iters,
                           trace=list(self.trace), message=message, info=dict(info))
