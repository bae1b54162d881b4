"""Hand-designed solvers: SciPy's BFGS / L-BFGS-B, and optax's Adam, SGD, SGD+momentum.

All float64 at the boundary (BFGS with float32 gradients stalls on "precision
loss"; see DESIGN.md). Every one returns the best point evaluated, which with
line searches is not always the last.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import optax
import scipy.optimize

from motionrecon.optim.base import BudgetExhausted, Callback, CountedObjective, FunAndGrad, SolveResult


@dataclasses.dataclass
class ScipySolver:
    """SciPy quasi-Newton: method "BFGS" or "L-BFGS-B" (memory `maxcor`)."""

    name: str = "lbfgs"
    method: str = "L-BFGS-B"
    gtol: float = 1e-9
    maxcor: int = 20

    def minimize(self, fun_and_grad: FunAndGrad, x0: np.ndarray, *, max_evals: int,
                 callback: Optional[Callback] = None) -> SolveResult:
        obj = CountedObjective(fun_and_grad, max_evals, callback)
        iters = [0]

        def count_iter(*_):
            iters[0] += 1

        options = {"maxiter": 10 * max_evals, "gtol": self.gtol}
        if self.method == "L-BFGS-B":
            options.update(maxfun=max_evals + 1, maxcor=self.maxcor, ftol=1e-12)
        try:
            res = scipy.optimize.minimize(obj, np.asarray(x0, np.float64), jac=True, method=self.method,
                                          options=options, callback=count_iter)
            message = str(res.message)
        except BudgetExhausted:
            message = "evaluation budget spent"
        return obj.result(x0, iters[0], message)


@dataclasses.dataclass
class OptaxSolver:
    """A first-order optax transform, one evaluation per step."""

    name: str
    learning_rate: float
    momentum: float = 0.0

    def transform(self) -> optax.GradientTransformation:
        if self.name == "adam":
            return optax.adam(self.learning_rate)
        if self.name == "sgd":
            return optax.sgd(self.learning_rate)
        if self.name == "sgdm":
            return optax.sgd(self.learning_rate, momentum=self.momentum or 0.9)
        raise ValueError(f"unknown optax solver {self.name!r}")

    def minimize(self, fun_and_grad: FunAndGrad, x0: np.ndarray, *, max_evals: int,
                 callback: Optional[Callback] = None) -> SolveResult:
        tx = self.transform()
        obj = CountedObjective(fun_and_grad, max_evals, callback)
        x = np.asarray(x0, np.float64).copy()
        state = tx.init(x)
        steps = 0
        message = "evaluation budget spent"
        try:
            while True:
                f, g = obj(x)
                if f >= 1e30:
                    message = "non-finite loss"
                    break
                updates, state = tx.update(g, state, x)
                x = np.asarray(optax.apply_updates(x, updates), np.float64)
                steps += 1
        except BudgetExhausted:
            pass
        return obj.result(x0, steps, message)


@dataclasses.dataclass
class BasinHopping:
    """Basin hopping around any solver: run it, perturb the best point, run again, keep the best.

    The evaluation budget is shared: each hop gets `evals_per_hop` (the last one
    what is left). Perturbations are Gaussian with std `step_size`, seeded.
    An inner solver that stops early (Optimus converged) hands its unspent
    evaluations to the next hop. When the inner solver reports fallbacks
    (`motionrecon.optim.fallback`), `info` merges them over the hops.
    """

    inner: object
    evals_per_hop: int = 50
    step_size: float = 0.05
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.inner.name}+basinhopping"

    def minimize(self, fun_and_grad: FunAndGrad, x0: np.ndarray, *, max_evals: int,
                 callback: Optional[Callback] = None) -> SolveResult:
        rng = np.random.default_rng(self.seed)
        trace: list[float] = []
        best_x, best_f = np.asarray(x0, np.float64).copy(), np.inf
        start, iters, hops = best_x, 0, 0
        infos, offsets = [], []
        while len(trace) < max_evals:
            budget = min(self.evals_per_hop, max_evals - len(trace))
            offset = len(trace)
            cb = None if callback is None else (lambda n, f: callback(offset + n, f))
            res = self.inner.minimize(fun_and_grad, start, max_evals=budget, callback=cb)
            infos.append(res.info)
            offsets.append(offset)
            trace.extend(res.trace)
            iters += res.n_iters
            hops += 1
            if res.fun < best_f:
                best_x, best_f = res.x, res.fun
            if res.n_evals == 0:
                break
            start = best_x + self.step_size * rng.standard_normal(best_x.shape)
        info = {"hops": hops}
        if any("fallback" in i for i in infos):  # the inner solver falls back (optimus): say so per window
            from motionrecon.optim.fallback import merge_hop_infos

            info.update(merge_hop_infos(infos, offsets))
        return SolveResult(x=best_x, fun=float(best_f), n_evals=len(trace), n_iters=iters, trace=trace,
                           message=f"{hops} hops", info=info)
