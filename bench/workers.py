"""Several inputs at once on several cores: `motionrecon mocap|VIDEO --workers N` against one process; JSON out.

    python bench/workers.py [--kind mocap|video] [--inputs 4] [--seconds 5] [--workers 1 2]
        [--out bench/results/workers.json]

Runs the real command (a subprocess, as a user would) on the first `--inputs` real files of ../shared/data
(mocap: the BVH clips; video: the videos), `--seconds` of each, once per `--workers` value, in one run, each
into a fresh folder; a first run with the largest `--workers` warms JAX's persistent compilation cache, so every
timed run loads its programs instead of compiling them. Reported per run: wall seconds, seconds per second of
input, the speed-up over the first `--workers` value, and each input's MPJPE-G (mocap) or MPJPE-2d (video). The
workers' batches hold fewer inputs than one process's (`--batch` inputs share a batch; with N workers, about
1/N of the inputs each), so single runs differ in the rounding the optimisation amplifies.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def inputs(kind: str, count: int) -> list[Path]:
    """The first `count` real files of the kind, by name."""
    folder, pattern = (DATA / "mocap", "*.bvh") if kind == "mocap" else (DATA / "video", "*.*")
    files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in (".bvh", ".mp4", ".avi", ".mov"))
    if not files:
        sys.exit(f"bench/workers.py: no {kind} inputs in {folder}")
    return files[:count]


def run(kind: str, files: list[Path], seconds: float, workers: int, out: Path) -> dict:
    """The command on `files` with `--workers workers` into `out`: wall time and per-input quality."""
    cmd = [sys.executable, "-m", "motionrecon.cli", kind, *map(str, files), "--duration", str(seconds),
           "--workers", str(workers), "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"bench/workers.py: {' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    key = "mpjpe_g_mm" if kind == "mocap" else "mpjpe_2d_px"
    quality, motion = {}, 0.0
    for f in files:
        m = json.loads((out / f.stem / "metrics.json").read_text())
        quality[f.stem] = m.get(key)
        motion += m["frames"] / m["fps"]
    return {"workers": workers, "wall_s": wall, "s_per_s": wall / motion, "motion_s": motion, key: quality}


def main(argv: list[str] | None = None) -> int:
    from motionrecon.fileio import write_json
    from motionrecon.jaxsetup import cores_available

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=("mocap", "video"), default="mocap")
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "workers.json"))
    args = ap.parse_args(argv)
    files = inputs(args.kind, args.inputs)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mr-workers-") as tmp:
        warm = run(args.kind, files, args.seconds, max(args.workers), Path(tmp) / "warm")
        print(f"warm-up ({max(args.workers)} workers): {warm['wall_s']:.1f} s", flush=True)
        for n in args.workers:
            runs.append(run(args.kind, files, args.seconds, n, Path(tmp) / f"w{n}"))
            print(f"--workers {n}: {runs[-1]['wall_s']:.1f} s ({runs[-1]['s_per_s']:.2f} s per s of input)", flush=True)
    for r in runs:
        r["speedup"] = runs[0]["wall_s"] / r["wall_s"]
    result = {"command": " ".join(["python", "bench/workers.py", *(argv if argv is not None else sys.argv[1:])]),
              "kind": args.kind, "inputs": [f.name for f in files], "seconds": args.seconds,
              "cores": len(cores_available()), "runs": runs}
    write_json(args.out, result)
    print(json.dumps({r["workers"]: round(r["speedup"], 2) for r in runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
