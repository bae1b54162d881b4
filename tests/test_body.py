import dataclasses

import mujoco
import numpy as np
import pytest

from motionrecon.body import build_body
from motionrecon.body.fit import (geom_bottoms, inverse_kinematics, joint_range_excess, landmark_sites,
                                  lowest_body_point, measure_shape)
from motionrecon.body.template import FEET_ONLY, BodyShape, contact_spheres
from motionrecon.skeleton import BODY_LANDMARKS, MEDIAPIPE33


def test_template_stands_on_the_floor_with_realistic_mass():
    body = build_body()
    s = body.summary()
    assert 55 < s["total_mass"] < 80
    assert 1.5 < s["height"] < 1.75
    d = mujoco.MjData(body.model)
    mujoco.mj_kinematics(body.model, d)
    geoms = list(body.layout.contact_geoms)
    bottoms = d.geom_xpos[geoms, 2] - body.model.geom_size[geoms, 0]
    on_feet = body.spheres_of(("feet",))
    np.testing.assert_allclose(bottoms[on_feet], 0.0, atol=1e-9)  # standing on the soles
    insteps = body.spheres_of(("insteps",))
    assert np.all(bottoms[insteps] > 0.015)  # the top of the foot
    assert np.all(bottoms[~on_feet & ~insteps] > 0.3)  # knees, hands, pelvis, back, head in the air
    assert on_feet.sum() == 8 and len(geoms) == len(contact_spheres(body.shape)) == 29
    assert body.layout.num_controls == 28
    np.testing.assert_allclose(lowest_body_point(body.model, body.model.qpos0[None]), 0.0, atol=1e-9)


def test_contact_spheres_cover_the_parts_that_touch_the_floor():
    """Every part of CONTACT_PARTS has spheres; over random poses (any orientation, joints bent) the lowest sphere
    is within 2.5 cm of the lowest point of the body's surface, so a body lying anyhow rests on spheres; a body
    built with the feet's spheres only has 8, at the same mass."""
    from scipy.spatial.transform import Rotation

    full, feet = build_body(), build_body(contact_parts=FEET_ONLY)
    assert len(feet.layout.contact_geoms) == 8
    assert abs(full.summary()["total_mass"] - feet.summary()["total_mass"]) < 1e-9
    bodies = {s.body for s in contact_spheres(full.shape)}
    assert bodies == {"pelvis", "torso", "head", "left_forearm", "right_forearm", "left_upper_arm",
                      "right_upper_arm", "left_thigh", "right_thigh", "left_shin", "right_shin", "left_foot",
                      "right_foot"}
    rng = np.random.default_rng(0)
    m, d = full.model, mujoco.MjData(full.model)
    geoms = list(full.layout.contact_geoms)
    gaps = []
    for _ in range(300):
        q = m.qpos0.copy()
        q[3:7] = Rotation.random(random_state=rng).as_quat(scalar_first=True)
        for a in full.layout.ball_qadr:
            q[a:a + 4] = Rotation.from_rotvec(rng.normal(0.0, 0.5, 3)).as_quat(scalar_first=True)
        q[list(full.layout.hinge_qadr)] = rng.uniform(0.0, 2.0, len(full.layout.hinge_qadr))
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        gaps.append(np.min(d.geom_xpos[geoms, 2] - m.geom_size[geoms, 0]) - np.min(geom_bottoms(m, d)))
    assert min(gaps) > -1e-9 and max(gaps) < 0.025, (min(gaps), max(gaps))


def test_no_point_of_a_foot_lies_under_its_contact_spheres():
    """A foot's surface reaches no lower than its lowest contact sphere, tilted or rolled however (its sole
    facing the floor at most 65 degrees past sideways); the heel-to-toe box it was until session 33 reached
    up to 16 mm lower at such poses."""
    from scipy.spatial.transform import Rotation

    body = build_body()
    m, d = body.model, mujoco.MjData(body.model)
    foot = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "left_foot")
    mine = [g for g in body.layout.contact_geoms if m.geom_bodyid[g] == foot]
    surface = (m.geom_bodyid == foot) & (m.geom_group != 3)
    assert len(mine) == 6 and surface.sum() == 6  # sole and insteps; a box and five capsules
    box = next(g for g in np.flatnonzero(surface) if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX)
    rng = np.random.default_rng(1)
    gaps, old_box = [], []
    for rotation in Rotation.random(400, random_state=rng):
        if rotation.apply([0.0, 0.0, 1.0])[2] < -0.4:  # the top of the foot facing down: not a sole's pose
            continue
        d.qpos[:] = m.qpos0
        d.qpos[3:7] = rotation.as_quat(scalar_first=True)  # every joint at rest: the foot turns as the root
        mujoco.mj_kinematics(m, d)
        spheres = np.min(d.geom_xpos[mine, 2] - m.geom_size[mine, 0])
        gaps.append(spheres - np.min(geom_bottoms(m, d)[surface[m.geom_bodyid > 0]]))  # the floor: body 0
        # the old box: heel to toe, as wide as the spheres' outer edges, ankle height high
        s, rc = body.shape, body.shape.radii()["contact"]
        half = np.array([(s.foot_forward + s.heel_back) / 2, m.geom_size[box, 1] + rc, s.ankle_height / 2])
        old_box.append(spheres - (d.geom_xpos[box, 2] - np.sum(np.abs(d.geom_xmat[box].reshape(3, 3)[2]) * half)))
    assert len(gaps) > 250 and max(gaps) < 1e-9, max(gaps)
    assert max(old_box) > 0.9 * rc, max(old_box)


