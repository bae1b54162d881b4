"""Camera motion from the background: a synthetic pan and shift of a real frame, a travelling camera, real
static clips, and a placement that stays put while the camera turns."""

import dataclasses

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionrecon.camera import intrinsics_matrix
from motionrecon.keypoints import camera_motion, placement
from motionrecon.skeleton import MEDIAPIPE33

from video_support import DRIBBLE, look_at_camera, require, walking_body

HIPS = [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]


def _real_frame(size=(1280, 720)):
    """A real outdoor frame (the dribble clip's first, a wall, plants and paving) turned to landscape."""
    cap = cv2.VideoCapture(str(require(DRIBBLE)))
    ok, frame = cap.read()
    cap.release()
    assert ok
    frame = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)  # 1920x1080
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _steps(frames, exclude=()):
    """[T, 3, 3] homographies and [T] parallax of consecutive frames (`background_step`)."""
    H = [np.full((3, 3), np.nan)]
    parallax = [np.nan]
    previous = None
    for frame in frames:
        grey, scale = camera_motion.analysis_image(frame)
        if previous is not None:
            step = camera_motion.background_step(previous, grey, scale, exclude=list(exclude))
            H.append(step.H)
            parallax.append(step.parallax)
        previous = grey
    return np.stack(H), np.array(parallax)


def test_a_synthetic_pan_of_a_real_frame_is_recovered():
    image = _real_frame()
    h, w = image.shape[:2]
    K = intrinsics_matrix(1000.0, w, h)
    pan = np.radians(0.6) * np.arange(15)  # to the right
    tilt = np.radians(-0.2) * np.arange(15)  # and down
    # x_t = R_t x_0: a camera that turned by (pan, tilt) sees the first view through K R_t K^-1.
    turns = [Rotation.from_euler("YX", [p, -t]).as_matrix().T for p, t in zip(pan, tilt)]
    frames = [cv2.warpPerspective(image, K @ R @ np.linalg.inv(K), (w, h)) for R in turns]
    H, parallax = _steps(frames, exclude=[np.array([560.0, 250.0, 720.0, 600.0])])
    motion = camera_motion.camera_motion(H, parallax, K, w, h)
    assert motion.verdict == "panning", motion.note
    assert motion.measured[1:].all()
    assert np.abs(motion.pan_deg - np.degrees(pan)).max() < 0.1, motion.pan_deg
    assert np.abs(motion.tilt_deg - np.degrees(tilt)).max() < 0.1, motion.tilt_deg
    # A pixel of the last frame maps back to where the first frame saw the same scene point.
    p0 = np.array([[400.0, 300.0]])
    q = cv2.perspectiveTransform(p0[None], K @ turns[-1] @ np.linalg.inv(K))[0]
    back = camera_motion.to_reference_pixels(q[None], motion.rotations[-1:], K)[0]
    assert np.linalg.norm(back - p0) < 1.0
    model = motion.camera_model(K)
    assert model.kind == "rotating" and model.trajectory_reliable is True
    points = np.zeros((len(frames), 1, 2))
    points[-1] = back
    assert np.linalg.norm(model.video_pixels(points)[-1] - q) < 1e-6


def test_shifted_crops_give_their_shift():
    image = _real_frame((1600, 900))
    shift = np.array([3.0, -1.5])  # pixels per frame, the view moving right and up
    frames = []
    for k in range(10):
        x0, y0 = 100 + shift[0] * k, 100 + shift[1] * k
        M = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
        frames.append(cv2.warpAffine(image, M, (1280, 720), flags=cv2.INTER_LINEAR))
    H, parallax = _steps(frames)
    K = intrinsics_matrix(1000.0, 1280, 720)
    motion = camera_motion.camera_motion(H, parallax, K, 1280, 720)
    # The scene moves against the view: by -shift per frame.
    moved = np.stack([cv2.perspectiveTransform(np.array([[[640.0, 360.0]]]), h)[0, 0] - [640, 360] for h in H[1:]])
    assert np.abs(moved + shift).max() < 0.2, moved
    assert np.allclose(motion.shift_px[1:], np.linalg.norm(shift), atol=0.2)
    assert motion.verdict == "panning"  # small shifts of a view are close to a turn
    assert 0 < motion.pan_deg[-1] < np.degrees(np.arctan(shift[0] * 9 / 1000)) + 0.1  # to the right


