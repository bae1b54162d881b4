"""The shape-specific simulated body: `Body` = MJCF + compiled models + the arrays the physics needs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from motionrecon.body.template import (CONTACT_PARTS, FEET_ONLY, BodyShape, Gains, body_summary, build_mjcf,
                                      contact_spheres, site_order)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Index structure of the humanoid topology (identical for every shape; static under jit).

    Bodies are numbered 0..num_bodies-1 in MuJoCo's order without the world (MuJoCo id - 1), one
    joint each: body 0 is the free root, the others hang from a ball joint or a hinge.
    ball_*/hinge_*: qpos / dof addresses of the actuated joints, in model order.
    contact_geoms: MuJoCo geom ids of the contact spheres (`body.template.contact_spheres`, in the model's order);
      contact_bodies: the bodies they sit on.
    sites: MuJoCo site ids of `skeleton.BODY_LANDMARKS`, in that order; site_bodies: their bodies.
    body_parent: each body's parent (-1: the world); levels: the bodies by depth in the tree.
    quat_qadr / quat_dadr: qpos address of every quaternion joint (the root's orientation first,
      then the balls) and the dof address of its angular velocity.
    hinge_bodies: the body of each hinge. rotation_order: where each body's joint rotation sits in
      [quaternion joints, hinges] (physics.dynamics.local_rotations).
    dof_body, dof_parent_body: the body each dof moves and that body's parent (-1: world).
    dof_is_translation: the root's three translations. ancestor_mask [nb][nv]: 1 where dof k moves body b.
    subtree_mask [nb][nb]: 1 where body d is body b or below it. dof_lower_mask [nv][nv]: 1 where dof j
      moves the body of dof k (j's body is k's or an ancestor of it).
    """

    nq: int
    nv: int
    nbody: int
    ball_qadr: tuple[int, ...]
    ball_dadr: tuple[int, ...]
    hinge_qadr: tuple[int, ...]
    hinge_dadr: tuple[int, ...]
    contact_geoms: tuple[int, ...]
    contact_bodies: tuple[int, ...]
    sites: tuple[int, ...]
    site_bodies: tuple[int, ...]
    body_parent: tuple[int, ...]
    levels: tuple[tuple[int, ...], ...]
    quat_qadr: tuple[int, ...]
    quat_dadr: tuple[int, ...]
    hinge_bodies: tuple[int, ...]
    rotation_order: tuple[int, ...]
    dof_body: tuple[int, ...]
    dof_parent_body: tuple[int, ...]
    dof_is_translation: tuple[bool, ...]
    ancestor_mask: tuple[tuple[int, ...], ...]
    subtree_mask: tuple[tuple[int, ...], ...]
    dof_lower_mask: tuple[tuple[int, ...], ...]

    @property
    def num_controls(self) -> int:
        """Control values per keyframe: a rotation vector per ball joint, an angle per hinge."""
        return 3 * len(self.ball_qadr) + len(self.hinge_qadr)

    @property
    def num_bodies(self) -> int:
        """Moving bodies (the world excluded)."""
        return self.nbody - 1


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BodyArrays:
    """Per-shape numbers the physics reads (traced, so a new shape does not recompile; stacked, a batch of
    bodies). Shapes: nb moving bodies, nv dofs, H hinges, L landmark sites, C contact spheres.

    Controllers: ball_kp [B], hinge_kp [H] PD stiffness (N m/rad); ball_limit [B] max rotation (rad);
      hinge_lo, hinge_hi [H] hinge range (rad).
    Contact: contact_radius [C] (m); contact_local [C, 3] sphere centres in their bodies' frames (m).
    Tree (MuJoCo's model fields, the world's row dropped): body_pos [nb, 3], body_quat [nb, 4] (offset
      from the parent), body_ipos [nb, 3], body_iquat [nb, 4] (inertial frame), body_mass [nb] (kg),
      body_inertia [nb, 3] (kg m^2, principal), jnt_pos [nb, 3] (joint anchor in the body frame),
      jnt_axis [nb, 3] (hinge axis, body frame), hinge_ref [H] (hinge angle at qpos0, rad),
      dof_local_axis [nv, 3] (each dof's axis in its body's frame; the root's translations: world
      axes), dof_damping [nv] (N m s/rad), dof_armature [nv] (kg m^2).
    dof_damping_ref [nv] (N m s/rad): the part of the joint damping that pulls towards the kinematic reference's
      joint velocity rather than rest (`physics.control.reference_damping`); zeros (off) as built, the joint
      damping of the actuated dofs where the reconstruction turns it on (`with_reference_damping`).
    site_pos [L, 3]: landmark sites in their bodies' frames (m). gravity [3] (m/s^2). timestep [] (s).
    """

    ball_kp: jax.Array
    hinge_kp: jax.Array
    ball_limit: jax.Array
    hinge_lo: jax.Array
    hinge_hi: jax.Array
    contact_radius: jax.Array
    contact_local: jax.Array
    body_pos: jax.Array
    body_quat: jax.Array
    body_ipos: jax.Array
    body_iquat: jax.Array
    body_mass: jax.Array
    body_inertia: jax.Array
    jnt_pos: jax.Array
    jnt_axis: jax.Array
    hinge_ref: jax.Array
    dof_local_axis: jax.Array
    dof_damping: jax.Array
    dof_armature: jax.Array
    dof_damping_ref: jax.Array
    site_pos: jax.Array
    gravity: jax.Array
    timestep: jax.Array