def test_the_foot_weighs_as_the_box_it_was():
    """The foot's explicit inertia is the heel-to-toe box's, as MuJoCo computes it from the box's geometry,
    to the last bit, for any shape (so its new surface leaves the dynamics unchanged)."""
    for shape in (BodyShape(), BodyShape(thigh=0.47, foot_forward=0.16, heel_back=0.05, ankle_height=0.07)):
        model = build_body(shape).model
        foot = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "right_foot")
        s, rc, w = shape, shape.radii()["contact"], 0.6 * shape.radii()["shin"]
        size = " ".join(f"{x:.6g}" for x in ((s.foot_forward + s.heel_back) / 2, w + rc, s.ankle_height / 2))
        pos = " ".join(f"{x:.6g}" for x in ((s.foot_forward - s.heel_back) / 2, 0, -s.ankle_height / 2))
        box = mujoco.MjModel.from_xml_string(f'<mujoco><worldbody><body><freejoint/><geom type="box" '
                                             f'size="{size}" pos="{pos}" density="1000"/></body></worldbody></mujoco>')
        for field in ("body_mass", "body_inertia", "body_ipos", "body_iquat"):
            np.testing.assert_array_equal(getattr(model, field)[foot], getattr(box, field)[1], err_msg=field)


def test_bigger_shape_is_heavier_and_taller():
    small, big = build_body(BodyShape()), build_body(BodyShape(thigh=0.5, shin=0.5))
    assert big.summary()["total_mass"] > small.summary()["total_mass"]
    assert big.summary()["height"] > small.summary()["height"] + 0.15


def test_measured_shape_and_ik_fit_the_walk(walk_1s):
    shape = measure_shape(walk_1s)
    assert abs(shape.thigh - 0.4215) < 0.005 and abs(shape.shin - 0.41) < 0.005
    assert abs(shape.hip_half_width - 0.085) < 0.005
    body = build_body(shape)
    q = inverse_kinematics(body.model, walk_1s)
    sites = landmark_sites(body.model, q)
    idx = [BODY_LANDMARKS.index(lm) for lm in walk_1s.skeleton.landmarks]
    err = np.linalg.norm(sites[:, idx] - walk_1s.joints3d, axis=-1)
    assert err.mean() < 0.01, err.mean()
    assert err.max() < 0.04, err.max()


def test_reference_smoothing_removes_jitter_and_keeps_a_steady_pose(walk_1s):
    import dataclasses

    from motionrecon.body.fit import smooth_in_time

    rng = np.random.default_rng(0)
    noisy = dataclasses.replace(walk_1s, joints3d=(walk_1s.joints3d + rng.normal(0, 0.03, walk_1s.joints3d.shape))
                                .astype(np.float32))
    smooth = smooth_in_time(noisy, 0.08)
    jitter = lambda j: np.abs(np.diff(j, 2, axis=0)).mean()
    assert jitter(smooth.joints3d) < 0.5 * jitter(noisy.joints3d)
    assert np.abs(smooth.joints3d - walk_1s.joints3d).mean() < np.abs(noisy.joints3d - walk_1s.joints3d).mean()
    # a frame without confidence takes its neighbours' values, not its own (here: garbage)
    conf = walk_1s.confidence.copy()
    conf[5] = 0.0
    joints = walk_1s.joints3d.copy()
    joints[5] += 1.0
    holed = smooth_in_time(dataclasses.replace(walk_1s, joints3d=joints, confidence=conf), 0.04)
    assert np.abs(holed.joints3d[5] - walk_1s.joints3d[5]).max() < 0.1
    assert smooth_in_time(walk_1s, 0.0) is walk_1s


def test_lift_onto_ground_takes_every_foot_sphere_out_of_the_floor(walk_1s):
    from motionrecon.body.fit import lift_onto_ground

    body = build_body(measure_shape(walk_1s))
    q = inverse_kinematics(body.model, walk_1s)
    q[:, 2] -= np.linspace(0.0, 0.08, len(q))  # sink the clip progressively into the floor
    lifted, lift = lift_onto_ground(body.model, q, body.layout.contact_geoms)
    m, d = body.model, mujoco.MjData(body.model)
    geoms = list(body.layout.contact_geoms)
    for t in range(len(q)):
        d.qpos[:] = lifted[t]
        mujoco.mj_kinematics(m, d)
        assert np.min(d.geom_xpos[geoms, 2] - m.geom_size[geoms, 0]) > -1e-6
    assert np.all(lift >= 0) and lift[-1] > 0.05
    np.testing.assert_allclose(lifted[:, 3:], q[:, 3:])  # only the height changes


def test_foot_in_mediapipe_convention_stands_flat_on_its_detections():
    # MediaPipe's ankle sits high above its toe tip and its heel point above the sole; the body's
    # foot is measured in that convention, so a flat foot puts all three sites on the detections.
    from motionrecon.observations import Observations
    from video_support import walking_body

    world, _ = walking_body()
    for side in ("left", "right"):
        world[:, MEDIAPIPE33.index(f"{side}_heel"), 2] += 0.05
    obs = Observations(fps=20.0, joint_set="mediapipe33", joints3d=world.astype(np.float32), joints2d=None,
                       confidence=np.ones(world.shape[:2], np.float32))
    shape = measure_shape(obs)
    assert shape.ankle_height == pytest.approx(0.08, abs=0.005)
    assert shape.heel_site_height == pytest.approx(0.05, abs=0.005)
    assert np.hypot(shape.ankle_height, shape.foot_forward) == pytest.approx(np.hypot(0.08, 0.16), abs=0.005)
    body = build_body(shape)
    rest = landmark_sites(body.model, body.model.qpos0[None])[0]
    z = {lm: rest[BODY_LANDMARKS.index(lm), 2] for lm in ("left_ankle", "left_heel", "left_toe")}
    assert z["left_toe"] == pytest.approx(0.0, abs=1e-6)
    assert z["left_heel"] == pytest.approx(0.05, abs=0.005)
    assert z["left_ankle"] == pytest.approx(0.08, abs=0.005)
    # Joint sets without a heel keep the template's foot.
    assert BodyShape().heel_site_height == 0.0


