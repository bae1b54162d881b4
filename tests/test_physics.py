"""Physics: contact model, standing, gradients through contact, the implicit step's stability, and a guard on the
pinned simulation."""

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from motionrecon import window
from motionrecon.body import build_body, with_reference_damping
from motionrecon.body.fit import inverse_kinematics, lowest_body_point, measure_shape
from motionrecon.physics import contact


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


def test_contact_linearisation_is_the_negated_derivative_of_the_force():
    params = contact.ContactParams()
    radius = jnp.array([0.015, 0.015])
    p = jnp.array([[0.0, 0.0, 0.012], [0.0, 0.0, 0.005]])
    v = jnp.array([[0.01, 0.0, -0.05], [0.0, 0.02, 0.03]])
    anchor = jnp.array([[-0.0001, 0.0], [0.0, -0.0001]])  # inside the friction cone
    k, c = contact.linearisation(p, v, anchor, radius, params)
    force = lambda p, v: contact.forces(p, v, anchor, radius, params)[0]
    dfdp = jax.jacfwd(force, argnums=0)(p, v)  # [C, 3, C, 3]
    dfdv = jax.jacfwd(force, argnums=1)(p, v)
    for i in range(2):
        np.testing.assert_allclose(-dfdp[i, 2, i, 2], k[i, 2], rtol=1e-4)  # normal stiffness
        np.testing.assert_allclose(-dfdv[i, 2, i, 2], c[i, 2], rtol=1e-4)  # Hunt-Crossley damping
        for a in (0, 1):
            np.testing.assert_allclose(-dfdp[i, a, i, a], k[i, a], rtol=1e-3)  # the stiction spring
            np.testing.assert_allclose(-dfdv[i, a, i, a], c[i, a], rtol=1e-4)


def first_window(obs, cfg):
    """The first window of a clip: spec, body, IK, window problem, a jitted loss+gradient+trajectory."""
    F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                         cfg.sim_rate)
    body = build_body(measure_shape(obs), timestep=1.0 / (obs.fps * spf))
    qkin = inverse_kinematics(body.model, obs)
    spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
    state = window.initial_state(body, qkin[0], qkin[1], 1 / obs.fps)
    problem = window.WindowProblem(window.window_data(obs, qkin, state, 0, F), body.arrays)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    return spec, body, qkin, problem, evaluate


@pytest.fixture(scope="module")
def walk_window(walk_1s, test_config):
    """The first window of the walk (`first_window`)."""
    return first_window(walk_1s, test_config)


def _fun_and_grad(evaluate, problem):
    def f(x):
        (loss, _), grad = evaluate(jnp.asarray(x, jnp.float32), problem)
        return float(loss), np.asarray(grad, np.float64)

    return f


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


def _hold(spec, body, problem, evaluate, q0, windows: int):
    """A body starting at rest in pose q0 with the PD targets at q0 and zero control offsets, `windows` windows
    chained: (q0, pelvis heights [windows * F], the last trajectory, qpos [windows * F, nq])."""
    data = dataclasses.replace(problem.data, init=window.initial_state(body, q0, q0, 1 / 30),
                               base_qpos=jnp.tile(jnp.asarray(q0, jnp.float32), (spec.frames + 1, 1)))
    hold = dataclasses.replace(problem, data=data)
    x = jnp.zeros(spec.num_params)
    qpos = []
    for _ in range(windows):
        (_, (traj, _)), _ = evaluate(x, hold)
        qpos.append(np.asarray(traj.qpos))
        hold = dataclasses.replace(hold, data=dataclasses.replace(hold.data, init=traj.state(spec.frames - 1)))
    qpos = np.concatenate(qpos)
    return q0, qpos[:, 2], traj, qpos


def _stand(spec, body, problem, evaluate, windows: int):
    """Pelvis heights [windows * F] and the last trajectory of a standing body under zero control offsets."""
    q0, heights, traj, _ = _hold(spec, body, problem, evaluate, standing_pose(body), windows)
    return q0, heights, traj


