"""Rigid-body dynamics of the humanoid tree, written for this body and for batches.

The body is a tree of `nb` moving bodies, one joint each: a free root, ball
joints and hinges (`body.Layout` holds the topology, `body.BodyArrays` the
numbers of one shape). Conventions are MuJoCo's, so a `qpos`/`qvel` means the
same here as in `mujoco.MjData` and the tests compare every quantity with
MuJoCo's own functions:

  qpos  free: position (m) and quaternion (w first) of the root in the world;
        ball: quaternion of the child relative to its parent; hinge: angle (rad).
  qvel  free: linear velocity of the root's origin (world frame), then its
        angular velocity (root's frame); ball: angular velocity (child frame);
        hinge: angular rate about the hinge axis.

Kinematics (per body b with parent p, body offset (pos_b, quat_b), joint anchor
j_b in the body frame, local joint rotation q_loc):

    quat_pre = quat_p * quat_b,   anchor = pos_p + R_p pos_b + R(quat_pre) j_b
    quat_b'  = quat_pre * q_loc,  pos_b'  = anchor - R(quat_b') j_b

Dynamics without recursions over the tree: every degree of freedom k is a unit
screw, a world axis a_k through a pivot p_k (rotations) or a world direction e_k
(the root's translations). With the ancestor mask A[b, k] (dof k moves body b),
a point x fixed on body b has the Jacobians

    J_lin(x)[:, k] = A[b, k] (a_k x (x - p_k)  or  e_k),   J_ang(b)[:, k] = A[b, k] a_k,

so that, with centres of mass c_b, masses m_b and world inertias I_b,

    M      = sum_b m_b J_lin(c_b)^T J_lin(c_b) + J_ang(b)^T I_b J_ang(b) + diag(armature)
    bias   = sum_b J_lin(c_b)^T m_b (a_b - g) + J_ang(b)^T (I_b alpha_b + w_b x I_b w_b)

where w_b = J_ang(b) qvel, and a_b, alpha_b are the accelerations at zero qacc:

    alpha_b = sum_k A[b,k] qvel_k adot_k,      adot_k = w_parent(k) x a_k
    a_b     = sum_k A[b,k] qvel_k (adot_k x (c_b - p_k) + a_k x (v(c_b) - v(p_k)))

(the axes of a joint turn with the body it hangs from; the joint's own rotation
adds w_own x w_own = 0 to these sums). Joint damping D is integrated implicitly
as in MuJoCo's Euler integrator:

    (M + dt D) qacc = tau - bias - D qvel,    qvel' = qvel + dt qacc,    qpos' = qpos (+) dt qvel'

All of it is a few dozen dense operations on [nb, nv, 3] arrays per step: the
graph XLA runs per step is an order of magnitude smaller than that of MuJoCo
MJX's general pipeline (bench/speed.py measures both), and it batches with vmap.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.physics import quat


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Frames:
    """World frames of the bodies: pos [nb, 3] (m), quat [nb, 4], rot [nb, 3, 3] (body to world),
    anchor [nb, 3] (each body's joint anchor, m)."""

    pos: jax.Array
    quat: jax.Array
    rot: jax.Array
    anchor: jax.Array


def quat_to_mat(q):
    """[..., 4] unit quaternions (w first) -> [..., 3, 3] rotation matrices."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return jnp.stack(rows, axis=-1).reshape(q.shape[:-1] + (3, 3))


def _rotate(rot, v):
    """[..., 3, 3] @ [..., 3]."""
    return jnp.einsum("...ij,...j->...i", rot, v)


def local_rotations(qpos, arrays, layout):
    """Each body's joint rotation as a quaternion [nb, 4] (the free root's: its world orientation)."""
    quats = quat.normalize(qpos[jnp.asarray(layout.quat_qadr)[:, None] + jnp.arange(4)])  # [nq4, 4]
    hinge = qpos[jnp.asarray(layout.hinge_qadr)] - arrays.hinge_ref  # [H]
    axis = arrays.jnt_axis[jnp.asarray(layout.hinge_bodies)]
    half = 0.5 * hinge[:, None]
    hq = jnp.concatenate([jnp.cos(half), jnp.sin(half) * axis], axis=-1)  # [H, 4]
    return jnp.concatenate([quats, hq], axis=0)[jnp.asarray(layout.rotation_order)]


def kinematics(qpos, arrays, layout) -> Frames:
    """World frames of all bodies for positions qpos [nq] (MuJoCo's mj_kinematics for this tree)."""
    qloc = local_rotations(qpos, arrays, layout)
    nb = layout.num_bodies
    pos = [None] * nb
    rot_q = [None] * nb
    anchor = [None] * nb
    for level in layout.levels:
        idx = jnp.asarray(level)
        if layout.body_parent[level[0]] < 0:  # the root level: the free joint sets the frame
            (b,) = level
            pos[b] = qpos[0:3]
            rot_q[b] = qloc[b]
            anchor[b] = qpos[0:3]
            continue
        parents = [layout.body_parent[b] for b in level]
        ppos = jnp.stack([pos[p] for p in parents])
        pquat = jnp.stack([rot_q[p] for p in parents])
        pre = quat.mul(pquat, arrays.body_quat[idx])
        anc = ppos + _rotate(quat_to_mat(pquat), arrays.body_pos[idx]) + _rotate(quat_to_mat(pre),
                                                                                arrays.jnt_pos[idx])
        q = quat.normalize(quat.mul(pre, qloc[idx]))
        p = anc - _rotate(quat_to_mat(q), arrays.jnt_pos[idx])
        for i, b in enumerate(level):
            pos[b], rot_q[b], anchor[b] = p[i], q[i], anc[i]
    xquat = jnp.stack(rot_q)
    return Frames(pos=jnp.stack(pos), quat=xquat, rot=quat_to_mat(xquat), anchor=jnp.stack(anchor))


def body_points(frames: Frames, bodies, local):
    """World positions [P, 3] of points given in their bodies' frames: bodies [P] (static ints), local [P, 3]."""
    idx = jnp.asarray(bodies)
    return frames.pos[idx] + _rotate(frames.rot[idx], local)


def cross_matrix(v):
    """[..., 3] -> [..., 3, 3] with cross_matrix(a) @ b = a x b."""
    z = jnp.zeros_like(v[..., 0])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return jnp.stack([z, -w, y, w, z, -x, -y, x, z], axis=-1).reshape(v.shape[:-1] + (3, 3))


def motion_cross(v, m):
    """Spatial motion cross product v x m for [..., 6] (angular, linear) vectors."""
    return jnp.concatenate([jnp.cross(v[..., :3], m[..., :3]),
                            jnp.cross(v[..., :3], m[..., 3:]) + jnp.cross(v[..., 3:], m[..., :3])], axis=-1)


def force_cross(v, f):
    """Spatial force cross product v x* f for motion v and force f, [..., 6] (angular, linear)."""
    return jnp.concatenate([jnp.cross(v[..., :3], f[..., :3]) + jnp.cross(v[..., 3:], f[..., 3:]),
                            jnp.cross(v[..., :3], f[..., 3:])], axis=-1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Spatial:
    """The tree at one configuration in spatial (Plucker) coordinates about a point o fixed in the world
    at this instant (the root's origin, so float32 keeps its precision anywhere on the floor).

    origin [3] (m). screws [nv, 6]: each dof's unit motion (angular; linear velocity of the point o).
    inertia [nb, 6, 6]: each body's spatial inertia about o. composite [nb, 6, 6]: summed over its subtree.
    """

    origin: jax.Array
    screws: jax.Array
    inertia: jax.Array
    composite: jax.Array


def _mask(rows) -> jax.Array:
    return jnp.asarray(np.asarray(rows, np.float32))


def spatial(frames: Frames, arrays, layout) -> Spatial:
    o = frames.pos[0]
    dof_body = jnp.asarray(layout.dof_body)
    trans = jnp.asarray(layout.dof_is_translation)[:, None]
    axis = _rotate(frames.rot[dof_body], arrays.dof_local_axis)
    pivot = frames.anchor[dof_body]
    zero = jnp.zeros_like(axis)
    screw = jnp.where(trans, jnp.concatenate([zero, arrays.dof_local_axis], -1),
                      jnp.concatenate([axis, jnp.cross(axis, o - pivot)], -1))
    bodies = tuple(range(layout.num_bodies))
    c = body_points(frames, bodies, arrays.body_ipos) - o  # centres of mass relative to o
    rot_i = frames.rot @ quat_to_mat(arrays.body_iquat)
    ic = jnp.einsum("bij,bj,bkj->bik", rot_i, arrays.body_inertia, rot_i)
    m = arrays.body_mass[:, None, None]
    cx = cross_matrix(c)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=c.dtype), cx.shape)
    inertia6 = jnp.concatenate([jnp.concatenate([ic - m * cx @ cx, m * cx], -1),
                                jnp.concatenate([-m * cx, m * eye], -1)], -2)
    nb = layout.num_bodies
    composite = (_mask(layout.subtree_mask) @ inertia6.reshape(nb, 36)).reshape(nb, 6, 6)
    return Spatial(origin=o, screws=screw, inertia=inertia6, composite=composite)


