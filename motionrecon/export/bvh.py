"""BVH export of the simulated skeleton (any MJCF body).

Hierarchy: one BVH joint per body of the articulated subtree of the MJCF (the
body with the free joint and its descendants), named after the body, placed
at the body's *anchor* (the position of its first ball or hinge joint, else the
body origin; see `motionrecon.export.kinematics`). OFFSET is the anchor
relative to the parent's anchor in the parent's frame. Leaf bodies get an
End Site at the far end of their geoms.

Channels: the root has `Xposition Yposition Zposition` followed by three
rotation channels; every other joint has three rotation channels (a body
whose anchor can move relative to its parent -- a slide joint, or several
joints with different anchors -- also gets position channels, which replace
its OFFSET as in Blender's importer). Rotation channels are listed in
`rotation_order` (default "ZXY": `Zrotation Xrotation Yrotation`), meaning the
local rotation is Rz(a) @ Rx(b) @ Ry(c), angles in degrees. Each joint's
rotation is the body's orientation relative to its parent body (so the BVH
rest pose, all angles zero, has every body frame aligned with the world).

Axes and units: Y up, metres. The project's world (z up) is mapped by
(x, y, z) -> (x, z, -y); Blender's BVH importer (defaults Forward -Z, Up Y,
Scale 1) maps it back, so the motion stands on Blender's floor at its real
size. Frames are the observation frames; Frame Time = 1 / fps.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from motionrecon.export import kinematics
from motionrecon.export.reconstruction import Reconstruction
from motionrecon.fileio import atomic_path

ROTATION_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
_MOVING_OFFSET_TOLERANCE_M = 1e-6


def write_bvh(path, recon: Reconstruction, *, rotation_order: str = "ZXY") -> Path:
    """Writes `recon`'s motion as BVH to `path` (atomically). Returns the path."""
    text = bvh_text(recon.model, recon.qpos, recon.fps, rotation_order=rotation_order)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def bvh_text(model: mujoco.MjModel, qpos: np.ndarray, fps: float, *, rotation_order: str = "ZXY") -> str:
    """The BVH file for the motion `qpos` [T, nq] of `model` at `fps` frames per second."""
    rotation_order = rotation_order.upper()
    if rotation_order not in ROTATION_ORDERS:
        raise ValueError(f"rotation_order must be one of {ROTATION_ORDERS}, got {rotation_order!r}")
    tree = kinematics.body_tree(model)
    bodies = list(tree.humanoid)
    if not bodies:
        raise ValueError("the model has no articulated bodies to export")
    poses = kinematics.forward_kinematics(model, qpos)
    offsets, rotations = kinematics.local_transforms(tree, poses, bodies)
    c = kinematics.Z_UP_TO_Y_UP
    offsets = offsets @ c.T  # [T, N, 3], Y up
    rotations = c @ rotations @ c.T  # [T, N, 3, 3], Y up

    has_position = [
        i == 0 or float(np.max(np.abs(offsets[:, i] - offsets[:1, i]))) > _MOVING_OFFSET_TOLERANCE_M
        for i in range(len(bodies))
    ]
    angles = np.stack([continuous_euler(rotations[:, i], rotation_order) for i in range(len(bodies))], axis=1)

    # HIERARCHY
    lines = ["HIERARCHY"]
    rot_channels = " ".join(f"{axis}rotation" for axis in rotation_order)
    index = {b: i for i, b in enumerate(bodies)}
    children = {b: [c_ for c_ in bodies if tree.parents[c_] == b] for b in bodies}

    def emit(b: int, depth: int) -> None:
        pad = "  " * depth
        i = index[b]
        keyword = "ROOT" if i == 0 else "JOINT"
        offset = np.zeros(3) if i == 0 else offsets[0, i]
        lines.append(f"{pad}{keyword} {tree.names[b]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {_fmt(offset)}")
        if has_position[i]:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{pad}  CHANNELS 3 {rot_channels}")
        for child in children[b]:
            emit(child, depth + 1)
        if not children[b]:
            end = c @ end_site_offset(model, b, tree.anchors[b])
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {_fmt(end)}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(bodies[0], 0)

    # MOTION: per frame, for each joint in hierarchy order, its channels.
    order = [index[b] for b in _preorder(bodies[0], children)]
    columns = []
    for i in order:
        if has_position[i]:
            columns.append(offsets[:, i])
        columns.append(angles[:, i])
    values = np.concatenate(columns, axis=1)
    lines.append("MOTION")
    lines.append(f"Frames: {values.shape[0]}")
    lines.append(f"Frame Time: {1.0 / fps:.8f}")
    lines.extend(_fmt(row) for row in values)
    return "\n".join(lines) + "\n"


