"""Seats under a sitting reference (`body.seats`): what they change, and where they are found.

    python bench/seats.py [--mocap DIR] [--videos DIR] [--out bench/results/seats.json]

1. The synthetic sit-down (`datasets.synthetic.sit_down`: the default body sits on a chair 0.36 m high for 2 s)
   reconstructed with the default mocap settings, with seats (the default) and without (`{"seats": false}`):
   MPJPE-G, and the pelvis's height against the reference's while seated.
2. Where seats are found on real inputs: the kinematic reference of every pybullet clip, every BVH clip in
   `--mocap` and every video in `--videos` (video settings; MediaPipe's detections, cached beside the output),
   with the seats found in each. None of them sits on anything, so every seat there is a false one.

Writes JSON (and prints each line as it goes).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def sit_down_runs() -> list[dict]:
    import numpy as np

    from motionrecon.datasets.synthetic import sit_down

    R = importlib.import_module("motionrecon.reconstruct")
    obs = sit_down()
    rows = []
    for seats in (True, False):
        t = time.perf_counter()
        rec = R.reconstruct(obs, R.ReconstructionConfig(seats=seats))
        seated = np.flatnonzero(np.abs(rec.qpos_kinematic[:, 2] - rec.qpos_kinematic[:, 2].min()) < 0.01)
        gap = rec.qpos[seated, 2] - rec.qpos_kinematic[seated, 2]
        rows.append({"seats": seats, "mpjpe_g_mm": rec.metrics["mpjpe_g_mm"], "seats_found": rec.metrics["seats"],
                     "seated_frames": int(len(seated)),
                     "pelvis_over_reference_seated_mm": {"mean": float(1000 * gap.mean()),
                                                         "max": float(1000 * np.abs(gap).max())},
                     "pelvis_height_error_max_mm": rec.metrics["pelvis_height_error_max_mm"],
                     "fall_retries": rec.metrics["fall_retries"], "wall_s": time.perf_counter() - t})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def found_on_inputs(mocap: Path, videos: Path, cache: Path) -> list[dict]:
    from motionrecon import window
    from motionrecon.datasets import load_motion
    from motionrecon.datasets.deepmimic import CLIPS, clip_path, load_deepmimic

    R = importlib.import_module("motionrecon.reconstruct")
    inputs = [(f"pybullet {c}", "mocap", lambda c=c: load_deepmimic(clip_path(c))) for c in CLIPS]
    inputs += [(p.name, "mocap", lambda p=p: load_motion(p)) for p in sorted(mocap.glob("*.bvh"))]
    if videos.is_dir():
        from motionrecon.keypoints import observations_from_video

        cache.mkdir(parents=True, exist_ok=True)

        def video(p: Path):
            kp = cache / f"{p.stem}.npz"
            return observations_from_video(p, cache_path=kp if kp.exists() else None,
                                           write_cache_to=None if kp.exists() else kp, progress=False).observations

        inputs += [(p.name, "video", lambda p=p: video(p)) for p in sorted(videos.iterdir()) if p.is_file()
                   and p.suffix.lower() in (".mp4", ".avi", ".mov")]
    rows = []
    for name, kind, load in inputs:
        obs = load()
        cfg = R.video_config() if kind == "video" else R.ReconstructionConfig()
        spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                   cfg.sim_rate)[3]
        _, _, seats = R.reference_and_seats(obs, cfg, spf)
        rows.append({"input": name, "kind": kind, "seconds": obs.duration,
                     "seats": [s.describe(obs.fps) for s in seats]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mocap", type=Path, default=SHARED / "mocap")
    p.add_argument("--videos", type=Path, default=SHARED / "video")
    p.add_argument("--cache", type=Path, default=Path("/tmp/motionrecon-bench-seats"),
                   help="where the videos' detections are kept between runs")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "seats.json")
    args = p.parse_args(argv)
    import platform

    from motionrecon.fileio import write_json

    out = {"command": "python bench/seats.py " + " ".join(argv or sys.argv[1:]), "machine": platform.processor(),
           "sit_down": sit_down_runs(), "inputs": found_on_inputs(args.mocap, args.videos, args.cache)}
    out["false_seats"] = sum(len(r["seats"]) for r in out["inputs"])
    write_json(args.out, out)
    print(f"false seats on {len(out['inputs'])} real inputs: {out['false_seats']}; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
