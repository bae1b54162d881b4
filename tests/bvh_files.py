"""Small BVH files for tests: a CMU-style skeleton (names, centimetres, y-up, facing +z) and variants.

`write_bvh` writes the hierarchy given as rows (name, parent, offset, channels, end-site offset or None)
and a MOTION section; `cmu_rows` builds the CMU-style skeleton, optionally renamed (Mixamo prefix,
Daz names) or re-expressed with z up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROT = ["Zrotation", "Xrotation", "Yrotation"]
ROOT_CHANNELS = ["Xposition", "Yposition", "Zposition"] + ROT

# CMU-style rig, centimetres, y-up, the character facing +z with its left on +x.
# (name, parent, offset, end-site offset or None)
CMU_SKELETON = [
    ("Hips", None, (0.0, 95.0, 0.0), None),
    ("LeftUpLeg", "Hips", (9.0, -5.0, 0.0), None),
    ("LeftLeg", "LeftUpLeg", (0.0, -42.0, 1.0), None),
    ("LeftFoot", "LeftLeg", (0.0, -40.0, -1.0), None),
    ("LeftToeBase", "LeftFoot", (0.0, -5.0, 12.0), (0.0, -1.0, 4.0)),
    ("RightUpLeg", "Hips", (-9.0, -5.0, 0.0), None),
    ("RightLeg", "RightUpLeg", (0.0, -42.0, 1.0), None),
    ("RightFoot", "RightLeg", (0.0, -40.0, -1.0), None),
    ("RightToeBase", "RightFoot", (0.0, -5.0, 12.0), (0.0, -1.0, 4.0)),
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


def write_bvh(path: Path, rows, frames: np.ndarray, frame_time: float) -> Path:
    """rows: (name, parent, offset, end offset); the root gets 6 channels, the others 3 (Z X Y rotations).

    frames: [T, 3 + 3 * len(rows)] MOTION values in channel order.
    """
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
        chans = ROOT_CHANNELS if parent is None else ROT
        lines.append(f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}")
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
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def channel_index(rows, joint: str, channel: str) -> int:
    """Column of a joint's channel in a MOTION row written by `write_bvh` (depth-first order)."""
    children: dict = {}
    for row in rows:
        children.setdefault(row[1], []).append(row)
    order = []

    def walk(name):
        order.append(name)
        for child in children.get(name, []):
            walk(child[0])

    walk(children[None][0][0])
    col = 0
    for name in order:
        chans = ROOT_CHANNELS if name == order[0] else ROT
        if name == joint:
            return col + chans.index(channel)
        col += len(chans)
    raise KeyError(joint)


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