def test_ik_fits_the_2d_keypoints_and_keeps_the_feet_out_of_the_floor():
    # A detector whose 3D puts the person 6 cm too low (feet in the floor) while its 2D is right:
    # the 2D rows pull the pose back onto the image and the ground rows keep the soles out.
    from motionrecon.camera import intrinsics_matrix, make_camera
    from motionrecon.observations import Observations
    from video_support import look_at_camera, walking_body

    world, _ = walking_body(num_frames=8)
    R, t = look_at_camera(position=(0.5, -4.0, 1.2), target=(0.3, 0.0, 0.7))
    cam = make_camera(intrinsics_matrix(1400.0, 1920, 1080), R, t, 1920, 1080)
    joints2d = cam.project(world)
    low = world - np.array([0.0, 0.0, 0.06])
    obs = Observations(fps=20.0, joint_set="mediapipe33", joints3d=low.astype(np.float32),
                       joints2d=joints2d.astype(np.float32), confidence=np.ones(world.shape[:2], np.float32),
                       camera=cam)
    body = build_body(measure_shape(obs))
    idx = [BODY_LANDMARKS.index(lm) for lm in MEDIAPIPE33.landmarks]
    geoms = list(body.layout.contact_geoms)

    def fit(**options):
        q = inverse_kinematics(body.model, obs, contact_geoms=geoms, **options)
        err2d = np.linalg.norm(cam.project(landmark_sites(body.model, q)[:, idx]) - joints2d, axis=-1).mean()
        d = mujoco.MjData(body.model)
        lowest = []
        for qt in q:
            d.qpos[:] = qt
            mujoco.mj_kinematics(body.model, d)
            lowest.append(np.min(d.geom_xpos[geoms, 2] - body.model.geom_size[geoms, 0]))
        return err2d, min(lowest)

    plain_2d, plain_low = fit()
    both_2d, both_low = fit(weight_2d=4.0, ground_weight=10.0)
    assert plain_low < -0.02 and both_low > -0.01, (plain_low, both_low)
    assert both_2d < 0.85 * plain_2d, (plain_2d, both_2d)


def test_reprojection_rows_jacobian_matches_finite_differences():
    from motionrecon.body.fit import _reprojection_rows
    from motionrecon.camera import intrinsics_matrix, make_camera
    from video_support import look_at_camera

    body = build_body()
    m, d = body.model, mujoco.MjData(body.model)
    R, t = look_at_camera(position=(0.5, -4.0, 1.2), target=(0.3, 0.0, 0.7))
    cam = make_camera(intrinsics_matrix(1400.0, 1920, 1080), R, t, 1920, 1080)
    ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, lm) for lm in ("nose", "left_wrist", "right_toe")]
    q = m.qpos0.copy()
    q[7:] += 0.1

    def sites(qpos):
        d.qpos[:] = qpos
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        return d.site_xpos[ids].copy()

    p = sites(q)
    jac = np.zeros((len(ids), 3, m.nv))
    for k, s in enumerate(ids):
        mujoco.mj_jacSite(m, d, jac[k], None, s)
    observed = cam.project(p) + 5.0
    res, J = _reprojection_rows(p, jac, observed, cam)
    depth = (p @ cam.R.T + cam.t)[:, 2]
    np.testing.assert_allclose(res, (cam.project(p) - observed) * (depth / 1400.0)[:, None], rtol=1e-9)
    eps = 1e-6
    for v in range(m.nv):
        q2 = q.copy()
        step = np.zeros(m.nv)
        step[v] = eps
        mujoco.mj_integratePos(m, q2, step, 1.0)
        fd = (cam.project(sites(q2)) - cam.project(p)) / eps * (depth / 1400.0)[:, None]
        np.testing.assert_allclose(J[:, :, v], fd, atol=1e-5)


def _mediapipe_walk(num_frames: int = 12, nose_up: float = 0.0):
    """A synthetic MediaPipe-33 walk (tests/video_support.walking_body), its nose `nose_up` m higher."""
    from motionrecon.observations import Observations
    from video_support import walking_body

    world, _ = walking_body(num_frames=num_frames)
    world[:, MEDIAPIPE33.index("nose"), 2] += nose_up
    return Observations(fps=20.0, joint_set="mediapipe33", joints3d=world.astype(np.float32), joints2d=None,
                        confidence=np.ones(world.shape[:2], np.float32))


def _nose_residual(shape, obs) -> tuple[float, np.ndarray]:
    """Mean IK residual (m) of the nose of the body of `shape` on `obs`, and the IK qpos [T, nq]."""
    body = build_body(shape)
    q = inverse_kinematics(body.model, obs)
    nose = landmark_sites(body.model, q)[:, BODY_LANDMARKS.index("nose")]
    return float(np.linalg.norm(nose - obs.joints3d[:, MEDIAPIPE33.index("nose")], axis=-1).mean()), q