def test_standing_body_with_zero_control_error_stays_standing(walk_window):
    spec, body, _, problem, evaluate = walk_window
    q0, heights, traj = _stand(spec, body, problem, evaluate, windows=4)  # 4 chained windows = 2 s
    assert np.all(np.abs(heights - q0[2]) < 0.03), (heights.min(), heights.max())
    feet = np.asarray(traj.contact_pos[-1])[body.spheres_of(("feet",))]
    assert np.all(feet[:, 2] < 0.02)  # still on the ground


def test_the_implicit_step_stands_at_a_quarter_of_the_rate_an_explicit_step_needs(walk_1s, test_config):
    """At 60 Hz (4x the 480 Hz of the explicit integrator of earlier versions) the body still stands: the PD
    springs and the contacts are integrated implicitly."""
    cfg = dataclasses.replace(test_config, sim_rate=60.0)
    obs = walk_1s
    F, _, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                        cfg.sim_rate)
    assert spf == 2
    body = build_body(measure_shape(obs), timestep=1.0 / (obs.fps * spf))
    qkin = inverse_kinematics(body.model, obs)
    spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
    problem = window.WindowProblem(window.window_data(obs, qkin, window.initial_state(body, qkin[0], qkin[1], 1 / 30),
                                                      0, F), body.arrays)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    q0, heights, _ = _stand(spec, body, problem, evaluate, windows=2)
    assert np.all(np.isfinite(heights)) and np.all(np.abs(heights - q0[2]) < 0.03), (heights.min(), heights.max())


def _check_gradient_against_central_differences(spec, problem, evaluate, x):
    """The loss's gradient at x along three random directions against central differences (3 % or 0.1 % of |g|)."""
    f = _fun_and_grad(evaluate, problem)
    loss, grad = f(x)
    assert np.all(np.isfinite(grad)) and np.linalg.norm(grad) > 0
    for seed in range(3):
        u = np.random.default_rng(10 + seed).standard_normal(x.shape)
        u /= np.linalg.norm(u)
        h = 3e-3
        fd = (f(x + h * u)[0] - f(x - h * u)[0]) / (2 * h)
        assert abs(fd - grad @ u) <= 0.03 * abs(grad @ u) + 1e-3 * np.linalg.norm(grad), (fd, grad @ u)


def test_gradient_matches_central_differences_through_contact(walk_window):
    spec, body, _, problem, evaluate = walk_window
    rng = np.random.default_rng(0)
    x = 0.05 * rng.standard_normal(spec.num_params)
    (_, (traj, _)), _ = evaluate(jnp.asarray(x, jnp.float32), problem)
    depth = np.asarray(body.arrays.contact_radius) - np.asarray(traj.contact_pos[..., 2])
    assert depth.max() > 0.002, "the window must exercise foot contact"
    _check_gradient_against_central_differences(spec, problem, evaluate, x)


def test_gradient_matches_central_differences_with_damping_towards_the_reference_velocity(walk_window):
    """The same check with the joint damping pulling towards the reference's joint velocity
    (`body.with_reference_damping`: one more force in every step)."""
    spec, body, _, problem, evaluate = walk_window
    damped = dataclasses.replace(problem, body=with_reference_damping(body, 1.0).arrays)
    x = 0.05 * np.random.default_rng(1).standard_normal(spec.num_params)
    (loss_damped, _), _ = evaluate(jnp.asarray(x, jnp.float32), damped)
    (loss_plain, _), _ = evaluate(jnp.asarray(x, jnp.float32), problem)
    assert float(loss_damped) != float(loss_plain)  # the force is there
    _check_gradient_against_central_differences(spec, damped, evaluate, x)


