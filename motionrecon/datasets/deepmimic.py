"""DeepMimic motion clips (pybullet_data/data/motions/humanoid3d_*.txt) as `Observations`.

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

Joint positions come from forward kinematics of pybullet's
`humanoid/humanoid.urdf` loaded with globalScaling = 0.25, as DeepMimic loads
it, computed by pybullet itself (the maintained implementation). The file's
root position is the position of the URDF's base link (whose frame and
centre of mass coincide), which is the pelvis: pybullet's DeepMimic port
(`pybullet_envs/deep_mimic/env/humanoid_stable_pd.py`) passes it unchanged to
`resetBasePositionAndOrientation`, with no offset or scale.

Output: joint set "deepmimic", positions in metres in the world frame z-up,
(x, y, z)_yup -> (x, −z, y)_zup (a rotation of +90° about x; the character
keeps facing +x). The clips' ground is their own: nothing is shifted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from motionrecon.datasets.common import frame_count, start_frame, time_window
from motionrecon.errors import InputError
from motionrecon.observations import Observations
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
    """Path of a pybullet_data DeepMimic clip, e.g. clip_path("walk")."""
    if name not in CLIPS:
        raise InputError(name, f"unknown DeepMimic clip; known clips: {', '.join(CLIPS)}")
    import pybullet_data  # a pure-Python package that only knows its own path

    path = Path(pybullet_data.getDataPath()) / "data" / "motions" / f"humanoid3d_{name}.txt"
    if not path.is_file():
        raise InputError(path, "DeepMimic clip is missing from the installed pybullet_data")
    return path


def urdf_path() -> Path:
    """pybullet_data's humanoid/humanoid.urdf, the body the clips were retargeted to."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"


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


@contextlib.contextmanager
def _quiet_native_output():
    """Silences stdout/stderr at the file-descriptor level (pybullet's C++ prints there)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def _wxyz_to_xyzw(q: np.ndarray) -> list[float]:
    q = q / np.linalg.norm(q)
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def forward_kinematics(frames: np.ndarray) -> np.ndarray:
    """Positions of the DeepMimic joint set for raw frames, with pybullet.

    Args:
      frames: [N, 44] frame values (y-up, quaternions w first).
    Returns:
      [N, 18, 3] positions in metres in the file's y-up world frame, in the
      order of `motionrecon.skeleton.DEEPMIMIC`.
    """
    with _quiet_native_output():
        import pybullet as pb

        client = pb.connect(pb.DIRECT)
        try:
            body = pb.loadURDF(str(urdf_path()), globalScaling=URDF_SCALE, useFixedBase=True,
                               flags=pb.URDF_MAINTAIN_LINK_ORDER, physicsClientId=client)
        except Exception:
            pb.disconnect(client)
            raise
    try:
        link_index = {}
        for j in range(pb.getNumJoints(body, physicsClientId=client)):
            info = pb.getJointInfo(body, j, physicsClientId=client)
            link_index[info[12].decode()] = j  # child link name -> link index
        joint_indices = [link_index[name] for name, _, _ in FRAME_JOINTS]
        links = [link_index[link] for link, _ in _JOINT_SOURCES.values() if link != "root"]
        links = sorted(set(links))
        out = np.empty((frames.shape[0], DEEPMIMIC.num_joints, 3))
        for t, frame in enumerate(frames):
            pb.resetBasePositionAndOrientation(body, frame[ROOT_POS].tolist(), _wxyz_to_xyzw(frame[ROOT_QUAT]),
                                               physicsClientId=client)
            targets = [_wxyz_to_xyzw(frame[a:a + 4]) if n == 4 else [float(frame[a])] for _, a, n in FRAME_JOINTS]
            pb.resetJointStatesMultiDof(body, joint_indices, targets, physicsClientId=client)
            states = pb.getLinkStates(body, links, computeForwardKinematics=True, physicsClientId=client)
            frame_of = {li: (np.asarray(s[4]), np.asarray(s[5])) for li, s in zip(links, states)}
            base_pos, base_orn = pb.getBasePositionAndOrientation(body, physicsClientId=client)
            frame_of[-1] = (np.asarray(base_pos), np.asarray(base_orn))
            for k, (link, offset) in enumerate(_JOINT_SOURCES.values()):
                pos, orn = frame_of[-1 if link == "root" else link_index[link]]
                if offset is not None:
                    pos = pos + Rotation.from_quat(orn).apply(URDF_SCALE * np.asarray(offset))
                out[t, k] = pos
        return out
    finally:
        pb.disconnect(client)


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
