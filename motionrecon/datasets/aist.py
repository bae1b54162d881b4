"""AIST++ reader: 3D/2D COCO-17 keypoints and the 9-view camera settings, as distributed.

Layout of the annotation folder (see docs/datasets.md):
- `keypoints3d/<seq>.pkl`: dict with `keypoints3d` and `keypoints3d_optim`,
  (N, 17, 3) COCO-17, centimetres, world frame y-up (raw triangulation may hold NaN).
- `keypoints2d/<seq>.pkl`: dict with `keypoints2d` (9, N, 17, 3) x, y, score per
  view c01..c09, `det_scores` (9, N), `timestamps` (N,).
- `cameras/mapping.txt`: lines "<seq_name> <setting>"; `cameras/<setting>.json`:
  list of 9 dicts name, size [w, h], matrix, rotation (Rodrigues), translation (cm), distortions.
- videos (AIST Dance DB) `<genre>_<situation>_c<view>_d<dancer>_m<music>_ch<choreo>.mp4`,
  60 fps; the sequence name has `cAll` in place of `c<view>`.

Output: `Observations` in "coco17", metres, world z-up with the ground at z = 0:
X = A (0.01 X_aist) + (0, 0, -floor), A mapping y-up to z-up, and the floor
estimated from the ankles (`world_transform`). The cameras get the same transform.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from motionrecon.datasets.cameras import AIST_VIEWS, read_aist_setting, transform_world
from motionrecon.datasets.common import check_thigh_length, downsample_step, frame_slice, read_pickle
from motionrecon.errors import InputError
from motionrecon.observations import Observations

FPS = 60.0
UNIT_M = 0.01  # AIST++ keypoints and camera translations are in centimetres
# y-up (AIST++) -> z-up (motionrecon): x' = x, y' = -z, z' = y (a proper rotation).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Height of the ankle keypoint above the floor when the foot is flat (adult
# lateral malleolus, roughly 7-9 cm).
ANKLE_HEIGHT_M = 0.08
# Percentile of the per-frame lowest ankle height taken as "foot on the floor":
# robust to a few triangulation outliers below the floor.
FLOOR_PERCENTILE = 5.0
# COCO-17 indices.
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP, LEFT_ANKLE, RIGHT_ANKLE = 5, 6, 11, 12, 15, 16
THIGHS = [(11, 13), (12, 14)]
NOT_AIST = "not an AIST++ folder: expected keypoints3d/ and cameras/mapping.txt"

_NAME = re.compile(r"(g[A-Za-z0-9]+)_(s[A-Za-z0-9]+)_c(All|\d\d)_(d\d+)_(m[A-Za-z0-9]+)_(ch\d+)")


# --------------------------------------------------------------------------- names and files

def parse_name(name: str) -> tuple[str, str | None]:
    """Video or sequence name -> (sequence name with "cAll", view "c01".."c09" or None).

    "gBR_sBM_c06_d06_mBR4_ch06" -> ("gBR_sBM_cAll_d06_mBR4_ch06", "c06").
    """
    m = _NAME.fullmatch(Path(name).stem if name.endswith(".mp4") else name)
    if m is None:
        raise InputError(name, "not an AIST++ name: expected <genre>_<situation>_c<view|All>_d<dancer>_m<music>_ch<choreo>")
    g, s, view, d, mu, ch = m.groups()
    return f"{g}_{s}_cAll_{d}_{mu}_{ch}", (None if view == "All" else f"c{view}")


def video_name(seq: str, view: str) -> str:
    """Sequence name and view -> video name (without .mp4)."""
    return parse_name(seq)[0].replace("_cAll_", f"_{view_name(view)}_")


def view_name(view: str | int) -> str:
    """"c01".."c09", or 1..9 -> "c01".."c09"."""
    name = f"c{int(view):02d}" if isinstance(view, (int, np.integer)) else str(view)
    if name not in AIST_VIEWS:
        raise InputError(str(view), f"not an AIST++ view; expected one of {', '.join(AIST_VIEWS)}")
    return name


def check_aist_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "folder not found")
    if not ((root / "keypoints3d").is_dir() and (root / "cameras" / "mapping.txt").is_file()):
        raise InputError(str(root), NOT_AIST)
    return root


def read_mapping(path: str | Path) -> dict[str, str]:
    """`cameras/mapping.txt` -> {sequence name: camera setting}."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise InputError(str(path), f"cannot read ({e.strerror or e})") from None
    mapping = {}
    for i, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise InputError(f"{path}:{i}", f"expected '<sequence> <setting>', got {line!r}")
        mapping[parts[0]] = parts[1]
    return mapping