def test_reference_stance_marks_feet_that_stand_still_on_the_floor(walk_window):
    """`reconstruct.reference_stance` on a reference that stands still on one pose, and on the same pose gliding
    at 1 m/s: the spheres on the floor stand in the first (all but the landing and take-off frames), none in the
    second; lifted spheres never."""
    from motionrecon.reconstruct import reference_stance

    spec, body, qkin, _, _ = walk_window
    still = np.repeat(standing_pose(body)[None], 20, axis=0)
    stance = reference_stance(body, still, 30.0)
    feet = body.spheres_of(("feet",))
    assert stance.shape == (20, len(body.layout.contact_geoms))
    assert stance[1:-1, feet].all() and not stance[[0, -1]].any()
    assert not stance[:, ~body.spheres_of(("feet", "insteps"))].any()
    gliding = still.copy()
    gliding[:, 0] += np.arange(20) / 30.0
    assert not reference_stance(body, gliding, 30.0).any()


def test_reference_stance_stands_a_whole_foot_whose_ankle_stands(walk_window):
    """A reference read from ankles alone leaves the foot's pitch to the IK: here both feet point 0.5 rad
    toe-down in every frame (heel spheres centimetres up, toe spheres under the floor). Still on the floor
    (ankles low and still): every foot sphere stands but the first and last frames; gliding at 1 m/s: none."""
    from motionrecon.body.fit import geom_positions
    from motionrecon.reconstruct import reference_stance

    _, body, _, _, _ = walk_window
    q = standing_pose(body)
    for name in ("left_foot", "right_foot"):
        adr = body.model.jnt_qposadr[mujoco.mj_name2id(body.model, mujoco.mjtObj.mjOBJ_JOINT, name)]
        q[adr:adr + 4] = [np.cos(0.25), 0.0, np.sin(0.25), 0.0]  # toes down about +y
    feet = body.spheres_of(("feet",))
    geoms = np.asarray(body.layout.contact_geoms)[feet]
    bottoms = geom_positions(body.model, q[None], geoms)[0, :, 2] - body.model.geom_size[geoms, 0]
    q[2] -= bottoms.min() - 0.005  # the lowest sphere 5 mm above the floor
    bottoms -= bottoms.min() - 0.005
    assert bottoms.max() > 0.05  # the heels stand higher than any foot-skate rule's 5 cm
    still = np.repeat(q[None], 20, axis=0)
    stance = reference_stance(body, still, 30.0)
    assert stance[1:-1, feet].all() and not stance[[0, -1]].any()
    gliding = still.copy()
    gliding[:, 0] += np.arange(20) / 30.0
    assert not reference_stance(body, gliding, 30.0).any()


def test_gradient_matches_central_differences_with_the_stance_term_and_a_pinned_first_keyframe(walk_window,
                                                                                               test_config):
    """The loss with the stance term on where the walk's reference stands (`reconstruct.reference_stance`), the
    step out of the initial state in it (`handover` 1, as a slide retry has it) and keyframe 0 held
    (`continuous_controls`): a gradient that matches central differences, zero on keyframe 0."""
    from motionrecon.reconstruct import reference_stance

    spec, body, qkin, problem, _ = walk_window
    stance = reference_stance(body, qkin, 30.0)
    assert stance.sum() > 0, "the walk's reference must stand somewhere"
    U = spec.layout.num_controls
    rng = np.random.default_rng(2)
    # stance0: the spheres standing at frame 1 count as standing at frame 0 too, so that the step out of the
    # initial state is in the term (asserted below)
    data = dataclasses.replace(problem.data, stance=jnp.asarray(stance[1:spec.frames + 1]),
                               stance0=jnp.asarray(stance[1]), handover=jnp.asarray(1.0, jnp.float32),
                               first_keyframe=jnp.asarray(0.05 * rng.standard_normal(U), jnp.float32),
                               pin_first=jnp.asarray(1.0))
    pinned = dataclasses.replace(problem, data=data)
    weights = dataclasses.replace(test_config.weights, stance=1.0)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, test_config.contact, weights))
    x = 0.05 * rng.standard_normal(spec.num_params)
    (_, (_, parts)), grad = evaluate(jnp.asarray(x, jnp.float32), pinned)
    assert float(parts["stance"]) > 0
    unseen = dataclasses.replace(pinned, data=dataclasses.replace(data, handover=jnp.asarray(0.0, jnp.float32)))
    assert float(parts["stance"]) > float(evaluate(jnp.asarray(x, jnp.float32), unseen)[0][1][1]["stance"])
    assert float(jnp.abs(grad.reshape(spec.keyframes, U)[0]).max()) == 0.0
    _check_gradient_against_central_differences(spec, pinned, evaluate, x)


