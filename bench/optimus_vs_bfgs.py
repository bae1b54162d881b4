"""Optimus against BFGS (and L-BFGS, Adam, the Adafactor MLP) on DiffPhy windows; JSON and PNG out.

    python bench/optimus_vs_bfgs.py [--quick] [--in-domain 4] [--ood-clips kick punch jump dance_a]
        [--budget 50] [--bfgs-budget 100] [--out bench/results/optimus_vs_bfgs.json]

Windows are built as the "diffphy" meta-training task builds them (the
reconstruction's first window of a clip segment: 1 s, keyframes every 0.1 s,
the reconstruction's simulation rate, the clip's own frame rate, body measured from the
observations, x0 = 0 the kinematic initialisation), with the same
perturbations (size factor within +-10 %, 1 cm observation noise):

  in-domain:      held-out windows of walk and run (start phases in the second half of the cycle,
                  never used in training; seeds different from the training validation set)
  out-of-domain:  windows of other DeepMimic clips, at random start frames

Every solver spends its own budget of loss+gradient evaluations from x0 = 0;
the learned optimizers run without a stopping rule and without any fallback
(`learned.minimize(..., stop_rule=None)`). Reported per window group and solver:
mean best loss at the end, mean MPJPE-G (mm) of the window's simulated joints
at the returned controls against the observed joints, and the number of
evaluations each solver needs to reach BFGS's final loss (None: never within
its budget); curves: mean over windows of the best-so-far loss relative to the
initial loss, f_k / f_0, with 95 % confidence bands (Student t over windows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SOLVERS = ("optimus", "adafactor_mlp", "optimus_lbfgs", "pop", "lbfgs", "bfgs", "adam")
DEFAULT_OOD = ("kick", "punch")  # the other 30 fps clips: same window size, one compile


# ------------------------------------------------------------------------------------ pure summary functions

def best_so_far(trace, length: int) -> np.ndarray:
    """Running minimum of a loss trace, padded with its last value to `length` (non-finite counts as inf)."""
    t = np.asarray(trace, np.float64)
    t = np.where(np.isfinite(t), t, np.inf)
    if t.size == 0:
        return np.full(length, np.inf)
    best = np.minimum.accumulate(t)[:length]
    return np.concatenate([best, np.full(length - best.size, best[-1])])


def evals_to_reach(trace, target: float, rtol: float = 1e-6):
    """1-based number of evaluations after which the best loss is <= target (relative slack rtol), or None."""
    best = best_so_far(trace, len(trace))
    hit = np.flatnonzero(best <= target + rtol * abs(target))
    return int(hit[0]) + 1 if hit.size else None


def mean_ci(curves: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over rows of curves [W, K] and the Student-t confidence band (lo, hi); the band is the mean for W = 1."""
    from scipy import stats

    curves = np.asarray(curves, np.float64)
    mean = curves.mean(axis=0)
    n = curves.shape[0]
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * curves.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def summarize(runs: list[dict], budget: int, reference: str = "bfgs") -> dict:
    """Per solver over a group's windows. runs: [{"solver", "window", "trace", "mpjpe_g_mm"}].

    Returns {solver: {final_loss_mean, mpjpe_g_mm_mean, evals_to_reference: [per window or None],
    reached_reference, curve_mean/lo/hi (f_k / f_0 best-so-far, first `budget` evaluations)}}.
    """
    windows = sorted({r["window"] for r in runs})
    by = {(r["solver"], r["window"]): r for r in runs}
    out = {}
    solvers = sorted({r["solver"] for r in runs}, key=lambda s: SOLVERS.index(s) if s in SOLVERS else 99)
    for solver in solvers:
        rows = [by[(solver, w)] for w in windows if (solver, w) in by]
        finals = [float(best_so_far(r["trace"], len(r["trace"]))[-1]) for r in rows]
        reach = []
        for r in rows:
            ref = by.get((reference, r["window"]))
            target = float(best_so_far(ref["trace"], len(ref["trace"]))[-1]) if ref else np.nan
            reach.append(evals_to_reach(r["trace"], target) if ref else None)
        rel = np.stack([best_so_far(r["trace"], budget) / r["trace"][0] for r in rows])
        mean, lo, hi = mean_ci(rel)
        reached = [v for v in reach if v is not None]
        out[solver] = {
            "windows": len(rows),
            "final_loss_mean": float(np.mean(finals)),
            "final_loss_per_window": finals,
            "final_over_initial_mean": float(np.mean([f / r["trace"][0] for f, r in zip(finals, rows)])),
            "mpjpe_g_mm_mean": float(np.mean([r["mpjpe_g_mm"] for r in rows])),
            "mpjpe_g_mm_per_window": [float(r["mpjpe_g_mm"]) for r in rows],
            f"evals_to_{reference}_final": reach,
            f"reached_{reference}_final": f"{len(reached)}/{len(rows)}",
            f"evals_to_{reference}_final_median_where_reached": float(np.median(reached)) if reached else None,
            "evals_spent_mean": float(np.mean([len(r["trace"]) for r in rows])),
            "curve_relative_mean": mean.tolist(), "curve_relative_lo": lo.tolist(), "curve_relative_hi": hi.tolist(),
        }
    return out


