"""Solvers behind one interface (see `motionrecon.optim.base`).

`get_solver(name, **options)` builds one by name: "lbfgs", "bfgs", "adam",
"sgd", "sgdm", the learned "optimus" and "adafactor_mlp", and any of them with
"+basinhopping" appended.
"""

from __future__ import annotations

from motionrecon.optim.base import SolveResult, Solver  # noqa: F401

HAND_DESIGNED = ("lbfgs", "bfgs", "adam", "sgd", "sgdm")
LEARNED = ("optimus", "adafactor_mlp")
SOLVER_NAMES = HAND_DESIGNED + LEARNED


def get_solver(name: str, **options) -> Solver:
    """Solver by name. Options: learning_rate (optax), weights (learned), evals_per_hop, step_size (basin hopping)."""
    if name.endswith("+basinhopping"):
        from motionrecon.optim.classic import BasinHopping

        hop = {k: options.pop(k) for k in ("evals_per_hop", "step_size", "seed") if k in options}
        return BasinHopping(get_solver(name[: -len("+basinhopping")], **options), **hop)
    from motionrecon.optim import classic

    if name == "lbfgs":
        return classic.ScipySolver("lbfgs", "L-BFGS-B")
    if name == "bfgs":
        return classic.ScipySolver("bfgs", "BFGS")
    if name in ("adam", "sgd", "sgdm"):
        return classic.OptaxSolver(name, options.get("learning_rate", 0.01))
    if name == "optimus":
        from motionrecon.optim.optimus import OptimusSolver

        return OptimusSolver(**options)
    if name == "adafactor_mlp":
        from motionrecon.optim.adafactor_mlp import AdafactorMLPSolver

        return AdafactorMLPSolver(**options)
    raise ValueError(f"unknown solver {name!r}; choose one of: {', '.join(SOLVER_NAMES)} (optionally +basinhopping)")
