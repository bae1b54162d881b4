"""Floor height and mocap-quality metrics of pybullet's DeepMimic clips.

    python bench/deepmimic_floor.py [out.json]

For each clip (its own frames, no looping): the lowest toe and ankle heights,
the median over frames of the lowest foot point, and the foot-skate,
penetration and TV metrics of the mocap itself. Prints a table; writes JSON
when given a path.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from motionrecon import metrics
from motionrecon.datasets import deepmimic
from motionrecon.fileio import write_json
from motionrecon.skeleton import DEEPMIMIC


def measure(name: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # roll's uneven frame durations
        obs = deepmimic.load_deepmimic(deepmimic.clip_path(name))
    p = obs.joints3d
    feet = metrics.foot_indices(DEEPMIMIC)
    toes = [DEEPMIMIC.index("left_toe"), DEEPMIMIC.index("right_toe")]
    ankles = [DEEPMIMIC.index("left_ankle"), DEEPMIMIC.index("right_ankle")]
    return {
        "frames": obs.num_frames,
        "fps": obs.fps,
        "lowest_toe_mm": 1000 * float(p[:, toes, 2].min()),
        "lowest_ankle_mm": 1000 * float(p[:, ankles, 2].min()),
        "median_lowest_foot_point_mm": 1000 * float(np.median(p[:, feet, 2].min(axis=1))),
        "foot_skate_pct": metrics.foot_skate_pct(p, obs.fps, feet),
        "penetration_mm": metrics.penetration_mm(p[:, list(feet)]),
        "tv_mm_per_frame2": metrics.tv(p),
    }


def main(argv: list[str]) -> int:
    results = {name: measure(name) for name in deepmimic.CLIPS}
    keys = list(next(iter(results.values())))
    print("clip".ljust(15) + "".join(k.rjust(max(len(k), 8) + 2) for k in keys))
    for name, row in results.items():
        print(name.ljust(15) + "".join(f"{row[k]:.1f}".rjust(max(len(k), 8) + 2) for k in keys))
    if argv:
        write_json(argv[0], results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
