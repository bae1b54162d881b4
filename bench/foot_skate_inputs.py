"""Both foot-skate rules on the input motion itself: the real BVH clips and pybullet's DeepMimic clips.

    python bench/foot_skate_inputs.py [out.json]

`foot_skate_pct` (any foot point below 5 cm moving over 2 cm per 1/25 s) and
`foot_skate_stance_pct` (the same, only while the point bears weight: within 1.5 cm of its floor level
(its 5th-percentile height) in a stance of
at least 0.2 s, landing and take-off frames left out), in percent of frame pairs
at 25 fps, on
- the BVH clips of ../shared/data/mocap (skipped when absent): on the foot points
  of the observations ("h36m17": the ankles), and on the rig's ankles and toe
  joints (`bvh_mocap.read_rig`, the same floor);
- pybullet's clips (`deepmimic.CLIPS`, their own frames): ankles and toes.
Prints a table; writes JSON when given a path.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from motionrecon import metrics
from motionrecon.datasets import deepmimic, load_motion
from motionrecon.datasets.bvh_mocap import read_rig
from motionrecon.fileio import write_json
from motionrecon.skeleton import get_joint_set

MOCAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap"


def both_rules(points, fps: float) -> dict:
    """points: [T, F, 3] foot points, metres, z-up, floor z = 0."""
    every = list(range(points.shape[1]))
    return {"foot_skate_pct": metrics.foot_skate_pct(points, fps, every),
            "foot_skate_stance_pct": metrics.foot_skate_stance_pct(points, fps, every)}


def measure_bvh(path: Path) -> dict:
    obs = load_motion(path)
    feet = list(metrics.foot_indices(get_joint_set(obs.joint_set)))
    posed = read_rig(path)
    roles = posed.rig.roles
    rig_feet = [j for role in ("left_ankle", "right_ankle", "left_toe", "right_toe") for j in roles.get(role, ())]
    return {"fps": obs.fps, "frames": obs.num_frames,
            "observed_ankles": both_rules(obs.joints3d[:, feet], obs.fps),
            "rig_ankles_and_toes": both_rules(posed.positions[:, rig_feet], obs.fps),
            "rig_feet": [posed.motion.joint_names[j] for j in rig_feet]}


def measure_deepmimic(name: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # roll's uneven frame durations
        obs = deepmimic.load_deepmimic(deepmimic.clip_path(name))
    feet = list(metrics.foot_indices(get_joint_set(obs.joint_set)))
    return {"fps": obs.fps, "frames": obs.num_frames, "ankles_and_toes": both_rules(obs.joints3d[:, feet], obs.fps)}


def main(argv: list[str]) -> int:
    results: dict = {"bvh": {}, "deepmimic": {}}
    if MOCAP.is_dir():
        for path in sorted(MOCAP.glob("*.bvh")):
            results["bvh"][path.name] = measure_bvh(path)
    else:
        print(f"{MOCAP} not found: BVH clips skipped", file=sys.stderr)
    for name in deepmimic.CLIPS:
        results["deepmimic"][name] = measure_deepmimic(name)
    print(f"{'clip':50s} {'points':18s} {'old %':>7s} {'stance %':>9s}")
    for kind, rows in results.items():
        for name, row in rows.items():
            for points, values in row.items():
                if isinstance(values, dict):
                    print(f"{name:50s} {points:18s} {values['foot_skate_pct']:7.1f} "
                          f"{values['foot_skate_stance_pct']:9.1f}")
    if argv:
        write_json(argv[0], results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