def test_gradient_matches_central_differences_with_the_planted_term(walk_window, test_config):
    """The planted term (`diffphy.lifted_in_stance`) with every sphere counted as standing in every frame, so that
    the walk's swinging foot, more than PLANTED_SLACK up, is in it: a gradient that matches central differences."""
    spec, _, _, problem, _ = walk_window
    C = problem.body.contact_radius.shape[-1]
    data = dataclasses.replace(problem.data, stance=jnp.ones((spec.frames, C), jnp.float32))
    standing = dataclasses.replace(problem, data=data)
    weights = dataclasses.replace(test_config.weights, planted=1.0)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, test_config.contact, weights))
    x = 0.05 * np.random.default_rng(3).standard_normal(spec.num_params)
    (_, (_, parts)), _ = evaluate(jnp.asarray(x, jnp.float32), standing)
    assert float(parts["planted"]) > 0
    _check_gradient_against_central_differences(spec, standing, evaluate, x)


def test_gradient_matches_central_differences_with_the_upright_term(walk_window, test_config):
    """The upright term (`diffphy.fallen_pelvis`) with the reference's pelvis raised 0.5 m, so that the walking
    body's pelvis is under UPRIGHT_FRACTION of it in every frame: a gradient that matches central differences."""
    spec, _, _, problem, _ = walk_window
    base = problem.data.base_qpos
    raised = dataclasses.replace(problem, data=dataclasses.replace(problem.data, base_qpos=base.at[:, 2].add(0.5)))
    weights = dataclasses.replace(test_config.weights, upright=1.0)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, test_config.contact, weights))
    x = 0.05 * np.random.default_rng(4).standard_normal(spec.num_params)
    (_, (_, parts)), _ = evaluate(jnp.asarray(x, jnp.float32), raised)
    assert float(parts["upright"]) > 0
    assert float(evaluate(jnp.asarray(x, jnp.float32), problem)[0][1][1]["upright"]) == 0.0  # standing: nothing
    _check_gradient_against_central_differences(spec, raised, evaluate, x)


@pytest.fixture(scope="module")
def crawl_window(test_config):
    """The first window of pybullet's crawl: hands and knees on the floor."""
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic

    return first_window(load_deepmimic(clip_path("crawl"), duration=1.0), test_config)