def issue19_target(runs: list[dict], solver: str, reference: str = "lbfgs") -> dict:
    """Issue 19's first target for `solver` over all windows of `runs`: on how many it reaches `reference`'s
    final loss within its own budget, and the median evaluations it needs there over the reference's."""
    by = {(r["solver"], r["window"]): r for r in runs}
    windows = sorted({r["window"] for r in runs if (solver, r["window"]) in by and (reference, r["window"]) in by})
    reach, ratio = [], []
    for w in windows:
        ref = by[(reference, w)]["trace"]
        n = evals_to_reach(by[(solver, w)]["trace"], float(best_so_far(ref, len(ref))[-1]))
        reach.append(n)
        if n is not None:
            ratio.append(n / len(ref))
    return {"reference": reference, "reached": f"{len(ratio)}/{len(windows)}", "evals_per_window": reach,
            "median_evals_over_reference": float(np.median(ratio)) if ratio else None,
            "mpjpe_g_mm_better_or_equal": f"{sum(by[(solver, w)]['mpjpe_g_mm'] <= by[(reference, w)]['mpjpe_g_mm'] for w in windows)}/{len(windows)}",
            "target": ">= 75 % reached, median <= 0.6"}


def card_section(result: dict, solver: str) -> dict:
    """The numbers of one learned solver (and BFGS, L-BFGS, Adam beside it) for its weight card."""
    section = {"source": "bench/results/optimus_vs_bfgs.json", "command": result["command"],
               "budget": result["budget"], "bfgs_budget": result["bfgs_budget"],
               "learned_optimizers": result["learned_optimizers"], "groups": {}}
    keys = ("windows", "final_loss_mean", "final_over_initial_mean", "mpjpe_g_mm_mean", "reached_bfgs_final",
            "evals_to_bfgs_final")
    for group, per_solver in result["summary"].items():
        section["groups"][group] = {name: {k: v[k] for k in keys if k in v} for name, v in per_solver.items()
                                    if name in (solver, "bfgs", "lbfgs", "adam")}
    if result.get("issue19_target_vs_lbfgs", {}).get(solver):
        section["issue19_target_vs_lbfgs"] = result["issue19_target_vs_lbfgs"][solver]
    return section


# ----------------------------------------------------------------------------------------------- running

