"""Human3.6M reader: the original CDF release and the widely used preprocessed npz files.

Layouts (see docs/datasets.md):
- original: `S*/MyPoseFeatures/D3_Positions/<Action>.cdf` (variable "Pose",
  (1, N, 96): 32 joints x xyz, millimetres, world frame z-up),
  `S*/MyPoseFeatures/D2_Positions/<Action>.<camera>.cdf` ((1, N, 64): 32 joints
  x uv pixels), `S*/Videos/<Action>.<camera>.mp4`. Action names carry the take
  after a space ("Posing 1"); some subjects say "TakingPhoto"/"WalkingDog"
  where others say "Photo"/"WalkDog"; S11's takes of some actions are "2" and
  "3" ("Phoning 2", "Phoning 3") or "" and "2" ("Smoking", "Smoking 2").
  A split's action resolves to a take by spelling, else by take order
  (`resolve_take`).
- preprocessed (VideoPose3D): `data_3d_h36m.npz` with `positions_3d`
  [subject][action] -> (N, 32, 3) metres, world frame, and
  `data_2d_h36m_<name>.npz` with `positions_2d`[subject][action] -> list of 4
  (N, J, 2) pixel arrays in camera order 54138969, 55011271, 58860488, 60457274
  (J = 17 or 32), maybe `metadata`. Actions are renamed "Photo", "WalkDog" and
  S11 "Directions" is dropped (its video is damaged).

Output: `Observations` in the "h36m17" joint set (the field's 32 -> 17 reduction),
metres, world z-up. The Human3.6M world's floor is z = 0 (checked on real frames:
ankle joints 4-11 cm above it), so no shift is applied. Mocap runs at 50 fps.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

import numpy as np

from motionrecon.datasets.cameras import H36M_CAMERA_IDS, h36m_camera
from motionrecon.datasets.common import check_thigh_length, downsample_step, frame_slice
from motionrecon.errors import InputError
from motionrecon.observations import Observations

FPS = 50.0
SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")

# Indices of the 17 joints (skeleton.H36M17 order) in the 32-joint Human3.6M skeleton:
# hips, R up-leg, R leg, R foot, L up-leg, L leg, L foot, spine1, neck, head,
# head end site, L arm, L fore-arm, L hand, R arm, R fore-arm, R hand.
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# (hip, knee) pairs in the 17-joint order, for the unit check.
THIGHS_17 = [(1, 2), (4, 5)]

# Spellings of the same action across subjects and preprocessing scripts.
ACTION_ALIASES: tuple[tuple[str, ...], ...] = (
    ("TakingPhoto", "Photo"),
    ("WalkDog", "WalkingDog"),
    ("WalkTogether", "WalkingTogether"),
)

# Known holes in the distribution: (subject, action) -> why.
DAMAGED = {
    ("S11", "Directions"): "the video S11/Videos/Directions.54138969.mp4 is damaged in the Human3.6M "
                           "distribution, and preprocessed files (VideoPose3D) drop S11 Directions altogether",
}

PREPROCESSED_3D = "data_3d_h36m.npz"
NOT_H36M = "not a Human3.6M folder: expected S*/MyPoseFeatures or data_3d_h36m.npz"


# --------------------------------------------------------------------------- names

def split_action(action: str) -> tuple[str, str | None]:
    """"Posing_1" / "Posing 1" -> ("Posing", "1"); "WalkDog" -> ("WalkDog", None)."""
    m = re.fullmatch(r"(.*?)(?:[ _.](\d+))?", action.strip())
    return m.group(1), m.group(2)


def _base_aliases(base: str) -> list[str]:
    for group in ACTION_ALIASES:
        if base in group:
            return [base] + [g for g in group if g != base]
    return [base]


def canonical_action(action: str) -> str:
    """Spelling-independent key of an action and take: "WalkingDog 1" -> "WalkDog 1"."""
    base, take = split_action(action)
    group = next((g for g in ACTION_ALIASES if base in g), (base,))
    return group[0] if take is None else f"{group[0]} {take}"


def action_candidates(action: str) -> list[str]:
    """File-name spellings to try for an action, the given spelling first.

    A take number is kept (never dropped or invented): "Posing_1" -> "Posing_1",
    "Posing 1"; "TakingPhoto_1" -> ..., "Photo 1", "Photo_1"; "Walking" -> "Walking".
    """
    base, take = split_action(action)
    names = [action]
    for b in _base_aliases(base):
        for name in ([b] if take is None else [f"{b} {take}", f"{b}_{take}"]):
            if name not in names:
                names.append(name)
    return names


def takes_in_order(action: str, names) -> list[str]:
    """The names among `names` that are takes of `action`'s action (any spelling), in take order.

    Take order: the take without a number first, then by take number ("Smoking", "Smoking 2";
    "Phoning 2", "Phoning 3"); names that tie (the same take spelled twice) by name.
    """
    takes = [n for n in names if _same_action(n, action)]

    def order(name: str) -> tuple[int, str]:
        take = split_action(name)[1]
        return (0 if take is None else int(take), name)

    return sorted(takes, key=order)


def resolve_take(action: str, names, *, by_order: bool = True) -> tuple[str, str] | None:
    """The data set's take (one of `names`) for an action as a split names it, and how it was found.

    1. "spelling": the first of `action_candidates(action)` that `names` holds ("Posing_1" -> "Posing 1").
    2. "take order", when no take has such a spelling (and `by_order`; `resolve_h36m` leaves it out for
       the known holes, `DAMAGED`): "X" and "X_1" are the first take of X in
       `takes_in_order`, "X_2" the second, and so on, whatever the suffix spelling (Human3.6M's S11 has
       "Phoning 2" and "Phoning 3" but no "Phoning": "Phoning" -> "Phoning 2"; "Smoking" and
       "Smoking 2": "Smoking_1" -> "Smoking").
    None when neither finds a take (or the spelling does not and `by_order` is False).
    """
    names = list(names)
    exact = next((n for n in action_candidates(action) if n in names), None)
    if exact is not None:
        return exact, "spelling"
    if not by_order:
        return None
    takes = takes_in_order(action, names)
    number = split_action(action)[1]
    k = 1 if number is None else int(number)
    return (takes[k - 1], "take order") if 1 <= k <= len(takes) else None


def camera_id(camera: str | int) -> str:
    """A Human3.6M camera id from an id ("60457274") or an index 0-3 in the usual order."""
    cam = str(camera)
    if cam in ("0", "1", "2", "3"):
        return H36M_CAMERA_IDS[int(cam)]
    if cam not in H36M_CAMERA_IDS:
        raise InputError(cam, f"not a Human3.6M camera; expected one of {', '.join(H36M_CAMERA_IDS)} or an index 0-3")
    return cam


# --------------------------------------------------------------------------- layout and files

def h36m_layout(root: str | Path) -> str:
    """"original" (S*/MyPoseFeatures) or "preprocessed" (data_3d_h36m.npz); InputError otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "folder not found")
    if any(p.is_dir() for p in root.glob("S*/MyPoseFeatures")):
        return "original"
    if (root / PREPROCESSED_3D).is_file():
        return "preprocessed"
    raise InputError(str(root), NOT_H36M)


