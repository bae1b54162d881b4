"""Small BVH files for tests: a CMU-style skeleton (names, centimetres, y-up, facing +z) and variants.

`write_bvh` writes the hierarchy given as rows (name, parent, offset, end-site offset or None)
and a MOTION section (any channels per joint, "\n" or "\r\n" lines); `cmu_rows` builds the CMU-style
skeleton, optionally renamed (Mixamo prefix, Daz names), scaled to another unit or re-expressed
with z up; `x_rest_rig` re-expresses a standing pose the way Bandai Namco's files are built (a
static dummy root, six channels on every joint, a rest pose whose bones lie along x).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

ROT = ["Zrotation", "Xrotation", "Yrotation"]
ROOT_CHANNELS = ["Xposition", "Yposition", "Zposition"] + ROT

# The toe End Site's offset: 6 cm below the ankle in all (toe joint 5 cm + 1 cm), the lowest foot point.
TOE_END = (0.0, -1.0, 4.0)
# CMU-style rig, centimetres, y-up, the character facing +z with its left on +x.
# (name, parent, offset, end-site offset or None)
CMU_SKELETON = [
    ("Hips", None, (0.0, 95.0, 0.0), None),
    ("LeftUpLeg", "Hips", (9.0, -5.0, 0.0), None),
    ("LeftLeg", "LeftUpLeg", (0.0, -42.0, 1.0), None),
    ("LeftFoot", "LeftLeg", (0.0, -40.0, -1.0), None),
    ("LeftToeBase", "LeftFoot", (0.0, -5.0, 12.0), TOE_END),
    ("RightUpLeg", "Hips", (-9.0, -5.0, 0.0), None),
    ("RightLeg", "RightUpLeg", (0.0, -42.0, 1.0), None),
    ("RightFoot", "RightLeg", (0.0, -40.0, -1.0), None),
    ("RightToeBase", "RightFoot", (0.0, -5.0, 12.0), TOE_END),
    ("Spine", "Hips", (0.0, 10.0, 0.0), None),
    ("Spine1", "Spine", (0.0, 15.0, 0.0), None),
    ("Neck", "Spine1", (0.0, 25.0, 0.0), None),
    ("Head", "Neck", (0.0, 10.0, 2.0), (0.0, 17.0, 0.0)),
    ("LeftShoulder", "Spine1", (3.0, 22.0, 0.0), None),
    ("LeftArm", "LeftShoulder", (14.0, 0.0, 0.0), None),
    ("LeftForeArm", "LeftArm", (28.0, 0.0, 0.0), None),
    ("LeftHand", "LeftForeArm", (25.0, 0.0, 0.0), (8.0, 0.0, 0.0)),
    ("RightShoulder", "Spine1", (-3.0, 22.0, 0.0), None),
    ("RightArm", "RightShoulder", (-14.0, 0.0, 0.0), None),
    ("RightForeArm", "RightArm", (-28.0, 0.0, 0.0), None),
    ("RightHand", "RightForeArm", (-25.0, 0.0, 0.0), (-8.0, 0.0, 0.0)),
]

DAZ_NAMES = {"Hips": "hip", "LeftUpLeg": "lThigh", "LeftLeg": "lShin", "LeftFoot": "lFoot", "LeftToeBase": "lToe",
             "RightUpLeg": "rThigh", "RightLeg": "rShin", "RightFoot": "rFoot", "RightToeBase": "rToe",
             "Spine": "abdomen", "Spine1": "chest", "Neck": "neck", "Head": "head", "LeftShoulder": "lCollar",
             "LeftArm": "lShldr", "LeftForeArm": "lForeArm", "LeftHand": "lHand", "RightShoulder": "rCollar",
             "RightArm": "rShldr", "RightForeArm": "rForeArm", "RightHand": "rHand"}

# y-up (x, y, z) -> z-up (x, -z, y): the same skeleton written by a z-up exporter.
Y_TO_Z = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def cmu_rows(rename=None, z_up: bool = False, scale: float = 1.0, drop=()):
    rows = []
    for name, parent, offset, end in CMU_SKELETON:
        if name in drop:
            continue
        off = np.asarray(offset) * scale
        end_off = None if end is None else np.asarray(end) * scale
        if z_up:
            off = Y_TO_Z @ off
            end_off = None if end_off is None else Y_TO_Z @ end_off
        new = (lambda n: n) if rename is None else rename
        rows.append((new(name), None if parent is None else new(parent), off, end_off))
    return rows


def rest_world_m(rows, z_up: bool = False, unit_m: float = 0.01) -> dict[str, np.ndarray]:
    """Rest-pose positions in the project's world (metres, z-up), computed from the offsets alone."""
    pos = {}
    for name, parent, off, _ in rows:
        pos[name] = off if parent is None else pos[parent] + off
    A = np.eye(3) if z_up else Y_TO_Z
    return {k: unit_m * (A @ v) for k, v in pos.items()}


def joint_order(rows) -> list[str]:
    """Joint names in the depth-first order `write_bvh` writes them (children in row order)."""
    children: dict = {}
    for row in rows:
        children.setdefault(row[1], []).append(row[0])
    order = []

    def walk(name):
        order.append(name)
        for child in children.get(name, []):
            walk(child)

    for root in children[None]:
        walk(root)
    return order


def default_channels(rows) -> dict[str, list[str]]:
    """The root gets position and Z X Y rotation channels, every other joint Z X Y rotations."""
    return {name: ROOT_CHANNELS if parent is None else ROT for name, parent, _, _ in rows}


