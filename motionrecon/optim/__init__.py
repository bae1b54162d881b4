"""Solvers behind one interface (see `motionrecon.optim.base`).

`get_solver(name, **options)` builds one by name: "lbfgs", "bfgs", "adam",
"sgd", "sgdm", the learned "optimus", "adafactor_mlp", "optimus_lbfgs" (Optimus as a learned correction of
L-BFGS, `optimus_lbfgs.py`) and "pop" (a prior-fitted optimizer policy, `pop.py`), and any of them with
"+basinhopping" appended.

"optimus" is Optimus with a fallback inside the same evaluation budget
(`motionrecon.optim.fallback`): when its weights do not load, its loss or
gradient turns non-finite, it stalls, or its stop rule ends it early. In batched form (the reconstruction's)
the fallback is BFGS (`FALLBACK`); behind `get_solver` (the classical benchmark's) SciPy's L-BFGS-B.
"optimus-nofallback" (or `get_solver("optimus", fallback=False)`) is Optimus alone.

`batched_solver(name, budget, **options)` builds the same solvers as state machines that run inside JAX
over many problems at once (`motionrecon.optim.batched`): every name but "+basinhopping", which stays a
Python solver behind `get_solver` (the reconstruction then solves its windows one at a time). "lbfgs" and
"bfgs" are SciPy's L-BFGS-B and BFGS behind `get_solver` (the paper's baselines, float64) and optimistix's
L-BFGS and BFGS in batched form (float32, inside JAX).
"""

from __future__ import annotations

from motionrecon.optim.base import SolveResult, Solver  # noqa: F401

HAND_DESIGNED = ("lbfgs", "bfgs", "adam", "sgd", "sgdm")
LEARNED = ("optimus", "optimus-nofallback", "adafactor_mlp", "optimus_lbfgs", "pop")
# learned solvers without a fallback: name -> the module with their default weight file (WEIGHTS); they run
# without a test-time stop rule unless one is given (as their batched form)
PLAIN_LEARNED = {"optimus_lbfgs": "motionrecon.optim.optimus_lbfgs", "pop": "motionrecon.optim.pop"}
SOLVER_NAMES = HAND_DESIGNED + LEARNED
LEARNED_OPTIONS = ("weights", "default_weights", "stop_rule")
# The batched "optimus" solver's fallback: optimistix's BFGS (a dense inverse Hessian). On the windows the
# reconstruction solves it ends lower than L-BFGS (history 20) on most; over the mocap corpus, as the fallback,
# MPJPE-G fell by about 1 mm at three budgets and pybullet's roll no longer falls (docs/learned-optimizers.md
# "Session 17", bench/window_solvers.py).
FALLBACK = "bfgs"
# The fallback starts from the curvature of Optimus's last SEED_PAIRS evaluations (those within 3x of the best
# loss; `batched.Fallback.seed_pairs`), not from the identity: on the 96 real windows of session 18 the default
# then ends lower on 69 (mean best loss 10.87 -> 10.81) and reaches L-BFGS's final loss at a median 0.62x its
# evaluations instead of 0.64x (docs/learned-optimizers.md "Session 19").
SEED_PAIRS = 16


def base_name(name: str) -> str:
    """The solver name without "+basinhopping"."""
    return name[: -len("+basinhopping")] if name.endswith("+basinhopping") else name