@dataclasses.dataclass(frozen=True)
class Body:
    """A built body: shape, MJCF, MuJoCo (CPU) model, layout and arrays."""

    shape: BodyShape
    mjcf: str
    model: mujoco.MjModel
    layout: Layout
    arrays: BodyArrays
    gains: Gains = Gains()

    def summary(self) -> dict:
        return body_summary(self.model, self.shape)

    def spheres_of(self, parts: tuple[str, ...]) -> np.ndarray:
        """[C] bool: which contact spheres belong to the body parts `parts` (`template.CONTACT_PARTS` entries)."""
        wanted = contact_spheres(self.shape, parts)
        m = self.model
        return np.array([any(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[g]) == w.body
                             and np.allclose(m.geom_pos[g], w.pos, atol=1e-6) for w in wanted)
                         for g in self.layout.contact_geoms])

    def foot_spheres(self, side: str) -> np.ndarray:
        """[C] bool: the contact spheres of the `side` ("left" or "right") foot (`template.FEET_ONLY`)."""
        m = self.model
        on_side = np.array([(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[g]) or "").startswith(side)
                            for g in self.layout.contact_geoms])
        return self.spheres_of(FEET_ONLY) & on_side


def _body_of_joint_checks(model: mujoco.MjModel) -> None:
    """The tree the physics handles: one joint per moving body, a free root, balls and hinges below."""
    types = [int(model.jnt_type[j]) for j in range(model.njnt)]
    ok = (model.njnt == model.nbody - 1 and all(model.body_jntnum[1:] == 1)
          and list(model.body_jntadr[1:]) == list(range(model.njnt)) and types[0] == mujoco.mjtJoint.mjJNT_FREE
          and all(t in (mujoco.mjtJoint.mjJNT_BALL, mujoco.mjtJoint.mjJNT_HINGE) for t in types[1:])
          and model.body_parentid[1] == 0 and all(model.body_parentid[2:] > 0))
    if not ok:
        raise ValueError("the body model must have one joint per body: a free root, then ball or hinge joints")


def layout_of(model: mujoco.MjModel) -> Layout:
    _body_of_joint_checks(model)
    ball = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_BALL]
    hinge = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    contacts = [g for g in range(model.ngeom)
                if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or "").find("_contact_") >= 0]
    nb = model.nbody - 1
    parent = [int(model.body_parentid[b + 1]) - 1 for b in range(nb)]
    depth = [0] * nb
    for b in range(1, nb):
        depth[b] = depth[parent[b]] + 1
    levels = tuple(tuple(b for b in range(nb) if depth[b] == d) for d in range(max(depth) + 1))
    quat_joints = [0] + ball  # joint j sits on body j (checked)
    rotation_order = [0] * nb
    for i, j in enumerate(quat_joints + hinge):
        rotation_order[j] = i
    dof_body = [int(model.dof_bodyid[k]) - 1 for k in range(model.nv)]
    mask = [[0] * model.nv for _ in range(nb)]
    for b in range(nb):
        a = b
        while a >= 0:
            for k in range(model.nv):
                if dof_body[k] == a:
                    mask[b][k] = 1
            a = parent[a]
    sites = tuple(int(i) for i in site_order(model))
    return Layout(
        nq=model.nq, nv=model.nv, nbody=model.nbody,
        ball_qadr=tuple(int(model.jnt_qposadr[j]) for j in ball),
        ball_dadr=tuple(int(model.jnt_dofadr[j]) for j in ball),
        hinge_qadr=tuple(int(model.jnt_qposadr[j]) for j in hinge),
        hinge_dadr=tuple(int(model.jnt_dofadr[j]) for j in hinge),
        contact_geoms=tuple(contacts),
        contact_bodies=tuple(int(model.geom_bodyid[g]) - 1 for g in contacts),
        sites=sites, site_bodies=tuple(int(model.site_bodyid[s]) - 1 for s in sites),
        body_parent=tuple(parent), levels=levels,
        quat_qadr=(3,) + tuple(int(model.jnt_qposadr[j]) for j in ball),
        quat_dadr=(3,) + tuple(int(model.jnt_dofadr[j]) for j in ball),
        hinge_bodies=tuple(hinge), rotation_order=tuple(rotation_order),
        dof_body=tuple(dof_body), dof_parent_body=tuple(parent[b] for b in dof_body),
        dof_is_translation=tuple(k < 3 for k in range(model.nv)),
        ancestor_mask=tuple(tuple(row) for row in mask),
        subtree_mask=tuple(tuple(int(_is_ancestor(b, d, parent)) for d in range(nb)) for b in range(nb)),
        dof_lower_mask=tuple(tuple(mask[dof_body[k]][j] for j in range(model.nv)) for k in range(model.nv)),
    )