@dataclasses.dataclass(frozen=True)
class H36MFiles:
    """Where one (subject, action[, camera]) lives on disk.

    Attributes:
      layout: "original" or "preprocessed".
      action: the action's spelling in this data set (file stem or npz key).
      poses3d: the D3_Positions CDF or data_3d_h36m.npz.
      poses2d: the D2_Positions CDF or data_2d_h36m_<name>.npz, None if absent or no camera.
      video: the video file, None if absent or no camera.
      requested: the action as the split (or caller) named it.
      take_rule: how `action` was found from `requested`: "spelling" or "take order" (`resolve_take`).
    """

    layout: str
    subject: str
    action: str
    camera: str | None
    poses3d: Path
    poses2d: Path | None
    video: Path | None
    requested: str = ""
    take_rule: str = "spelling"

    def mapping(self) -> str:
        """E.g. "S11 Phoning -> Phoning 2 (take order)"; "S9 Posing_1 -> Posing 1 (spelling)"."""
        return f"{self.subject} {self.requested} -> {self.action} ({self.take_rule})"


def _missing(subject: str, action: str, where: str, tried: list[str], present: list[str]) -> str:
    msg = f"no {where} for {subject} {action}: tried {', '.join(repr(t) for t in tried)}"
    number = split_action(action)[1]
    msg += f"; takes of this action present (take order): {', '.join(repr(p) for p in present)}, none is " \
           f"take {1 if number is None else int(number)}" if present else "; no take of this action is present"
    why = DAMAGED.get((subject, canonical_action(action)))
    return msg if why is None else f"{msg} (known problem: {why})"


