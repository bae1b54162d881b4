"""Simulation: one step of the body's dynamics (`dynamics`) with our PD and contact forces, and window rollouts.

A window covers F observation frames after its initial state, `spf` simulation
steps per frame (the timestep is chosen so that frames fall on steps). Outputs
are sampled at the end of every frame.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp

from motionrecon.body import BodyArrays, Layout
from motionrecon.physics import contact, control, dynamics


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


def contact_forces(frames: dynamics.Frames, sp: dynamics.Spatial, velocities, anchor, arrays: BodyArrays,
                   layout: Layout, params: contact.ContactParams, seats=None, seated=None):
    """The ground contacts as generalised forces [nv], their stiffness and damping [nv, nv] (for the
    implicit step), and the new anchors [C, 2].

    Each sphere's force (`contact.forces`, from the centre's position and velocity) acts at its lowest
    point, p - r z; J is that point's Jacobian, and K = J^T diag(k) J, C = J^T diag(c) J with the
    sphere's stiffness k and damping c along x, y, z (`contact.linearisation`). seats: [S, 5] seat rows
    (`contact.support_height`; None or S = 0: the floor alone) that the spheres with `seated` [C] = 1 rest on."""
    bodies = layout.contact_bodies
    p = dynamics.body_points(frames, bodies, arrays.contact_local)
    v = dynamics.point_velocities(sp, velocities, p, bodies)
    above = p  # the sphere centres over what holds them up: the floor, or a seat
    if seats is not None and seats.shape[0]:
        above = p.at[:, 2].add(-seated * contact.support_height(p[:, :2], seats))
    f, new_anchor = contact.forces(above, v, anchor, arrays.contact_radius, params)
    k, c = contact.linearisation(above, v, anchor, arrays.contact_radius, params)
    lowest = p - arrays.contact_radius[:, None] * jnp.asarray([0.0, 0.0, 1.0], p.dtype)
    jac = dynamics.point_jacobian(sp, lowest, bodies, layout)  # [C, nv, 3]
    qfrc = jnp.einsum("ckx,cx->k", jac, f)
    stiffness = jnp.einsum("ckx,cx,cjx->kj", jac, k, jac)
    damping = jnp.einsum("ckx,cx,cjx->kj", jac, c, jac)
    return qfrc, stiffness, damping, new_anchor


def step(qpos, qvel, anchor, ball_target, hinge_target, arrays: BodyArrays, layout: Layout,
         params: contact.ContactParams, qvel_ref=None, seats=None, seated=None):
    """One linearly implicit Euler step (timestep `arrays.timestep`) under PD torques, soft joint limits
    and ground contact, the PD springs and the contacts treated implicitly (`dynamics.acceleration`);
    qvel_ref [nv]: the reference's joint velocity the damping pulls towards (`control.reference_damping`;
    None: rest).
    Returns ((qpos', qvel', anchor'), (landmark sites [L, 3], contact sphere centres [C, 3]) at the
    state before the step). seats, seated: see `contact_forces`."""
    frames = dynamics.kinematics(qpos, arrays, layout)
    sp = dynamics.spatial(frames, arrays, layout)
    velocities = dynamics.body_velocities(sp, qvel, layout)
    qfrc_contact, k_contact, c_contact, new_anchor = contact_forces(frames, sp, velocities, anchor, arrays, layout,
                                                                    params, seats, seated)
    qfrc = control.pd_torques(qpos, ball_target, hinge_target, arrays, layout) + qfrc_contact
    if qvel_ref is not None:
        qfrc = qfrc + control.reference_damping(qvel_ref, arrays)
    stiffness = jnp.diag(control.pd_stiffness(arrays, layout)) + k_contact
    qacc = dynamics.acceleration(qvel, qfrc, sp, arrays, layout, stiffness, c_contact)
    new_qpos, new_qvel = dynamics.integrate(qpos, qvel, qacc, arrays.timestep, layout)
    seen = (dynamics.body_points(frames, layout.site_bodies, arrays.site_pos),
            dynamics.body_points(frames, layout.contact_bodies, arrays.contact_local))
    return (new_qpos, new_qvel, new_anchor), seen


@partial(jax.jit, static_argnames=("layout", "spf"))
def rollout(arrays: BodyArrays, params: contact.ContactParams, init: SimState, base_qpos, keyframes,
            seats=None, seated=None, *, layout: Layout, spf: int) -> Trajectory:
    """Simulates one window.

    Args:
      arrays: the body (traced: a new body shape does not recompile; its timestep is the step length).
      init: the state at the window's first frame.
      base_qpos: [F+1, nq] kinematic poses at the window's frames (PD target base; between frames f and
        f + 1 their joint velocity is what `arrays.dof_damping_ref` damps towards).
      keyframes: [K, U] control offsets, spread evenly over the window.
      spf: simulation steps per observation frame.
      seats: [S, 5] seats the spheres with `seated` [C] = 1 rest on (`contact_forces`; None: the floor alone).
    Returns: the `Trajectory` at frames 1..F.

    One scan over the window's steps, each rematerialised in the backward pass (only the state between
    steps is stored). Frame f is the state after step (f + 1) spf - 1; its markers and contact spheres
    are the ones the next step computes anyway (every step reports its starting state's), so the scan
    runs one step past the window's end and nothing else computes kinematics.
    """
    F = base_qpos.shape[0] - 1
    last = F * spf - 1
    frame_dt = arrays.timestep * spf
    qvel_ref = jax.vmap(lambda a, b: control.reference_velocity(a, b, frame_dt, layout))(base_qpos[:-1],
                                                                                         base_qpos[1:])  # [F, nv]

    def sub(carry, i):
        i = jnp.minimum(i, last)  # the extra step past the end repeats the last step's targets
        f = i // spf
        tau = (i % spf) / spf
        offset = control.keyframe_offsets(keyframes, (f + tau) / F)
        ball, hinge = control.targets(base_qpos[f], base_qpos[f + 1], tau, offset, arrays, layout)
        new, seen = step(*carry, ball, hinge, arrays, layout, params, qvel_ref[f], seats, seated)
        return new, (carry, seen)

    sub = jax.checkpoint(sub, prevent_cse=False)
    _, (states, (sites, spheres)) = jax.lax.scan(sub, (init.qpos, init.qvel, init.anchor), jnp.arange(F * spf + 1))
    at_frames = slice(spf, None, spf)  # starting states of steps spf, 2 spf, ..., F spf
    qpos, qvel, anchor = (a[at_frames] for a in states)
    return Trajectory(sites[at_frames], qpos, qvel, anchor, spheres[at_frames])