def body_velocities(sp: Spatial, qvel, layout):
    """Spatial velocities [nb, 6] of the bodies (angular; linear velocity of the point o)."""
    return (_mask(layout.ancestor_mask) * qvel[None]) @ sp.screws


def point_velocities(sp: Spatial, velocities, points, bodies):
    """Velocities [P, 3] of world points [P, 3] fixed on bodies [P] (static ints)."""
    v = velocities[jnp.asarray(bodies)]
    return v[:, 3:] + jnp.cross(v[:, :3], points - sp.origin)


def point_jacobian(sp: Spatial, points, bodies, layout):
    """Linear-velocity Jacobians [P, nv, 3] of world points [P, 3] fixed on bodies [P] (static ints)."""
    mask = jnp.asarray(np.asarray(layout.ancestor_mask, np.float32)[np.asarray(bodies)])  # [P, nv]
    ang, lin = sp.screws[:, :3], sp.screws[:, 3:]
    j = lin[None] + jnp.cross(ang[None], (points - sp.origin)[:, None, :])
    return j * mask[:, :, None]


def mass_matrix(sp: Spatial, arrays, layout):
    """Joint-space inertia M [nv, nv] (MuJoCo's mj_fullM), by composite rigid bodies:
    M[k, j] = S_k . Ic_b S_j for dof j moving the body b of dof k or one of its ancestors."""
    f = jnp.einsum("kij,kj->ki", sp.composite[jnp.asarray(layout.dof_body)], sp.screws)  # [nv, 6]
    x = f @ sp.screws.T
    lower = _mask(layout.dof_lower_mask)  # 1 where j's body is an ancestor of (or is) k's body
    upper = _mask(np.asarray(layout.dof_lower_mask).T * (1 - np.asarray(layout.dof_lower_mask)))
    return lower * x + upper * x.T + jnp.diag(arrays.dof_armature)


