"""The shape-specific simulated body: `Body` = MJCF + compiled models + the arrays the physics needs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from motionrecon.body.template import BodyShape, Gains, body_summary, build_mjcf, site_order


@dataclasses.dataclass(frozen=True)
class Layout:
    """Index structure of the humanoid topology (identical for every shape; static under jit).

    ball_*/hinge_*: qpos / dof addresses of the actuated joints, in model order.
    contact_geoms, contact_bodies, contact_roots: the foot contact spheres, the bodies they sit on,
      and those bodies' tree roots.
    sites: site ids of `skeleton.BODY_LANDMARKS`, in that order.
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
    contact_roots: tuple[int, ...]
    sites: tuple[int, ...]

    @property
    def num_controls(self) -> int:
        """Control values per keyframe: a rotation vector per ball joint, an angle per hinge."""
        return 3 * len(self.ball_qadr) + len(self.hinge_qadr)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BodyArrays:
    """Per-shape numbers the physics reads (traced, so a new shape does not recompile).

    ball_kp [B], hinge_kp [H]: PD stiffness (N m/rad). ball_limit [B]: max rotation (rad).
    hinge_lo, hinge_hi [H]: hinge range (rad). contact_radius [C] (m).
    """

    ball_kp: jax.Array
    hinge_kp: jax.Array
    ball_limit: jax.Array
    hinge_lo: jax.Array
    hinge_hi: jax.Array
    contact_radius: jax.Array


@dataclasses.dataclass(frozen=True)
class Body:
    """A built body: shape, MJCF, MuJoCo (CPU) and MJX models, layout and arrays."""

    shape: BodyShape
    mjcf: str
    model: mujoco.MjModel
    mjx_model: object
    layout: Layout
    arrays: BodyArrays
    gains: Gains = Gains()

    def summary(self) -> dict:
        return body_summary(self.model, self.shape)


def layout_of(model: mujoco.MjModel) -> Layout:
    ball = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_BALL]
    hinge = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    contacts = [g for g in range(model.ngeom)
                if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or "").find("_contact_") >= 0]
    return Layout(
        nq=model.nq, nv=model.nv, nbody=model.nbody,
        ball_qadr=tuple(int(model.jnt_qposadr[j]) for j in ball),
        ball_dadr=tuple(int(model.jnt_dofadr[j]) for j in ball),
        hinge_qadr=tuple(int(model.jnt_qposadr[j]) for j in hinge),
        hinge_dadr=tuple(int(model.jnt_dofadr[j]) for j in hinge),
        contact_geoms=tuple(contacts),
        contact_bodies=tuple(int(model.geom_bodyid[g]) for g in contacts),
        contact_roots=tuple(int(model.body_rootid[model.geom_bodyid[g]]) for g in contacts),
        sites=tuple(int(i) for i in site_order(model)),
    )


def arrays_of(model: mujoco.MjModel, layout: Layout) -> BodyArrays:
    jnt_of_q = {int(model.jnt_qposadr[j]): j for j in range(model.njnt)}
    ball = [jnt_of_q[a] for a in layout.ball_qadr]
    hinge = [jnt_of_q[a] for a in layout.hinge_qadr]
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))
    return BodyArrays(
        ball_kp=f32(model.jnt_user[ball, 0]), hinge_kp=f32(model.jnt_user[hinge, 0]),
        ball_limit=f32(model.jnt_range[ball, 1]),
        hinge_lo=f32(model.jnt_range[hinge, 0]), hinge_hi=f32(model.jnt_range[hinge, 1]),
        contact_radius=f32(model.geom_size[list(layout.contact_geoms), 0]),
    )


def build_body(shape: BodyShape = BodyShape(), gains: Gains = Gains(), timestep: float = 1.0 / 480.0) -> Body:
    """Builds the simulated body for `shape` (MJCF, MuJoCo model, MJX model)."""
    from motionrecon.physics.mjx_import import mjx

    mjcf = build_mjcf(shape, gains, timestep)
    model = mujoco.MjModel.from_xml_string(mjcf)
    layout = layout_of(model)
    return Body(shape=shape, mjcf=mjcf, model=model, mjx_model=shape_independent_statics(mjx.put_model(model)),
                layout=layout, arrays=arrays_of(model, layout), gains=gains)


def shape_independent_statics(mjx_model):
    """The MJX model with the same static (pytree metadata) fields for every body shape.

    MJX keeps the geoms' bounding radii, which change with the body's shape, as
    static metadata (`_impl.geom_rbound_hfield`), read only for height-field
    collisions. The body has no height field, so a constant value there keeps one
    compiled window problem valid for every subject (otherwise calling it with a
    second body fails: "pytree node metadata does not match").
    """
    impl = getattr(mjx_model, "_impl", None)
    if impl is None or not hasattr(impl, "geom_rbound_hfield"):
        return mjx_model
    return mjx_model.replace(_impl=impl.replace(geom_rbound_hfield=np.zeros_like(impl.geom_rbound_hfield)))
