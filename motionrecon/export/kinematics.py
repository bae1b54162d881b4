"""Forward kinematics of any MJCF body with MuJoCo's CPU API, for the exporters.

The exporters never assume a particular humanoid: they read the body tree,
joints and geoms from the `mujoco.MjModel` built from the reconstruction's
`body_mjcf`, and get every body's world pose per frame from
`mujoco.mj_kinematics`.

Terms used across `motionrecon.export`:
  body frame   MuJoCo's body frame (origin `xpos`, orientation `xquat`).
  anchor       the point a body rotates about: the position of its first
               ball or hinge joint (`jnt_pos`, in the body frame); the body
               origin for a body with only free/slide joints or none.
               Skeleton formats (BVH) put their joints there.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from motionrecon.errors import InputError

# Axis change from the project's world (z up) to Y-up formats (BVH, glTF, OBJ):
# (x, y, z) -> (x, z, -y), a rotation of -90 degrees about x. Blender's BVH and
# OBJ importers (defaults: up Y, forward -Z) and glTF (+Y up) undo exactly this,
# so the ground z = 0 lands on Blender's floor.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class BodyTree:
    """The body tree of an MJCF model (MuJoCo body ids; id 0 is the world).

    Attributes:
      names: [B] body names ("body<i>" where the MJCF gives none), whitespace replaced by "_".
      parents: [B] parent body id; -1 for the world.
      anchors: [B, 3] rotation pivot of each body in its own frame (metres).
      humanoid: body ids of the articulated subtree (its root first, parents
        before children): the subtree of the body with a free joint, or of every
        jointed child of the world when no free joint exists.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    anchors: np.ndarray
    humanoid: tuple[int, ...]

    def children(self, body: int) -> list[int]:
        return [b for b in range(len(self.parents)) if self.parents[b] == body]


@dataclasses.dataclass(frozen=True)
class Poses:
    """World poses over time (world z up, metres).

    Attributes:
      xpos: [T, B, 3] body origins.
      xquat: [T, B, 4] body orientations, w first.
      xmat: [T, B, 3, 3] body orientations as rotation matrices.
      anchors: [T, B, 3] anchors in the world (see `BodyTree.anchors`).
      geom_xpos: [T, G, 3] geom centres.
      geom_xmat: [T, G, 3, 3] geom orientations.
      site_xpos: [T, S, 3] site positions.
    """

    xpos: np.ndarray
    xquat: np.ndarray
    xmat: np.ndarray
    anchors: np.ndarray
    geom_xpos: np.ndarray
    geom_xmat: np.ndarray
    site_xpos: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.xpos.shape[0]


def load_model(mjcf: str, source: str = "body_mjcf") -> mujoco.MjModel:
    """Builds the MuJoCo model from MJCF text; InputError naming `source` when it does not compile."""
    try:
        return mujoco.MjModel.from_xml_string(mjcf)
    except Exception as e:  # mujoco raises ValueError with the compiler's message
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(source, f"body MJCF does not compile: {first_line}") from None


def body_names(model: mujoco.MjModel) -> tuple[str, ...]:
    names = []
    for b in range(model.nbody):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or ("world" if b == 0 else f"body{b}")
        names.append("_".join(name.split()))
    return tuple(names)


def body_anchor(model: mujoco.MjModel, body: int) -> np.ndarray:
    """[3] the rotation pivot of `body` in its own frame: its first ball or hinge joint's `jnt_pos`, else 0."""
    start, count = model.body_jntadr[body], model.body_jntnum[body]
    for j in range(start, start + count):
        if int(model.jnt_type[j]) in (mujoco.mjtJoint.mjJNT_BALL, mujoco.mjtJoint.mjJNT_HINGE):
            return np.array(model.jnt_pos[j], dtype=np.float64)
    return np.zeros(3)


def body_tree(model: mujoco.MjModel) -> BodyTree:
    parents = np.array(model.body_parentid, dtype=np.int64)
    parents[0] = -1
    anchors = np.stack([body_anchor(model, b) for b in range(model.nbody)])
    free_roots = [
        b for b in range(1, model.nbody)
        if any(int(model.jnt_type[j]) == mujoco.mjtJoint.mjJNT_FREE
               for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]))
    ]
    if free_roots:
        roots = free_roots[:1]
    else:
        roots = [b for b in range(1, model.nbody) if parents[b] == 0 and _subtree_has_joints(model, parents, b)]
    order: list[int] = []

    def visit(b: int) -> None:
        order.append(b)
        for c in range(1, model.nbody):
            if parents[c] == b:
                visit(c)

    for r in roots:
        visit(r)
    return BodyTree(body_names(model), parents, anchors, tuple(order))


def _subtree_has_joints(model, parents, body) -> bool:
    if model.body_jntnum[body] > 0:
        return True
    return any(_subtree_has_joints(model, parents, c) for c in range(1, model.nbody) if parents[c] == body)


def forward_kinematics(model: mujoco.MjModel, qpos: np.ndarray) -> Poses:
    """World poses of every body, geom and site for each row of `qpos` [T, nq] (mj_kinematics per frame)."""
    qpos = np.asarray(qpos, dtype=np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != model.nq:
        raise ValueError(f"qpos has shape {qpos.shape}; the model needs [T, {model.nq}]")
    data = mujoco.MjData(model)
    n = qpos.shape[0]
    xpos = np.empty((n, model.nbody, 3))
    xquat = np.empty((n, model.nbody, 4))
    xmat = np.empty((n, model.nbody, 3, 3))
    geom_xpos = np.empty((n, model.ngeom, 3))
    geom_xmat = np.empty((n, model.ngeom, 3, 3))
    site_xpos = np.empty((n, model.nsite, 3))
    for t in range(n):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        xpos[t] = data.xpos
        xquat[t] = data.xquat
        xmat[t] = data.xmat.reshape(-1, 3, 3)
        geom_xpos[t] = data.geom_xpos
        geom_xmat[t] = data.geom_xmat.reshape(-1, 3, 3)
        site_xpos[t] = data.site_xpos
    anchors_local = np.stack([body_anchor(model, b) for b in range(model.nbody)])
    anchors = xpos + np.einsum("tbij,bj->tbi", xmat, anchors_local)
    return Poses(xpos, xquat, xmat, anchors, geom_xpos, geom_xmat, site_xpos)


def local_transforms(tree: BodyTree, poses: Poses, bodies, *, origin: str = "anchor") -> tuple[np.ndarray, np.ndarray]:
    """Each body's origin and orientation relative to its parent's frame.

    Args:
      origin: "anchor" (skeleton joints, for BVH) or "body" (MuJoCo body
        origins, for scene graphs such as glTF).

    Returns:
      offsets: [T, N, 3] origin of each body in `bodies` minus its parent's
        origin, in the parent's body frame (world frame for a root).
      rotations: [T, N, 3, 3] parent orientation transposed times body orientation
        (world orientation for a root).
    """
    bodies = list(bodies)
    points = {"anchor": poses.anchors, "body": poses.xpos}[origin]
    offsets = np.empty((poses.num_frames, len(bodies), 3))
    rotations = np.empty((poses.num_frames, len(bodies), 3, 3))
    for i, b in enumerate(bodies):
        p = tree.parents[b]
        if p <= 0 or p not in bodies:
            offsets[:, i] = points[:, b]
            rotations[:, i] = poses.xmat[:, b]
        else:
            rp = poses.xmat[:, p]
            offsets[:, i] = np.einsum("tji,tj->ti", rp, points[:, b] - points[:, p])
            rotations[:, i] = np.einsum("tji,tjk->tik", rp, poses.xmat[:, b])
    return offsets, rotations
