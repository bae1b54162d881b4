"""Benchmark of mocap reconstruction; writes JSON (default bench/results/reconstruct_mocap.json).

Measures: seconds per loss+gradient evaluation of a 1 s window; compile time and
time-to-first-optimisation for a cold start (empty compilation cache) and a warm
start (second process, cache filled); wall time per second of motion; peak
memory; accuracy on the walk (4 s, looped), run (2 s, looped) and jump clips.

    python bench/reconstruct_mocap.py [--solver lbfgs] [--max-evals 60] [--out FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIPS = (("walk", 4.0), ("run", 2.0), ("jump", None))


def startup(cache: str) -> dict:
    """In a fresh process: seconds from process start until the first window starts optimising."""
    code = (
        "import time, json; t0 = time.perf_counter()\n"
        "from motionrecon import reconstruct, ReconstructionConfig\n"
        "from motionrecon.datasets.deepmimic import load_deepmimic, clip_path\n"
        "obs = load_deepmimic(clip_path('walk'), duration=1.2)\n"
        "rec = reconstruct(obs, ReconstructionConfig(max_evals=1))\n"
        "print(json.dumps({'import_s': 0, 'compile_s': rec.metrics['compile_s'],"
        " 'ready_s': rec.metrics['ready_s'], 'process_ready_s': time.perf_counter() - t0 - rec.metrics['wall_s'] + rec.metrics['ready_s']}))\n"
    )
    env = dict(os.environ, MOTIONRECON_CACHE=cache)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = time.perf_counter() - t
    return res


def eval_speed(n: int = 10) -> dict:
    import numpy as np

    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
    from motionrecon.reconstruct import ReconstructionConfig, reconstruct

    obs = load_deepmimic(clip_path("walk"), duration=1.1)
    cfg = ReconstructionConfig(max_evals=n, solver="adam")
    rec = reconstruct(obs, cfg)
    # wall time of the optimisation divided by evaluations (includes solver overhead, excludes compile)
    opt_s = rec.metrics["wall_s"] - rec.metrics["ready_s"]
    return {"window_s": cfg.window, "steps": int(round(cfg.window * cfg.sim_rate)),
            "parameters": int(rec.control.shape[1] * rec.control.shape[2]),
            "seconds_per_eval": opt_s / rec.metrics["n_evals"], "evals": rec.metrics["n_evals"]}


def accuracy(solver: str, max_evals: int, clips) -> dict:
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
    from motionrecon.reconstruct import ReconstructionConfig, reconstruct

    out = {}
    for name, duration in clips:
        obs = load_deepmimic(clip_path(name), duration=duration)
        rec = reconstruct(obs, ReconstructionConfig(solver=solver, max_evals=max_evals))
        m = dict(rec.metrics)
        m["duration_s"] = obs.duration
        m["wall_s_per_motion_s"] = m["wall_s"] / obs.duration
        out[name] = m
        print(name, {k: round(v, 2) if isinstance(v, float) else v for k, v in m.items()}, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solver", default="lbfgs")
    ap.add_argument("--max-evals", type=int, default=60)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "reconstruct_mocap.json"))
    ap.add_argument("--quick", action="store_true", help="walk only, no cold/warm start measurement")
    args = ap.parse_args()
    result = {"solver": args.solver, "max_evals_per_window": args.max_evals, "cpu_count": os.cpu_count(),
              "machine": os.uname().machine}
    if not args.quick:
        with tempfile.TemporaryDirectory() as cache:
            result["cold_start"] = startup(cache)
            result["warm_start"] = startup(cache)
        print("startup", result["cold_start"], result["warm_start"], flush=True)
    result["evaluation"] = eval_speed()
    print("evaluation", result["evaluation"], flush=True)
    result["accuracy"] = accuracy(args.solver, args.max_evals, CLIPS[:1] if args.quick else CLIPS)
    result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