def _by_order(subject: str, action: str) -> bool:
    """Whether a missing spelling may fall back to take order: not for a known hole (`DAMAGED`), whose
    other take is a different recording."""
    return (subject, canonical_action(action)) not in DAMAGED


def _same_action(name: str, action: str) -> bool:
    return split_action(canonical_action(name))[0] == split_action(canonical_action(action))[0]


def resolve_h36m(root: str | Path, subject: str, action: str, camera: str | int | None = None,
                 *, keypoints2d: str = "gt") -> H36MFiles:
    """Finds the files of one sequence, trying the known spellings; InputError naming what was tried."""
    root = Path(root)
    layout = h36m_layout(root)
    cam = None if camera is None else camera_id(camera)
    if layout == "original":
        d3_dir = root / subject / "MyPoseFeatures" / "D3_Positions"
        if not d3_dir.is_dir():
            raise InputError(str(d3_dir), f"folder not found (is {subject} part of this copy of Human3.6M?)")
        tried = [f"{name}.cdf" for name in action_candidates(action)]
        stems = sorted(p.stem for p in d3_dir.glob("*.cdf"))
        found = resolve_take(action, stems, by_order=_by_order(subject, action))
        if found is None:
            present = [f"{n}.cdf" for n in takes_in_order(action, stems)]
            raise InputError(str(d3_dir), _missing(subject, action, "3D poses", tried, present))
        name, rule = found
        poses2d = video = None
        if cam is not None:
            names = [name] + [n for n in action_candidates(action) if n != name]
            d2_dir = root / subject / "MyPoseFeatures" / "D2_Positions"
            poses2d = next((d2_dir / f"{n}.{cam}.cdf" for n in names if (d2_dir / f"{n}.{cam}.cdf").is_file()), None)
            vid_dir = root / subject / "Videos"
            video = next((vid_dir / f"{n}.{cam}.mp4" for n in names if (vid_dir / f"{n}.{cam}.mp4").is_file()), None)
        return H36MFiles(layout, subject, name, cam, d3_dir / f"{name}.cdf", poses2d, video, action, rule)

    npz3d = root / PREPROCESSED_3D
    data = _preprocessed(str(npz3d), "positions_3d")
    if subject not in data:
        raise InputError(str(npz3d), f"no subject {subject}; subjects present: {', '.join(sorted(data))}")
    found = resolve_take(action, sorted(data[subject]), by_order=_by_order(subject, action))
    if found is None:
        present = takes_in_order(action, data[subject])
        raise InputError(str(npz3d), _missing(subject, action, "3D poses", action_candidates(action), present))
    name, rule = found
    poses2d = video = None
    if cam is not None:
        npz2d = root / f"data_2d_h36m_{keypoints2d}.npz"
        poses2d = npz2d if npz2d.is_file() else None
        if poses2d is None and keypoints2d != "gt":
            raise InputError(str(npz2d), "2D keypoint file not found")
        vid_dir = root / subject / "Videos"
        video = next((vid_dir / f"{n}.{cam}.mp4" for n in [name] + action_candidates(action)
                      if (vid_dir / f"{n}.{cam}.mp4").is_file()), None)
    return H36MFiles(layout, subject, name, cam, npz3d, poses2d, video, action, rule)


