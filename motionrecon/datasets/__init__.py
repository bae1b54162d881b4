"""Readers of motion data into `Observations`: DeepMimic/pybullet clips, Human3.6M,
AIST++ and BVH, plus the evaluation splits.

`load_motion(path, start=, duration=)` picks the reader from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from motionrecon.errors import InputError

SUPPORTED = ("DeepMimic .txt/.json, BVH .bvh, AIST++ keypoints3d .pkl, Human3.6M D3_Positions .cdf")


def load_motion(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None, joint_map=None):
    """Observations (3D, metres, world z-up, ground z = 0) from one motion file, by its format.

    - `.txt`/`.json`: a DeepMimic/pybullet motion clip ("deepmimic" joints).
    - `.bvh`: a BVH file, mapped onto "h36m17" landmarks (see `bvh_mocap`); `joint_map` (a
      `bvh_rig.JointMap`, dict or JSON path) settles what its names and tree cannot tell.
    - `.pkl`: an AIST++ `keypoints3d/<seq>.pkl` ("coco17", 60 fps).
    - `.cdf`: a Human3.6M `D3_Positions/<Action>.cdf` ("h36m17", 50 fps).
    `start`/`duration` are seconds (see each reader).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(str(path), "no such file")
    if not p.is_file():
        raise InputError(str(path), "not a file")
    suffix = p.suffix.lower()
    if joint_map is not None and suffix != ".bvh":
        raise InputError(str(path), "a joint map (--joint-map) applies to BVH files only")
    if suffix in (".txt", ".json"):
        from motionrecon.datasets.deepmimic import load_deepmimic

        return load_deepmimic(p, start=start, duration=duration)
    if suffix == ".bvh":
        from motionrecon.datasets.bvh_mocap import load_bvh

        return load_bvh(p, start=start, duration=duration, joint_map=joint_map)
    if suffix == ".pkl":
        from motionrecon.datasets.single_files import load_aist_keypoints_file

        return load_aist_keypoints_file(p, start=start, duration=duration)
    if suffix == ".cdf":
        from motionrecon.datasets.single_files import load_h36m_cdf_file

        return load_h36m_cdf_file(p, start=start, duration=duration)
    if suffix == ".npz" and p.name.startswith("data_3d_h36m"):
        raise InputError(str(path), "holds every Human3.6M sequence; use `motionrecon eval --dataset h36m --root "
                                    "FOLDER` or motionrecon.datasets.h36m.load_h36m(folder, subject, action)")
    if suffix in VIDEO_SUFFIXES:
        import shlex

        raise InputError(str(path), f"is a video, not motion capture: run `motionrecon {shlex.quote(str(path))} --out "
                                    "DIR` (the video command)")
    raise InputError(str(path), f"unknown motion format {suffix!r} (supported: {SUPPORTED})")


# Common video containers: given to `mocap`, they get a pointer to the video command instead of "unknown format".
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp")
