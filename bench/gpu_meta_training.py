"""Issue 19's GPU plan: meta-training of the learned optimizers for the day an accelerator is lent, in one
command that finishes within `--budget-min` minutes (default 9).

    python bench/gpu_meta_training.py [--out bench/results/gpu_meta_training] [--budget-min 9] [--smoke]

What it runs, each in its own process with its share of the budget, all resumable (the same --out carries on):
  1. ES on real DiffPhy windows (`bench/es_diffphy.py`): the batched window physics is where an accelerator
     pays (thousands of windows per call, `bench/gpu_throughput.py`), so the population and the problems
     per meta-step grow from the CPU's 4 pairs x 4 problems to 64 x 32 (`--pairs`, `--problems`).
  2. POP by backpropagation through unrolls on the synthetic prior (`bench/train_pop.py`), with a batch of
     256 problems up to 256 dimensions instead of 16 problems up to 64.
  3. A summary (devices, each step's exit status, wall time and result file) in `--out/summary.json`.
Weights are written under --out only, never over the shipped ones in weights/: a person compares them with
`bench/optimus_vs_bfgs.py` and exports them (`learned.export_weights`) if they are better.

Each step trains for 70 % of its share of the budget; start-up, compilation and validation take the rest, and a
step still running at 110 % of its share is stopped (its checkpoints are kept). --smoke runs the same steps
with tiny sizes, on whatever device JAX finds (the CPU here, where compiling the DiffPhy task takes minutes),
to check that the plan still runs before a GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import write_json  # noqa: E402

# (step name, share of the budget, script, arguments for a GPU, arguments for --smoke)
STEPS = (
    ("es_diffphy", 0.5, "bench/es_diffphy.py",
     ["--pairs", "64", "--problems", "32", "--steps", "200"],
     ["--pairs", "2", "--problems", "2", "--steps", "2", "--episode", "10"]),
    ("pop_bptt", 0.5, "bench/train_pop.py",
     ["--batch", "256", "--dims", "32", "64", "128", "256", "--steps", "20000"],
     ["--batch", "4", "--dims", "8", "--curriculum", "5", "--steps", "20"]),
)


def devices() -> list[str]:
    out = subprocess.run([sys.executable, "-c", "import jax; print([str(d) for d in jax.devices()])"],
                         cwd=ROOT, capture_output=True, text=True)
    return [out.stdout.strip() or out.stderr.strip().splitlines()[-1]]


def run_step(name: str, script: str, args: list[str], minutes: float, out: Path, limit_s: float) -> dict:
    """One step as a subprocess with `minutes` of training of its own (the script's --minutes) and a hard
    limit of `limit_s` seconds (start-up, compilation and validation come on top of the training)."""
    target = out / name
    if name == "es_diffphy":
        args = args + ["--out", str(target.with_suffix(".json"))]
    else:
        args = args + ["--out", str(target)]
    cmd = [sys.executable, script, *args, "--minutes", f"{minutes:.2f}"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit_s)
        code, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-5:]
    except subprocess.TimeoutExpired:
        code, tail = "timeout", []
    return {"command": " ".join(cmd[1:]), "returncode": code, "wall_s": time.perf_counter() - t0, "log_tail": tail}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_meta_training")
    ap.add_argument("--budget-min", type=float, default=9.0)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, about 2 minutes: check the plan runs")
    a = ap.parse_args()
    budget = 1.0 if a.smoke else a.budget_min
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {"devices": devices(), "smoke": a.smoke, "budget_min": budget, "steps": {}}
    print(f"devices: {summary['devices']}", flush=True)
    for name, share, script, gpu_args, smoke_args in STEPS:
        minutes = share * budget
        limit = 900 if a.smoke else 60 * minutes * 1.1
        result = run_step(name, script, smoke_args if a.smoke else gpu_args, 0.7 * minutes, a.out, limit)
        summary["steps"][name] = result
        print(name, json.dumps({k: result[k] for k in ("returncode", "wall_s")}), flush=True)
    write_json(a.out / "summary.json", summary)
    return 0 if all(s["returncode"] == 0 for s in summary["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