def build_windows(in_domain: int, ood_clips, ood_per_clip: int, seed: int):
    """[(group, Window)]: held-out walk/run windows and out-of-domain windows (see module docstring)."""
    from motionrecon.optim.meta.diffphy_task import (build_window, clip_info, clip_observations, start_frames,
                                                     window_sizes)

    rng = np.random.default_rng(seed)
    out = []
    plan = [("in_domain", c, n) for c, n in zip(("walk", "run"), (in_domain - in_domain // 2, in_domain // 2))]
    plan += [("out_of_domain", c, ood_per_clip) for c in ood_clips]
    for group, clip, count in plan:
        if count <= 0:
            continue
        fps, period, loop, _ = clip_info(clip)
        F, _, _ = window_sizes(fps)
        joints, fps = clip_observations(clip, period + F + 2)
        split = "heldout" if group == "in_domain" else "train"  # other clips: any start frame
        starts = start_frames(period, loop, len(joints), F, split)
        if group == "out_of_domain":
            last = period if loop == "wrap" else len(joints) - F - 1
            starts = np.arange(0, max(last, 1))
        for s in rng.choice(starts, size=count, replace=len(starts) < count):
            scale = 1.0 + 0.1 * rng.uniform(-1.0, 1.0)
            out.append((group, build_window(clip, joints, fps, int(s), scale, 0.01, rng)))
    return out


def mpjpe_g_mm(evaluate, problem, x) -> float:
    """Mean distance (mm) between the simulated and observed joints over the window's frames 1..F."""
    import jax.numpy as jnp

    (_, (traj, _)), _ = evaluate(jnp.asarray(x, jnp.float32), problem)
    sim = np.asarray(traj.markers)[:, np.asarray(problem.data.landmarks)]
    obs = np.asarray(problem.data.observed)
    return float(1000 * np.mean(np.linalg.norm(sim - obs, axis=-1)))


def evaluator(spec, cfg):
    """A jitted window loss, gradient and trajectory for windows of `spec` (`window.loss_and_grad`)."""
    import jax

    from motionrecon import window

    return jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))


def fun_and_grad(evaluate, problem):
    """float64 [N] -> (loss, float64 gradient) for the solvers behind `optim.base.Solver`."""
    import jax.numpy as jnp

    def f(x):
        (loss, _), grad = evaluate(jnp.asarray(x, jnp.float32), problem)
        return float(loss), np.asarray(grad, np.float64)

    return f


def plain_learned(optimizer, theta):
    """solve(fun_and_grad, x0, budget) for a learned optimizer run plain: no stopping rule, no fallback."""
    from motionrecon.optim.learned import minimize

    return lambda f, x0, n: minimize(optimizer, theta, f, x0, max_evals=n, stop_rule=None)


def by_name(name: str, **options):
    """solve(fun_and_grad, x0, budget) for `get_solver(name, **options)`."""
    from motionrecon.optim import get_solver

    solver = get_solver(name, **options)
    return lambda f, x0, n: solver.minimize(f, x0, max_evals=n)


def make_solvers(weights: dict, adam_lr: float, pop_step: float):
    """weights: learned solver -> weight file; POP runs with its first step size set to `pop_step`."""
    from motionrecon.optim.learned import load_weights

    learned = {name: load_weights(path, kind=name) for name, path in weights.items()}
    if "pop" in learned:
        pop, theta = learned["pop"]
        learned["pop"] = (pop.with_step_scale(pop_step), theta)
    return {**{name: plain_learned(*loaded) for name, loaded in learned.items()},
            "lbfgs": by_name("lbfgs"), "bfgs": by_name("bfgs"), "adam": by_name("adam", learning_rate=adam_lr)}


def run_all(windows, solvers, budget: int, bfgs_budget: int, log=print) -> list[dict]:
    from motionrecon import window
    from motionrecon.optim.meta.diffphy_task import window_sizes
    from motionrecon.reconstruct import ReconstructionConfig
    from motionrecon.skeleton import DEEPMIMIC

    cfg = ReconstructionConfig()
    evaluators: dict = {}
    runs = []
    for i, (group, w) in enumerate(windows):
        F, K, spf = window_sizes(w.fps, cfg)
        spec = window.WindowSpec(w.body.layout, DEEPMIMIC.num_joints, F, K, spf)
        evaluate = evaluators.setdefault(spec, evaluator(spec, cfg))  # the body is traced: one compile per spec
        problem = window.WindowProblem(w.data, w.body.arrays)
        fg = fun_and_grad(evaluate, problem)
        x0 = np.zeros(K * w.body.layout.num_controls)
        if not np.isfinite(fg(x0)[0]):
            log(f"window {i} ({group} {w.clip}@{w.start}): non-finite loss at x0, skipped")
            continue
        for name, solve in solvers.items():
            t = time.perf_counter()
            res = solve(fg, x0, bfgs_budget if name == "bfgs" else budget)
            err = mpjpe_g_mm(evaluate, problem, res.x)
            runs.append({"group": group, "window": i, "clip": w.clip, "start": w.start, "scale": w.scale,
                         "solver": name, "trace": [float(v) for v in res.trace], "mpjpe_g_mm": err,
                         "n_evals": res.n_evals, "message": res.message, "wall_s": time.perf_counter() - t})
            log(f"window {i} ({group} {w.clip}@{w.start}) {name}: f0 {res.trace[0]:.1f} -> {min(res.trace):.2f} "
                f"in {res.n_evals} evals, MPJPE-G {err:.1f} mm, {time.perf_counter() - t:.0f} s")
    return runs


def plot(summary: dict, budget: int, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from motionrecon.fileio import atomic_path

    groups = [g for g in ("in_domain", "out_of_domain") if g in summary]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for k, (solver, s) in enumerate(summary[group].items()):
            n = len(s["curve_relative_mean"])
            xs = np.arange(1, n + 1)
            ax.plot(xs, s["curve_relative_mean"], color=f"C{k}", label=f"{solver} ({s['windows']} windows)")
            ax.fill_between(xs, s["curve_relative_lo"], s["curve_relative_hi"], color=f"C{k}", alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("loss + gradient evaluations")
        ax.set_ylabel("best loss / initial loss (mean, 95 % CI)")
        ax.set_title(group.replace("_", "-"))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--in-domain", type=int, default=2, help="held-out walk/run windows (half each)")
    ap.add_argument("--ood-clips", nargs="+", default=list(DEFAULT_OOD))
    ap.add_argument("--ood-per-clip", type=int, default=1)
    ap.add_argument("--budget", type=int, default=50, help="evaluations per window (reconstruction-like)")
    ap.add_argument("--bfgs-budget", type=int, default=100, help="BFGS's budget, to see where it plateaus")
    ap.add_argument("--optimus", default=str(root / "weights" / "optimus_diffphy.npz"))
    ap.add_argument("--adafactor", default=str(root / "weights" / "adafactor_mlp_diffphy.npz"),
                    help="Adafactor MLP weights (default: the classic meta-parameters with the step multiplier "
                         "chosen on DiffPhy windows by bench/learned_step_scale.py; no PES on DiffPhy fitted the CPU)")
    ap.add_argument("--optimus-lbfgs", default=str(root / "weights" / "optimus_lbfgs_diffphy.npz"),
                    help="optimus_lbfgs weights (default: the teacher-initialised ones with a 0.3 rad step cap)")
    ap.add_argument("--pop", default=str(root / "weights" / "pop_prior.npz"))
    ap.add_argument("--pop-step", type=float, default=0.01,
                    help="POP's initial step size in control units (radians): Adam's learning rate here")
    ap.add_argument("--adam-lr", type=float, default=0.01)
    ap.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=SOLVERS)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--quick", action="store_true", help="1 in-domain + 1 out-of-domain window, budget 10")
    ap.add_argument("--out", default=str(root / "bench" / "results" / "optimus_vs_bfgs.json"))
    ap.add_argument("--update-cards", nargs="*", default=None, metavar="SOLVER",
                    help="write the measured numbers into the JSON cards beside these learned solvers' weights "
                         "(no names: every learned solver measured)")
    args = ap.parse_args()
    if args.quick:
        args.in_domain, args.ood_clips, args.ood_per_clip, args.budget, args.bfgs_budget = 1, ["kick"], 1, 10, 10

    from motionrecon.fileio import write_json
    from motionrecon.jaxsetup import enable_compilation_cache

    enable_compilation_cache()
    t0 = time.perf_counter()
    windows = build_windows(args.in_domain, args.ood_clips, args.ood_per_clip, args.seed)
    weights = {"optimus": args.optimus, "adafactor_mlp": args.adafactor, "optimus_lbfgs": args.optimus_lbfgs,
               "pop": args.pop}
    weights = {k: v for k, v in weights.items() if k in args.solvers}
    solvers = {k: v for k, v in make_solvers(weights, args.adam_lr, args.pop_step).items() if k in args.solvers}
    runs = run_all(windows, solvers, args.budget, args.bfgs_budget, log=lambda m: print(m, flush=True))
    summary = {g: summarize([r for r in runs if r["group"] == g], args.budget)
               for g in ("in_domain", "out_of_domain") if any(r["group"] == g for r in runs)}
    out = Path(args.out)
    result = {
        "command": " ".join(["python", "bench/optimus_vs_bfgs.py"] + sys.argv[1:]),
        "weights": {k: Path(v).name for k, v in weights.items()},
        "budget": args.budget, "bfgs_budget": args.bfgs_budget, "adam_learning_rate": args.adam_lr,
        "pop_step": args.pop_step,
        "learned_optimizers": "plain: no stopping rule, no fallback",
        "windows": [{"index": i, "group": g, "clip": w.clip, "start_frame": w.start, "fps": round(w.fps, 3),
                     "size_factor": round(w.scale, 4)} for i, (g, w) in enumerate(windows)],
        "summary": summary,
        "issue19_target_vs_lbfgs": {name: issue19_target(runs, name) for name in solvers if name != "lbfgs"}
        if "lbfgs" in solvers else {},
        "runs": runs,
        "wall_s": time.perf_counter() - t0,
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no accelerator",
    }
    write_json(out, result)
    plot(summary, args.budget, out.with_suffix(".png"))
    if args.update_cards is not None:
        for solver, path in weights.items():
            if args.update_cards and solver not in args.update_cards:
                continue
            card_path = Path(path).with_suffix(".json")
            if solver in solvers and card_path.is_file():
                card = json.loads(card_path.read_text())
                card["benchmark_diffphy"] = card_section(result, solver)
                write_json(card_path, card)
                print("updated", card_path)
    for g, s in summary.items():
        for solver, v in s.items():
            print(f"{g:14s} {solver:14s} final loss {v['final_loss_mean']:10.2f}  "
                  f"MPJPE-G {v['mpjpe_g_mm_mean']:6.1f} mm  reached BFGS final {v['reached_bfgs_final']}")
    print("wrote", out, "and", out.with_suffix(".png"))


if __name__ == "__main__":
    main()
