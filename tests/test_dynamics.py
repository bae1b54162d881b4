"""The body's rigid-body dynamics (`physics.dynamics`) against MuJoCo's own functions, at random states."""

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from motionrecon.body import build_body
from motionrecon.body.template import BodyShape
from motionrecon.physics import dynamics


@pytest.fixture(scope="module", params=["template", "tall"])
def body(request):
    shape = BodyShape() if request.param == "template" else BodyShape(thigh=0.5, shin=0.48, upper_arm=0.31)
    return build_body(shape)


def random_state(body, seed):
    """A random pose far from the origin (float32 must keep its precision there) and a random velocity."""
    rng = np.random.default_rng(seed)
    m, layout = body.model, body.layout
    q = m.qpos0.copy()
    q[:3] = [7.0, -4.0, 0.9] + 0.1 * rng.standard_normal(3)
    for a in layout.quat_qadr:
        v = rng.standard_normal(4)
        q[a:a + 4] = v / np.linalg.norm(v)
    for a in layout.hinge_qadr:
        q[a] = rng.uniform(-1.5, 1.5)
    return q, rng.standard_normal(m.nv)


def mujoco_state(body, q, qd):
    d = mujoco.MjData(body.model)
    d.qpos[:], d.qvel[:] = q, qd
    mujoco.mj_forward(body.model, d)
    return d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kinematics_mass_matrix_and_bias_forces_match_mujoco(body, seed):
    q, qd = random_state(body, seed)
    d = mujoco_state(body, q, qd)
    layout, arrays = body.layout, body.arrays
    frames = dynamics.kinematics(jnp.asarray(q, jnp.float32), arrays, layout)
    np.testing.assert_allclose(np.asarray(frames.pos), d.xpos[1:], atol=2e-6)
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(frames.quat) * d.xquat[1:], -1)), 1.0, atol=1e-6)
    sites = dynamics.body_points(frames, layout.site_bodies, arrays.site_pos)
    np.testing.assert_allclose(np.asarray(sites), d.site_xpos[list(layout.sites)], atol=2e-6)
    sp = dynamics.spatial(frames, arrays, layout)
    full = np.zeros((body.model.nv, body.model.nv))
    mujoco.mj_fullM(body.model, d, full)
    np.testing.assert_allclose(np.asarray(dynamics.mass_matrix(sp, arrays, layout)), full, atol=2e-5 * np.abs(full).max())
    bias = np.asarray(dynamics.bias_force(sp, jnp.asarray(qd, jnp.float32), arrays, layout))
    np.testing.assert_allclose(bias, d.qfrc_bias, atol=1e-5 * np.abs(d.qfrc_bias).max() + 1e-4)
    velocity = dynamics.body_velocities(sp, jnp.asarray(qd, jnp.float32), layout)
    got = np.asarray(dynamics.point_velocities(sp, velocity, sites, layout.site_bodies))
    res = np.zeros(6)
    for i, s in enumerate(layout.sites):
        mujoco.mj_objectVelocity(body.model, d, mujoco.mjtObj.mjOBJ_SITE, s, res, 0)
        np.testing.assert_allclose(got[i], res[3:], atol=2e-5)


def test_a_step_with_forces_at_points_matches_mujoco_euler_step(body):
    """Without the implicit stiffness terms the step is MuJoCo's Euler step (damping implicit) under the same
    generalised forces: here joint torques and a force on a point of the right foot."""
    q, qd = random_state(body, 5)
    d = mujoco_state(body, q, qd)
    layout, arrays = body.layout, body.arrays
    rng = np.random.default_rng(6)
    tau = 5 * rng.standard_normal(body.model.nv)
    force, site = np.array([10.0, -5.0, 300.0]), 28
    frames = dynamics.kinematics(jnp.asarray(q, jnp.float32), arrays, layout)
    sp = dynamics.spatial(frames, arrays, layout)
    point = dynamics.body_points(frames, layout.site_bodies, arrays.site_pos)[site]
    jac = dynamics.point_jacobian(sp, point[None], (layout.site_bodies[site],), layout)
    qfrc = jnp.asarray(tau, jnp.float32) + jnp.einsum("ckx,cx->k", jac, jnp.asarray(force[None], jnp.float32))
    qacc = dynamics.acceleration(jnp.asarray(qd, jnp.float32), qfrc, sp, arrays, layout)
    qpos1, qvel1 = dynamics.integrate(jnp.asarray(q, jnp.float32), jnp.asarray(qd, jnp.float32), qacc,
                                      arrays.timestep, layout)
    applied = np.zeros(body.model.nv)
    mujoco.mj_applyFT(body.model, d, force, np.zeros(3), np.asarray(point, np.float64), layout.site_bodies[site] + 1,
                      applied)
    d2 = mujoco.MjData(body.model)
    d2.qpos[:], d2.qvel[:], d2.qfrc_applied[:] = q, qd, tau + applied
    mujoco.mj_step(body.model, d2)
    np.testing.assert_allclose(np.asarray(qvel1), d2.qvel, atol=1e-4 * max(1.0, np.abs(d2.qvel).max()))
    np.testing.assert_allclose(np.asarray(qpos1), d2.qpos, atol=1e-5)
