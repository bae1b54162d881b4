"""Control parameterisation and PD torques.

The control trajectory of a window is a set of K keyframes [K, U] of offsets
from the kinematic initialisation: a rotation vector (rad) per ball joint and an
angle (rad) per hinge, U = 3 B + H. Between keyframes the offsets are linearly
interpolated; the kinematic pose itself is interpolated between observation
frames (nlerp for ball joints). The PD target of a ball joint is
q_target = q_kin * exp(offset) (offset in the joint's child frame), of a hinge
theta_kin + offset.

PD torque (N m): tau = kp * log(q^-1 q_target) for ball joints (child frame, as
MuJoCo's ball dofs), kp * (theta_target - theta) for hinges. Damping kd = kp/10
is MuJoCo joint damping, integrated implicitly by the Euler integrator: it pulls
every joint towards rest. Optionally (`BodyArrays.dof_damping_ref`, the
reconstruction's `reference_velocity_damping`) an explicit force kd_ref * qdot_ref
per actuated dof moves that pull to the kinematic reference's own joint velocity
qdot_ref (`reference_velocity`): -kd qdot + kd qdot_ref = kd (qdot_ref - qdot)
when kd_ref = kd, so a joint that follows a fast reference is not braked.
Joint limits are soft: a stiff one-sided spring beyond the range. The PD
targets are held within the range too (`within_range`): at most TARGET_SLACK
beyond it, or beyond the kinematic reference's own pose where that lies outside.
A muscle cannot drive a joint past its anatomical range, and the spring
(LIMIT_STIFFNESS) is weaker than the controllers (kp 400-4000): unbounded, a
solver's offsets of 2-3 rad rolled the studio dance's feet onto their sides (an
ankle 135 degrees from rest against a range of 60) and bent knees backwards
(docs/video.md "Session 32").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from motionrecon.body import BodyArrays, Layout
from motionrecon.physics import quat

LIMIT_STIFFNESS = 300.0  # N m / rad beyond the joint range
LIMIT_WIDTH = 0.02  # rad, smoothing of the one-sided spring
TARGET_SLACK = 0.1  # rad a PD target may lie beyond the joint's range (`within_range`)


def _relu(x):
    return LIMIT_WIDTH * jax.nn.softplus(x / LIMIT_WIDTH)


def ball_quats(qpos, layout: Layout):
    """[..., nq] -> [..., B, 4] ball-joint quaternions."""
    idx = jnp.asarray([[a + i for i in range(4)] for a in layout.ball_qadr])
    return qpos[..., idx]


def hinge_angles(qpos, layout: Layout):
    """[..., nq] -> [..., H] hinge angles."""
    return qpos[..., jnp.asarray(layout.hinge_qadr)]


def keyframe_offsets(keyframes, t):
    """Offsets at window time t in [0, 1] from keyframes [K, U] spread evenly over the window. -> [U]."""
    K = keyframes.shape[0]
    s = jnp.clip(t, 0.0, 1.0) * (K - 1)
    k0 = jnp.clip(jnp.floor(s), 0, K - 2).astype(jnp.int32)
    lam = s - k0
    return (1.0 - lam) * keyframes[k0] + lam * keyframes[k0 + 1]


def targets(base_a, base_b, tau, offset, arrays: BodyArrays, layout: Layout):
    """PD targets between kinematic poses base_a, base_b ([nq]) at fraction tau, plus offsets [U], held
    within the joint ranges (`within_range`).

    Returns (ball target quaternions [B, 4], hinge target angles [H]).
    """
    B = len(layout.ball_qadr)
    qa, qb = ball_quats(base_a, layout), ball_quats(base_b, layout)
    base_ball = quat.nlerp(qa, qb, tau)
    base_hinge = (1.0 - tau) * hinge_angles(base_a, layout) + tau * hinge_angles(base_b, layout)
    ball = quat.mul(base_ball, quat.exp(offset[: 3 * B].reshape(B, 3)))
    return within_range(ball, base_hinge + offset[3 * B:], base_ball, base_hinge, arrays)


def _angle(rot):
    """|rot| [...] of rotation vectors [..., 3], smooth at 0."""
    return jnp.sqrt(jnp.sum(rot * rot, axis=-1) + 1e-12)


def within_range(ball, hinge, ref_ball, ref_hinge, arrays: BodyArrays):
    """PD targets (ball quaternions [B, 4], hinge angles [H]) moved back to at most TARGET_SLACK (rad) beyond
    each joint's range, or beyond the reference's pose (ref_ball [B, 4], ref_hinge [H]) where that lies
    outside the range: a ball target's rotation angle, a hinge target's angle, each smoothly (the soft
    limit's `_relu`), so the gradient with respect to the offsets fades out past the bound instead of
    stopping at it. A target inside the range moves by at most 1.4e-4 rad (at its edge; not at all 0.2 rad inside)."""
    rot = quat.log(ball)
    angle = _angle(rot)
    bound = jnp.maximum(arrays.ball_limit, _angle(quat.log(ref_ball))) + TARGET_SLACK
    held = quat.exp(rot * ((angle - _relu(angle - bound)) / angle)[:, None])
    # Well inside the bound the target is passed on as it is, bit for bit: the round trip through log and exp
    # rounds differently in a batched program and in a single one, and the chaotic contact amplifies that.
    ball = jnp.where((angle < bound - 10 * LIMIT_WIDTH)[:, None], ball, held)
    hi = jnp.maximum(arrays.hinge_hi, ref_hinge) + TARGET_SLACK
    lo = jnp.minimum(arrays.hinge_lo, ref_hinge) - TARGET_SLACK
    return ball, hinge - _relu(hinge - hi) + _relu(lo - hinge)


def pd_torques(qpos, ball_target, hinge_target, arrays: BodyArrays, layout: Layout):
    """Generalised forces [nv] of the PD controllers and the soft joint limits (root dofs get 0)."""
    q = ball_quats(qpos, layout)
    err = quat.log(quat.mul(quat.conj(q), ball_target))
    tau_ball = arrays.ball_kp[:, None] * err
    rot = quat.log(q)
    angle = _angle(rot)
    tau_ball = tau_ball - (LIMIT_STIFFNESS * _relu(angle - arrays.ball_limit) / angle)[:, None] * rot
    th = hinge_angles(qpos, layout)
    tau_hinge = (arrays.hinge_kp * (hinge_target - th)
                 - LIMIT_STIFFNESS * (_relu(th - arrays.hinge_hi) - _relu(arrays.hinge_lo - th)))
    ball_dofs = jnp.asarray([[a + i for i in range(3)] for a in layout.ball_dadr]).reshape(-1)
    qfrc = jnp.zeros(layout.nv, qpos.dtype)
    qfrc = qfrc.at[ball_dofs].set(tau_ball.reshape(-1))
    return qfrc.at[jnp.asarray(layout.hinge_dadr)].set(tau_hinge)


def pd_stiffness(arrays: BodyArrays, layout: Layout):
    """The PD controllers' stiffness per dof [nv] (N m/rad; 0 for the root), minus the derivative of
    their torque with respect to the joint's rotation at the target."""
    ball_dofs = jnp.asarray([[a + i for i in range(3)] for a in layout.ball_dadr]).reshape(-1)
    k = jnp.zeros(layout.nv, arrays.ball_kp.dtype).at[ball_dofs].set(jnp.repeat(arrays.ball_kp, 3))
    return k.at[jnp.asarray(layout.hinge_dadr)].set(arrays.hinge_kp)


def reference_velocity(base_a, base_b, frame_dt, layout: Layout):
    """The joint velocity [nv] that takes kinematic pose base_a to base_b ([nq]) in `frame_dt` seconds, in
    MuJoCo's dof convention: log(q_a^-1 q_b) / frame_dt per ball joint (child frame), the angle difference over
    frame_dt per hinge; 0 for the root's six dofs."""
    qa, qb = ball_quats(base_a, layout), ball_quats(base_b, layout)
    w = quat.log(quat.mul(quat.conj(qa), qb)) / frame_dt  # log takes the shorter arc
    rate = (hinge_angles(base_b, layout) - hinge_angles(base_a, layout)) / frame_dt
    ball_dofs = jnp.asarray([[a + i for i in range(3)] for a in layout.ball_dadr]).reshape(-1)
    out = jnp.zeros(layout.nv, base_a.dtype).at[ball_dofs].set(w.reshape(-1))
    return out.at[jnp.asarray(layout.hinge_dadr)].set(rate)


def reference_damping(qvel_ref, arrays: BodyArrays):
    """The explicit generalised force [nv] kd_ref * qdot_ref (`arrays.dof_damping_ref`, 0 on the root and where
    it is off) that, with the implicit joint damping -kd * qdot, damps each joint towards the reference's joint
    velocity qvel_ref [nv] instead of towards rest."""
    return arrays.dof_damping_ref * qvel_ref
