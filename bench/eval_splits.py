"""Benchmark of `motionrecon eval`: wall time of a batch run one at a time and with worker processes.

Writes a small fake AIST++ folder (the test suite's format writer, tests/fake_datasets.py) with
`--entries` copies of a 2 s dance, then runs `motionrecon eval` on it in fresh processes: once to
fill JAX's persistent compilation cache, then with each `--workers` count into an empty output
folder. Reports wall time per run, per entry (results.csv), and the peak memory of the largest
process. Writes JSON (default bench/results/eval_splits.json).

    python bench/eval_splits.py [--entries 4] [--fps 30] [--max-evals 20] [--window 1] [--workers 1 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEQUENCE = "gBR_sBM_cAll_d06_mBR4_ch06"


def make_data(folder: Path, entries: int, fps: float) -> Path:
    """One 2 s AIST++ sequence and a split listing `entries` different 1 s stretches of it; returns the split."""
    sys.path.insert(0, str(REPO / "tests"))
    from fake_datasets import aist_motion_zup, aist_raw_from_zup, write_aist

    native = 60
    write_aist(folder / "aist", SEQUENCE, aist_raw_from_zup(aist_motion_zup(native * 2 + 6 * entries), 10.0))
    split = folder / "split.txt"
    split.write_text("".join(f"gBR_sBM_c06_d06_mBR4_ch06 {6 * i}-{6 * i + native - 1} {fps:g}\n" for i in range(entries)))
    return split


def run_eval(root: Path, split: Path, out: Path, args, workers: int | None) -> dict:
    cmd = [sys.executable, "-m", "motionrecon.cli", "eval", "--dataset", "aist", "--root", str(root), "--split",
           str(split), "--out", str(out), "--max-evals", str(args.max_evals), "--window", str(args.window),
           "--no-progress"] + ([] if workers is None else ["--workers", str(workers)])
    t = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"eval failed ({res.returncode}):\n{res.stderr[-3000:]}")
    with open(out / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["key"] != "mean"]
    return {"workers": workers or 1, "wall_s": wall, "entry_wall_s": [float(r["wall_s"]) for r in rows],
            "mpjpe_g_mm": [float(r["mpjpe_g_mm"]) for r in rows]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=4)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--max-evals", type=int, default=20)
    p.add_argument("--window", type=float, default=1.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "eval_splits.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        split = make_data(tmp, args.entries, args.fps)
        warm = run_eval(tmp / "aist", split, tmp / "warmup", argparse.Namespace(**{**vars(args), "max_evals": 1}), None)
        runs = [run_eval(tmp / "aist", split, tmp / f"out{w}", args, None if w == 1 else w) for w in args.workers]
    result = {
        "command": "python bench/eval_splits.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {"entries": args.entries, "frames_per_entry": int(args.fps), "fps": args.fps,
                     "max_evals": args.max_evals, "window_s": args.window},
        "warmup_wall_s": warm["wall_s"],
        "runs": runs,
        "peak_rss_mb_largest_process": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        print(f"workers {r['workers']}: {r['wall_s']:.0f} s for {args.entries} entries "
              f"(entries {min(r['entry_wall_s']):.0f}-{max(r['entry_wall_s']):.0f} s)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
