"""Issue 19's GPU plan: meta-training of the learned optimizers for the day an accelerator is lent, in one
command that finishes within `--budget-min` minutes (default 9).

    python bench/gpu_meta_training.py [--out bench/results/gpu_meta_training] [--budget-min 9] [--smoke] \
        [--optimizer pop|optimus]

What it runs, in its own process (resumable: the same --out carries on from the last step written):
  ES on real DiffPhy windows (`bench/es_diffphy.py`): 32 antithetic pairs over 16 windows per meta-step
  (4 x 4 on this CPU), 40-evaluation episodes, over POP's 8 step-size numbers (or Optimus's 9 with
  `--optimizer optimus`); it writes the tuned weights
  (`es_diffphy.npz`) beside its result. Measured on an H200 (session 22, bench/results/session22/gpu/):
  81 s to start (building the windows, compiling the validation), 75 s to compile the ES step, then 6.2 s per
  step; 13 steps moved the held-out validation log10(f_T/f_0) from -1.045 to -1.316.
  The summary (devices, the step's exit status, wall time, result file) goes to `--out/summary.json`.
Weights are written under --out only, never over the shipped ones in weights/: a person compares them with
`bench/optimus_vs_bfgs.py --pop` and exports them (`learned.export_weights`) if they are better.

Not in the plan: POP's backpropagation through unrolls on the synthetic prior (`bench/train_pop.py`). On the
H200 it compiled anew for each problem size and unroll length of its curriculum and made 2 steps in 69 s; on
one CPU core a step takes 0.04-0.2 s, so it stays on the CPU.

ES trains for the budget less `STARTUP_MIN` (start, compilation and validation, as measured) and is stopped
at the budget plus 10 %. --smoke runs it with tiny sizes on whatever device JAX finds (the CPU here, where
compiling the DiffPhy task takes minutes), to check that the plan still runs before a GPU is lent.
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
    ("es_diffphy", 1.0, "bench/es_diffphy.py",
     ["--pairs", "32", "--problems", "16", "--episode", "40", "--steps", "1000"],
     ["--pairs", "2", "--problems", "2", "--steps", "2", "--episode", "10"]),
)
STARTUP_MIN = 3.0  # minutes of a step's share that go to start-up, compilation and validation (H200, session 22)


def devices() -> list[str]:
    out = subprocess.run([sys.executable, "-c", "import jax; print([str(d) for d in jax.devices()])"],
                         cwd=ROOT, capture_output=True, text=True)
    return [out.stdout.strip() or out.stderr.strip().splitlines()[-1]]


def run_step(name: str, script: str, args: list[str], minutes: float, out: Path, limit_s: float) -> dict:
    """One step as a subprocess with `minutes` of training of its own (the script's --minutes) and a hard
    limit of `limit_s` seconds (start-up, compilation and validation come on top of the training)."""
    target = out / name
    args = args + ["--out", str(target.with_suffix(".json"))]
    cmd = [sys.executable, script, *args, "--minutes", f"{minutes:.2f}"]
    log = target.with_suffix(".log")  # kept when the step is stopped at its limit
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            code = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, text=True,
                                  timeout=limit_s).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    return {"command": " ".join(cmd[1:]), "returncode": code, "wall_s": time.perf_counter() - t0, "log_tail": tail}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_meta_training")
    ap.add_argument("--budget-min", type=float, default=9.0)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, about 2 minutes: check the plan runs")
    ap.add_argument("--optimizer", choices=("pop", "optimus"), default="pop",
                    help="whose few numbers ES tunes (bench/es_diffphy.py --optimizer)")
    a = ap.parse_args()
    budget = 1.0 if a.smoke else a.budget_min
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {"devices": devices(), "smoke": a.smoke, "budget_min": budget, "optimizer": a.optimizer,
               "steps": {}}
    print(f"devices: {summary['devices']}", flush=True)
    for name, share, script, gpu_args, smoke_args in STEPS:
        minutes = share * budget
        limit = 900 if a.smoke else 60 * minutes * 1.1
        training = 0.5 if a.smoke else max(minutes - STARTUP_MIN, 0.5)
        args = (smoke_args if a.smoke else gpu_args) + ["--optimizer", a.optimizer]
        result = run_step(name, script, args, training, a.out, limit)
        summary["steps"][name] = result
        print(name, json.dumps({k: result[k] for k in ("returncode", "wall_s")}), flush=True)
    write_json(a.out / "summary.json", summary)
    return 0 if all(s["returncode"] == 0 for s in summary["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