def test_a_travelling_camera_is_not_taken_for_a_pan():
    """Near ground moves faster than the far wall: no single homography, so no rotation to undo."""
    image = _real_frame((1600, 900))
    frames = []
    for k in range(8):
        far = np.float32([[1, 0, -100 - 2 * k], [0, 1, -100]])
        near = np.float32([[1, 0, -100 - 10 * k], [0, 1, -100]])
        frame = cv2.warpAffine(image, far, (1280, 720))
        frame[430:] = cv2.warpAffine(image, near, (1280, 720))[430:]
        frames.append(frame)
    H, parallax = _steps(frames)
    K = intrinsics_matrix(1000.0, 1280, 720)
    motion = camera_motion.camera_motion(H, parallax, K, 1280, 720)
    assert motion.verdict == "moving" and motion.trajectory_reliable is False, motion.note
    assert "travels" in motion.note
    assert np.allclose(motion.rotations, np.eye(3))  # nothing is undone


def test_parallax_fraction_counts_the_cells_that_move_off_the_homography():
    xs, ys = np.meshgrid(np.arange(5, 640, 10.0), np.arange(5, 360, 10.0))
    src = np.stack([xs.ravel(), ys.ravel()], 1)
    near = src[:, 1] >= 270  # the bottom grid row of cells: a quarter of them
    dst = src + np.where(near[:, None], [6.0, 0.0], [1.0, 0.0])
    H = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # the far part's motion
    assert camera_motion.parallax_fraction(src, dst, H, (360, 640)) == pytest.approx(0.25)
    assert camera_motion.parallax_fraction(src, src + [1.0, 0.0], H, (360, 640)) == 0.0


def test_plain_background_is_unknown_and_static_is_static():
    K = intrinsics_matrix(1000.0, 640, 480)
    plain = [np.full((480, 640, 3), 200, np.uint8) for _ in range(5)]
    H, parallax = _steps(plain)
    unknown = camera_motion.camera_motion(H, parallax, K, 640, 480)
    assert unknown.verdict == "unknown" and unknown.trajectory_reliable is None
    still = [_real_frame((640, 480))] * 5
    H, parallax = _steps(still)
    static = camera_motion.camera_motion(H, parallax, K, 640, 480)
    assert static.verdict == "static" and static.trajectory_reliable is True
    assert static.camera_model(K).to_video is None


@pytest.mark.parametrize("name", ["two_people_hug.mp4", "small_person_drinking.avi"])
def test_real_static_clips_are_static(shared_data, name):
    from motionrecon.video import iter_frames

    frames = [f for _, f in iter_frames(shared_data / "video" / name, stop=30, stride=3)]
    h, w = frames[0].shape[:2]
    H, parallax = _steps(frames)
    motion = camera_motion.camera_motion(H, parallax, intrinsics_matrix(1500.0, w, h), w, h)
    assert motion.verdict == "static", motion.note
    assert np.nanmax(motion.shift_px) < 1.0


