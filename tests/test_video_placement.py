"""Global placement: recover a known trajectory, ground plane and camera from synthetic projections."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionrecon.camera import intrinsics_matrix
from motionrecon.keypoints import placement
from motionrecon.skeleton import MEDIAPIPE33

from video_support import look_at_camera, walking_body

HIPS = [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]
HEELS = [MEDIAPIPE33.index("left_heel"), MEDIAPIPE33.index("right_heel")]
W, H = 1920, 1080


def _scene(seed=0, pixel_noise=1.5, noise_3d=0.01, turn_deg=10.0, roll_deg=4.0, heel_height=0.0):
    """A walking body seen by a known camera; the 3D handed to placement is hip-centred, turned
    away from the camera's axes by up to `turn_deg` per frame (as MediaPipe's own orientation).
    `heel_height`: metres the heel points sit above the sole (MediaPipe: on the back of the heel)."""
    rng = np.random.default_rng(seed)
    world, stance = walking_body()
    world[:, HEELS, 2] += heel_height
    stance[:, HEELS] &= heel_height == 0.0
    R, t = look_at_camera(position=(1.0, -5.0, 1.4), target=(1.2, 0.0, 0.8), roll_deg=roll_deg)
    K = intrinsics_matrix(1400.0, W, H)
    cam = world @ R.T + t
    uv = cam @ K.T
    joints2d = uv[..., :2] / uv[..., 2:3] + rng.normal(0, pixel_noise, cam.shape[:2] + (2,))
    hips_w = world[:, HIPS].mean(1, keepdims=True)
    turns = Rotation.from_rotvec(rng.normal(size=(len(world), 3)) * np.radians(turn_deg) / np.sqrt(3)).as_matrix()
    own = np.einsum("tij,tkj->tki", turns @ R[None], world - hips_w) + rng.normal(0, noise_3d, world.shape)
    visibility = np.ones(world.shape[:2])
    return dict(world=world, stance=stance, R=R, t=t, K=K, cam=cam, joints2d=joints2d, joints3d=own,
                visibility=visibility)


def test_recovers_root_trajectory_ground_and_camera():
    s = _scene()
    T = len(s["world"])
    p = placement.place(s["joints2d"], s["joints3d"], s["visibility"], np.ones(T, bool), s["K"], W, H, 20.0,
                        source="synthetic")
    true_root_cam = s["cam"][:, HIPS].mean(1)
    root_err = np.linalg.norm(p.root_cam - true_root_cam, axis=1)
    assert np.median(root_err) < 0.03 and root_err.max() < 0.08, root_err

    true_up_cam = s["R"] @ np.array([0.0, 0.0, 1.0])
    angle = np.degrees(np.arccos(np.clip(p.up_cam @ true_up_cam, -1, 1)))
    assert angle < 2.0, angle
    assert abs(p.camera_height - 1.4) < 0.05
    assert abs(p.camera_roll_deg - (-4.0)) < 2.0 or abs(p.camera_roll_deg - 4.0) < 2.0

    obs = p.observations
    assert obs.joint_set == "mediapipe33" and obs.joints3d.shape == (T, 33, 3)
    # World frame: the feet that stand on the true ground are at z ~ 0; the head at its true height.
    stance_z = obs.joints3d[s["stance"]][:, 2]
    assert np.abs(stance_z).max() < 0.04
    assert abs(np.median(obs.joints3d[:, 0, 2]) - np.median(s["world"][:, 0, 2])) < 0.04
    # The walked path: same length and shape as the truth, up to a turn about z and a shift.
    true_xy = s["world"][:, HIPS].mean(1)[:, :2]
    est_xy = obs.joints3d[:, HIPS].mean(1)[:, :2]
    a, b = true_xy - true_xy.mean(0), est_xy - est_xy.mean(0)
    U, _, Vt = np.linalg.svd(b.T @ a)
    rot2 = (U @ Vt).T
    assert np.linalg.det(rot2) > 0
    assert np.abs(b @ rot2.T - a).max() < 0.06
    # The camera of the observations reprojects the placed joints near the detections.
    reproj = np.linalg.norm(obs.camera.project(obs.joints3d) - obs.joints2d, axis=-1)
    assert np.median(reproj) < 4.0
    # Camera convention: x_cam = R x_world + t puts the camera centre at the stated height.
    centre = -obs.camera.R.T @ obs.camera.t
    assert abs(centre[2] - p.camera_height) < 1e-6


def test_heel_points_above_the_sole_do_not_raise_the_ground():
    # MediaPipe's heel point sits centimetres above the sole: the ground must stay under the toe tips.
    s = _scene(heel_height=0.06)
    T = len(s["world"])
    p = placement.place(s["joints2d"], s["joints3d"], s["visibility"], np.ones(T, bool), s["K"], W, H, 20.0)
    np.testing.assert_allclose(p.heel_rise, 0.06, atol=0.02)
    assert p.describe()["heel_rise_m"] == [float(v) for v in p.heel_rise]
    toes_on_ground = p.observations.joints3d[s["stance"]][:, 2]
    assert np.abs(np.median(toes_on_ground)) < 0.015 and np.abs(toes_on_ground).max() < 0.04
    assert abs(p.camera_height - 1.4) < 0.05


def test_heels_onto_sole_lowers_only_the_heels_by_their_median_rise():
    up = np.array([0.0, -1.0, 0.0])  # camera frame: y points down
    feet = np.zeros((5, 4, 3))
    feet[:, 0] = [0.0, -0.05, 0.0]  # left heel 5 cm above its toe tip
    feet[:, 2] = [0.0, 0.01, 0.0]  # right heel 1 cm below its toe tip: counts as 0
    moved, rise = placement.heels_onto_sole(feet, np.ones(5, bool), up)
    np.testing.assert_allclose(rise, [0.05, 0.0])
    np.testing.assert_allclose(moved[:, 0], 0.0, atol=1e-12)
    np.testing.assert_array_equal(moved[:, 1:], feet[:, 1:])


def test_undetected_frames_are_kept_interpolated_with_zero_confidence():
    s = _scene(seed=1)
    T = len(s["world"])
    detected = np.ones(T, bool)
    detected[[0, 10, 11, 12, T - 1]] = False
    j2, j3, vis = s["joints2d"].copy(), s["joints3d"].copy(), s["visibility"].copy()
    j2[~detected], j3[~detected], vis[~detected] = np.nan, np.nan, 0.0
    p = placement.place(j2, j3, vis, detected, s["K"], W, H, 20.0)
    obs = p.observations
    assert obs.num_frames == T
    assert np.all(np.isfinite(obs.joints3d)) and np.all(np.isfinite(obs.joints2d))
    assert np.all(obs.confidence[~detected] == 0) and np.all(obs.confidence[detected] > 0)
    # Interpolated frames lie between their neighbours.
    mid = obs.joints3d[11, HIPS].mean(0)
    lo, hi = obs.joints3d[9, HIPS].mean(0), obs.joints3d[13, HIPS].mean(0)
    assert np.linalg.norm(mid - (lo + hi) / 2) < 1e-6
    assert np.isnan(p.reprojection_px[10]) and not p.detected[10]
    np.testing.assert_allclose(p.rotations[11] @ p.rotations[11].T, np.eye(3), atol=1e-9)


def test_ground_prior_decides_for_a_person_standing_still():
    # All foot contacts in one small patch: the plane normal comes from the body's up direction.
    s = _scene(seed=2)
    T = len(s["world"])
    still = np.repeat(s["joints2d"][:1], T, 0), np.repeat(s["joints3d"][:1], T, 0)
    p = placement.place(still[0], still[1], s["visibility"], np.ones(T, bool), s["K"], W, H, 20.0)
    true_up_cam = s["R"] @ np.array([0.0, 0.0, 1.0])
    angle = np.degrees(np.arccos(np.clip(p.up_cam @ true_up_cam, -1, 1)))
    assert angle < 15.0, angle
    assert np.isfinite(p.camera_height) and p.camera_height > 0


def test_translation_for_rotation_is_exact_without_noise():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 3)) * 0.3
    R = Rotation.from_rotvec([0.1, -0.3, 0.2]).as_matrix()
    t = np.array([0.4, -0.2, 3.5])
    cam = X @ R.T + t
    norm = cam[:, :2] / cam[:, 2:]
    est = placement.translation_for_rotation(X, norm, np.ones(20), R)
    np.testing.assert_allclose(est, t, atol=1e-9)


def test_too_few_detections_is_an_input_error():
    from motionrecon.errors import InputError
    s = _scene(seed=4)
    T = len(s["world"])
    detected = np.zeros(T, bool)
    detected[5] = True
    with pytest.raises(InputError, match="only 1 frames"):
        placement.place(s["joints2d"], s["joints3d"], s["visibility"], detected, s["K"], W, H, 20.0, source="x")


def test_real_video_is_placed_upright_on_its_ground():
    from motionrecon.keypoints import observations_from_video
    from video_support import DRIBBLE, dribble_detection

    track, cache = dribble_detection()
    result = observations_from_video(DRIBBLE, cache_path=cache, progress=False)
    assert result.from_cache and result.seconds["detection"] == 0.0
    p, obs = result.placement, result.observations
    assert obs.num_frames == 40 and obs.fps == pytest.approx(12.0) and obs.camera is not None
    assert obs.camera.width == 1080 and obs.camera.height == 1920
    # A phone held by a person, looking slightly down, a couple of metres from the player.
    assert 0.5 < p.camera_height < 2.2 and -5 < p.camera_pitch_deg < 30 and abs(p.camera_roll_deg) < 10
    assert 1.5 < np.median(p.root_cam[:, 2]) < 5.0
    # Gravity agrees with the body's mean up direction to within its forward lean.
    up_body = placement.body_up(p.joints_cam, p.detected)
    assert np.degrees(np.arccos(up_body @ p.up_cam)) < 25
    # Feet on the ground (median over frames of the lowest foot point within 5 cm of z = 0), head above.
    feet = obs.joints3d[:, list(placement.FOOT_POINTS), 2].min(1)
    assert abs(np.median(feet)) < 0.05
    assert 1.0 < np.median(obs.joints3d[:, 0, 2]) < 1.9
    # The raw per-frame fit reprojects within ~2 % of the image height (MediaPipe's 3D and 2D disagree a little).
    assert np.median(p.reprojection_px) < 40
    d = result.intrinsics.describe()
    assert d["source"] == "default_fov" and p.describe()["detected_frames"] == 40
