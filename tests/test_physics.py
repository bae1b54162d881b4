"""Physics: contact model, standing, gradients through contact, and a guard on the pinned MJX behaviour."""

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from motionrecon import diffphy
from motionrecon.body import build_body
from motionrecon.body.fit import inverse_kinematics, measure_shape
from motionrecon.physics import contact
from motionrecon.reconstruct import WindowProblem, _PROBLEMS, _frames_per_window, _initial_state
from motionrecon.skeleton import BODY_LANDMARKS


def test_contact_force_pushes_up_and_sticks():
    p = jnp.array([[0.0, 0.0, 0.01], [0.0, 0.0, 0.05]])  # first sphere 5 mm deep, second in the air
    v = jnp.zeros((2, 3))
    anchor = jnp.array([[-0.001, 0.0], [0.0, 0.0]])
    f, new_anchor = contact.forces(p, v, anchor, jnp.array([0.015, 0.015]), contact.ContactParams())
    k = contact.ContactParams().stiffness
    assert 0.8 * k * 0.005 < float(f[0, 2]) < 1.3 * k * 0.005  # about k * 5 mm
    assert abs(float(f[1, 2])) < 1e-3
    assert float(f[0, 0]) < 0  # the stiction spring pulls back towards the anchor
    np.testing.assert_allclose(new_anchor[0], anchor[0], atol=1e-9)  # within the cone: no slip
    # Far outside the cone the anchor follows the sphere.
    f2, a2 = contact.forces(p, v, jnp.array([[-1.0, 0.0], [0.0, 0.0]]), jnp.array([0.015, 0.015]),
                            contact.ContactParams())
    assert abs(float(f2[0, 0])) <= 0.9 * float(f2[0, 2]) * 1.001
    params = contact.ContactParams()
    cone = params.friction * float(f2[0, 2]) / params.tangential_stiffness
    np.testing.assert_allclose(float(a2[0, 0]), -cone, rtol=1e-3)  # dragged to the cone's edge


@pytest.fixture(scope="module")
def walk_window(walk_1s, test_config):
    """The first window of the walk: body, IK, compiled problem, window data."""
    obs = walk_1s
    F, ov, K, spf = _frames_per_window(test_config, obs.fps, obs.num_frames)
    body = build_body(measure_shape(obs), timestep=1.0 / (obs.fps * spf))
    qkin = inverse_kinematics(body.model, obs)
    key = (obs.joint_set, F, K, spf)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = WindowProblem(body, obs.skeleton.num_joints, F, K, spf, test_config)
    problem = _PROBLEMS[key]
    problem.body, problem.cfg = body, test_config
    lm = jnp.asarray([BODY_LANDMARKS.index(x) for x in obs.skeleton.landmarks], jnp.int32)
    data = diffphy.WindowData(
        init=_initial_state(body, qkin[0], qkin[1], 1 / obs.fps), base_qpos=jnp.asarray(qkin[: F + 1], jnp.float32),
        observed=jnp.asarray(obs.joints3d[1: F + 1], jnp.float32),
        confidence=jnp.ones((F, obs.skeleton.num_joints), jnp.float32), landmarks=lm,
        **diffphy.no_2d(F, obs.skeleton.num_joints))
    return problem, data, body, qkin


def standing_pose(body, lean=0.025):
    """Rest pose leaning forward `lean` rad at the ankles, feet flat: the centre of mass over mid-foot."""
    q = np.asarray(body.model.qpos0).copy()
    half = 0.5 * lean
    q[3:7] = [np.cos(half), 0.0, np.sin(half), 0.0]  # pitch forward about +y
    for adr in body.layout.ball_qadr:
        name = mujoco.mj_id2name(body.model, mujoco.mjtObj.mjOBJ_JOINT,
                                 int(np.where(body.model.jnt_qposadr == adr)[0][0]))
        if name.endswith("_foot"):
            q[adr:adr + 4] = [np.cos(half), 0.0, -np.sin(half), 0.0]  # keep the feet flat
    return q


def test_standing_body_with_zero_control_error_stays_standing(walk_window):
    problem, data, body, _ = walk_window
    q0 = standing_pose(body)
    stand = dataclasses.replace(data, init=_initial_state(body, q0, q0, 1 / 30),
                                base_qpos=jnp.tile(jnp.asarray(q0, jnp.float32), (problem.F + 1, 1)))
    x = np.zeros(problem.K * body.layout.num_controls)
    heights = []
    for _ in range(4):  # 4 chained windows = 2 s
        _, traj, _ = problem.run(x, stand)
        heights.append(np.asarray(traj.qpos[:, 2]))
        stand = dataclasses.replace(stand, init=traj.state(problem.F - 1))
    heights = np.concatenate(heights)
    assert np.all(np.abs(heights - q0[2]) < 0.03), (heights.min(), heights.max())
    feet = np.asarray(traj.contact_pos[-1])
    assert np.all(feet[:, 2] < 0.02)  # still on the ground


def test_gradient_matches_central_differences_through_contact(walk_window):
    problem, data, body, _ = walk_window
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal(problem.K * body.layout.num_controls)
    f = problem.fun_and_grad(data)
    _, traj, _ = problem.run(x, data)
    depth = np.asarray(body.arrays.contact_radius) - np.asarray(traj.contact_pos[..., 2])
    assert depth.max() > 0.002, "the window must exercise foot contact"
    loss, grad = f(x)
    assert np.all(np.isfinite(grad)) and np.linalg.norm(grad) > 0
    for seed in range(3):
        u = np.random.default_rng(10 + seed).standard_normal(x.shape)
        u /= np.linalg.norm(u)
        h = 3e-3
        fd = (f(x + h * u)[0] - f(x - h * u)[0]) / (2 * h)
        assert abs(fd - grad @ u) <= 0.03 * abs(grad @ u) + 1e-3 * np.linalg.norm(grad), (fd, grad @ u)


def test_pinned_simulation_behaviour(walk_window):
    """Fails loudly when an upgrade of jax/mujoco/mjx changes the simulation.

    Golden numbers measured with jax 0.10.2, mujoco 4.0.0, mujoco-mjx 3.17.0 (pinned in pyproject).
    """
    problem, data, body, _ = walk_window
    loss, traj, _ = problem.run(np.zeros(problem.K * body.layout.num_controls), data)
    pelvis_end = np.asarray(traj.qpos[-1, :3])
    np.testing.assert_allclose(float(loss), GOLDEN_LOSS, rtol=2e-3)
    np.testing.assert_allclose(pelvis_end, GOLDEN_PELVIS, atol=2e-3)


GOLDEN_LOSS = 173.32522583007812
GOLDEN_PELVIS = np.array([0.42050352692604065, 0.0817970409989357, 0.8472384810447693])