def test_site_offsets_put_a_displaced_nose_on_its_detection():
    import dataclasses

    from motionrecon.body.fit import site_offsets
    from motionrecon.reconstruct import video_config

    offsets = {}
    for up in (0.0, 0.03):
        obs = _mediapipe_walk(nose_up=up)
        shape = measure_shape(obs)
        before, q = _nose_residual(shape, obs)
        for _ in range(video_config().site_passes):  # as reconstruct.kinematic_reference does
            shape = dataclasses.replace(shape, site_offsets=site_offsets(build_body(shape).model, shape, obs, q))
            after, q = _nose_residual(shape, obs)
        assert after < 0.006 and after < 0.25 * before, (up, before, after)
        offsets[up] = dict(shape.site_offsets)
    # The head is upright: 3 cm higher in the world is 3 cm higher in the head's frame.
    np.testing.assert_allclose(np.subtract(offsets[0.03]["nose"], offsets[0.0]["nose"]), (0.0, 0.0, 0.03),
                               atol=0.006)
    # Sites the detections agree on move the same in both; the template's body geometry does not move.
    np.testing.assert_allclose(offsets[0.03]["left_ear"], offsets[0.0]["left_ear"], atol=0.005)
    assert set(offsets[0.0]) <= set(BODY_LANDMARKS) and "left_hip" not in offsets[0.0]


def test_site_passes_put_a_rig_s_spine_and_head_top_where_its_joints_are(walk_1s):
    """Human3.6M-17 joints of a body whose spine point sits 5 cm behind the template's spine site and whose head
    top sits 3 cm lower (a rig's joints are not the template's sites): the mocap default's site passes
    (`ReconstructionConfig.site_passes`) move those sites onto them, so the kinematic reference follows the
    joints instead of pulling the trunk towards the displaced points."""
    import dataclasses

    from motionrecon.observations import Observations
    from motionrecon.reconstruct import ReconstructionConfig, kinematic_reference
    from motionrecon.skeleton import get_joint_set

    shape = measure_shape(walk_1s)
    template = build_body(shape)
    q = inverse_kinematics(template.model, walk_1s)
    moved = dataclasses.replace(shape, site_offsets=(("head_top", (0.0, 0.0, -0.03)), ("spine", (-0.05, 0.0, 0.0))))
    marks = get_joint_set("h36m17").landmarks
    joints = landmark_sites(build_body(moved).model, q)[:, [BODY_LANDMARKS.index(m) for m in marks]]
    obs = Observations(fps=walk_1s.fps, joint_set="h36m17", joints3d=joints.astype(np.float32), joints2d=None,
                       confidence=np.ones(joints.shape[:2], np.float32))

    def residual(cfg):
        body, qkin = kinematic_reference(obs, cfg, 4)
        sites = landmark_sites(body.model, qkin)[:, [BODY_LANDMARKS.index(m) for m in marks]]
        return float(np.linalg.norm(sites - joints, axis=-1).mean()), dict(body.shape.site_offsets)

    assert ReconstructionConfig().site_passes >= 1
    before, _ = residual(ReconstructionConfig(site_passes=0))
    after, offsets = residual(ReconstructionConfig())
    assert after < 0.5 * before and after < 0.006, (before, after)
    # The head top's offset is found; the spine's most of the way (each pass, IK leans the trunk a little towards
    # the displaced point, so it converges from below).
    np.testing.assert_allclose(offsets["head_top"], (0.0, 0.0, -0.03), atol=0.01)
    assert -0.06 < offsets["spine"][0] < -0.025 and np.abs(offsets["spine"][1:]).max() < 0.01, offsets["spine"]


def test_site_offsets_are_bounded():
    from motionrecon.body.fit import SITE_OFFSET_LIMIT, site_offsets

    obs = _mediapipe_walk(nose_up=0.5)
    shape = measure_shape(obs)
    _, q = _nose_residual(shape, obs)
    nose = dict(site_offsets(build_body(shape).model, shape, obs, q))["nose"]
    assert np.linalg.norm(nose) == pytest.approx(SITE_OFFSET_LIMIT * shape.scale, rel=1e-6)
    with pytest.raises(ValueError, match="left_hip"):
        BodyShape(site_offsets=(("left_hip", (0.0, 0.0, 0.01)),))


def test_hips_drop_to_the_measured_trunk_where_no_pelvis_is_seen(walk_1s):
    # MediaPipe sees no pelvis: the hips go as far below the shoulders as detected (the template's trunk is
    # 0.48 m at this size); a joint set with a pelvis keeps measuring hip_drop from it (DeepMimic: 0).
    low = _mediapipe_walk()
    hips = [MEDIAPIPE33.index(n) for n in ("left_hip", "right_hip")]
    base = measure_shape(low)
    low.joints3d[:, hips, 2] -= 0.05
    lowered = measure_shape(low)
    trunk = lambda s: s.hip_drop + s.pelvis_to_chest + s.shoulder_rise  # hips to shoulders at rest
    assert trunk(lowered) == pytest.approx(trunk(base) + 0.05, abs=0.005)
    assert trunk(base) == pytest.approx(0.5, abs=0.005)  # video_support's person
    assert 0.0 < base.hip_drop < lowered.hip_drop
    assert measure_shape(walk_1s).hip_drop == pytest.approx(0.0, abs=0.01)


def _sphere_bottoms(model, qpos: np.ndarray, geoms: list) -> np.ndarray:
    """[T, G] heights of the bottoms of the spheres `geoms` over the poses qpos [T, nq]."""
    from motionrecon.body.fit import geom_positions

    return geom_positions(model, qpos, geoms)[..., 2] - model.geom_size[geoms, 0]


def _crouch(model, angle: float) -> np.ndarray:
    """Rest pose with the hips flexed by `angle` rad, the knees by twice that and the ankles back by `angle`:
    shins leaning forward, feet level."""
    q = model.qpos0.copy()
    adr = lambda name: model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)]
    pitch = [np.cos(-angle / 2), 0.0, np.sin(-angle / 2), 0.0]
    for side in ("left", "right"):
        q[adr(f"{side}_thigh"):adr(f"{side}_thigh") + 4] = pitch
        q[adr(f"{side}_shin")] = 2 * angle
        q[adr(f"{side}_foot"):adr(f"{side}_foot") + 4] = pitch
    return q