def test_gradient_matches_central_differences_through_hand_and_knee_contact(crawl_window):
    spec, body, _, problem, evaluate = crawl_window
    K = spec.keyframes
    x = 0.05 * np.random.default_rng(0).standard_normal((K, spec.num_params // K))
    # The elbows straightened by 1 rad: bent as observed (the IK keeps them in range since session 32, where they
    # were bent backwards and the arms pushed straight against their limits), the hands stay 4 cm over the floor.
    hinges = [body.model.jnt_qposadr[body.model.joint(f"{side}_forearm").id] for side in ("left", "right")]
    x[:, [3 * len(body.layout.ball_qadr) + body.layout.hinge_qadr.index(a) for a in hinges]] -= 1.0
    x = x.reshape(-1)
    (_, (traj, _)), _ = evaluate(jnp.asarray(x, jnp.float32), problem)
    depth = np.asarray(body.arrays.contact_radius) - np.asarray(traj.contact_pos[..., 2])  # [F, C]
    deepest = {part: float(depth[:, body.spheres_of((part,))].max()) for part in ("hands", "knees")}
    assert min(deepest.values()) > 0.001, f"the window must exercise hand and knee contact (1 mm: 200 N): {deepest}"
    _check_gradient_against_central_differences(spec, problem, evaluate, x)


def lying_pose(body, axis, angle: float, clearance: float):
    """The rest pose turned by `angle` rad about the world `axis` (x, y or z unit vector) and raised so that its
    lowest point is `clearance` metres above the floor."""
    q = np.asarray(body.model.qpos0).copy()
    q[3:7] = np.r_[np.cos(0.5 * angle), np.sin(0.5 * angle) * np.asarray(axis, float)]
    q[2] += clearance - lowest_body_point(body.model, q[None])[0]
    return q


@pytest.mark.parametrize("side, axis, angle", [("back", (0, 1, 0), -np.pi / 2), ("right side", (1, 0, 0), np.pi / 2)])
def test_a_body_dropped_on_its_back_or_side_rests_on_the_floor(walk_window, side, axis, angle):
    """Dropped from 5 cm, lying on its back or side with the PD controllers holding the pose: no part of the body
    sinks more than 2 cm into the floor (it lands on the contact spheres of its back, pelvis, head, shoulders),
    and after 3 s it lies still on the floor. On its side, with its arms held along the body, it rolls over
    onto its back between 1 and 2 s (as a stiff body would), then lies still."""
    spec, body, _, problem, evaluate = walk_window
    q0 = lying_pose(body, axis, angle, clearance=0.05)
    _, heights, traj, qpos = _hold(spec, body, problem, evaluate, q0, windows=6)
    lowest = lowest_body_point(body.model, qpos)
    assert np.all(np.isfinite(lowest))
    assert lowest.min() > -0.02, f"on its {side}: {1000 * lowest.min():.1f} mm under the floor"
    assert abs(lowest[-1]) < 0.01, f"on its {side}: the lowest point ends {1000 * lowest[-1]:.1f} mm from the floor"
    assert np.abs(np.asarray(traj.qvel[-1, :3])).max() < 0.05  # at rest
    assert heights.max() < q0[2] + 0.01  # no bounce above where it was dropped from


def test_pinned_simulation_behaviour(walk_window):
    """Fails loudly when an upgrade of jax/mujoco changes the simulation.

    Golden numbers measured with jax 0.10.2 and mujoco 4.0.0 (pinned in pyproject), 120 Hz, contact stiffness
    2e5 N/m (since session 11).
    """
    spec, body, _, problem, evaluate = walk_window
    (loss, (traj, _)), _ = evaluate(jnp.zeros(spec.num_params), problem)
    pelvis_end = np.asarray(traj.qpos[-1, :3])
    np.testing.assert_allclose(float(loss), GOLDEN_LOSS, rtol=2e-3)
    np.testing.assert_allclose(pelvis_end, GOLDEN_PELVIS, atol=2e-3)


GOLDEN_LOSS = 186.5688934326172
GOLDEN_PELVIS = np.array([0.41151103377342224, 0.08965067565441132, 0.8478578329086304])


def test_pd_targets_are_held_within_the_joint_ranges():
    """`control.within_range`: a target inside its range passes unchanged, one past it comes back to TARGET_SLACK
    past it (or past the reference's own pose where that lies outside the range), for ball joints and hinges."""
    from motionrecon.physics import control, quat

    body = build_body()
    arrays, layout = body.arrays, body.layout
    B, H = len(layout.ball_qadr), len(layout.hinge_qadr)
    limit = np.asarray(arrays.ball_limit)
    slack = control.TARGET_SLACK

    def ball_at(angles):  # rotations about x by these angles [B]
        return quat.exp(jnp.asarray(np.stack([angles, np.zeros(B), np.zeros(B)], axis=1), jnp.float32))

    def angles_of(ball):
        return np.linalg.norm(np.asarray(quat.log(ball)), axis=1)

    rest_ball, rest_hinge = ball_at(np.zeros(B)), jnp.zeros(H)
    inside = ball_at(0.5 * limit)
    hinge = jnp.asarray(np.linspace(0.2, 1.0, H), jnp.float32)
    ball_out, hinge_out = control.within_range(inside, hinge, rest_ball, rest_hinge, arrays)
    assert np.array_equal(np.asarray(ball_out), np.asarray(inside))
    np.testing.assert_allclose(np.asarray(hinge_out), np.asarray(hinge), atol=1e-6)
    far = ball_at(np.minimum(limit + 1.5, np.pi - 0.01))  # a rotation's angle is at most half a turn
    held = angles_of(control.within_range(far, hinge, rest_ball, rest_hinge, arrays)[0])
    np.testing.assert_allclose(held, np.minimum(limit + slack, np.pi - 0.01), atol=0.02)
    # the reference itself past the range: the bound moves with it (joints whose range leaves room for that)
    room = limit + 0.6 < np.pi
    assert room.sum() >= 5
    ref = ball_at(np.where(room, limit + 0.4, 0.0))
    np.testing.assert_allclose(angles_of(control.within_range(far, hinge, ref, rest_hinge, arrays)[0])[room],
                               limit[room] + 0.4 + slack, atol=0.02)
    near = ball_at(np.where(room, limit + 0.45, 0.0))
    np.testing.assert_allclose(angles_of(control.within_range(near, hinge, ref, rest_hinge, arrays)[0])[room],
                               limit[room] + 0.45, atol=2e-3)
    backward = jnp.full(H, -1.5, jnp.float32)  # every hinge (elbows, knees) bent 1.5 rad backwards
    lo = np.asarray(arrays.hinge_lo)
    np.testing.assert_allclose(np.asarray(control.within_range(inside, backward, rest_ball, rest_hinge, arrays)[1]),
                               lo - slack, atol=0.02)
    np.testing.assert_allclose(np.asarray(control.within_range(inside, backward, rest_ball, jnp.full(H, -0.5),
                                                               arrays)[1]), -0.5 - slack, atol=0.02)
    # past the bound the target no longer follows the offset; inside it follows one for one
    angle = lambda a: angles_of(control.within_range(ball_at(np.full(B, a)), hinge, rest_ball, rest_hinge,
                                                     arrays)[0])[0]
    grad = lambda a, eps=1e-2: (angle(a + eps) - angle(a - eps)) / (2 * eps)
    assert abs(grad(limit[0] + 1.0)) < 1e-3 and abs(grad(0.5 * limit[0]) - 1.0) < 1e-3


def test_unbounded_ankle_offsets_do_not_roll_the_feet_over(walk_window):
    """A solver's offsets of 3 rad on both ankles, about the foot's long axis: the feet roll to their range's end
    and no further than a few degrees past it (before session 32 the studio dance's feet rolled 75 degrees past
    it, sole sideways, the top of the foot under the floor)."""
    from motionrecon.body.fit import joint_range_excess

    spec, body, _, problem, evaluate = walk_window
    layout = body.layout
    K, U = spec.keyframes, spec.num_params // spec.keyframes
    x = np.zeros((K, U), np.float32)
    for side in ("left", "right"):
        adr = body.model.jnt_qposadr[body.model.joint(f"{side}_foot").id]
        b = layout.ball_qadr.index(adr)
        x[:, 3 * b] = 3.0  # about the foot's x axis (heel to toe)
    (_, (traj, _)), _ = evaluate(jnp.asarray(x.reshape(-1)), problem)
    names, excess = joint_range_excess(body.model, np.asarray(traj.qpos, np.float64))
    for side in ("left", "right"):
        assert np.degrees(excess[:, names.index(f"{side}_foot")]).max() < 10.0
    assert lowest_body_point(body.model, np.asarray(traj.qpos, np.float64)).min() > -0.02


def test_support_height_is_a_seat_s_top_over_it_and_the_floor_elsewhere():
    """`contact.support_height`: exactly the seat's height from half an edge width inside its rectangle, half of it
    on a side, exactly the floor's (0) from half an edge width outside, and nothing from a row of height 0 (an
    unused row)."""
    e = contact.SEAT_EDGE
    seats = jnp.array([[0.0, 1.0, -0.5, 0.5, 0.4], [2.0, 3.0, -0.5, 0.5, 0.0]])
    p = jnp.array([[0.5, 0.0], [1.0 - 0.51 * e, 0.49 - 0.51 * e], [1.0, 0.0], [1.0 + 0.51 * e, 0.0],
                   [0.5, -0.5 - 0.51 * e], [2.5, 0.0]])
    g = np.asarray(contact.support_height(p, seats))
    np.testing.assert_array_equal(g[:2], np.float32(0.4))
    np.testing.assert_allclose(g[2], 0.2, rtol=1e-6)  # on a side
    np.testing.assert_array_equal(g[3:], 0.0)
    assert np.all(np.asarray(contact.support_height(p, seats[1:])) == 0.0)


@pytest.fixture(scope="module")
def seated_window(test_config):
    """A window of the synthetic sit-down (`datasets.synthetic.sit_down`) at 2 s, the body seated, with the seat
    `body.seats` finds: (spec, body, problem with the seat, the same problem without it, evaluate)."""
    from motionrecon.body.seats import seat_rows
    from motionrecon.datasets.synthetic import sit_down
    from motionrecon.reconstruct import reference_and_seats

    obs = sit_down()
    F, _, K, spf = window.window_frames(obs.fps, obs.num_frames, test_config.window, test_config.overlap,
                                        test_config.keyframe_spacing, test_config.sim_rate)
    body, qkin, seats = reference_and_seats(obs, test_config, spf)
    assert len(seats) == 1 and body.spheres_of(("pelvis",)).sum() == 2
    spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
    start = int(2.0 * obs.fps)
    state = window.initial_state(body, qkin[start], qkin[start + 1], 1 / obs.fps)
    seated = body.spheres_of(("pelvis",)).astype(np.float32)
    on_seat = window.WindowProblem(window.window_data(obs, qkin, state, start, F, seats=seat_rows(seats),
                                                      seated=seated), body.arrays)
    on_floor = window.WindowProblem(window.window_data(obs, qkin, state, start, F), body.arrays)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, test_config.contact, test_config.weights))
    return spec, body, seats[0], on_seat, on_floor, evaluate