def _panned_walk(tilt_deg=6.0):
    """A walking body seen by a camera that turns to follow it (pan) and tilts down by `tilt_deg`
    over the clip: the video's pixels, the rotations x_t = R_t x_0, and what placement needs."""
    world, stance = walking_body(num_frames=60)
    R0, t0 = look_at_camera(position=(0.5, -4.0, 1.3), target=(0.5, 0.0, 0.9))
    K = intrinsics_matrix(1400.0, 1920, 1080)
    cam0 = world @ R0.T + t0
    hips0 = cam0[:, HIPS].mean(1)
    pan = np.arctan2(hips0[:, 0], hips0[:, 2]) - np.arctan2(hips0[0, 0], hips0[0, 2])
    tilt = np.radians(tilt_deg) * np.linspace(0, 1, len(world))
    turns = np.stack([Rotation.from_euler("YX", [p, t]).as_matrix().T for p, t in zip(pan, tilt)])
    cam_t = np.einsum("tij,tkj->tki", turns, cam0)
    uv = cam_t @ K.T
    pixels = uv[..., :2] / uv[..., 2:3]
    own = cam_t - cam_t[:, HIPS].mean(1, keepdims=True)  # hip-centred 3D in each frame's camera axes
    return dict(world=world, stance=stance, K=K, pixels=pixels, own=own, turns=turns, cam0=cam0)


def test_undoing_the_pan_keeps_the_world_still_and_the_body_on_the_ground():
    s = _panned_walk()
    T = len(s["world"])
    args = (s["own"], np.ones((T, 33)), np.ones(T, bool), s["K"], 1920, 1080, 20.0)
    undone = placement.place(camera_motion.to_reference_pixels(s["pixels"], s["turns"], s["K"]), *args)
    as_static = placement.place(s["pixels"], *args)
    truth = s["cam0"][:, HIPS].mean(1)
    err_undone = np.linalg.norm(undone.root_cam - truth, axis=1)
    err_static = np.linalg.norm(as_static.root_cam - truth, axis=1)
    assert err_undone.max() < 0.05, err_undone
    assert err_static.max() > 0.5  # a static camera would put the walker elsewhere
    pelvis = undone.observations.joints3d[:, HIPS, 2].mean(1)
    true_pelvis = s["world"][:, HIPS, 2].mean(1)
    assert np.abs(pelvis - true_pelvis).max() < 0.04
    assert np.abs(undone.observations.joints3d[s["stance"]][:, 2]).max() < 0.04


def _placed_walk():
    """(the walk placed by a static camera that did not move, its frame count)."""
    s = _panned_walk(tilt_deg=0.0)
    T = len(s["world"])
    p = placement.place(s["pixels"], s["own"], np.ones((T, 33)), np.ones(T, bool), s["K"], 1920, 1080, 20.0)
    return p.observations, T


def _moved(obs, joints3d):
    """`obs` with its joints at `joints3d` and its 2D keypoints their projections."""
    return dataclasses.replace(obs, joints3d=joints3d, joints2d=obs.camera.project(joints3d).astype(np.float32))


def _walk_lifted_from_frame_15():
    """(placed walk with frames 15 on half a metre up, as a camera that moved would place them, frames)."""
    obs, T = _placed_walk()
    lifted = obs.joints3d.copy()
    lifted[15:, :, 2] += 0.5
    return _moved(obs, lifted), T


def test_keep_on_ground_lowers_a_floating_second_and_keeps_2d_and_3d_together():
    lifted_obs, T = _walk_lifted_from_frame_15()  # the last 2.25 s in the air
    grounded, lowered, shift = placement.keep_on_ground(lifted_obs, np.ones(T, bool))
    feet = grounded.joints3d[:, list(placement.FOOT_POINTS), 2].min(1)
    assert np.abs(feet[35:]).max() < 0.03, feet  # a whole window past the lift
    assert lowered[35:] == pytest.approx(0.5, abs=0.03)
    assert np.abs(lowered[:5]).max() < 0.03  # the first quarter second was on the ground already
    reproj = np.linalg.norm(grounded.camera.project(grounded.joints3d) - grounded.joints2d, axis=-1)
    assert np.median(reproj) < 2.0  # 2D moved with the 3D
    # The video's pixels are the observed ones less the shift.
    assert np.abs(grounded.joints2d - shift[:, None] - lifted_obs.joints2d).max() < 0.01