def test_observations_without_toes_get_their_ankle_height_and_level_feet():
    """A crouching person observed on H36M-17 (ankles, no toes), standing with the ankles 8 cm above the floor:
    the measured body has the 8 cm ankles (the template's 5 cm put rigs' ankles 3 cm too low), and the IK lays
    the feet level where the ankles are low (`level_geoms`), where without it the feet follow the shins."""
    from motionrecon.observations import Observations
    from motionrecon.reconstruct import SIDES, level_feet_weights
    from motionrecon.skeleton import JOINT_SETS

    truth = build_body(BodyShape(ankle_height=0.08))
    q = _crouch(truth.model, 0.3)
    geoms = list(truth.layout.contact_geoms)
    q[2] -= float(np.min(_sphere_bottoms(truth.model, q[None], geoms)))  # soles on the floor
    marks = JOINT_SETS["h36m17"].landmarks
    sites = landmark_sites(truth.model, q[None])[0][[BODY_LANDMARKS.index(lm) for lm in marks]]
    obs = Observations(fps=30.0, joint_set="h36m17", joints3d=np.repeat(sites[None], 6, 0).astype(np.float32),
                       joints2d=None, confidence=np.ones((6, len(marks)), np.float32))
    shape = measure_shape(obs)
    assert shape.ankle_height == pytest.approx(0.08, abs=0.002)
    weights = level_feet_weights(obs, 1.0)
    np.testing.assert_allclose(weights, 1.0)  # the ankles stand at their floor level throughout
    body = build_body(shape)
    feet = [np.asarray(body.layout.contact_geoms)[body.foot_spheres(side)] for side in SIDES]
    spread = lambda qpos: max(float(np.ptp(_sphere_bottoms(body.model, qpos[-1:], list(f))[0])) for f in feet)
    assert spread(inverse_kinematics(body.model, obs, level_geoms=feet, level_weights=weights)) < 0.005
    assert spread(inverse_kinematics(body.model, obs)) > 0.03  # the foot at rest against the leaning shin
    assert level_feet_weights(obs, 0.0) is None
    lifted = dataclasses.replace(obs, joints3d=obs.joints3d + np.float32([0.0, 0.0, 0.5]))
    assert measure_shape(lifted).ankle_height == pytest.approx(BodyShape().ankle_height, rel=0.2)  # no floor there


def _standing_observations(lean_deg: float, num_frames: int = 6, fps: float = 20.0):
    """The template standing still, seen by a camera in front (along +y): its 2D keypoints as the camera sees the
    upright body, its 3D leaned `lean_deg` towards the camera about the axis through its ankles (a detector's
    3D whose lean in depth is off, as MediaPipe's is by about ten degrees). Returns (body, obs, cam)."""
    from scipy.spatial.transform import Rotation

    from motionrecon.camera import intrinsics_matrix, make_camera
    from motionrecon.observations import Observations
    from video_support import look_at_camera

    body = build_body()
    idx = [BODY_LANDMARKS.index(lm) for lm in MEDIAPIPE33.landmarks]
    upright = landmark_sites(body.model, np.repeat(body.model.qpos0[None], num_frames, axis=0))[:, idx]
    R, t = look_at_camera(position=(0.0, -4.0, 1.0), target=(0.0, 0.0, 0.9))
    cam = make_camera(intrinsics_matrix(1400.0, 1920, 1080), R, t, 1920, 1080)
    ankles = upright[0, [MEDIAPIPE33.joints.index("left_ankle"), MEDIAPIPE33.joints.index("right_ankle")]].mean(0)
    turn = Rotation.from_euler("x", lean_deg, degrees=True)  # the top towards -y, the camera
    leaned = turn.apply((upright - ankles).reshape(-1, 3)).reshape(upright.shape) + ankles
    obs = Observations(fps=fps, joint_set="mediapipe33", joints3d=leaned.astype(np.float32),
                       joints2d=cam.project(upright).astype(np.float32),
                       confidence=np.ones(upright.shape[:2], np.float32), camera=cam)
    return body, obs, cam


def _com_offset(model, qpos: np.ndarray, feet) -> float:
    """How far (m, horizontally) the centre of mass of the body at qpos stands from the mean of `feet`' spheres."""
    d = mujoco.MjData(model)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(model, d)
    mujoco.mj_comPos(model, d)
    spheres = [g for foot in feet for g in foot]
    return float(np.linalg.norm(d.subtree_com[1, :2] - d.geom_xpos[spheres, :2].mean(axis=0)))


def _feet_up(model, qpos: np.ndarray, feet) -> float:
    """How high (m) the higher foot's lowest sphere bottom is at qpos."""
    d = mujoco.MjData(model)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(model, d)
    return max(float(np.min(d.geom_xpos[foot, 2] - model.geom_size[foot, 0])) for foot in feet)


def _outside_feet(model, qpos: np.ndarray, feet) -> float:
    """How far (m) the centre of mass of the body at qpos stands outside the ellipse of its feet's spheres that the
    balance rows keep it in (0 inside it)."""
    from motionrecon.body.fit import _balance_rows

    d = mujoco.MjData(model)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(model, d)
    mujoco.mj_comPos(model, d)
    rows = _balance_rows(model, d, [list(f) for f in feet], np.zeros((3, model.nv)))
    return 0.0 if rows is None else float(np.linalg.norm(rows[0]))


