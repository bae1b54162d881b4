"""`motionrecon demo` with each solver, one after the other: wall time, MPJPE-G, evaluations, fallbacks.

    python bench/demo_solvers.py [--solvers lbfgs bfgs optimus optimus@40] [--duration 4]
        [--optimus-weights PATH] [--out bench/results/demo_solvers.json]

A solver named NAME@N runs with `--max-evals N` per window instead of the
demo's 60. `--optimus-weights` is passed to every Optimus run.

Each solver runs as its own `python -m motionrecon.cli demo --solver NAME`
process (as a user runs it) under `nice -n 10`, twice: the first run compiles the solver's programs (or
part of them) into the persistent compilation cache, the second, measured, loads them as a user's second
run does; the first run's wall time is kept as `first_process_wall_s`. Per
solver: the process's wall time, the reconstruction's own `wall_s` (setup,
compile or cache load, optimisation), `ready_s`, MPJPE-G, evaluations, and the
windows that fell back from Optimus to the fallback (with their reasons). The
machine's load average before and after each run is recorded: on a shared
machine timings move with it. Writes JSON; run by hand, never as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import write_json  # noqa: E402


def run_demo(spec: str, duration: float, out: Path, extra: list[str]) -> dict:
    """spec: a solver name, or NAME@N for N evaluations per window."""
    solver, _, evals = spec.partition("@")
    extra = [*extra, "--max-evals", evals] if evals else extra
    cmd = ["nice", "-n", "10", sys.executable, "-m", "motionrecon.cli", "demo", "--solver", solver,
           "--duration", str(duration), "--out", str(out), "--no-progress", *extra]
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    folder = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    metrics = json.loads((folder / "metrics.json").read_text())
    run = json.loads((folder / "run.json").read_text())
    windows = []
    for w in run["windows"]:
        info = w.get("info") or {}
        windows.append({"start_frame": w["start_frame"], "n_evals": w["n_evals"], "loss": w["loss"],
                        "message": w["message"], **{k: info[k] for k in (
                            "fallback", "fallback_kind", "fallback_reason", "fallback_at_eval", "optimus_evals",
                            "lbfgs_evals", "converged") if k in info}})
    return {"solver": spec, "command": " ".join(cmd[3:]), "process_wall_s": round(wall, 1),
            "reconstruction_wall_s": round(metrics["wall_s"], 1), "ready_s": round(metrics["ready_s"], 1),
            "compile_s": round(metrics["compile_s"], 1), "mpjpe_g_mm": metrics["mpjpe_g_mm"],
            "mpjpe_mm": metrics["mpjpe_mm"], "n_evals": metrics["n_evals"], "n_windows": metrics["n_windows"],
            "fallback_windows": metrics.get("fallback_windows"), "fallback_kinds": metrics.get("fallback_kinds"),
            "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2), "windows": windows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solvers", nargs="+", default=["lbfgs", "bfgs", "optimus"])
    ap.add_argument("--duration", type=float, default=4.0, help="seconds of the walk clip (the demo's default)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="measure each solver's first run (no throw-away run to fill the compile cache)")
    ap.add_argument("--optimus-weights", default=None, help="weight file for the Optimus runs (default: shipped)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "demo_solvers.json"))
    args = ap.parse_args()
    weights_npz = Path(args.optimus_weights).resolve() if args.optimus_weights else ROOT / "weights" / "optimus_diffphy.npz"
    weights = weights_npz.with_suffix(".json")
    card = json.loads(weights.read_text()) if weights.is_file() else {}
    report = {"machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "shared": "see the load averages before and after each run"},
              "optimus_weights": {"file": str(weights_npz.relative_to(ROOT)) if weights_npz.is_relative_to(ROOT)
                                  else str(weights_npz), "architecture": card.get("architecture"),
                                  "step_scale_selection": card.get("step_scale_selection")},
              "duration_s": args.duration, "runs": []}
    with tempfile.TemporaryDirectory(prefix="demo_solvers.") as tmp:
        for solver in args.solvers:
            extra = ["--optimus-weights", str(weights_npz)] if solver.startswith("optimus") and args.optimus_weights else []
            folder = Path(tmp) / solver.replace("+", "_").replace("@", "_")
            first = None if args.no_warmup else run_demo(solver, args.duration, folder / "first", extra)
            row = run_demo(solver, args.duration, folder / "measured", extra)
            if first is not None:
                row["first_process_wall_s"] = first["process_wall_s"]
            report["runs"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "windows"}), flush=True)
    by = {r["solver"]: r for r in report["runs"]}
    for reference in [r for r in ("lbfgs", "bfgs") if r in by]:
        for name in [n for n in by if n.startswith("optimus")]:
            a, b = by[reference], by[name]
            key = f"{name.replace('@', '_at_')}_vs_{reference}"
            report[key] = {
                "speedup_process_wall": round(a["process_wall_s"] / b["process_wall_s"], 3),
                "speedup_reconstruction_wall": round(a["reconstruction_wall_s"] / b["reconstruction_wall_s"], 3),
                "evals_ratio": round(b["n_evals"] / a["n_evals"], 3),
                "mpjpe_g_difference_mm": round(b["mpjpe_g_mm"] - a["mpjpe_g_mm"], 2),
                "target": f"demo >= 1.3x faster with {name} than with {reference} at equal or better MPJPE-G",
                "target_met": bool(a["process_wall_s"] / b["process_wall_s"] >= 1.3
                                   and b["mpjpe_g_mm"] <= a["mpjpe_g_mm"]),
            }
            print(json.dumps({key: report[key]}))
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
