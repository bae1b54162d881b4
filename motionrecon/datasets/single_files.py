"""Single motion files of the data sets as `Observations`, for `motionrecon mocap`.

- AIST++ `keypoints3d/<seq>.pkl`: COCO-17, centimetres, y-up, 60 fps; converted
  exactly as `aist.load_aist` does (metres, z-up, floor from the ankles).
- Human3.6M `S*/MyPoseFeatures/D3_Positions/<Action>.cdf`: 32 joints in
  millimetres, world z-up, floor z = 0, 50 fps; reduced to "h36m17".

Both are cut to a time window with `common.time_window` (the same semantics as the
DeepMimic reader: `start` rounds up to a frame, `duration` gives
round(duration * fps) frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from motionrecon.datasets import aist, h36m
from motionrecon.datasets.common import check_thigh_length, time_window
from motionrecon.errors import InputError
from motionrecon.observations import Observations


def load_aist_keypoints_file(path: str | Path, *, start: float = 0.0, duration: float | None = None,
                             use_optim: bool = True) -> Observations:
    """An AIST++ `keypoints3d/<seq>.pkl` as "coco17" Observations (metres, z-up, ground z = 0, 60 fps).

    Missing keypoints (NaN) get confidence 0. The floor is estimated over the whole file.
    """
    path = Path(path)
    source = str(path)
    raw = aist.read_keypoints3d(path, use_optim=use_optim)
    try:
        scale, A, b = aist.world_transform(raw)
    except ValueError as e:
        raise InputError(source, str(e)) from None
    joints3d = (scale * raw) @ A.T + b
    check_thigh_length(joints3d, aist.THIGHS, source, "centimetres (AIST++)")
    aist._check_upright(joints3d, source)
    valid = np.isfinite(joints3d).all(axis=-1)
    joints3d = np.where(valid[..., None], joints3d, 0.0)
    sel = time_window(len(joints3d), aist.FPS, start, duration, source)
    return Observations(fps=aist.FPS, joint_set="coco17", joints3d=joints3d[sel], joints2d=None,
                        confidence=valid[sel].astype(np.float64), source=source)


def load_h36m_cdf_file(path: str | Path, *, start: float = 0.0, duration: float | None = None) -> Observations:
    """A Human3.6M `D3_Positions/<Action>.cdf` as "h36m17" Observations (metres, z-up, ground z = 0, 50 fps)."""
    path = Path(path)
    source = str(path)
    if path.parent.name == "D2_Positions":
        raise InputError(source, "holds 2D poses (D2_Positions); give the 3D file from D3_Positions")
    joints = h36m.read_cdf_pose(path, 3)[:, list(h36m.H36M32_TO_17)] / 1000.0  # mm -> m
    check_thigh_length(joints, h36m.THIGHS_17, source, "millimetres (Human3.6M D3_Positions)")
    sel = time_window(len(joints), h36m.FPS, start, duration, source)
    joints = joints[sel]
    return Observations(fps=h36m.FPS, joint_set="h36m17", joints3d=joints, joints2d=None,
                        confidence=np.ones(joints.shape[:2]), source=source)