def test_balance_keeps_a_standing_reference_over_its_feet():
    """A person standing still whose 3D leans 12 degrees in depth: fitted as observed, the reference's centre of
    mass stands about 19 cm from the middle of its feet, beyond its toes, 12 cm outside the ellipse of the feet's
    spheres that the balance rows keep it in (`_balance_rows`; a simulated body must step); with the rows (weight
    100, against the leaning 3D and the 2D) it stands within 2.5 cm of the ellipse, both feet still on the floor
    and the 2D keypoints still fitted to within 10 px."""
    from motionrecon.body.fit import standing_frames

    body, obs, cam = _standing_observations(12.0)
    assert standing_frames(obs).all()
    feet = [np.asarray(body.layout.contact_geoms)[body.foot_spheres(s)] for s in ("left", "right")]
    idx = [BODY_LANDMARKS.index(lm) for lm in MEDIAPIPE33.landmarks]

    def fit(balance_weight):
        q = inverse_kinematics(body.model, obs, weight_2d=1.0, level_geoms=feet, balance_weight=balance_weight)
        err2d = np.linalg.norm(cam.project(landmark_sites(body.model, q)[:, idx]) - obs.joints2d, axis=-1).mean()
        feet_up = max(_feet_up(body.model, qt, feet) for qt in q)
        outside = max(_outside_feet(body.model, qt, feet) for qt in q)
        return max(_com_offset(body.model, qt, feet) for qt in q), outside, err2d, feet_up

    plain, plain_outside, _, _ = fit(0.0)
    _, outside, balanced_2d, feet_up = fit(100.0)
    assert plain > 0.15 and plain_outside > 0.1, (plain, plain_outside)
    assert outside < 0.025, outside
    assert feet_up < 0.03 and balanced_2d < 10.0, (feet_up, balanced_2d)


def test_balance_leaves_a_walker_alone():
    """A walker's reference is the same with and without the balance rows: the hips move at about 1 m/s, so no
    frame counts as standing still."""
    from motionrecon.body.fit import standing_frames
    from motionrecon.observations import Observations
    from video_support import walking_body

    world, _ = walking_body(num_frames=12)
    obs = Observations(fps=20.0, joint_set="mediapipe33", joints3d=world.astype(np.float32), joints2d=None,
                       confidence=np.ones(world.shape[:2], np.float32))
    assert not standing_frames(obs).any()
    body = build_body(measure_shape(obs))
    feet = [np.asarray(body.layout.contact_geoms)[body.foot_spheres(s)] for s in ("left", "right")]
    np.testing.assert_array_equal(inverse_kinematics(body.model, obs, level_geoms=feet, balance_weight=100.0),
                                  inverse_kinematics(body.model, obs, level_geoms=feet))


def test_balance_rows_jacobian_matches_finite_differences():
    from motionrecon.body.fit import _balance_rows

    body = build_body()
    m, d = body.model, mujoco.MjData(body.model)
    feet = [list(np.asarray(body.layout.contact_geoms)[body.foot_spheres(s)]) for s in ("left", "right")]
    q = m.qpos0.copy()
    q[3:7] = [np.cos(0.1), np.sin(0.1), 0.0, 0.0]  # leaned 11.5 degrees about x: the centre beyond the toes
    q[7:] += 0.05
    jacp = np.zeros((3, m.nv))

    def rows(qpos):
        d.qpos[:] = qpos
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        return _balance_rows(m, d, feet, jacp)

    r, J = rows(q)
    assert np.linalg.norm(r) > 0.05
    eps = 1e-6
    for k in range(m.nv):
        dq = np.zeros(m.nv)
        dq[k] = eps
        qp, qm = q.copy(), q.copy()
        mujoco.mj_integratePos(m, qp, dq, 1.0)
        mujoco.mj_integratePos(m, qm, -dq, 1.0)
        np.testing.assert_allclose((rows(qp)[0] - rows(qm)[0]) / (2 * eps), J[:, k], atol=1e-5)
    q[3:7] = [1.0, 0.0, 0.0, 0.0]
    q[7:] = m.qpos0[7:]
    assert rows(q) is None  # standing upright: within the margin


def test_standing_frames_reads_the_hips_speed():
    from motionrecon.body.fit import STANDING_SPEED, standing_frames
    from motionrecon.observations import Observations

    fps, T = 20.0, 40
    hips = [MEDIAPIPE33.joints.index("left_hip"), MEDIAPIPE33.joints.index("right_hip")]
    joints = np.zeros((T, 33, 3), np.float32)
    joints[:, hips[0], 0], joints[:, hips[1], 0] = 0.1, -0.1
    joints[20:, hips, 1] += (np.arange(20) * 3 * STANDING_SPEED / fps)[:, None]  # then walks at 3x that speed
    conf = np.ones((T, 33), np.float32)
    conf[35:, hips[0]] = 0.0  # then the left hip is lost
    still = standing_frames(Observations(fps=fps, joint_set="mediapipe33", joints3d=joints, joints2d=None,
                                         confidence=conf))
    assert still[:18].all() and not still[21:].any()


def test_ik_interpolates_the_frames_without_a_detection_between_two_with_one(walk_1s):
    """The walk with no joint seen in frames 10-17: the reference there lies on the way between frames 9 and 18
    (the root's position linearly, its rotation by slerp), closer to the walk than frame 9's pose held; with a
    shot cut at frame 14 nothing is interpolated across it: frames 10-13 hold frame 9's pose, 14-17 take 18's."""
    from scipy.spatial.transform import Rotation, Slerp

    body = build_body(measure_shape(walk_1s))
    conf = walk_1s.confidence.copy()
    conf[10:18] = 0.0
    q = inverse_kinematics(body.model, dataclasses.replace(walk_1s, confidence=conf))
    s = (np.arange(10, 18) - 9) / 9.0
    np.testing.assert_allclose(q[10:18, :3], q[9, :3] + s[:, None] * (q[18, :3] - q[9, :3]), atol=1e-9)
    ends = Rotation.from_quat(q[[9, 18]][:, [4, 5, 6, 3]])  # MuJoCo's quaternions are w first
    slerp = Slerp([0.0, 1.0], ends)(s)
    assert np.max((slerp.inv() * Rotation.from_quat(q[10:18][:, [4, 5, 6, 3]])).magnitude()) < 1e-6
    idx = [BODY_LANDMARKS.index(lm) for lm in walk_1s.skeleton.landmarks]
    truth = walk_1s.joints3d[10:18]
    err = lambda qs: float(np.linalg.norm(landmark_sites(body.model, qs)[:, idx] - truth, axis=-1).mean())
    held = np.repeat(q[9:10], 8, axis=0)
    assert err(q[10:18]) < 0.5 * err(held), (err(q[10:18]), err(held))
    cut = inverse_kinematics(body.model, dataclasses.replace(walk_1s, confidence=conf, shot_starts=(14,)))
    # (the root held; the joints, with nothing to fit, drift towards rest under the IK's regulariser)
    np.testing.assert_allclose(cut[10:14, :7], np.repeat(cut[9:10, :7], 4, axis=0), atol=1e-9)
    np.testing.assert_allclose(cut[14:18], np.repeat(cut[18:19], 4, axis=0), atol=1e-9)