def get_solver(name: str, **options) -> Solver:
    """Solver by name.

    Options: learning_rate (optax); weights, default_weights, stop_rule (learned); fallback (optimus:
    False gives Optimus alone), fallback_rule (a `fallback.FallbackRule`); evals_per_hop, step_size,
    seed (basin hopping). Options a solver does not use are ignored, so one set serves every name.

    Weights: with `weights` (a path the user named) a file that does not load raises InputError; the
    shipped default weights that do not load make "optimus" fall back to L-BFGS for every solve, with
    the reason in each result's info (a broken installation still reconstructs).
    """
    if name.endswith("+basinhopping"):
        from motionrecon.optim.classic import BasinHopping

        hop = {k: options.pop(k) for k in ("evals_per_hop", "step_size", "seed") if k in options}
        return BasinHopping(get_solver(base_name(name), **options), **hop)
    from motionrecon.optim import classic

    learned = {k: options[k] for k in LEARNED_OPTIONS if k in options}
    if name == "lbfgs":
        return classic.ScipySolver("lbfgs", "L-BFGS-B")
    if name == "bfgs":
        return classic.ScipySolver("bfgs", "BFGS")
    if name in ("adam", "sgd", "sgdm"):
        return classic.OptaxSolver(name, options.get("learning_rate", 0.01))
    if name == "optimus" and options.get("fallback", True):
        from motionrecon.optim import fallback
        from motionrecon.optim.optimus import OptimusSolver

        rule = options.get("fallback_rule") or fallback.FallbackRule()
        return fallback.build_with_fallback(lambda: OptimusSolver(**learned), classic.ScipySolver("lbfgs", "L-BFGS-B"),
                                            rule, strict=learned.get("weights") is not None, primary_name="optimus")
    if name in ("optimus", "optimus-nofallback"):
        from motionrecon.optim.optimus import OptimusSolver

        return OptimusSolver(**learned)
    if name == "adafactor_mlp":
        from motionrecon.optim.adafactor_mlp import AdafactorMLPSolver

        return AdafactorMLPSolver(**learned)
    if name in PLAIN_LEARNED:
        return _plain_learned(name, learned)
    raise ValueError(f"unknown solver {name!r}; choose one of: {', '.join(SOLVER_NAMES)} (optionally +basinhopping)")


def _plain_learned(name: str, learned: dict):
    """A `learned.LearnedSolver` for a name of PLAIN_LEARNED; learned: weights, default_weights, stop_rule."""
    import importlib

    from motionrecon.optim.learned import LearnedSolver

    options = {"default_weights": importlib.import_module(PLAIN_LEARNED[name]).WEIGHTS, "stop_rule": None, **learned}
    return LearnedSolver(name=name, **options)


def is_batched(name: str) -> bool:
    """Whether `batched_solver` builds this solver (else the reconstruction uses `get_solver`, one window at a time)."""
    return not name.endswith("+basinhopping") and name in SOLVER_NAMES


def batched_solver(name: str, budget: int, **options):
    """The solver `name` as a batched state machine (`motionrecon.optim.batched`) for solves of `budget`
    evaluations. Options as `get_solver` (learning_rate; weights, default_weights, stop_rule; fallback,
    fallback_rule); ValueError for a name without a batched form, InputError for named weights that do
    not load."""
    from motionrecon.optim import batched

    if not is_batched(name):
        raise ValueError(f"solver {name!r} has no batched form; choose one of "
                         f"{', '.join(n for n in SOLVER_NAMES if is_batched(n))}")
    quasi_newton = {"lbfgs": batched.LBFGS(history=20), "bfgs": batched.BFGS()}
    if name in quasi_newton:
        return quasi_newton[name]
    if name in ("adam", "sgd", "sgdm"):
        return batched.Optax(name, options.get("learning_rate", 0.01))
    learned = {k: options[k] for k in LEARNED_OPTIONS if k in options}
    if name in PLAIN_LEARNED or name == "adafactor_mlp":
        return batched.learned_from(get_solver(name, **learned))
    from motionrecon.optim import fallback
    from motionrecon.optim.optimus import OptimusSolver

    strict = learned.get("weights") is not None
    if name == "optimus-nofallback" or not options.get("fallback", True):
        return batched.learned_from(OptimusSolver(**learned))
    rule = options.get("fallback_rule") or fallback.FallbackRule()
    try:
        primary = OptimusSolver(**learned)
    except Exception:
        if strict:
            raise
        # weights missing: the fallback throughout
        return batched.Fallback(None, quasi_newton[FALLBACK], rule, budget, name="optimus")
    second = quasi_newton[FALLBACK]
    return batched.Fallback(batched.learned_from(primary), second, rule, budget, stop_rule=primary.stop_rule,
                            name="optimus", seed_pairs=SEED_PAIRS if hasattr(second, "start_seeded") else 0)