@dataclasses.dataclass(frozen=True)
class AISTFiles:
    """Files of one AIST++ sequence; keypoints2d is None when absent."""

    sequence: str
    view: str | None
    keypoints3d: Path
    keypoints2d: Path | None
    cameras: Path | None


def resolve_aist(root: str | Path, name: str, view: str | int | None = None) -> AISTFiles:
    """Finds the files of a sequence (name with cAll or c<view>); InputError naming what is missing."""
    root = check_aist_root(root)
    seq, name_view = parse_name(name)
    if view is not None and name_view is not None and view_name(view) != name_view:
        raise InputError(name, f"names view {name_view} but view {view_name(view)} was requested")
    view = name_view if view is None else view_name(view)
    k3d = root / "keypoints3d" / f"{seq}.pkl"
    if not k3d.is_file():
        raise InputError(str(k3d), f"sequence {seq} is not in this copy of AIST++ (no 3D keypoints)")
    k2d = root / "keypoints2d" / f"{seq}.pkl"
    cameras = None
    if view is not None:
        mapping_file = root / "cameras" / "mapping.txt"
        setting = read_mapping(mapping_file).get(seq)
        if setting is None:
            raise InputError(str(mapping_file), f"no camera setting listed for {seq}")
        cameras = root / "cameras" / f"{setting}.json"
        if not cameras.is_file():
            raise InputError(str(cameras), f"camera setting file of {seq} not found")
    return AISTFiles(seq, view, k3d, k2d if k2d.is_file() else None, cameras)


def aist_video(video_dir: str | Path, name: str, view: str | int | None = None) -> Path:
    """Path of `<video_dir>/<video name>.mp4` for a video name, or a sequence name and a view."""
    seq, name_view = parse_name(name)
    view = name_view if view is None else view_name(view)
    if view is None:
        raise InputError(name, "a sequence name (cAll) needs a view to name a video")
    path = Path(video_dir) / f"{video_name(seq, view)}.mp4"
    if not path.is_file():
        raise InputError(str(path), "video not found")
    return path


# --------------------------------------------------------------------------- file readers

def read_keypoints3d(path: str | Path, *, use_optim: bool = True) -> np.ndarray:
    """[N, 17, 3] keypoints in the file's unit (centimetres), NaN where missing."""
    path = Path(path)
    data = read_pickle(path)
    key = "keypoints3d_optim" if use_optim else "keypoints3d"
    if not isinstance(data, dict) or key not in data:
        keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise InputError(str(path), f"has no '{key}' (found: {keys})")
    k = np.asarray(data[key], np.float64)
    if k.ndim != 3 or k.shape[1:] != (17, 3):
        raise InputError(str(path), f"'{key}' has shape {k.shape}, expected (N, 17, 3)")
    return k