def test_hinges_are_wrapped_to_the_same_pose_within_half_a_turn():
    """The IK's hinge angles a whole turn away (the studio dance's elbows at -5.0 rad) come back to the angle the
    joint's range and the PD controllers mean, with every site where it was; angles within half a turn stay
    exactly as they are."""
    from motionrecon.body.fit import wrap_hinges

    body = build_body()
    m = body.model
    elbow_joint = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "right_forearm")
    elbow = m.jnt_qposadr[elbow_joint]
    knee = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "left_shin")]
    meant = m.qpos0.copy()
    meant[elbow], meant[knee] = 1.28, 0.7
    turned = meant.copy()
    turned[elbow] -= 2 * np.pi
    turned[knee] += 4 * np.pi
    wrapped = wrap_hinges(m, turned.copy())
    np.testing.assert_allclose(wrapped, meant, atol=1e-12)
    np.testing.assert_allclose(landmark_sites(m, wrapped[None]), landmark_sites(m, turned[None]), atol=1e-9)
    lo, hi = m.jnt_range[elbow_joint]
    assert lo <= wrapped[elbow] <= hi
    kept = meant.copy()
    kept[elbow] = np.nextafter(np.pi, 0)
    assert np.array_equal(wrap_hinges(m, kept.copy()), kept)


def test_a_rig_s_short_trunk_is_measured_and_its_pelvis_stands_upright():
    """A BVH rig read onto "h36m17" (a pelvis root, no chest) whose shoulders sit 0.37 m above its root (the Bandai
    rigs'; the template's DeepMimic trunk puts them 0.48 m up) and whose hips lie 5 cm in front of its root: the
    shape takes both, and its neck base, and the IK stands its pelvis upright; with the template's trunk it folded the pelvis 33
    degrees back and the torso 68 degrees forward to reach the shoulders."""
    from motionrecon.observations import Observations
    from motionrecon.skeleton import H36M17

    rig = BodyShape(pelvis_to_chest=0.18, shoulder_rise=0.19, hip_drop=0.03, hip_forward=0.05)
    model = build_body(rig).model
    stand = np.repeat(model.qpos0[None], 6, axis=0)
    stand[:, 0] = np.linspace(0.0, 0.5, 6)  # walking forward along x
    sites = landmark_sites(model, stand)
    joints = sites[:, [BODY_LANDMARKS.index(lm) for lm in H36M17.landmarks]]
    obs = Observations(fps=10.0, joint_set="h36m17", joints3d=joints.astype(np.float32), joints2d=None,
                       confidence=np.ones(joints.shape[:2], np.float32))
    shape = measure_shape(obs)
    assert shape.pelvis_to_chest + shape.shoulder_rise == pytest.approx(0.37, abs=0.005)
    assert shape.pelvis_to_chest + shape.chest_to_thorax == pytest.approx(0.18 + rig.chest_to_thorax, abs=0.005)
    assert shape.hip_forward == pytest.approx(0.05, abs=0.005)
    assert shape.hip_drop == pytest.approx(0.03, abs=0.005)
    body = build_body(shape)
    q = inverse_kinematics(body.model, obs)
    tilt = np.degrees(np.arccos(np.clip([1 - 2 * (qt[4] ** 2 + qt[5] ** 2) for qt in q[:, :7]], -1, 1)))
    assert tilt.max() < 8.0, tilt
    fit = np.linalg.norm(landmark_sites(body.model, q)[:, [BODY_LANDMARKS.index(lm) for lm in H36M17.landmarks]]
                         - joints, axis=-1)
    assert fit.mean() < 0.01, fit.mean()


def test_joint_range_excess_reads_a_rolled_foot_and_a_backward_knee():
    model = build_body().model
    qpos = np.tile(model.qpos0, (3, 1))
    foot = model.jnt_qposadr[model.joint("left_foot").id]
    knee = model.jnt_qposadr[model.joint("right_shin").id]
    limit = model.jnt_range[model.joint("left_foot").id, 1]  # 60 degrees
    roll = limit + np.radians(75.0)  # the studio dance's foot, 135 degrees about its long axis
    qpos[1, foot:foot + 4] = [np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0]
    qpos[2, foot:foot + 4] = [-np.cos(roll / 2), -np.sin(roll / 2), 0.0, 0.0]  # the same rotation, other sign
    qpos[2, knee] = -0.5  # bent backwards (range 0..160 degrees)
    names, excess = joint_range_excess(model, qpos)
    assert excess.shape == (3, len(names)) and "left_foot" in names and "torso" in names
    assert np.all(excess[0] == 0.0)
    for t in (1, 2):
        assert excess[t, names.index("left_foot")] == pytest.approx(np.radians(75.0), abs=1e-9)
    assert excess[2, names.index("right_shin")] == pytest.approx(0.5)
    assert np.count_nonzero(excess) == 3