def continuous_euler(rotations: np.ndarray, order: str) -> np.ndarray:
    """[T, 3] intrinsic Euler angles in degrees (R = R_order[0] @ R_order[1] @ R_order[2]).

    Of the two equivalent angle triples per frame, the one nearest the previous
    frame is kept and angles are unwrapped past +-180, so curves are continuous
    (players interpolating between frames do not spin the long way round).
    """
    primary = Rotation.from_matrix(rotations).as_euler(order, degrees=True)  # middle angle in [-90, 90]
    alternate = primary + np.array([180.0, 0.0, 180.0])
    alternate[:, 1] = 180.0 - primary[:, 1]
    out = np.empty_like(primary)
    out[0] = primary[0]
    for t in range(1, len(primary)):
        best, best_dist = None, np.inf
        for candidate in (primary[t], alternate[t]):
            near = candidate + 360.0 * np.round((out[t - 1] - candidate) / 360.0)
            dist = float(np.sum((near - out[t - 1]) ** 2))
            if dist < best_dist:
                best, best_dist = near, dist
        out[t] = best
    return out


def end_site_offset(model: mujoco.MjModel, body: int, anchor: np.ndarray) -> np.ndarray:
    """[3] End Site of a leaf body in its frame, relative to its anchor (z up): the geom point farthest out.

    Candidates are capsule/cylinder cap ends, sphere/ellipsoid surfaces along
    the line from the anchor, box corners; without geoms, 5 cm along the body z.
    """
    candidates = []
    for g in range(model.ngeom):
        if model.geom_bodyid[g] != body:
            continue
        centre = np.array(model.geom_pos[g])
        rot = Rotation.from_quat(model.geom_quat[g], scalar_first=True).as_matrix()
        size = np.array(model.geom_size[g])
        kind = int(model.geom_type[g])
        if kind in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER):
            cap = size[1] + (size[0] if kind == mujoco.mjtGeom.mjGEOM_CAPSULE else 0.0)
            candidates += [centre + rot[:, 2] * cap, centre - rot[:, 2] * cap]
        elif kind in (mujoco.mjtGeom.mjGEOM_SPHERE, mujoco.mjtGeom.mjGEOM_ELLIPSOID):
            direction = centre - anchor
            norm = np.linalg.norm(direction)
            direction = direction / norm if norm > 1e-9 else rot[:, 2]
            radius = size[0] if kind == mujoco.mjtGeom.mjGEOM_SPHERE else float(np.max(size))
            candidates.append(centre + direction * radius)
        elif kind == mujoco.mjtGeom.mjGEOM_BOX:
            signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
            candidates += list(centre + (signs * size) @ rot.T)
        else:
            candidates.append(centre)
    if candidates:
        rel = np.array(candidates) - anchor
        far = rel[np.argmax(np.linalg.norm(rel, axis=1))]
        if np.linalg.norm(far) > 1e-3:
            return far
    return np.array([0.0, 0.0, 0.05])


def _preorder(root: int, children: dict[int, list[int]]) -> list[int]:
    out = [root]
    for c in children[root]:
        out += _preorder(c, children)
    return out


def _fmt(v) -> str:
    return " ".join(f"{x + 0.0:.6f}" for x in np.round(v, 6))