def write_bvh(path: Path, rows, frames: np.ndarray, frame_time: float, *, channels: dict | None = None,
              newline: str = "\n") -> Path:
    """rows: (name, parent, offset, end offset); channels: name -> channel names (default `default_channels`).

    frames: [T, C] MOTION values in channel order (`channel_index`).
    """
    channels = default_channels(rows) if channels is None else channels
    children: dict[str | None, list] = {}
    for row in rows:
        children.setdefault(row[1], []).append(row)
    lines = ["HIERARCHY"]

    def emit(row, depth):
        name, parent, off, end = row
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parent is None else 'JOINT'} {name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        lines.append(f"{pad}  CHANNELS {len(channels[name])} {' '.join(channels[name])}")
        for child in children.get(name, []):
            emit(child, depth + 1)
        if end is not None:
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    for root in children[None]:
        emit(root, 0)
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.6f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in frames]
    Path(path).write_bytes((newline.join(lines) + newline).encode())
    return Path(path)


def channel_index(rows, joint: str, channel: str, channels: dict | None = None) -> int:
    """Column of a joint's channel in a MOTION row written by `write_bvh` (depth-first order)."""
    channels = default_channels(rows) if channels is None else channels
    col = 0
    for name in joint_order(rows):
        if name == joint:
            return col + list(channels[name]).index(channel)
        col += len(channels[name])
    raise KeyError(joint)


def standing_frames(rows, num_frames: int, step=(0.0, 0.0, 1.0), root_height: float = 95.0,
                    channels: dict | None = None) -> np.ndarray:
    """[T, C]: the rest pose moving `step` (file units) per frame, the root at `root_height` on the y axis."""
    channels = default_channels(rows) if channels is None else channels
    frames = np.zeros((num_frames, sum(len(channels[r[0]]) for r in rows)))
    root = rows[0][0]
    path = np.array([0.0, root_height, 0.0]) + np.arange(num_frames)[:, None] * np.asarray(step)
    for k, axis in enumerate("XYZ"):
        frames[:, channel_index(rows, root, f"{axis}position", channels)] = path[:, k]
    return frames


def x_rest_rig(rows, num_frames: int, step=(0.0, 0.0, 1.0), root_height: float = 95.0):
    """The standing pose of `rows` moving `step` per frame, written as Bandai Namco's files are.

    A static dummy root "joint_Root" at the origin above the first joint; every joint has six channels
    (X Y Z position, Z X Y rotation), its position channels replacing its OFFSET (the first joint's carry
    the path, the others repeat their offsets); each joint's rest frame is turned so that +x runs along its
    first bone, so the rest pose (every channel zero) lies along x and the rotation channels stand it up.
    Returns (rows, channels, frames) for `write_bvh`; forward kinematics gives the standing pose exactly.
    """
    names = [r[0] for r in rows]
    parent = {r[0]: r[1] for r in rows}
    world = {}
    for name, par, off, _ in rows:
        world[name] = np.asarray(off, float) + (world[par] if par is not None else 0.0)
    first_child = {}
    for name, par, _, _ in rows:
        if par is not None:
            first_child.setdefault(par, name)
    turn = {}
    for name, _, _, end in rows:
        target = world[first_child[name]] - world[name] if name in first_child else \
            (np.asarray(end, float) if end is not None else np.array([1.0, 0.0, 0.0]))
        turn[name] = _turn_x_onto(target)  # joint frame in the file's world
    out_rows = [("joint_Root", None, np.zeros(3), None)]
    local_rot, local_off = {}, {}
    for name, par, _, end in rows:
        R_par = turn[par] if par is not None else np.eye(3)
        off = R_par.T @ (world[name] - (world[par] if par is not None else 0.0))
        end_off = None if end is None else turn[name].T @ np.asarray(end, float)
        local_off[name] = off
        local_rot[name] = Rotation.from_matrix(R_par.T @ turn[name]).as_euler("ZXY", degrees=True)
        junk = np.array([0.0, 93.9241, -3.0]) if par is None else off  # the first joint's OFFSET is replaced
        out_rows.append((name, par if par is not None else "joint_Root", junk, end_off))
    six = ["Xposition", "Yposition", "Zposition"] + ROT
    channels = {r[0]: six for r in out_rows}
    frames = np.zeros((num_frames, 6 * len(out_rows)))
    path = np.array([0.0, root_height, 0.0]) + np.arange(num_frames)[:, None] * np.asarray(step)
    for name in names:
        pos = path if parent[name] is None else np.broadcast_to(local_off[name], (num_frames, 3))
        for k, axis in enumerate("XYZ"):
            frames[:, channel_index(out_rows, name, f"{axis}position", channels)] = pos[:, k]
        for k, ch in enumerate(ROT):
            frames[:, channel_index(out_rows, name, ch, channels)] = local_rot[name][k]
    return out_rows, channels, frames


def _turn_x_onto(direction: np.ndarray) -> np.ndarray:
    """A rotation taking +x onto `direction` (any one of them)."""
    d = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    y = np.cross(helper, d)
    y /= np.linalg.norm(y)
    return np.stack([d, y, np.cross(d, y)], axis=1)


def walking_frames(rows, num_frames: int, root_height: float = 95.0, z_up: bool = False) -> np.ndarray:
    """[T, C]: the root moving forward 1 cm per frame at its rest height, knees and elbows bending a little."""
    n_channels = 3 + 3 * len(rows)
    frames = np.zeros((num_frames, n_channels))
    t = np.arange(num_frames)
    fwd = np.stack([np.zeros(num_frames), np.full(num_frames, root_height), 1.0 * t], axis=1)
    frames[:, 0:3] = fwd @ Y_TO_Z.T if z_up else fwd
    names = [r[0] for r in rows]
    for joint in ("LeftLeg", "RightLeg"):
        if joint in names:
            frames[:, channel_index(rows, joint, "Xrotation")] = 20.0 * (1 + np.sin(0.3 * t))
    return frames
