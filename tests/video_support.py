"""Shared helpers for the tests/test_video_*.py files: real data locations, cached detections,
and a synthetic walking body with a known camera."""

from __future__ import annotations

import atexit
import functools
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionrecon.skeleton import MEDIAPIPE33

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DRIBBLE = SHARED_DATA / "video" / "single_person_dribble.mp4"
H36M_SAMPLE = SHARED_DATA / "h36m_sample"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (the shared data folder sits beside the repository)")
    return path


@functools.lru_cache(maxsize=None)
def _dribble_detection():
    from motionrecon.keypoints import mediapipe_pose
    folder = tempfile.mkdtemp(prefix="motionrecon-test-")
    atexit.register(shutil.rmtree, folder, True)
    cache = Path(folder) / "keypoints.npz"
    track, _ = mediapipe_pose.detect_video_cached(DRIBBLE, cache, progress=False)
    return track, cache


def dribble_detection():
    """(PoseTrack, its keypoints.npz) for the real dribble video, detected once per test session."""
    require(DRIBBLE)
    return _dribble_detection()


# ------------------------------------------------------------ synthetic body

# A standing person in a body frame: x forward, y to the person's left, z up (metres);
# heels and toe tips on the ground at z = 0.
_TEMPLATE = {
    "nose": (0.10, 0.0, 1.62),
    "left_eye_inner": (0.08, 0.015, 1.66), "left_eye": (0.08, 0.03, 1.66), "left_eye_outer": (0.07, 0.045, 1.66),
    "left_ear": (0.0, 0.075, 1.63), "mouth_left": (0.09, 0.025, 1.57),
    "left_shoulder": (0.0, 0.19, 1.42), "left_elbow": (0.0, 0.22, 1.14), "left_wrist": (0.05, 0.22, 0.88),
    "left_pinky": (0.06, 0.24, 0.80), "left_index": (0.08, 0.22, 0.79), "left_thumb": (0.09, 0.20, 0.84),
    "left_hip": (0.0, 0.10, 0.92), "left_knee": (0.02, 0.10, 0.50), "left_ankle": (0.0, 0.10, 0.08),
    "left_heel": (-0.06, 0.10, 0.0), "left_foot_index": (0.16, 0.10, 0.0),
}


def _template() -> np.ndarray:
    out = np.zeros((33, 3))
    for j, name in enumerate(MEDIAPIPE33.joints):
        if name in _TEMPLATE:
            out[j] = _TEMPLATE[name]
        else:
            x, y, z = _TEMPLATE[name.replace("right", "left")]
            out[j] = (x, -y, z)
    return out


LEG_JOINTS = {side: [MEDIAPIPE33.index(f"{side}_{part}") for part in ("ankle", "heel", "foot_index")]
              for side in ("left", "right")}
KNEES = {side: MEDIAPIPE33.index(f"{side}_knee") for side in ("left", "right")}


def walking_body(num_frames: int = 60, fps: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """[T, 33, 3] world positions (z-up) of a person walking a curved path, and [T, 33] stance mask.

    Each foot is on the ground (z = 0) half of the gait cycle and lifted up to
    12 cm in the other half; the body heads along the path and bobs.
    """
    base = _template()
    t = np.arange(num_frames) / fps
    path = np.stack([0.8 * t, 0.3 * np.sin(0.8 * t), np.zeros_like(t)], 1)
    yaw = 0.3 * t
    out = np.zeros((num_frames, 33, 3))
    on_ground = np.zeros((num_frames, 33), bool)
    for i in range(num_frames):
        pose = base.copy()
        for side, phase0 in (("left", 0.0), ("right", math.pi)):
            phase = 2 * math.pi * 1.0 * t[i] + phase0
            lift = 0.12 * max(0.0, math.sin(phase))
            stride = 0.2 * math.cos(phase)
            pose[LEG_JOINTS[side], 2] += lift
            pose[LEG_JOINTS[side], 0] += stride
            pose[KNEES[side], 2] += lift / 2
            pose[KNEES[side], 0] += stride / 2
            on_ground[i, LEG_JOINTS[side][1:]] = lift == 0.0
        pose[:, 2] += np.where(pose[:, 2] > 0.6, 0.02 * math.sin(4 * math.pi * t[i]), 0.0)
        out[i] = Rotation.from_euler("z", yaw[i]).apply(pose) + path[i]
    return out, on_ground


def look_at_camera(position, target, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) of an OpenCV camera at `position` looking at `target`, z-up world."""
    position, target = np.asarray(position, float), np.asarray(target, float)
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    R = Rotation.from_euler("z", roll_deg, degrees=True).as_matrix() @ R
    return R, -R @ position
