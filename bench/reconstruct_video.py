"""Issue-4 benchmark: `motionrecon VIDEO` on the real dribble clip from a cold start, and MediaPipe's 2D
error on the four real Human3.6M frames.

    python bench/reconstruct_video.py [--video PATH] [--warm] [--solver NAME] [--max-evals N]
                                      [--out bench/results/reconstruct_video.json]

Cold start: the CLI runs in a fresh process with an empty compile cache
(`MOTIONRECON_CACHE` pointed at a new temporary folder) and no keypoint cache,
so the wall time includes Python start-up, MediaPipe detection, placement, body
fit and IK, the MJX compile, the optimisation and every output file. `--warm`
keeps the user's compile cache instead.

Written to the JSON: the end-to-end wall time and its split (detection,
placement, initialisation = body + IK, compile, optimisation, outputs), the
video metrics (`mpjpe_2d_px`, `tv` vs `raw_tv`, `foot_skate_pct` vs
`raw_foot_skate_pct`, detected frames, lowest pelvis height), each issue
target with its measured value and whether it is met, and the per-joint 2D
error of MediaPipe on the Human3.6M frames (`bench/h36m_keypoints.py`).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from motionrecon.fileio import write_json  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "single_person_dribble.mp4"
DEFAULT_H36M = ROOT.parent / "shared" / "data" / "h36m_sample"

TARGETS = {  # issue 4
    "mpjpe_2d_px": ("<=", 25.0),
    "foot_skate_pct": ("<=", 10.0),
    "tv_over_raw_tv": ("<=", 0.5),
    "end_to_end_s": ("<=", 300.0),
}


def run_video(video: Path, solver: str | None, warm: bool, extra: list[str]) -> dict:
    """Runs the CLI in a fresh process; returns the timings and metrics it wrote."""
    out = Path(tempfile.mkdtemp(prefix="mr-video-bench-"))
    env = dict(os.environ)
    if not warm:
        env["MOTIONRECON_CACHE"] = tempfile.mkdtemp(prefix="mr-cold-cache-")
    cmd = [sys.executable, "-m", "motionrecon.cli", str(video), "--out", str(out), "--no-progress", *extra]
    if solver:
        cmd += ["--solver", solver]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"motionrecon failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    folder = out / video.stem
    m = json.loads((folder / "metrics.json").read_text())
    with np.load(folder / "motion.npz") as z:
        pelvis = np.asarray(z["qpos"])[:, 2] if "qpos" in z.files else None
    detection, placement = m.get("detection_s", 0.0), m.get("placement_s", 0.0)
    compile_s, ready, opt_wall = m.get("compile_s", 0.0), m.get("ready_s", 0.0), m.get("wall_s", 0.0)
    split = {
        "detection_s": detection,
        "placement_s": placement,
        "initialisation_s": max(0.0, ready - compile_s),  # body shape + IK + first window's data
        "compile_s": compile_s,
        "optimisation_s": max(0.0, opt_wall - ready),
    }
    split["startup_and_outputs_s"] = max(0.0, wall - sum(split.values()))
    keys = ("mpjpe_2d_px", "raw_mpjpe_2d_px", "tv", "raw_tv", "foot_skate_pct", "raw_foot_skate_pct",
            "detected_frames", "video_frames", "contact_penetration_mm", "pelvis_height_error_max_mm", "n_evals",
            "solver", "fallback_windows")
    result = {"command": " ".join(cmd[1:]), "cold_compile_cache": not warm, "end_to_end_s": wall, "split": split,
              "metrics": {k: m.get(k) for k in keys}, "output": str(folder)}
    if pelvis is not None:
        result["metrics"]["pelvis_height_min_m"] = float(pelvis.min())
    return result


def check_targets(video: dict) -> dict:
    m = video["metrics"]
    measured = {
        "mpjpe_2d_px": m["mpjpe_2d_px"],
        "foot_skate_pct": m["foot_skate_pct"],
        "tv_over_raw_tv": m["tv"] / m["raw_tv"] if m.get("raw_tv") else None,
        "end_to_end_s": video["end_to_end_s"],
    }
    out = {}
    for name, (op, bound) in TARGETS.items():
        value = measured[name]
        out[name] = {"target": f"{op} {bound}", "measured": value, "met": value is not None and value <= bound}
    out["every_frame"] = {"target": "detected_frames == video_frames",
                         "measured": [m["detected_frames"], m["video_frames"]],
                         "met": m["detected_frames"] == m["video_frames"]}
    fell = m.get("pelvis_height_min_m")
    out["no_fall"] = {"target": "lowest pelvis height >= 0.5 m", "measured": fell,
                      "met": fell is not None and fell >= 0.5}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--h36m", type=Path, default=DEFAULT_H36M)
    p.add_argument("--solver", default=None, help="--solver for the CLI (default: the CLI's default)")
    p.add_argument("--warm", action="store_true", help="keep the compile cache (default: a cold start)")
    p.add_argument("--max-evals", type=int, default=None, help="--max-evals for the CLI (default: the CLI's)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reconstruct_video.json")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: video not found")
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    extra = ([] if args.max_evals is None else ["--max-evals", str(args.max_evals)]) + \
        []
    video = run_video(args.video, args.solver, args.warm, extra)
    report["dribble"] = video
    report["targets"] = check_targets(video)
    if args.h36m.is_dir():
        import h36m_keypoints

        report["h36m_2d_per_joint"] = h36m_keypoints.evaluate(args.h36m)
    write_json(args.out, report)
    print(json.dumps({"end_to_end_s": video["end_to_end_s"], "split": video["split"],
                      "targets": {k: (v["measured"], v["met"]) for k, v in report["targets"].items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
