"""Damping towards the kinematic reference's joint velocity (`control.reference_velocity`,
`control.reference_damping`, `BodyArrays.dof_damping_ref`)."""

import dataclasses

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from motionrecon.body import build_body, with_reference_damping
from motionrecon.physics import contact, control, quat
from motionrecon.physics.rollout import SimState, rollout

FPS, SPF = 30.0, 4


@pytest.fixture(scope="module")
def body():
    return build_body(timestep=1.0 / (FPS * SPF), contact_parts=("feet",))


def moving_reference(body, n: int, seed: int = 0):
    """[n, nq] poses whose every ball joint turns at a constant angular velocity (child frame) and every hinge at
    a constant rate from a random start (root fixed 3 m up), and that joint velocity [nv] (root dofs 0)."""
    m, layout = body.model, body.layout
    rng = np.random.default_rng(seed)
    sign = lambda n: rng.choice([-1.0, 1.0], n)
    qvel = np.zeros(m.nv)
    for a in layout.ball_dadr:  # rad/s, within the joint ranges over half a second
        qvel[a:a + 3] = sign(3) * rng.uniform(0.3, 0.6, 3)
    for a in layout.hinge_dadr:  # fast knees and elbows
        qvel[a] = sign(1)[0] * rng.uniform(1.0, 2.0)
    q = np.asarray(m.qpos0, np.float64).copy()
    q[2] = 3.0
    for a in layout.ball_qadr:
        q[a:a + 4] = np.asarray(quat.exp(jnp.asarray(rng.uniform(-0.15, 0.15, 3))))
    for a in layout.hinge_qadr:
        q[a] = rng.uniform(1.2, 1.4)
    poses = [q.copy()]
    for _ in range(n - 1):
        mujoco.mj_integratePos(m, q, qvel, 1.0 / FPS)
        poses.append(q.copy())
    return np.asarray(poses), qvel


def test_reference_velocity_is_mujocos_velocity_between_the_poses(body):
    poses, qvel = moving_reference(body, 2)
    got = np.asarray(control.reference_velocity(jnp.asarray(poses[0], jnp.float32), jnp.asarray(poses[1], jnp.float32),
                                                1.0 / FPS, body.layout))
    want = np.zeros(body.model.nv)
    mujoco.mj_differentiatePos(body.model, want, 1.0 / FPS, poses[0], poses[1])
    want[:6] = 0.0
    np.testing.assert_allclose(got, want, atol=2e-3)
    np.testing.assert_allclose(got[6:], qvel[6:], atol=2e-3)


def test_damping_vanishes_at_the_reference_velocity_and_only_there(body):
    """With the reference damping on, the joint damping's force -kd qdot + kd qdot_ref is zero when the joints
    move at the reference's velocity; off (as built), it brakes them to rest."""
    poses, qvel = moving_reference(body, 2, seed=1)
    ref = control.reference_velocity(jnp.asarray(poses[0], jnp.float32), jnp.asarray(poses[1], jnp.float32),
                                     1.0 / FPS, body.layout)
    kd = np.asarray(body.arrays.dof_damping)
    on = with_reference_damping(body, 1.0).arrays
    net_on = -kd * np.asarray(ref) + np.asarray(control.reference_damping(ref, on))
    np.testing.assert_allclose(net_on, 0.0, atol=1e-4)
    net_off = -kd * np.asarray(ref) + np.asarray(control.reference_damping(ref, body.arrays))
    assert np.all(np.abs(net_off[6:]) > 0.5 * kd[6:] * np.abs(qvel[6:]))
    assert np.all(np.asarray(on.dof_damping_ref)[:6] == 0.0) and np.all(np.asarray(on.dof_damping_ref)[6:] > 0)


def _lag(body, arrays, frames: int = 15):
    """A body without gravity, 3 m above the floor, whose PD targets are the moving reference with zero
    offsets, starting on it with its velocity: the mean joint-velocity error and the mean hinge angle error
    (rad) over the last third of the window."""
    poses, qvel = moving_reference(body, frames + 1, seed=2)
    arrays = dataclasses.replace(arrays, gravity=jnp.zeros(3, jnp.float32))
    C = len(body.layout.contact_geoms)
    init = SimState(jnp.asarray(poses[0], jnp.float32), jnp.asarray(qvel, jnp.float32), jnp.zeros((C, 2), jnp.float32))
    keyframes = jnp.zeros((6, body.layout.num_controls), jnp.float32)
    traj = rollout(arrays, contact.ContactParams(), init, jnp.asarray(poses, jnp.float32), keyframes,
                   layout=body.layout, spf=SPF)
    tail = slice(2 * frames // 3, None)
    hinges = list(body.layout.hinge_qadr)
    vel_err = np.abs(np.asarray(traj.qvel)[tail, 6:] - qvel[6:]).mean()
    angle_err = np.abs(np.asarray(traj.qpos)[tail][:, hinges] - poses[1:][tail][:, hinges]).mean()
    return vel_err, angle_err


def test_joints_follow_a_fast_reference_without_lag_only_with_reference_damping(body):
    vel_off, angle_off = _lag(body, body.arrays)
    vel_on, angle_on = _lag(body, with_reference_damping(body, 1.0).arrays)
    # Damped towards rest the joints lag behind the reference (kp e = kd qdot: e ~ qdot / 10 rad); damped towards
    # the reference's velocity they keep up.
    assert angle_off > 0.05, angle_off
    assert angle_on < 0.3 * angle_off, (angle_on, angle_off)
    assert vel_on < 0.5 * vel_off, (vel_on, vel_off)
