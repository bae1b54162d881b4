"""Step scale of the learned optimizers on DiffPhy windows: a sweep that picks the shipped value.

    python bench/learned_step_scale.py [--windows 2] [--budget 40]
        [--optimus-scales 0.01 0.005 0.002 0.001 0.0005] [--adafactor-scales 1e-3 3e-4 1e-4 3e-5]
        [--out bench/results/learned_step_scale.json] [--apply]

Optimus's step is s = lambda_a * exp(lambda_b * alpha) * d and the Adafactor
MLP's d * exp(exp_mult * mu) * step_mult: their features are normalised, so the
multiplier (lambda_a, step_mult) sets the step length in the problem's own
parameter units. The paper's lambda_a = 0.1 moves every control offset by about
0.1 rad at once on a DiffPhy window, which throws the body over (the loss rises
5-10x on the first step). This script measures, for each multiplier, the best
loss after `--budget` evaluations on windows of the *training* split of walk and
run (the meta-training bank's phases, never the held-out windows that
bench/optimus_vs_bfgs.py scores), and picks the multiplier with the lowest
geometric mean of f_best / f_0. L-BFGS runs on the same windows as a yardstick.

With `--apply` the chosen multipliers are written into the shipped weight files
(weights/optimus_diffphy.npz, and weights/adafactor_mlp_diffphy.npz made from
the classic Adafactor weights) with a `step_scale_selection` section in their
JSON cards. The meta-parameters are not changed.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def geometric_mean_ratio(traces) -> float:
    """exp(mean(log(best / first))) over loss traces (non-finite values count as never improving)."""
    logs = []
    for t in traces:
        t = np.asarray(t, np.float64)
        finite = t[np.isfinite(t)]
        best = finite.min() if finite.size else t[0]
        logs.append(np.log(max(best, 1e-12) / t[0]))
    return float(np.exp(np.mean(logs)))


def training_windows(count: int, seed: int):
    """[(group, Window)]: `count` windows per clip of walk and run from the meta-training split."""
    from motionrecon.optim.meta.diffphy_task import (build_window, clip_info, clip_observations, start_frames,
                                                     window_sizes)

    rng = np.random.default_rng(seed)
    out = []
    for clip in ("walk", "run"):
        fps, period, loop, _ = clip_info(clip)
        F, _, _ = window_sizes(fps)
        joints, fps = clip_observations(clip, period + F + 2)
        starts = start_frames(period, loop, len(joints), F, "train")
        for s in rng.choice(starts, size=count, replace=len(starts) < count):
            scale = 1.0 + 0.1 * rng.uniform(-1.0, 1.0)
            out.append(("train", build_window(clip, joints, fps, int(s), scale, 0.01, rng)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=1, help="training-split windows per clip (walk, run)")
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--optimus", default=str(ROOT / "weights" / "optimus_diffphy.npz"))
    ap.add_argument("--adafactor", default=str(ROOT / "weights" / "adafactor_mlp_classic.npz"))
    ap.add_argument("--optimus-scales", nargs="+", type=float, default=[0.01, 0.005, 0.002, 0.001, 0.0005])
    ap.add_argument("--adafactor-scales", nargs="+", type=float, default=[1e-3, 3e-4, 1e-4, 3e-5])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "learned_step_scale.json"))
    ap.add_argument("--apply", action="store_true", help="write the chosen scales into the shipped weights")
    ap.add_argument("--from-json", default=None,
                    help="with --apply: take the choice from this earlier result instead of rerunning the sweep")
    args = ap.parse_args()

    from motionrecon.fileio import write_json
    from motionrecon.jaxsetup import enable_compilation_cache
    from motionrecon.optim.learned import load_weights
    from optimus_vs_bfgs import by_name, plain_learned, run_all

    loaded = {"optimus": load_weights(args.optimus, kind="optimus"),
              "adafactor_mlp": load_weights(args.adafactor, kind="adafactor_mlp")}
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        if args.apply:
            apply_choice(result, loaded, args)
        return
    enable_compilation_cache()
    t0 = time.perf_counter()
    windows = training_windows(args.windows, args.seed)
    scales = {"optimus": args.optimus_scales, "adafactor_mlp": args.adafactor_scales}
    solvers = {f"{kind}@{s:g}": plain_learned(opt.with_step_scale(s), theta)
               for kind, (opt, theta) in loaded.items() for s in scales[kind]}
    solvers["lbfgs"] = by_name("lbfgs")
    runs = run_all(windows, solvers, args.budget, args.budget, log=lambda m: print(m, flush=True))

    table = {}
    for name in solvers:
        traces = [r["trace"] for r in runs if r["solver"] == name]
        table[name] = {"geomean_best_over_initial": geometric_mean_ratio(traces),
                       "best_loss_per_window": [float(np.nanmin(np.where(np.isfinite(t), t, np.nan))) for t in traces],
                       "mpjpe_g_mm_per_window": [r["mpjpe_g_mm"] for r in runs if r["solver"] == name]}
    chosen = {kind: min(scales[kind], key=lambda s: table[f"{kind}@{s:g}"]["geomean_best_over_initial"])
              for kind in loaded}
    result = {
        "command": " ".join(["python", "bench/learned_step_scale.py"] + sys.argv[1:]),
        "budget": args.budget,
        "windows": [{"clip": w.clip, "start_frame": w.start, "size_factor": round(w.scale, 4)} for _, w in windows],
        "defaults_before": {k: o.step_scale_value for k, (o, _) in loaded.items()},
        "table": table, "chosen": chosen,
        "runs": runs, "wall_s": time.perf_counter() - t0,
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores, no accelerator",
    }
    write_json(args.out, result)
    for name, row in table.items():
        print(f"{name:24s} geomean f_best/f0 {row['geomean_best_over_initial']:.4f}  "
              f"best {['%.1f' % v for v in row['best_loss_per_window']]}")
    print("chosen:", chosen, "| wrote", args.out)
    if args.apply:
        apply_choice(result, loaded, args)


def apply_choice(result: dict, loaded: dict, args) -> None:
    """Writes the chosen multipliers into the shipped weight files and their cards (see module docstring)."""
    from motionrecon.fileio import write_json
    from motionrecon.optim.learned import save_weights

    chosen, table = result["chosen"], result["table"]
    targets = {"optimus": Path(args.optimus), "adafactor_mlp": ROOT / "weights" / "adafactor_mlp_diffphy.npz"}
    for kind, dest in targets.items():
        opt, theta = loaded[kind]
        source = Path(args.optimus if kind == "optimus" else args.adafactor)
        tuned = opt.with_step_scale(chosen[kind])
        save_weights(dest, tuned, theta)
        card_path = source.with_suffix(".json")
        card = json.loads(card_path.read_text()) if card_path.is_file() else {"kind": kind}
        card["architecture"] = tuned.options()
        card["step_scale_selection"] = {
            "option": opt.step_option, "before": opt.step_scale_value, "chosen": chosen[kind],
            "how": "lowest geometric mean of best/initial loss after the budget on training-split DiffPhy "
                   "windows (bench/learned_step_scale.py); meta-parameters unchanged",
            "source": "bench/results/learned_step_scale.json", "command": result["command"],
            "candidates": {name.split("@")[1]: row["geomean_best_over_initial"]
                           for name, row in table.items() if name.startswith(kind + "@")},
            "lbfgs_same_windows": table["lbfgs"]["geomean_best_over_initial"],
        }
        if dest != source:
            card["derived_from"] = source.name
            card.pop("benchmark_diffphy", None)
            card.pop("benchmark", None)  # measured with the source's step multiplier
        write_json(dest.with_suffix(".json"), card)
        print("wrote", dest, "and its card")


if __name__ == "__main__":
    main()