def h36m_video(root: str | Path, subject: str, action: str, camera: str | int) -> Path:
    """Path of `S*/Videos/<Action>.<camera>.mp4`, the take resolved as for the poses (`resolve_take`) among
    the videos of that camera; InputError when absent."""
    root = Path(root)
    cam = camera_id(camera)
    vid_dir = root / subject / "Videos"
    tried = [f"{n}.{cam}.mp4" for n in action_candidates(action)]
    suffix = f".{cam}.mp4"
    stems = sorted(p.name[: -len(suffix)] for p in vid_dir.glob(f"*{suffix}")) if vid_dir.is_dir() else []
    found = resolve_take(action, stems, by_order=_by_order(subject, action))
    if found is not None:
        return vid_dir / f"{found[0]}{suffix}"
    present = [f"{n}{suffix}" for n in takes_in_order(action, stems)]
    raise InputError(str(vid_dir), _missing(subject, action, "video", tried, present))


# --------------------------------------------------------------------------- file readers

def read_cdf_pose(path: str | Path, dims: int) -> np.ndarray:
    """The "Pose" variable of a Human3.6M CDF as [N, 32, dims] (dims 3: mm, dims 2: pixels)."""
    import cdflib  # imported here: only the original layout needs it

    path = Path(path)
    try:
        pose = np.asarray(cdflib.CDF(str(path)).varget("Pose"), np.float64)
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except Exception as e:  # cdflib raises OSError/ValueError/KeyError/... on damaged files
        raise InputError(str(path), f"cannot read the CDF variable 'Pose' ({type(e).__name__}: {e})") from None
    width = 32 * dims
    if pose.ndim == 0 or pose.shape[-1] != width or pose.size % width:
        raise InputError(str(path), f"'Pose' has shape {pose.shape}, expected (1, N, {width})")
    return pose.reshape(-1, 32, dims)


def _load_npz_dict(path: str, key: str) -> dict:
    try:
        with np.load(path, allow_pickle=True) as z:
            if key not in z.files:
                raise InputError(path, f"has no '{key}' (keys: {', '.join(z.files)})")
            value = z[key]
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except Exception as e:
        raise InputError(path, f"cannot read the npz ({type(e).__name__}: {e})") from None
    if value.dtype != object or value.shape != ():
        raise InputError(path, f"'{key}' is not a pickled dict (dtype {value.dtype}, shape {value.shape})")
    data = value.item()
    if not isinstance(data, dict):
        raise InputError(path, f"'{key}' holds a {type(data).__name__}, expected a dict")
    return data


@functools.lru_cache(maxsize=3)
def _preprocessed_cached(path: str, key: str, mtime_ns: int, size: int) -> dict:
    return _load_npz_dict(path, key)