def bias_force(sp: Spatial, qvel, arrays, layout):
    """Gravity, Coriolis and centrifugal forces as generalised forces [nv] (MuJoCo's qfrc_bias), by
    Newton-Euler over the tree:

        V_b = sum_k A[b,k] S_k qvel_k,  a_b = sum_k A[b,k] (V_carrier(k) x S_k) qvel_k - (0, g),
        f_b = I_b a_b + V_b x* I_b V_b,   tau_k = S_k . sum_{d in subtree(body k)} f_d.
    """
    ancestors = _mask(layout.ancestor_mask) * qvel[None]
    v = ancestors @ sp.screws  # [nb, 6]
    nb = layout.num_bodies
    # What carries each dof's screw: the parent body; for the root's rotations, its translation (a
    # free joint is a translation followed by a rotation about the moving origin); the world, at rest.
    translation = jnp.concatenate([jnp.zeros(3, v.dtype), qvel[:3]])
    carriers = jnp.concatenate([v, jnp.zeros((1, 6), v.dtype), translation[None]])
    carrier = [p if p >= 0 else (nb + 1 if k >= 3 else nb) for k, p in enumerate(layout.dof_parent_body)]
    sdot = motion_cross(carriers[jnp.asarray(carrier)], sp.screws)  # [nv, 6]
    acc = ancestors @ sdot - jnp.concatenate([jnp.zeros(3, v.dtype), arrays.gravity])
    f = jnp.einsum("bij,bj->bi", sp.inertia, acc) + force_cross(v, jnp.einsum("bij,bj->bi", sp.inertia, v))
    subtree = _mask(layout.subtree_mask) @ f  # [nb, 6]
    return jnp.sum(sp.screws * subtree[jnp.asarray(layout.dof_body)], axis=-1)


def acceleration(qvel, qfrc, sp: Spatial, arrays, layout, stiffness=None, damping=None):
    """qacc [nv] under generalised forces qfrc [nv], integrated linearly implicitly over one step h:

        (M + h (D + C) + h^2 K) qacc = qfrc - bias - D qvel - h K qvel

    D: the joint damping (diagonal; MuJoCo's Euler integrator treats it the same way); K [nv, nv] and
    C [nv, nv]: the stiffness and damping of other forces already in qfrc (PD controllers, contacts),
    i.e. minus their derivatives with respect to the positions and velocities. Treating the stiff
    forces implicitly keeps a step of h stable where the explicit step needs h < 2 / omega."""
    h = arrays.timestep
    a = mass_matrix(sp, arrays, layout) + jnp.diag(h * arrays.dof_damping)
    rhs = qfrc - bias_force(sp, qvel, arrays, layout) - arrays.dof_damping * qvel
    if damping is not None:
        a = a + h * damping
    if stiffness is not None:
        a = a + (h * h) * stiffness
        rhs = rhs - h * (stiffness @ qvel)
    chol = jax.scipy.linalg.cho_factor(a, lower=True)
    return jax.scipy.linalg.cho_solve(chol, rhs)


def integrate(qpos, qvel, qacc, dt, layout):
    """Semi-implicit Euler: qvel' = qvel + dt qacc; positions advance with qvel' (quaternions by the
    exponential map in the local frame, as mju_quatIntegrate). Returns (qpos' [nq], qvel' [nv])."""
    qvel = qvel + dt * qacc
    qadr = jnp.asarray(layout.quat_qadr)
    q = quat.normalize(qpos[qadr[:, None] + jnp.arange(4)])
    w = qvel[jnp.asarray(layout.quat_dadr)[:, None] + jnp.arange(3)]  # [nq4, 3] local angular velocities
    q = quat.normalize(quat.mul(q, quat.exp(dt * w)))
    out = qpos.at[(qadr[:, None] + jnp.arange(4)).reshape(-1)].set(q.reshape(-1))
    out = out.at[0:3].add(dt * qvel[0:3])
    hq, hd = jnp.asarray(layout.hinge_qadr), jnp.asarray(layout.hinge_dadr)
    out = out.at[hq].add(dt * qvel[hd])
    return out, qvel
