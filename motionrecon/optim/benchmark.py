"""The classical benchmark of the Optimus paper (section 5.1, Table 8, Figures 3-4).

For every (function, dimension) cell, every solver starts from the same `inits`
random points in the function's domain and gets `budget` evaluations of
(loss, gradient). Reported per cell and solver: the mean and std over inits of
the best objective value reached, and the mean number of evaluations used.

Solvers and how they are run (fast where possible, same maths as `get_solver`):
  adam, sgd, sgdm  optax transforms (as `classic.OptaxSolver`), run in JAX with lax.scan,
                   vmapped over inits and a learning-rate grid: per cell the rate with the
                   lowest mean final objective over the inits is picked (paper: 100 log-spaced
                   values in [1e-6, 1]; `lr_grid` sets the count, `tune_inits` how many of the
                   inits the search uses).
  bfgs, lbfgs      SciPy (as `classic.ScipySolver`) per init, on the function compiled in
                   float64; line-search evaluations count against the budget.
  optimus,         the learned optimizers' pure update under lax.scan, vmapped over inits;
  adafactor_mlp,   the test-time stopping rule is applied to each trace afterwards when
  optimus_lbfgs,   `stop_rule` is set (the driver `learned.minimize` would stop at the same
  pop              point).

Outputs (`write_outputs`): table.md (Table 8 style, best in bold), table.csv
(function,dim,solver,mean_final,std_final,mean_evals), results.json (everything,
including the mean best-so-far curves and the chosen learning rates),
performance_profile.png (Dolan-Moré) and relative_iterations.png (Figure 4 style).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from motionrecon.fileio import atomic_dir
from motionrecon.optim import functions
from motionrecon.optim.learned import StopRule, load_weights, unroll

FIRST_ORDER = ("adam", "sgd", "sgdm")
SCIPY = ("bfgs", "lbfgs")
LEARNED = ("optimus", "adafactor_mlp", "optimus_lbfgs", "pop")
ALL_SOLVERS = ("optimus", "adafactor_mlp", "optimus_lbfgs", "pop", "bfgs", "adam", "sgdm", "sgd", "lbfgs")
DEFAULT_SOLVERS = ("optimus", "adafactor_mlp", "bfgs", "adam", "sgdm")
PAPER_DIMS = (2, 10, 20, 50, 100, 250, 500, 1000)
CSV_COLUMNS = ("function", "dim", "solver", "mean_final", "std_final", "mean_evals")


@dataclasses.dataclass
class BenchmarkConfig:
    functions: tuple[str, ...] = functions.FUNCTION_NAMES
    dims: tuple[int, ...] = PAPER_DIMS
    solvers: tuple[str, ...] = DEFAULT_SOLVERS
    inits: int = 64
    budget: int = 200
    lr_grid: int = 100
    lr_range: tuple[float, float] = (1e-6, 1.0)
    tune_inits: Optional[int] = None  # None: all inits
    seed: int = 0
    stop_rule: Optional[StopRule] = None
    weights: dict = dataclasses.field(default_factory=dict)  # solver -> weight file (default: shipped)

    def learning_rates(self) -> np.ndarray:
        lo, hi = self.lr_range
        return np.logspace(math.log10(lo), math.log10(hi), self.lr_grid)


@dataclasses.dataclass
class CellResult:
    """One solver on one (function, dim): finals [inits], evals [inits], curve [budget] (mean best-so-far)."""

    function: str
    dim: int
    solver: str
    finals: np.ndarray
    evals: np.ndarray
    curve: np.ndarray
    f_star: float
    mean_init: float
    learning_rate: Optional[float] = None
    seconds: float = 0.0

    @property
    def mean_final(self) -> float:
        return _mean(self.finals)

    @property
    def std_final(self) -> float:
        f = np.asarray(self.finals, np.float64)
        return float(np.std(f)) if np.all(np.isfinite(f)) else float("inf")


def _mean(values) -> float:
    v = np.asarray(values, np.float64)
    return float(np.mean(v)) if np.all(np.isfinite(v)) else float("inf")


def _finite(trace: np.ndarray) -> np.ndarray:
    t = np.asarray(trace, np.float64)
    return np.where(np.isfinite(t), t, np.inf)


def best_so_far(traces: np.ndarray) -> np.ndarray:
    """Running minimum along the last axis, non-finite values as inf."""
    return np.minimum.accumulate(_finite(traces), axis=-1)


# ------------------------------------------------------------------------------------------ JAX programs

def _switch_fn(names: tuple[str, ...]) -> Callable:
    fns = [functions.FUNCTIONS[n].fn for n in names]
    return lambda index, x: jax.lax.switch(index, fns, x)


def _optax(name: str, lr):
    if name == "adam":
        return optax.adam(lr)
    if name == "sgd":
        return optax.sgd(lr)
    if name == "sgdm":
        return optax.sgd(lr, momentum=0.9)
    raise ValueError(name)


@functools.lru_cache(maxsize=None)
def _first_order_program(name: str, names: tuple[str, ...], budget: int):
    """jit(index, lrs [L], x0s [I, N]) -> losses [L, I, budget] (loss before each update)."""
    fn = _switch_fn(names)

    def one(index, lr, x0):
        tx = _optax(name, lr)

        def step(carry, _):
            x, s = carry
            f, g = jax.value_and_grad(fn, argnums=1)(index, x)
            u, s = tx.update(g, s, x)
            return (optax.apply_updates(x, u), s), f

        return jax.lax.scan(step, (x0, tx.init(x0)), None, length=budget)[1]

    return jax.jit(jax.vmap(jax.vmap(one, (None, None, 0)), (None, 0, None)))


@functools.lru_cache(maxsize=None)
def _learned_program(optimizer, names: tuple[str, ...], budget: int):
    """jit(meta_params, index, x0s [I, N]) -> losses [I, budget]."""
    fn = _switch_fn(names)

    def one(meta_params, index, x0):
        state = optimizer.init(meta_params, x0)
        return unroll(optimizer, meta_params, lambda x: fn(index, x), state, budget)[1]

    return jax.jit(jax.vmap(one, (None, None, 0)))


@functools.lru_cache(maxsize=None)
def _float64_fun_and_grad(names: tuple[str, ...]):
    fn = _switch_fn(names)
    with jax.enable_x64(True):
        return jax.jit(jax.value_and_grad(fn, argnums=1))


# ------------------------------------------------------------------------------------------------ runners

def _cell_result(name, dim, solver, traces, evals, f_star, mean_init, budget, lr=None, seconds=0.0):
    bsf = best_so_far(traces)
    curve = _mean_curve(bsf, budget)
    return CellResult(function=name, dim=dim, solver=solver, finals=bsf[:, -1], evals=np.asarray(evals),
                      curve=curve, f_star=f_star, mean_init=mean_init, learning_rate=lr, seconds=seconds)


def _mean_curve(bsf: np.ndarray, budget: int) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        curve = np.mean(bsf, axis=0)
    curve[~np.all(np.isfinite(bsf), axis=0)] = np.inf
    return curve[:budget]


def run_first_order(solver, config, names, index, x0s, f_star, mean_init):
    t0 = time.time()
    program = _first_order_program(solver, names, config.budget)
    lrs = config.learning_rates()
    n_tune = config.tune_inits or len(x0s)
    idx = jnp.int32(index)
    losses = np.asarray(program(idx, jnp.asarray(lrs, jnp.float32), jnp.asarray(x0s[:n_tune], jnp.float32)))
    score = [_mean(best_so_far(losses[i])[:, -1]) for i in range(len(lrs))]
    best = int(np.argmin(score)) if np.any(np.isfinite(score)) else 0
    if n_tune == len(x0s):
        traces = losses[best]
    else:
        traces = np.asarray(program(idx, jnp.asarray(lrs[best:best + 1], jnp.float32),
                                    jnp.asarray(x0s, jnp.float32)))[0]
    evals = np.full(len(x0s), config.budget)
    return _cell_result(names[index], x0s.shape[1], solver, traces, evals, f_star, mean_init, config.budget,
                        lr=float(lrs[best]), seconds=time.time() - t0)


def run_scipy(solver, config, names, index, x0s, f_star, mean_init):
    from motionrecon.optim.classic import ScipySolver

    t0 = time.time()
    s = ScipySolver("bfgs", "BFGS") if solver == "bfgs" else ScipySolver("lbfgs", "L-BFGS-B")
    fg = _float64_fun_and_grad(names)

    def fun_and_grad(x):
        with jax.enable_x64(True):
            f, g = fg(index, jnp.asarray(x, jnp.float64))
        return float(f), np.asarray(g, np.float64)

    traces = np.full((len(x0s), config.budget), np.nan)
    evals = np.zeros(len(x0s), int)
    for i, x0 in enumerate(x0s):
        res = s.minimize(fun_and_grad, x0, max_evals=config.budget)
        t = _finite(res.trace)
        traces[i, :len(t)] = t
        traces[i, len(t):] = np.min(t) if len(t) else np.inf  # stopped early (converged): keep its best
        evals[i] = res.n_evals
    return _cell_result(names[index], x0s.shape[1], solver, traces, evals, f_star, mean_init, config.budget,
                        seconds=time.time() - t0)


def run_learned(solver, config, names, index, x0s, f_star, mean_init, loaded):
    t0 = time.time()
    optimizer, meta_params = loaded[solver]
    program = _learned_program(optimizer, names, config.budget)
    traces = _finite(np.asarray(program(meta_params, jnp.int32(index), jnp.asarray(x0s, jnp.float32))))
    evals = np.full(len(x0s), config.budget)
    if config.stop_rule is not None:
        for i in range(len(traces)):
            k = config.stop_rule.stop_index(traces[i])
            evals[i] = k + 1
            traces[i, k + 1:] = np.min(traces[i, :k + 1])
    return _cell_result(names[index], x0s.shape[1], solver, traces, evals, f_star, mean_init, config.budget,
                        seconds=time.time() - t0)


def load_learned(config: BenchmarkConfig) -> dict:
    from motionrecon.optim.adafactor_mlp import CLASSIC_WEIGHTS as ADAFAC_DEFAULT
    from motionrecon.optim.optimus import CLASSIC_WEIGHTS as OPTIMUS_DEFAULT
    from motionrecon.optim.optimus_lbfgs import CLASSIC_WEIGHTS as OPTIMUS_LBFGS_DEFAULT
    from motionrecon.optim.pop import CLASSIC_WEIGHTS as POP_DEFAULT
    from motionrecon.resources import resource_path

    defaults = {"optimus": OPTIMUS_DEFAULT, "adafactor_mlp": ADAFAC_DEFAULT, "optimus_lbfgs": OPTIMUS_LBFGS_DEFAULT,
                "pop": POP_DEFAULT}
    loaded = {}
    for solver in config.solvers:
        if solver in LEARNED:
            path = config.weights.get(solver) or resource_path("weights", defaults[solver])
            loaded[solver] = load_weights(path, kind=solver)
    return loaded


def run_benchmark(config: BenchmarkConfig, log: Callable[[str], None] = print) -> list[CellResult]:
    """Every solver on every (function, dim) cell; returns the cell results in grid order."""
    for s in config.solvers:
        if s not in ALL_SOLVERS:
            raise ValueError(f"unknown solver {s!r}; choose from {', '.join(ALL_SOLVERS)}")
    names = tuple(config.functions)
    for n in names:
        functions.get_function(n)
    loaded = load_learned(config)
    results = []
    for dim in config.dims:
        for index, name in enumerate(names):
            f = functions.FUNCTIONS[name]
            seed = config.seed * 1_000_003 + functions.FUNCTION_NAMES.index(name) * 10_007 + dim
            x0s = functions.sample_inits(name, dim, config.inits, seed)
            with jax.enable_x64(True):
                fg = _float64_fun_and_grad(names)
                mean_init = _mean([float(fg(index, jnp.asarray(x))[0]) for x in x0s])
            f_star = f.minimum(dim)
            line = []
            for solver in config.solvers:
                if solver in FIRST_ORDER:
                    r = run_first_order(solver, config, names, index, x0s, f_star, mean_init)
                elif solver in SCIPY:
                    r = run_scipy(solver, config, names, index, x0s, f_star, mean_init)
                else:
                    r = run_learned(solver, config, names, index, x0s, f_star, mean_init, loaded)
                results.append(r)
                line.append(f"{solver} {r.mean_final:.3g} ({r.seconds:.1f}s)")
            log(f"{name} d={dim}: " + ", ".join(line))
    return results


# ---------------------------------------------------------------------------------------------- analysis

def performance_measure(results: list[CellResult]) -> dict[tuple[str, int], dict[str, float]]:
    """m = (f_hat - f*) / (f_w - f*) per cell and solver, f_hat the mean final value and f_w the mean
    objective at the initial points (the worst a solver should do); floored at 1e-12, inf if non-finite."""
    out: dict = {}
    for r in results:
        denom = max(r.mean_init - r.f_star, 1e-30)
        m = (r.mean_final - r.f_star) / denom
        out.setdefault((r.function, r.dim), {})[r.solver] = max(m, 1e-12) if np.isfinite(m) else np.inf
    return out


def performance_profile(results: list[CellResult], taus: np.ndarray) -> dict[str, np.ndarray]:
    """Dolan-Moré: rho_s(tau) = fraction of cells where m_s <= tau * min over solvers of m."""
    measures = performance_measure(results)
    solvers = sorted({r.solver for r in results}, key=lambda s: ALL_SOLVERS.index(s))
    ratios = {s: [] for s in solvers}
    for cell in measures.values():
        best = min(cell.values())
        for s in solvers:
            m = cell.get(s, np.inf)
            ratios[s].append(m / best if np.isfinite(m) and np.isfinite(best) else np.inf)
    return {s: np.array([np.mean(np.asarray(ratios[s]) <= t) for t in taus]) for s in solvers}


def relative_iterations(results: list[CellResult], learned: str = "optimus",
                        baselines=("adam", "bfgs", "adafactor_mlp"), at: int = 100) -> dict[str, np.ndarray]:
    """Per baseline: for every cell, (iterations `learned` needs to reach the baseline's mean best-so-far
    value after `at` iterations) / `at`; inf where it never does within the budget."""
    by_cell: dict = {}
    for r in results:
        by_cell.setdefault((r.function, r.dim), {})[r.solver] = r
    out = {}
    for b in baselines:
        values = []
        for cell in by_cell.values():
            if learned not in cell or b not in cell or len(cell[b].curve) < at:
                continue
            target = cell[b].curve[at - 1]
            reached = np.nonzero(cell[learned].curve <= target)[0] if np.isfinite(target) else []
            values.append((reached[0] + 1) / at if len(reached) else np.inf)
        if values:
            out[b] = np.sort(np.asarray(values))
    return out


# ----------------------------------------------------------------------------------------------- outputs

def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "inf" if v > 0 or np.isnan(v) else "-inf"
    return f"{v:.3g}"


def table_markdown(results: list[CellResult], config: BenchmarkConfig) -> str:
    solvers = list(dict.fromkeys(r.solver for r in results))
    by_cell: dict = {}
    for r in results:
        by_cell.setdefault((r.function, r.dim), {})[r.solver] = r
    lines = [f"Mean final objective over {config.inits} random initialisations after {config.budget} evaluations "
             f"(best per row in bold; f* = known global minimum).", "",
             "| function | dim | f* | " + " | ".join(solvers) + " |",
             "|---|---:|---:|" + "---:|" * len(solvers)]
    for (name, dim), cell in by_cell.items():
        means = {s: cell[s].mean_final for s in solvers if s in cell}
        best = min(means.values())
        row = []
        for s in solvers:
            if s not in means:
                row.append("")
                continue
            text = _fmt(means[s])
            row.append(f"**{text}**" if np.isfinite(best) and _fmt(means[s]) == _fmt(best) else text)
        f_star = next(iter(cell.values())).f_star
        lines.append(f"| {name} | {dim} | {_fmt(f_star)} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def table_csv(results: list[CellResult]) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for r in results:
        lines.append(f"{r.function},{r.dim},{r.solver},{r.mean_final:.9g},{r.std_final:.9g},"
                     f"{float(np.mean(r.evals)):.6g}")
    return "\n".join(lines) + "\n"


def summary(results: list[CellResult]) -> dict:
    """Headline numbers: wins per solver, performance-profile values, Figure 4 fractions."""
    measures = performance_measure(results)
    wins: dict = {}
    for cell in measures.values():
        best = min(cell.values())
        for s, m in cell.items():
            if m <= best * (1 + 1e-9):
                wins[s] = wins.get(s, 0) + 1
    taus = np.array([1.0, 2.0, 10.0, 100.0])
    profile = {s: dict(zip([f"tau={t:g}" for t in taus], map(float, v)))
               for s, v in performance_profile(results, taus).items()}
    rel = relative_iterations(results)
    fig4 = {b: {"median": float(np.median(v)), "fraction_5x_fewer": float(np.mean(v <= 0.2)),
                "fraction_not_slower": float(np.mean(v <= 1.0)), "fraction_never_reached": float(np.mean(~np.isfinite(v))),
                "cells": int(len(v))} for b, v in rel.items()}
    return {"cells": len(measures), "wins": wins, "performance_profile": profile, "optimus_relative_iterations": fig4}


def plot_performance_profile(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = np.logspace(0, 6, 300)
    fig, ax = plt.subplots(figsize=(6, 4))
    for s, rho in performance_profile(results, taus).items():
        ax.step(taus, rho, where="post", label=s)
    ax.set_xscale("log")
    ax.set_xlabel(r"$\tau$ (ratio to the best solver of $m=(\hat f-f^*)/(f^w-f^*)$)")
    ax.set_ylabel(r"$\rho_s(\tau)$ (fraction of tasks)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Performance profiles (Dolan-Moré)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_relative_iterations(results, path, at: int = 100) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rel = relative_iterations(results, at=at)
    cap = 10.0
    for b, v in rel.items():
        pct = 100.0 * (np.arange(len(v)) + 0.5) / len(v)
        ax.step(pct, np.minimum(v, cap), where="mid", label=f"vs {b}")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.axhline(0.2, color="gray", lw=0.8, ls=":", label="5x fewer")
    ax.set_yscale("log")
    ax.set_xlabel("percentile of tasks")
    ax.set_ylabel(f"Optimus iterations / {at} (capped: {cap:g} = never)")
    ax.set_title(f"Iterations for Optimus to reach a baseline's value at iteration {at}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(results: list[CellResult], config: BenchmarkConfig, out_dir, extra: Optional[dict] = None) -> None:
    """All files at once into out_dir (atomic: a failed run leaves no partial folder)."""
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        (tmp / "table.md").write_text(table_markdown(results, config))
        (tmp / "table.csv").write_text(table_csv(results))
        grid = {"functions": list(config.functions), "dims": list(config.dims), "solvers": list(config.solvers),
                "inits": config.inits, "budget": config.budget, "lr_grid": config.lr_grid,
                "lr_range": list(config.lr_range), "tune_inits": config.tune_inits or config.inits,
                "seed": config.seed,
                "stop_rule": dataclasses.asdict(config.stop_rule) if config.stop_rule else None,
                "weights": {k: str(v) for k, v in config.weights.items()}}
        cells = [{"function": r.function, "dim": r.dim, "solver": r.solver, "mean_final": r.mean_final,
                  "std_final": r.std_final, "mean_evals": float(np.mean(r.evals)), "f_star": r.f_star,
                  "mean_init": r.mean_init, "learning_rate": r.learning_rate, "seconds": round(r.seconds, 3),
                  "finals": [float(v) for v in r.finals], "evals": [int(v) for v in r.evals],
                  "mean_best_so_far": [float(f"{v:.4g}") for v in r.curve]}
                 for r in results]
        head = _json_clean({"grid": grid, "summary": summary(results), **(extra or {})})
        # one line per cell keeps the file small and diff-able; non-finite values are written as null
        body = ",\n".join(json.dumps(_json_clean(c), separators=(",", ":"), allow_nan=False) for c in cells)
        text = json.dumps(head, indent=1, allow_nan=False)[:-2] + ',\n "cells": [\n' + body + "\n ]\n}\n"
        (tmp / "results.json").write_text(text)
        plot_performance_profile(results, tmp / "performance_profile.png")
        if any(r.solver == "optimus" for r in results):
            plot_relative_iterations(results, tmp / "relative_iterations.png")


def _json_clean(o):
    """Nested structure with numpy scalars made Python and non-finite floats made null."""
    if isinstance(o, dict):
        return {str(k): _json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_clean(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o
