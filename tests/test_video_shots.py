"""Shot cuts: found in a synthetic edit (a hard cut and a dissolve between two panned scenes), in the real
soccer broadcast's dissolve to a replay, and nowhere in the other real clips; what a cut does downstream
(the simulated stretches, the grounding, the smoothing of the reference)."""

import dataclasses

import cv2
import numpy as np
import pytest

from motionrecon.keypoints import shots
from motionrecon.video import iter_frames

from video_support import SHARED_DATA, require

W, H, FPS = 480, 270, 30.0


def _scene(seed: int, hue: int) -> np.ndarray:
    """A textured scene twice the frame's width: blobs of colours around `hue` (OpenCV hue, 0-180)."""
    rng = np.random.default_rng(seed)
    hsv = np.stack([(hue + rng.integers(-12, 12, (H // 8, W // 4))) % 180, rng.integers(60, 255, (H // 8, W // 4)),
                    rng.integers(60, 255, (H // 8, W // 4))], -1).astype(np.uint8)
    hsv = cv2.resize(hsv, (2 * W, H), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), (5, 5), 0)


def _shot(scene: np.ndarray, first: int, count: int) -> list[np.ndarray]:
    """`count` frames of a camera panning 6 px per frame over `scene`, with a grey figure walking across."""
    out = []
    for k in range(first, first + count):
        frame = scene[:, 6 * k:6 * k + W].copy()
        cv2.rectangle(frame, (40 + 5 * k, 80), (90 + 5 * k, 250), (90, 90, 90), -1)
        out.append(frame)
    return out


def _edit() -> tuple[list[np.ndarray], int, range]:
    """Frames: scene X panned, a hard cut to scene Y, then a dissolve back to X.
    Returns (frames, the hard cut's first frame, the dissolve's blended frames)."""
    x, y = _scene(0, 20), _scene(1, 110)
    frames = _shot(x, 0, 20) + _shot(y, 0, 20)
    ending, incoming = _shot(y, 20, 8), _shot(x, 20, 8)
    blends = [cv2.addWeighted(a, 1 - (i + 1) / 9, b, (i + 1) / 9, 0) for i, (a, b) in enumerate(zip(ending, incoming))]
    return frames + blends + _shot(x, 28, 20), 20, range(40, 48)


def _changes(frames, fps=FPS):
    """(frame changes [T], span changes [T], signatures [T, S]) as the detection loop measures them."""
    signatures, d1, dk = [], [], []
    for frame in frames:
        signatures.append(shots.frame_signature(frame))
        a, b = shots.changes(signatures, fps)
        d1.append(a)
        dk.append(b)
    return np.array(d1), np.array(dk), np.array(signatures)


def _flash(frame: np.ndarray, strength: float) -> np.ndarray:
    """The frame lit by a flash: blended towards white."""
    return cv2.addWeighted(frame, 1 - strength, np.full_like(frame, 255), strength, 0)


def test_a_hard_cut_and_a_dissolve_are_found_and_a_panning_camera_is_not_a_cut():
    frames, hard, dissolve = _edit()
    d1, dk, signatures = _changes(frames)
    found = shots.find_shots(d1, dk, FPS, signatures)
    unchecked = shots.find_shots(d1, dk, FPS)  # without the signatures (no flash test): the same cuts
    assert unchecked.starts == found.starts and (unchecked.transition == found.transition).all()
    assert len(found.starts) == 2
    assert found.starts[0] == hard + 1  # the cut's own frame counts as its transition (it differs from before)
    assert np.flatnonzero(found.transition[:hard + 5]).tolist() == [hard]
    # The dissolve: its blended frames are the transition, the new shot starts as it ends.
    assert dissolve.stop - 1 <= found.starts[1] <= dissolve.stop + 1
    blended = found.transition[dissolve.start:dissolve.stop]
    assert blended.sum() >= len(dissolve) - 2
    assert not found.transition[found.starts[1]:].any()
    # The pans and the walking figure alone are far from a cut.
    pans = np.r_[1:hard, hard + 8:dissolve.start, dissolve.stop + 8:len(frames)]
    assert dk[pans].max() < shots.CUT_DISTANCE / 2
    # Decided from the frames so far: each prefix finds the same cuts up to its last frame; a dissolve's
    # first blended frames are known as such only once the dissolve is, later.
    hold = shots.hold_frames(FPS)  # a cut is known once its new picture has lasted this long
    for t in range(1, len(frames)):
        prefix = shots.find_shots(d1[:t + 1], dk[:t + 1], FPS, signatures[:t + 1])
        assert prefix.starts == tuple(s for s in found.starts if s + hold <= t)
        assert (np.flatnonzero(prefix.transition & ~found.transition[:t + 1]) > t - hold).all()
        settled = max([0, *prefix.starts])
        assert (prefix.transition[:settled] == found.transition[:settled]).all()
    assert found.shot_of(np.array([0, hard, hard + 1, len(frames) - 1])).tolist() == [0, 0, 1, 2]


def test_a_clip_of_one_shot_has_no_cut():
    frames, hard, _ = _edit()
    d1, dk, signatures = _changes(frames[:hard])
    found = shots.find_shots(d1, dk, FPS, signatures)
    assert found.starts == () and not found.transition.any() and len(found.transition) == hard
    assert shots.find_shots(np.zeros(0), np.zeros(0), FPS).starts == ()


def test_a_flash_is_no_cut_but_a_cut_in_the_middle_of_one_still_is():
    """A camera flash (one frame), a strobe (two lit frames) and a lamp flickering for a third of a second
    change the colours as much as a cut does, and the picture comes back: no cut. Told without the
    signatures, the same changes read as cuts."""
    x, y = _scene(0, 20), _scene(1, 110)
    frames = _shot(x, 0, 40)
    for k, strength in [(12, 0.8), (20, 0.7), (21, 0.7), (28, 0.6), (30, 0.6), (32, 0.6)]:
        frames[k] = _flash(frames[k], strength)
    d1, dk, signatures = _changes(frames)
    assert dk.max() > shots.CUT_DISTANCE  # as much change as a cut
    found = shots.find_shots(d1, dk, FPS, signatures)
    assert found.starts == () and not found.transition.any()
    assert shots.find_shots(d1, dk, FPS).starts != ()
    # While a flash lasts it may yet be a cut: its frames are marked until the picture comes back.
    assert shots.find_shots(d1[:13], dk[:13], FPS, signatures[:13]).transition[12]
    # A hard cut lit by a flash on its first frame is still a cut (the lit frame and the next, which
    # differs from it, are its transition).
    cut = frames[:20] + [_flash(f, 0.8) if i == 0 else f for i, f in enumerate(_shot(y, 0, 20))]
    d1, dk, signatures = _changes(cut)
    found = shots.find_shots(d1, dk, FPS, signatures)
    assert found.starts == (22,) and np.flatnonzero(found.transition).tolist() == [20, 21]


@pytest.mark.parametrize("name", ["soccer_broadcast.mp4", "running_track_panning.mp4", "studio_dance.mp4",
                                  "two_people_hug.mp4", "single_person_dribble.mp4",
                                  "small_person_drinking.avi"])
def test_the_real_clips_cuts(name):
    """The broadcast dissolves to a replay at 7.0-7.3 s; no other dev clip has a cut (a fast pan, a dance
    with turns, people hiding each other, a 12 fps phone clip)."""
    path = require(SHARED_DATA / "video" / name)
    fps = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS)
    d1, dk, signatures = _changes([frame for _, frame in iter_frames(path)], fps)
    found = shots.find_shots(d1, dk, fps, signatures)
    if name.startswith("soccer"):
        assert found.starts == (219,)
        assert np.flatnonzero(found.transition).tolist() == list(range(210, 219))
    else:
        assert found.starts == () and not found.transition.any()
        assert dk.max() < 0.5 * shots.CUT_DISTANCE


# ------------------------------------------------------------ what a cut does downstream

def test_a_cut_splits_the_simulated_stretches():
    from motionrecon.window import observed_segments

    conf = np.ones((100, 3))
    assert observed_segments(conf, 10.0, 0.5, (40,)) == [(0, 40), (40, 100)]
    assert observed_segments(conf, 10.0, 0.0, (40, 41)) == [(0, 40), (41, 100)]  # a 1-frame shot: no stretch
    conf[35:50] = 0.0  # a gap around the cut
    assert observed_segments(conf, 10.0, 0.5, (40,)) == [(0, 35), (50, 100)]
    conf[35:50] = 1.0
    conf[40:44] = 0.0  # a shot of 4 frames (shorter than the gap) in which the person is never seen: not simulated
    assert observed_segments(conf, 10.0, 0.5, (40, 44)) == [(0, 40), (44, 100)]


def test_undetected_frames_are_filled_within_their_shot():
    from motionrecon.keypoints.placement import fill_gaps, fill_rotation_gaps, fill_within_shots

    values = np.arange(12, dtype=float)[:, None] * np.array([[1.0, 10.0]])  # [12, 2]
    valid = np.ones(12, bool)
    valid[[4, 5, 6, 7]] = False  # the last frame of shot 1 and the first three of shot 2 (a cut at 5)
    filled = fill_within_shots(fill_gaps, values, valid, (5,))
    assert np.allclose(filled[4], values[3]) and np.allclose(filled[5:8], values[8])  # held, not blended
    assert np.allclose(fill_gaps(values, valid)[4:8], values[4:8])  # across the cut: a blend of both shots
    assert np.allclose(fill_within_shots(fill_gaps, values, valid), fill_gaps(values, valid))
    turns = np.stack([np.eye(3)] * 6 + [np.diag([-1.0, -1.0, 1.0])] * 6)
    assert np.allclose(fill_within_shots(fill_rotation_gaps, turns, valid, (5,))[5:8], turns[8])


def test_slicing_observations_keeps_the_cuts_that_fall_inside(walk_1s):
    obs = dataclasses.replace(walk_1s, shot_starts=(5, 12, 20))
    assert obs.slice_frames(6, 20).shot_starts == (6,)
    assert obs.slice_frames(0, 30).shot_starts == (5, 12, 20)


def test_the_reference_starts_afresh_at_the_first_detection_of_each_shot(walk_1s):
    """After a cut the person is two metres on and not seen for three frames: the reference's pose there is
    the first detection's of the new shot, not the last shot's, and that first pose is not pulled back."""
    from motionrecon.body import build_body
    from motionrecon.body.fit import inverse_kinematics, measure_shape

    joints = np.array(walk_1s.joints3d)
    joints[15:, :, 0] += 2.0
    confidence = np.array(walk_1s.confidence)
    confidence[15:18] = 0.0
    obs = dataclasses.replace(walk_1s, joints3d=joints, confidence=confidence, shot_starts=(15,))
    model = build_body(measure_shape(walk_1s)).model
    q = inverse_kinematics(model, obs)
    assert np.allclose(q[15:18], q[18])  # held from the shot's first detection
    assert abs(q[18, 0] - q[19, 0]) < 0.1  # no step back towards the last shot at the first detection
    alone = inverse_kinematics(model, obs.slice_frames(18, obs.num_frames))
    assert np.abs(q[18:, :3] - alone[:, :3]).max() < 0.02  # as if the shot were the whole clip
    blind = inverse_kinematics(model, dataclasses.replace(obs, shot_starts=()))
    # without the cut the undetected frames lie on the way between the two detections (`interpolate_unseen`)
    assert np.all(np.diff(blind[14:19, 0]) > 0.3), blind[14:19, 0]


def test_the_reference_is_smoothed_within_each_shot(walk_1s):
    from motionrecon.body.fit import smooth_in_time

    joints = np.array(walk_1s.joints3d)
    joints[15:, :, 0] += 1.0  # the next shot sees the person a metre further on
    cut = dataclasses.replace(walk_1s, joints3d=joints, shot_starts=(15,))
    smooth = smooth_in_time(cut, 0.08).joints3d
    alone = [smooth_in_time(cut.slice_frames(a, b), 0.08).joints3d for a, b in ((0, 15), (15, cut.num_frames))]
    assert np.abs(smooth - np.concatenate(alone)).max() < 1e-5  # each shot as if it were the whole clip
    blurred = smooth_in_time(dataclasses.replace(cut, shot_starts=()), 0.08).joints3d
    assert np.abs(blurred[14, :, 0] - alone[0][14, :, 0]).min() > 0.2  # across the cut: pulled a metre over
