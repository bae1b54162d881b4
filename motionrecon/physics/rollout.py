"""Simulation: one step of MJX dynamics with our PD and contact forces, and window rollouts.

A window covers F observation frames after its initial state, `spf` simulation
steps per frame (the timestep is chosen so that frames fall on steps). Outputs
are sampled at the end of every frame.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
from motionrecon.physics.mjx_import import mjx

from motionrecon.body import BodyArrays, Layout
from motionrecon.physics import contact, control


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SimState:
    """Simulator state carried between windows: qpos [nq], qvel [nv], friction anchors [C, 2]."""

    qpos: jax.Array
    qvel: jax.Array
    anchor: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Per-frame outputs of a rollout (F frames): markers [F, L, 3] (BODY_LANDMARKS order),
    qpos [F, nq], qvel [F, nv], anchor [F, C, 2], contact_pos [F, C, 3] (sphere centres)."""

    markers: jax.Array
    qpos: jax.Array
    qvel: jax.Array
    anchor: jax.Array
    contact_pos: jax.Array

    def state(self, frame) -> SimState:
        return SimState(self.qpos[frame], self.qvel[frame], self.anchor[frame])


def _contact_wrench(m, d, anchor, arrays: BodyArrays, layout: Layout, params: contact.ContactParams):
    """xfrc_applied [nbody, 6] from the foot contacts, and the new anchors."""
    geoms = jnp.asarray(layout.contact_geoms)
    bodies = jnp.asarray(layout.contact_bodies)
    p = d.geom_xpos[geoms]
    cvel = d.cvel[bodies]  # [ang, lin] at the subtree com of the body's tree root
    v = cvel[:, 3:] + jnp.cross(cvel[:, :3], p - d.subtree_com[jnp.asarray(layout.contact_roots)])
    f, anchor = contact.forces(p, v, anchor, arrays.contact_radius, params)
    point = p - arrays.contact_radius[:, None] * jnp.asarray([0.0, 0.0, 1.0])
    torque = jnp.cross(point - d.xipos[bodies], f)
    onehot = jax.nn.one_hot(bodies, layout.nbody, dtype=f.dtype)  # [C, nbody]
    return onehot.T @ jnp.concatenate([f, torque], axis=-1), anchor


def step(m, d, anchor, ball_target, hinge_target, arrays: BodyArrays, layout: Layout,
         params: contact.ContactParams):
    """One Euler step. Returns (new mjx.Data, new anchors); the returned Data's
    kinematic fields (xpos, site_xpos, ...) describe the state *before* the step."""
    d = mjx.fwd_position(m, d)
    d = mjx.fwd_velocity(m, d)
    qfrc = control.pd_torques(d.qpos, ball_target, hinge_target, arrays, layout)
    xfrc, anchor = _contact_wrench(m, d, anchor, arrays, layout, params)
    d = d.replace(qfrc_applied=qfrc, xfrc_applied=xfrc)
    d = mjx.fwd_acceleration(m, d)
    d = d.replace(qacc=d.qacc_smooth)
    return mjx.euler(m, d), anchor


@partial(jax.jit, static_argnames=("layout", "spf"))
def rollout(m, arrays: BodyArrays, params: contact.ContactParams, init: SimState, base_qpos, keyframes,
            *, layout: Layout, spf: int) -> Trajectory:
    """Simulates one window.

    Args:
      m: mjx.Model (traced: a new body shape does not recompile).
      init: the state at the window's first frame.
      base_qpos: [F+1, nq] kinematic poses at the window's frames (PD target base).
      keyframes: [K, U] control offsets, spread evenly over the window.
      spf: simulation steps per observation frame.
    Returns: the `Trajectory` at frames 1..F.
    """
    F = base_qpos.shape[0] - 1
    d0 = mjx.make_data(m).replace(qpos=init.qpos, qvel=init.qvel)
    sites = jnp.asarray(layout.sites)
    geoms = jnp.asarray(layout.contact_geoms)

    def frame(carry, f):
        def sub(carry, j):
            d, anchor = carry
            tau = j / spf
            offset = control.keyframe_offsets(keyframes, (f + tau) / F)
            ball, hinge = control.targets(base_qpos[f], base_qpos[f + 1], tau, offset, layout)
            return step(m, d, anchor, ball, hinge, arrays, layout, params), None

        # No jax.checkpoint here: rematerialising each step measured 14x slower value-and-grad.
        (d, anchor), _ = jax.lax.scan(sub, carry, jnp.arange(spf))
        dk = mjx.kinematics(m, d)
        out = Trajectory(dk.site_xpos[sites], d.qpos, d.qvel, anchor, dk.geom_xpos[geoms])
        return (d, anchor), out

    _, traj = jax.lax.scan(frame, (d0, init.anchor), jnp.arange(F))
    return traj