def read_keypoints2d(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """([9, N, 17, 3] x, y, score per view, [9, N] detection scores or None)."""
    path = Path(path)
    data = read_pickle(path)
    if not isinstance(data, dict) or "keypoints2d" not in data:
        raise InputError(str(path), "has no 'keypoints2d'")
    if "det_scores" not in data and "bboxes" in data:
        raise InputError(str(path), "holds raw multi-person detections (bboxes, 133 keypoints); "
                                    "expected the released (9, N, 17, 3) keypoints2d with det_scores")
    try:
        k = np.asarray(data["keypoints2d"], np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(str(path), f"'keypoints2d' is not a numeric array ({e})") from None
    if k.ndim != 4 or k.shape[0] != len(AIST_VIEWS) or k.shape[2:] != (17, 3):
        raise InputError(str(path), f"'keypoints2d' has shape {k.shape}, expected (9, N, 17, 3)")
    det = data.get("det_scores")
    if det is not None:
        det = np.asarray(det, np.float64)
        if det.shape != k.shape[:2]:
            raise InputError(str(path), f"'det_scores' has shape {det.shape}, expected {k.shape[:2]}")
    return k, det


# --------------------------------------------------------------------------- world frame

def world_transform(keypoints3d: np.ndarray, *, unit_m: float = UNIT_M,
                    ankle_height: float = ANKLE_HEIGHT_M) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale, A, b) with X_world = A (scale X_aist) + b: metres, z-up, floor at z = 0.

    The floor is the `FLOOR_PERCENTILE`-th percentile over frames of the lower
    ankle's height, minus `ankle_height`: where the ankles sit when a foot is
    flat on the ground. Estimated over the whole sequence.
    """
    ankle_z = ((unit_m * keypoints3d) @ Y_UP_TO_Z_UP.T)[:, [LEFT_ANKLE, RIGHT_ANKLE], 2]
    lowest_ankle = np.min(np.where(np.isfinite(ankle_z), ankle_z, np.inf), axis=1)
    lowest_ankle = lowest_ankle[np.isfinite(lowest_ankle)]
    if lowest_ankle.size == 0:
        raise ValueError("no finite ankle keypoint to estimate the floor from")
    floor = float(np.percentile(lowest_ankle, FLOOR_PERCENTILE)) - ankle_height
    return unit_m, Y_UP_TO_Z_UP.copy(), np.array([0.0, 0.0, -floor])


def _check_upright(joints3d: np.ndarray, source: str) -> None:
    """InputError when the mean hip-to-shoulder direction is more than 60 degrees off +z."""
    hips = joints3d[:, [LEFT_HIP, RIGHT_HIP]].mean(axis=1)
    shoulders = joints3d[:, [LEFT_SHOULDER, RIGHT_SHOULDER]].mean(axis=1)
    d = shoulders - hips
    n = np.linalg.norm(d, axis=1, keepdims=True)
    ok = np.isfinite(n[:, 0]) & (n[:, 0] > 0)
    if not ok.any():
        return
    mean_up = (d[ok] / n[ok]).mean(axis=0)
    cos = mean_up[2] / max(np.linalg.norm(mean_up), 1e-12)
    if cos < 0.5:
        raise InputError(source, f"the body is not upright after converting AIST++'s y-up world to z-up "
                                 f"(mean torso direction {np.degrees(np.arccos(np.clip(cos, -1, 1))):.0f} deg from vertical): "
                                 "unexpected axes")


# --------------------------------------------------------------------------- the reader

def load_aist(root: str | Path, seq: str, *, view: str | int | None = None, frames: tuple[int, int] | None = None,
              fps: float | None = None, use_optim: bool = True, ankle_height: float = ANKLE_HEIGHT_M) -> Observations:
    """One AIST++ sequence as Observations ("coco17", metres, world z-up, ground z = 0).

    Args:
      root: the AIST++ annotation folder (keypoints3d/, keypoints2d/, cameras/).
      seq: sequence name ("..._cAll_...") or video name ("..._c06_..."; implies the view).
      view: "c01".."c09" or 1..9: gives `camera` and, when keypoints2d/ has the sequence,
        `joints2d` (detected keypoints of that view) with their scores as confidence.
      frames: native (60 fps) frame indices [start, stop); None for all.
      fps: output frame rate, a divisor of 60; None for 60.
      use_optim: read `keypoints3d_optim` (temporally optimised, the default) or raw `keypoints3d`.
      ankle_height: ankle keypoint height above the floor for the floor estimate, metres.

    Confidence: 0 where the 3D keypoint is missing (NaN; its value is set to 0);
    with 2D, also multiplied by the detector's keypoint score (and 0 where the
    frame's detection score is negative, as in AIST++'s own triangulation).
    """
    files = resolve_aist(root, seq, view)
    source = str(files.keypoints3d)
    raw = read_keypoints3d(files.keypoints3d, use_optim=use_optim)
    try:
        scale, A, b = world_transform(raw, ankle_height=ankle_height)
    except ValueError as e:
        raise InputError(source, str(e)) from None
    joints3d = (scale * raw) @ A.T + b
    check_thigh_length(joints3d, THIGHS, source, "centimetres (AIST++)")
    _check_upright(joints3d, source)
    valid3d = np.isfinite(joints3d).all(axis=-1)
    confidence = valid3d.astype(np.float64)
    joints3d = np.where(valid3d[..., None], joints3d, 0.0)

    joints2d = camera = None
    if files.view is not None:
        cameras = read_aist_setting(files.cameras, unit_m=scale)
        if files.view not in cameras:
            raise InputError(str(files.cameras), f"has no camera {files.view} (found: {', '.join(cameras)})")
        camera = transform_world(cameras[files.view], A, b)
        if files.keypoints2d is not None:
            k2d, det = read_keypoints2d(files.keypoints2d)
            if k2d.shape[1] != raw.shape[0]:
                raise InputError(str(files.keypoints2d), f"has {k2d.shape[1]} frames but the 3D keypoints have {raw.shape[0]}")
            v = AIST_VIEWS.index(files.view)
            xy, score = k2d[v, :, :, :2], k2d[v, :, :, 2]
            valid2d = np.isfinite(xy).all(axis=-1) & np.isfinite(score)
            score = np.where(valid2d, np.clip(score, 0.0, 1.0), 0.0)
            if det is not None:
                score = np.where(det[v][:, None] < 0, 0.0, score)
            joints2d = np.where(valid2d[..., None], xy, 0.0)
            confidence = confidence * score

    step = downsample_step(FPS, fps, source)
    sel = frame_slice(joints3d.shape[0], frames, step, source)
    return Observations(fps=FPS / step, joint_set="coco17", joints3d=joints3d[sel],
                        joints2d=None if joints2d is None else joints2d[sel],
                        confidence=confidence[sel], camera=camera, source=source)
