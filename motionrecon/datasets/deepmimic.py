"""DeepMimic motion clips (pybullet's humanoid3d_*.txt, shipped in data/deepmimic/) as `Observations`.

File format (JSON): {"Loop": "wrap" | "none", "Frames": [[44 numbers], ...]}.
Each frame is

    [duration, root position (3), root quaternion (4),
     chest (4), neck (4), right hip (4), right knee (1), right ankle (4),
     right shoulder (4), right elbow (1), left hip (4), left knee (1),
     left ankle (4), left shoulder (4), left elbow (1)]

with quaternions w first, joint rotations relative to the parent link, knees
and elbows as hinge angles in radians, positions in metres, world y-up.
`duration` is the time to the next frame (0 on the last frame in the shipped
clips).

The clips and the humanoid they were retargeted to (`humanoid.urdf`) are
pybullet's (`pybullet_data`), shipped in `data/deepmimic/` (pybullet has no
wheel for macOS, Windows or Python 3.12: see data/deepmimic/README.md). Joint
positions come from forward kinematics of that URDF scaled by 0.25, as
DeepMimic loads it (`forward_kinematics`, here in NumPy; the tests hold it to
pybullet's own to a micrometre where pybullet is installed). The file's root
position is the position of the URDF's base link (whose frame and centre of
mass coincide), which is the pelvis: pybullet's DeepMimic port
(`pybullet_envs/deep_mimic/env/humanoid_stable_pd.py`) passes it unchanged to
`resetBasePositionAndOrientation`, with no offset or scale.

Output: joint set "deepmimic", positions in metres in the world frame z-up,
(x, y, z)_yup -> (x, −z, y)_zup (a rotation of +90° about x; the character
keeps facing +x). The clips' ground is their own: nothing is shifted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from motionrecon.datasets.common import frame_count, start_frame, time_window
from motionrecon.errors import InputError
from motionrecon.observations import Observations
from motionrecon.resources import resource_path
from motionrecon.skeleton import DEEPMIMIC

CLIPS: tuple[str, ...] = (
    "walk", "run", "jump", "dance_a", "dance_b", "cartwheel", "crawl", "roll",
    "spin", "spinkick", "backflip", "kick", "punch", "getup_facedown", "getup_faceup",
)

FRAME_SIZE = 44
URDF_SCALE = 0.25  # DeepMimic loads the humanoid with globalScaling=0.25.

# Where each joint's rotation sits in a frame: (first index, number of values).
# Spherical joints hold a quaternion (w, x, y, z); hinges one angle.
FRAME_JOINTS: tuple[tuple[str, int, int], ...] = (
    ("chest", 8, 4), ("neck", 12, 4),
    ("right_hip", 16, 4), ("right_knee", 20, 1), ("right_ankle", 21, 4),
    ("right_shoulder", 25, 4), ("right_elbow", 29, 1),
    ("left_hip", 30, 4), ("left_knee", 34, 1), ("left_ankle", 35, 4),
    ("left_shoulder", 39, 4), ("left_elbow", 43, 1),
)
ROOT_POS = slice(1, 4)
ROOT_QUAT = slice(4, 8)

# End points in link-local coordinates of the unscaled URDF (multiply by URDF_SCALE):
# the head is the centre of the neck link's sphere (origin (0, 0.7, 0)); the toe
# is the front-bottom-centre of the ankle link's box (centre (0.18, −0.09, 0),
# size (0.708, 0.22, 0.36)), i.e. (0.18 + 0.708/2, −0.09 − 0.22/2, 0).
HEAD_IN_NECK = (0.0, 0.7, 0.0)
TOE_IN_ANKLE = (0.18 + 0.354, -0.09 - 0.11, 0.0)

# Output joint -> (URDF link whose frame it is on, local offset or None).
_JOINT_SOURCES: dict[str, tuple[str, tuple[float, float, float] | None]] = {
    "pelvis": ("root", None),
    "chest": ("chest", None),
    "neck": ("neck", None),
    "head": ("neck", HEAD_IN_NECK),
    "right_hip": ("right_hip", None),
    "right_knee": ("right_knee", None),
    "right_ankle": ("right_ankle", None),
    "right_toe": ("right_ankle", TOE_IN_ANKLE),
    "right_shoulder": ("right_shoulder", None),
    "right_elbow": ("right_elbow", None),
    "right_wrist": ("right_wrist", None),
    "left_hip": ("left_hip", None),
    "left_knee": ("left_knee", None),
    "left_ankle": ("left_ankle", None),
    "left_toe": ("left_ankle", TOE_IN_ANKLE),
    "left_shoulder": ("left_shoulder", None),
    "left_elbow": ("left_elbow", None),
    "left_wrist": ("left_wrist", None),
}

# y-up -> z-up: (x, y, z) -> (x, -z, y), a proper rotation (det +1).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class DeepMimicClip:
    """A parsed, validated clip.

    Attributes:
      path: the file.
      loop: "wrap" (a cycle that may be repeated) or "none".
      frame_duration: seconds between frames (the first frame's duration, as
        DeepMimic's pybullet port uses for every frame).
      frames: [N, 44] raw frame values (y-up), N >= 2.
    """

    path: Path
    loop: str
    frame_duration: float
    frames: np.ndarray

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_duration

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]


def clip_path(name: str) -> Path:
    """Path of a shipped DeepMimic clip (data/deepmimic/humanoid3d_<name>.txt), e.g. clip_path("walk")."""
    if name not in CLIPS:
        raise InputError(name, f"unknown DeepMimic clip; known clips: {', '.join(CLIPS)}")
    return resource_path("data", f"deepmimic/humanoid3d_{name}.txt")


def urdf_path() -> Path:
    """data/deepmimic/humanoid.urdf: pybullet's humanoid, the body the clips were retargeted to."""
    return resource_path("data", "deepmimic/humanoid.urdf")


def read_clip(path: str | os.PathLike) -> DeepMimicClip:
    """Parses and validates a DeepMimic motion file; InputError naming it on any problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, f"not a DeepMimic motion file: invalid JSON ({e})") from None
    if not isinstance(data, dict) or "Frames" not in data:
        raise InputError(path, 'not a DeepMimic motion file: no "Frames" entry')
    loop = data.get("Loop", "none")
    if loop not in ("wrap", "none"):
        raise InputError(path, f'"Loop" must be "wrap" or "none", got {loop!r}')
    rows = data["Frames"]
    if not isinstance(rows, list) or not rows:
        raise InputError(path, '"Frames" holds no frames')
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != FRAME_SIZE:
            n = len(row) if isinstance(row, list) else type(row).__name__
            raise InputError(path, f"frame {i} has {n} values, expected {FRAME_SIZE}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            raise InputError(path, f"frame {i} holds values that are not numbers")
    if len(rows) < 2:
        raise InputError(path, "the clip has a single frame; at least 2 are needed")
    frames = np.asarray(rows, dtype=np.float64)
    bad = np.flatnonzero(~np.all(np.isfinite(frames), axis=1))
    if bad.size:
        raise InputError(path, f"frame {bad[0]} contains NaN or infinite values")
    durations = frames[:, 0]
    # The last frame's duration (time to a next frame) is unused and 0 in the shipped clips.
    bad = np.flatnonzero(durations[:-1] <= 0)
    if bad.size or durations[-1] < 0:
        i = bad[0] if bad.size else len(durations) - 1
        raise InputError(path, f"frame {i} has a non-positive duration {durations[i]}")
    for name, first, size in (("root", 4, 4),) + FRAME_JOINTS:
        if size == 4:
            norms = np.linalg.norm(frames[:, first:first + 4], axis=1)
            bad = np.flatnonzero(norms < 1e-6)
            if bad.size:
                raise InputError(path, f"frame {bad[0]}: the {name} quaternion has zero length")
    frame_duration = float(durations[0])
    if np.any(np.abs(durations[:-1] - frame_duration) > 1e-3 * frame_duration):
        warnings.warn(
            f"{path}: frame durations vary from {durations[:-1].min():g} to {durations[:-1].max():g} s;"
            f" frames are taken as evenly spaced at {frame_duration:g} s, as DeepMimic's pybullet port does",
            stacklevel=2)
    return DeepMimicClip(path, loop, frame_duration, frames)


@dataclasses.dataclass(frozen=True)
class UrdfJoint:
    """One joint of the URDF: `child`'s frame is `parent`'s moved by `origin` (metres at scale 1) and turned by
    `origin_rotation` [3, 3], then by the joint's own rotation ("spherical": a quaternion, "revolute": an angle
    about `axis`, "fixed": none)."""

    name: str
    kind: str
    parent: str
    child: str
    origin: np.ndarray
    origin_rotation: np.ndarray
    axis: np.ndarray


def _floats(text: str | None, default: str, what: str, source: Path) -> np.ndarray:
    values = np.array([float(v) for v in (text if text is not None else default).split()])
    if values.shape != (3,):
        raise InputError(source, f"{what} must hold 3 numbers, got {text!r}")
    return values


@functools.lru_cache(maxsize=4)
def urdf_joints(path: Path) -> tuple[UrdfJoint, ...]:
    """The joints of a URDF file, parents before children (the file's order where it has one)."""
    try:
        root = ElementTree.fromstring(path.read_bytes().rstrip(b"\0"))  # pybullet's file ends in a NUL byte
    except (OSError, ElementTree.ParseError) as e:
        raise InputError(path, f"cannot read the URDF ({e})") from None
    joints = []
    for j in root.iter("joint"):
        origin = j.find("origin")
        axis = j.find("axis")
        rpy = _floats(origin.get("rpy") if origin is not None else None, "0 0 0", "origin rpy", path)
        joints.append(UrdfJoint(
            name=j.get("name"), kind=j.get("type"), parent=j.find("parent").get("link"),
            child=j.find("child").get("link"),
            origin=_floats(origin.get("xyz") if origin is not None else None, "0 0 0", "origin xyz", path),
            origin_rotation=Rotation.from_euler("xyz", rpy).as_matrix(),  # URDF: fixed-axis roll, pitch, yaw
            axis=_floats(axis.get("xyz") if axis is not None else None, "1 0 0", "axis", path)))
    ordered, known = [], {root.find("link").get("name")}
    while len(ordered) < len(joints):
        ready = [j for j in joints if j.parent in known and j.child not in known]
        if not ready:
            raise InputError(path, "the URDF's joints do not form one tree from its first link")
        ordered += ready
        known |= {j.child for j in ready}
    return tuple(ordered)


def forward_kinematics(frames: np.ndarray) -> np.ndarray:
    """Positions of the DeepMimic joint set for raw frames.

    Every link's frame follows from its parent's, R_child = R_parent R_origin R_joint and
    p_child = p_parent + R_parent (s · origin), s = URDF_SCALE, from the root's position and quaternion; a
    spherical joint turns by its frame quaternion, a knee or an elbow by its angle about the joint axis. Points
    off a link's origin (head, toes) are p + R (s · offset).

    Args:
      frames: [N, 44] frame values (y-up, quaternions w first).
    Returns:
      [N, 18, 3] positions in metres in the file's y-up world frame, in the
      order of `motionrecon.skeleton.DEEPMIMIC`.
    """
    frames = np.asarray(frames, dtype=np.float64)
    joints = urdf_joints(urdf_path())
    first = {name: index for name, index, _ in FRAME_JOINTS}  # a joint's first value in a frame
    base = joints[0].parent
    pose = {base: (Rotation.from_quat(frames[:, ROOT_QUAT], scalar_first=True).as_matrix(), frames[:, ROOT_POS])}
    for joint in joints:
        rot, pos = pose[joint.parent]
        child_rot = rot @ joint.origin_rotation
        if joint.kind == "spherical":
            a = first[joint.name]
            child_rot = child_rot @ Rotation.from_quat(frames[:, a:a + 4], scalar_first=True).as_matrix()
        elif joint.kind == "revolute":
            child_rot = child_rot @ Rotation.from_rotvec(frames[:, first[joint.name], None] * joint.axis).as_matrix()
        pose[joint.child] = (child_rot, pos + rot @ (URDF_SCALE * joint.origin))
    out = np.empty((frames.shape[0], DEEPMIMIC.num_joints, 3))
    for k, (link, offset) in enumerate(_JOINT_SOURCES.values()):
        rot, pos = pose[link]
        out[:, k] = pos if offset is None else pos + rot @ (URDF_SCALE * np.asarray(offset))
    return out


def y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """[..., 3] y-up positions -> z-up: (x, y, z) -> (x, −z, y)."""
    return points @ Y_UP_TO_Z_UP.T


def root_heading(frames: np.ndarray) -> np.ndarray:
    """[N] heading of the root in the z-up world: the angle about +z of the
    root's x axis (the facing direction) projected on the ground, radians."""
    rot = Rotation.from_quat(frames[:, ROOT_QUAT], scalar_first=True).as_matrix()  # y-up world
    forward = y_up_to_z_up(rot[:, :, 0])
    return np.arctan2(forward[:, 1], forward[:, 0])


def cycle_transform(clip: DeepMimicClip) -> tuple[np.ndarray, np.ndarray]:
    """The rigid motion that carries one cycle of a looping clip onto the next.

    It turns about the vertical by the root's heading change over the cycle
    (last frame minus first) and moves the root's ground projection from the
    first frame's to the last frame's (horizontal displacement only):

        T(p) = R_z(Δheading) (p − c_first) + c_last,   c = (root x, root y, 0)

    DeepMimic itself (C++ `cKinCharacter::CalcCycleRootDelta` and the pybullet
    port's `computeCycleOffset`) adds only the root position difference, all
    three components, and keeps the heading; here the vertical part is dropped
    (it is ~0 in the shipped clips) and the heading change is carried too, so
    that a clip which turns keeps turning instead of snapping back at the seam.

    Returns:
      (R [3, 3], t [3]) with T(p) = R p + t, z-up metres.
    """
    ends = clip.frames[[0, -1]]
    heading = root_heading(ends)
    delta = heading[1] - heading[0]
    c, s = math.cos(delta), math.sin(delta)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    root = y_up_to_z_up(ends[:, ROOT_POS])
    root[:, 2] = 0.0
    return rot, root[1] - rot @ root[0]


def clip_joints(clip: DeepMimicClip) -> np.ndarray:
    """[N, 18, 3] z-up joint positions of the clip's own frames, metres."""
    return y_up_to_z_up(forward_kinematics(clip.frames))


def _frame_sequence(clip: DeepMimicClip, first: int, count: int) -> np.ndarray:
    """[count, 18, 3] z-up positions of frames first … first + count − 1.

    Frames 0 … N − 1 are the file's. Past them (a "wrap" clip only) the clip
    repeats as a cycle of P = N − 1 frames (its last frame is the first of the
    next cycle): frame k is file frame k mod P carried by the cycle transform
    ⌊k / P⌋ times."""
    joints = clip_joints(clip)
    period = clip.num_frames - 1
    rot, trans = cycle_transform(clip)
    out = np.empty((count,) + joints.shape[1:])
    k = np.arange(first, first + count)
    cycles, index = np.divmod(k, period)
    in_file = k < clip.num_frames
    cycles[in_file], index[in_file] = 0, k[in_file]
    r_c, t_c = np.eye(3), np.zeros(3)
    for c in range(int(cycles.max()) + 1):
        sel = cycles == c
        out[sel] = joints[index[sel]] @ r_c.T + t_c
        r_c, t_c = rot @ r_c, rot @ t_c + trans  # T^(c+1) = T ∘ T^c
    return out


def load_deepmimic(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None) -> Observations:
    """Reads a DeepMimic clip as 3D observations of the "deepmimic" joint set.

    Frames keep the file's timing (no resampling): frame i is at time i / fps
    with fps = 1 / (the first frame's duration).

    Args:
      path: a humanoid3d_*.txt file (see `clip_path`).
      start: seconds; the first frame returned is the first at or after it.
      duration: seconds; round(duration · fps) frames are returned. None:
        every frame from `start` to the file's last. A "wrap" clip is repeated
        as a cycle (see `cycle_transform`) for as long as asked; a "none" clip
        stops at its last frame, with a warning naming the duration kept.
    Returns:
      Observations with joints3d [T, 18, 3] in metres, world z-up, confidence
      all ones, fps, source = the path.
    """
    clip = read_clip(path)
    if clip.loop == "none" or duration is None:
        window = time_window(clip.num_frames, clip.fps, start, duration, str(path))
        first, count = window.start, window.stop - window.start
    else:  # a cycle, repeated for as long as asked
        first, count = start_frame(start, clip.fps, str(path)), frame_count(duration, clip.fps, str(path))
    joints = _frame_sequence(clip, first, count)
    return Observations(
        fps=clip.fps,
        joint_set=DEEPMIMIC.name,
        joints3d=joints,
        joints2d=None,
        confidence=np.ones(joints.shape[:2]),
        source=str(path),
    )