@pytest.mark.parametrize("joint_set", ["h36m17", "mediapipe33"])
def test_ik_keeps_a_backward_elbow_in_its_range(joint_set):
    """An arm observed straight and then bent backwards, the shoulder turned half round: with elbow and wrist
    alone (a mocap rig) the forward bend with the shoulder turned back fits exactly, and the IK takes it (Bandai's
    punch: the right elbow 2.3 rad backwards before); with MediaPipe's hand points, which only the backward bend
    fits (the body has no forearm twist), the elbow stays within its range all the same (the studio dance's right
    elbow was 108 degrees past straight), where without the range residual the IK follows the backward bend."""
    from motionrecon.observations import Observations
    from motionrecon.skeleton import get_joint_set

    m = build_body().model
    elbow_joint = m.joint("right_forearm").id
    elbow, shoulder = m.jnt_qposadr[elbow_joint], m.jnt_qposadr[m.joint("right_upper_arm").id]
    backward = np.tile(m.qpos0, (12, 1))
    backward[:, elbow] = np.linspace(0.0, -1.0, 12)  # from straight, bent further backwards frame by frame
    backward[:, shoulder:shoulder + 4] = [0.0, 0.0, 0.0, 1.0]  # half a turn about the upper arm's long axis
    sites = landmark_sites(m, backward)
    js = get_joint_set(joint_set)
    joints = sites[:, [BODY_LANDMARKS.index(lm) for lm in js.landmarks]]
    obs = Observations(fps=30.0, joint_set=joint_set, joints3d=joints.astype(np.float32), joints2d=None,
                       confidence=np.ones(joints.shape[:2], np.float32))
    lo = m.jnt_range[elbow_joint, 0]
    kept = inverse_kinematics(m, obs)
    assert np.all(kept[:, elbow] > lo - 0.05), kept[:, elbow]
    if joint_set == "h36m17":
        assert kept[-1, elbow] > 0.8  # bent forwards about as far (the temporal term lags it a little)
        fitted = landmark_sites(m, kept)
        for lm in ("right_elbow", "right_wrist"):
            i = BODY_LANDMARKS.index(lm)
            assert np.abs(fitted[:, i] - sites[:, i]).max() < 0.01, lm
    else:  # only the backward bend fits the hand's points: without the range residual the IK takes it
        free = inverse_kinematics(m, obs, range_weight=0.0)
        assert free[-1, elbow] < lo - 0.8, free[:, elbow]


def test_range_rows_jacobian_matches_finite_differences():
    from motionrecon.body.fit import _range_rows

    m = build_body().model
    rng = np.random.default_rng(0)
    q = m.qpos0.copy()
    for j in range(1, m.njnt):  # every joint turned at random, most past their ranges
        a = m.jnt_qposadr[j]
        if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_BALL:
            axis, angle = rng.normal(size=3), rng.uniform(0.5, 3.0)
            q[a:a + 4] = [np.cos(angle / 2), *(np.sin(angle / 2) * axis / np.linalg.norm(axis))]
        else:
            q[a] = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 3.0) + (np.pi if q[a] > 0 else 0.0)
    r, J = _range_rows(m, q)
    names, excess = joint_range_excess(m, q[None])
    np.testing.assert_allclose(np.sort(np.abs(r)), np.sort(excess[0][excess[0] > 0]), atol=1e-12)
    assert len(r) >= 4
    eps, numeric = 1e-6, np.zeros_like(J)
    for k in range(m.nv):
        dq = np.zeros(m.nv)
        dq[k] = eps
        q2 = q.copy()
        mujoco.mj_integratePos(m, q2, dq, 1.0)
        numeric[:, k] = (_range_rows(m, q2)[0] - r) / eps
    np.testing.assert_allclose(numeric, J, atol=1e-5)


def test_blended_poses_go_from_one_to_the_other_along_the_shortest_way():
    from motionrecon.body.fit import blend_poses

    body = build_body(BodyShape())
    m = body.model
    rng = np.random.default_rng(0)
    qa, qb = np.tile(m.qpos0, (3, 1)), np.tile(m.qpos0, (3, 1))
    qb[:, :3] += [0.3, -0.1, 0.05]
    for j in range(m.njnt):  # every rotation of qb turned a little away from qa's, some quaternions flipped
        a = m.jnt_qposadr[j]
        kind = int(m.jnt_type[j])
        if kind in (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_BALL)):
            k = a + 3 if kind == int(mujoco.mjtJoint.mjJNT_FREE) else a
            axis = rng.normal(size=3)
            q = np.concatenate([[np.cos(0.2)], np.sin(0.2) * axis / np.linalg.norm(axis)])
            qb[:, k:k + 4] = -q if j % 2 else q
        else:
            qb[:, a] += 0.4
    out = blend_poses(m, qa, qb, np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(out[0], qa[0], atol=1e-9)
    v = np.zeros(m.nv)
    mujoco.mj_differentiatePos(m, v, 1.0, out[2], qb[2])
    np.testing.assert_allclose(v, 0.0, atol=1e-9)  # the same pose (a flipped quaternion is the same rotation)
    half_a, half_b = np.zeros(m.nv), np.zeros(m.nv)
    mujoco.mj_differentiatePos(m, half_a, 1.0, qa[1], out[1])
    mujoco.mj_differentiatePos(m, half_b, 1.0, out[1], qb[1])
    np.testing.assert_allclose(half_a, half_b, atol=1e-9)  # halfway: as far from each, along the shortest arc
    np.testing.assert_allclose(out[1, :3], qa[1, :3] + [0.15, -0.05, 0.025])
