"""A long clip cut into parts solved side by side (`ReconstructionConfig.part_seconds`), in one process or
spread over worker processes, against one simulation from the first frame to the last: compute and quality.

    python bench/clip_parts.py [--part-seconds 0,6,6@2] [--cases walk60,cmu_01_01_hops,figure8_walk]
                               [--mocap ../shared/data/mocap] [--out bench/results/clip_parts.json]

Cases: `walkN` is pybullet's looping walk repeated to N seconds (walk60: a minute); any other name is a BVH file of `--mocap` read
whole (the CMU hops: 22.9 s; the figure-8 walk: 8.9 s). Each case is reconstructed once per setting (`S` or
`S@N`: `part_seconds` S, the parts spread over N worker processes, `reconstruct(workers=N)`) with default
settings otherwise, this process on one core (the workers on the cores it may use), the settings in turn case
by case. Compilation is excluded from the comparison (`solve_s` = wall time minus the compile or cache-load
time the run reports; with workers the slowest worker's, their start-up counted in). Reports per case and
setting: solve time, compute per second of motion, MPJPE-G, PA-MPJPE, foot skate (both rules), TV,
penetration, the pelvis's largest height error, and the seams (frame, landmarks' and pelvis's gap before the
cross-fade); and per case the speed-up of each setting over the first (`solve_s` ratio).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import write_json  # noqa: E402
from motionrecon.jaxsetup import use_one_core  # noqa: E402

KEYS = ("mpjpe_g_mm", "pa_mpjpe_mm", "foot_skate_pct", "foot_skate_stance_pct", "tv", "penetration_mm",
        "pelvis_height_error_max_mm", "n_windows", "n_evals", "batch_bucket", "parts", "part_seams",
        "fall_restarts", "wall_s", "compile_s")


def observations(case: str, mocap: Path):
    from motionrecon.datasets import load_motion
    from motionrecon.datasets.deepmimic import clip_path

    if case.startswith("walk") and case[4:].isdigit():
        return load_motion(clip_path("walk"), duration=float(case[4:]))
    return load_motion(mocap / f"{case}.bvh")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part-seconds", default="0,6,6@2")
    ap.add_argument("--cases", default="walk60,cmu_01_01_hops,figure8_walk")
    ap.add_argument("--mocap", type=Path, default=ROOT.parent / "shared" / "data" / "mocap")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "clip_parts.json")
    args = ap.parse_args(argv)
    core = use_one_core()
    from motionrecon.reconstruct import ReconstructionConfig, reconstruct

    settings = args.part_seconds.split(",")
    out = {"machine": {"platform": platform.platform(), "core": core}, "part_seconds": settings, "cases": {}}
    for case in args.cases.split(","):
        obs = observations(case, args.mocap)
        rows = {}
        for setting in settings:
            seconds, _, workers = setting.partition("@")
            t = time.perf_counter()
            rec = reconstruct(obs, ReconstructionConfig(part_seconds=float(seconds)), workers=int(workers or 1))
            m = {k: rec.metrics.get(k) for k in KEYS}
            m["solve_s"] = m["wall_s"] - m["compile_s"]
            m["solve_s_per_motion_s"] = m["solve_s"] / obs.duration
            m["process_s"] = time.perf_counter() - t
            rows[setting] = m
            print(case, setting, json.dumps({k: v for k, v in m.items() if k != "part_seams"}), flush=True)
            base = rows[settings[0]]["solve_s"]  # written after every run: a run stopped by a time limit keeps the rest
            out["cases"][case] = {"seconds": obs.duration, "frames": obs.num_frames, "fps": obs.fps, "runs": rows,
                                  "speedup": {k: base / r["solve_s"] for k, r in rows.items()}}
            write_json(args.out, out)
    print(json.dumps({c: v["speedup"] for c, v in out["cases"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