def _preprocessed(path: str, key: str) -> dict:
    """The dict stored under `key` of a preprocessed npz (cached per file version: the 3D file is large)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    return _preprocessed_cached(path, key, st.st_mtime_ns, st.st_size)


def _to_17(joints: np.ndarray, source: str) -> np.ndarray:
    """[N, 32 or 17, D] -> [N, 17, D]."""
    if joints.ndim != 3 or joints.shape[1] not in (17, 32):
        raise InputError(source, f"joints have shape {joints.shape}, expected (N, 32 or 17, D)")
    return joints[:, list(H36M32_TO_17)] if joints.shape[1] == 32 else joints


# --------------------------------------------------------------------------- the reader

def load_h36m(root: str | Path, subject: str, action: str, camera: str | int | None = None, *,
              frames: tuple[int, int] | None = None, fps: float | None = None,
              keypoints2d: str = "gt") -> Observations:
    """One Human3.6M sequence as Observations ("h36m17", metres, world z-up, ground z = 0).

    Args:
      root: the data set folder (original or preprocessed layout).
      subject, action: e.g. "S9", "Posing_1" (the data set's take is resolved by `resolve_take`; the
        Observations' metadata says which: "take", "take_rule", "summary").
      camera: camera id or index 0-3; gives `camera` and, when the 2D file exists, `joints2d`.
      frames: native (50 fps) frame indices [start, stop); None for all.
      fps: output frame rate, a divisor of 50 (25 keeps every other frame); None for 50.
      keypoints2d: preprocessed layout only: which `data_2d_h36m_<name>.npz` gives the 2D
        ("gt" by default; when it is absent the observations carry no 2D).
    """
    files = resolve_h36m(root, subject, action, camera, keypoints2d=keypoints2d)
    source = str(files.poses3d)
    if files.layout == "original":
        joints3d = read_cdf_pose(files.poses3d, 3) / 1000.0  # mm -> m
        unit_note = "millimetres (original CDF)"
    else:
        source = f"{files.poses3d}[{subject}][{files.action}]"
        joints3d = np.asarray(_preprocessed(str(files.poses3d), "positions_3d")[subject][files.action], np.float64)
        unit_note = "metres (preprocessed npz)"
    joints3d = _to_17(joints3d, source)
    check_thigh_length(joints3d, THIGHS_17, source, unit_note)

    joints2d = cam = None
    if files.camera is not None:
        cam = h36m_camera(subject, files.camera)
        if files.poses2d is not None:
            joints2d, source2d = _read_2d(files)
            if joints2d.shape[0] < joints3d.shape[0]:
                raise InputError(source2d, f"has {joints2d.shape[0]} frames but the 3D poses have {joints3d.shape[0]}")
            joints2d = joints2d[: joints3d.shape[0]]  # detections may run a few frames longer

    step = downsample_step(FPS, fps, source)
    sel = frame_slice(joints3d.shape[0], frames, step, source)
    joints3d = joints3d[sel]
    if joints2d is not None:
        joints2d = joints2d[sel]
    return Observations(fps=FPS / step, joint_set="h36m17", joints3d=joints3d, joints2d=joints2d,
                        confidence=np.ones(joints3d.shape[:2]), camera=cam, source=source,
                        metadata={"take": files.action, "take_rule": files.take_rule, "summary": files.mapping()})


def _read_2d(files: H36MFiles) -> tuple[np.ndarray, str]:
    """[N, 17, 2] pixels of the files' camera, and a description of where they came from."""
    if files.layout == "original":
        return _to_17(read_cdf_pose(files.poses2d, 2), str(files.poses2d)), str(files.poses2d)
    data = _preprocessed(str(files.poses2d), "positions_2d")
    source = f"{files.poses2d}[{files.subject}][{files.action}]"
    views = data.get(files.subject, {}).get(files.action)
    if views is None:
        raise InputError(str(files.poses2d), f"has no 2D keypoints for {files.subject} {files.action}")
    if len(views) != 4:
        raise InputError(source, f"holds {len(views)} camera arrays, expected 4 (cameras {', '.join(H36M_CAMERA_IDS)})")
    view = views[H36M_CAMERA_IDS.index(files.camera)]
    if view is None:
        raise InputError(source, f"has no 2D keypoints for camera {files.camera}")
    view = np.asarray(view, np.float64)
    if view.ndim != 3 or view.shape[-1] < 2:
        raise InputError(source, f"camera {files.camera} array has shape {view.shape}, expected (N, J, 2)")
    return _to_17(view[..., :2], source), source