def _is_ancestor(a: int, b: int, parent: list[int]) -> bool:
    """Whether body a is body b or one of its ancestors."""
    while b >= 0:
        if b == a:
            return True
        b = parent[b]
    return False


def arrays_of(model: mujoco.MjModel, layout: Layout) -> BodyArrays:
    jnt_of_q = {int(model.jnt_qposadr[j]): j for j in range(model.njnt)}
    ball = [jnt_of_q[a] for a in layout.ball_qadr]
    hinge = [jnt_of_q[a] for a in layout.hinge_qadr]
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))
    local_axis = np.zeros((model.nv, 3))
    for k in range(model.nv):
        j = int(model.dof_jntid[k])
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE:
            local_axis[k] = model.jnt_axis[j]
        else:  # free (3 translations, then 3 rotations) and ball joints: the frame's own axes
            local_axis[k, (k - int(model.jnt_dofadr[j])) % 3] = 1.0
    geoms = list(layout.contact_geoms)
    return BodyArrays(
        ball_kp=f32(model.jnt_user[ball, 0]), hinge_kp=f32(model.jnt_user[hinge, 0]),
        ball_limit=f32(model.jnt_range[ball, 1]),
        hinge_lo=f32(model.jnt_range[hinge, 0]), hinge_hi=f32(model.jnt_range[hinge, 1]),
        contact_radius=f32(model.geom_size[geoms, 0]), contact_local=f32(model.geom_pos[geoms]),
        body_pos=f32(model.body_pos[1:]), body_quat=f32(model.body_quat[1:]),
        body_ipos=f32(model.body_ipos[1:]), body_iquat=f32(model.body_iquat[1:]),
        body_mass=f32(model.body_mass[1:]), body_inertia=f32(model.body_inertia[1:]),
        jnt_pos=f32(model.jnt_pos), jnt_axis=f32(model.jnt_axis),
        hinge_ref=f32(model.qpos0[list(layout.hinge_qadr)]), dof_local_axis=f32(local_axis),
        dof_damping=f32(model.dof_damping), dof_armature=f32(model.dof_armature),
        dof_damping_ref=f32(np.zeros(model.nv)), site_pos=f32(model.site_pos[list(layout.sites)]),
        gravity=f32(model.opt.gravity),
        timestep=f32(model.opt.timestep),
    )


def with_reference_damping(body: "Body", fraction: float) -> "Body":
    """`body` with `fraction` of each actuated dof's joint damping pulling towards the kinematic reference's joint
    velocity (`BodyArrays.dof_damping_ref`; 0: towards rest, as built; the root's dofs never)."""
    ref = np.asarray(body.model.dof_damping, np.float64) * float(fraction)
    ref[:6] = 0.0
    arrays = dataclasses.replace(body.arrays, dof_damping_ref=jnp.asarray(ref, jnp.float32))
    return dataclasses.replace(body, arrays=arrays)


def build_body(shape: BodyShape = BodyShape(), gains: Gains = Gains(), timestep: float = 1.0 / 480.0,
               contact_parts: tuple[str, ...] = CONTACT_PARTS) -> Body:
    """Builds the simulated body for `shape` (MJCF, MuJoCo model, layout and arrays) with contact spheres on the
    body parts `contact_parts` (`body.template.CONTACT_PARTS`)."""
    mjcf = build_mjcf(shape, gains, timestep, contact_parts)
    model = mujoco.MjModel.from_xml_string(mjcf)
    layout = layout_of(model)
    return Body(shape=shape, mjcf=mjcf, model=model, layout=layout, arrays=arrays_of(model, layout), gains=gains)