def test_keep_on_ground_takes_each_shot_on_its_own():
    """At a cut the ground comes from the new shot alone: no window reaches across it."""
    lifted_obs, T = _walk_lifted_from_frame_15()  # the next shot placed half a metre up
    grounded, lowered, _ = placement.keep_on_ground(lifted_obs, np.ones(T, bool), shot_starts=(15,))
    feet = grounded.joints3d[:, list(placement.FOOT_POINTS), 2].min(1)
    assert np.abs(feet).max() < 0.03, feet  # right up to and from the cut
    assert np.abs(lowered[:15]).max() < 0.03 and lowered[15:] == pytest.approx(0.5, abs=0.03)
    _, across, _ = placement.keep_on_ground(lifted_obs, np.ones(T, bool))
    assert np.abs(across[13:17] - lowered[13:17]).max() > 0.1  # one window over both shots blends them


def test_a_cut_is_no_camera_motion_and_the_rotations_start_again_there():
    """A pan of 1 degree per frame with a cut at frame 10 (the step into it: a zoom, no rotation at all)."""
    from motionrecon.keypoints.shots import Shots

    K = intrinsics_matrix(1280, 720, 65.0)
    step = K @ Rotation.from_euler("y", 1.0, degrees=True).as_matrix() @ np.linalg.inv(K)
    T = 20
    H = np.repeat(step[None], T, axis=0)
    H[0] = np.nan
    H[10] = np.diag([1.8, 1.8, 1.0]) @ np.array([[1, 0, -200], [0, 1, -50], [0, 0, 1.0]])
    parallax = np.zeros(T)
    plain = camera_motion.camera_motion(H, parallax, K, 1280, 720)
    assert plain.verdict == "moving"  # the cut's step is no rotation
    cuts = Shots(starts=(10,), transition=np.zeros(T, bool))
    cut = camera_motion.camera_motion(H, parallax, K, 1280, 720, cuts)
    assert cut.verdict == "panning"
    turned = np.degrees(np.linalg.norm(Rotation.from_matrix(cut.rotations).as_rotvec(), axis=1))
    assert turned[9] == pytest.approx(9.0, abs=0.05) and turned[10] == pytest.approx(9.0, abs=0.05)
    assert turned[19] == pytest.approx(18.0, abs=0.05)  # 9 steps after the cut, chained on without one at it


def test_keep_on_ground_follows_a_camera_that_tilts_without_lagging():
    """The walk carried up at 0.5 m/s, as a camera tilting down while a static one is assumed would place it: the
    lowest foot point stays on the ground (median within 3 cm, 90th percentile within 6 cm, beyond the first and
    last half window), where the lowest foot point of each window (before session 26), half a window behind,
    floated 25 cm."""
    obs, T = _placed_walk()
    rising = obs.joints3d.copy()
    rising[..., 2] += 0.5 * np.arange(T)[:, None] / 20.0
    grounded, _, _ = placement.keep_on_ground(_moved(obs, rising), np.ones(T, bool))
    inner = slice(10, T - 10)
    feet = grounded.joints3d[inner][:, list(placement.FOOT_POINTS), 2].min(1)
    assert abs(np.median(feet)) < 0.03 and np.percentile(np.abs(feet), 90) < 0.06, feet
    truth = obs.joints3d[inner][:, list(placement.FOOT_POINTS), 2].min(1)
    assert np.percentile(np.abs(feet - truth), 90) < 0.05  # the walk's own feet, up to a few centimetres


def test_keep_on_ground_keeps_a_jump_in_the_air():
    """A 0.3 s jump 20 cm up in the middle of the walk: it keeps at least 18 cm of its flight, and the frames
    around it stay where they were within a centimetre (the ground is a low percentile of the window's feet)."""
    obs, T = _placed_walk()
    jump = obs.joints3d.copy()
    jump[25:31, :, 2] += 0.2
    grounded, _, _ = placement.keep_on_ground(_moved(obs, jump), np.ones(T, bool))
    lowest = lambda o: o.joints3d[:, list(placement.FOOT_POINTS), 2].min(1)
    rise = lowest(grounded) - lowest(obs)
    assert rise[25:31].mean() > 0.18, rise[25:31]
    assert np.abs(rise[np.r_[15:25, 31:41]]).max() < 0.01