def test_a_seat_holds_the_pelvis_where_the_floor_alone_lets_it_drop(seated_window):
    """From the seated reference's state with zero control offsets: on the seat the pelvis stays within 1.5 cm of
    the reference's over the window, resting on the seat's top (its spheres 0-5 mm into it); on the floor alone
    it drops (the pose has its centre of mass behind the heels)."""
    spec, body, seat, on_seat, on_floor, evaluate = seated_window
    x = jnp.zeros(spec.num_params)
    pelvis = body.spheres_of(("pelvis",))
    reference = np.asarray(on_seat.data.base_qpos[1:, 2])
    (_, (held, _)), _ = evaluate(x, on_seat)
    (_, (dropped, _)), _ = evaluate(x, on_floor)
    assert np.abs(np.asarray(held.qpos[:, 2]) - reference).max() < 0.015
    bottoms = np.asarray(held.contact_pos[-1, pelvis, 2]) - np.asarray(body.arrays.contact_radius)[pelvis]
    assert np.all((seat.height - bottoms > 0.0) & (seat.height - bottoms < 0.005)), seat.height - bottoms
    assert reference[-1] - float(dropped.qpos[-1, 2]) > 0.05, reference[-1] - float(dropped.qpos[-1, 2])


def test_gradient_matches_central_differences_on_a_seat(seated_window):
    spec, body, _, on_seat, _, evaluate = seated_window
    x = 0.05 * np.random.default_rng(3).standard_normal(spec.num_params)
    _check_gradient_against_central_differences(spec, on_seat, evaluate, x)
