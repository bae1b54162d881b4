"""MediaPipe keypoints: the real dribble video, the cache, Human3.6M ground truth, bad and unusual videos."""

import importlib.util
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from motionrecon.errors import InputError
from motionrecon.keypoints import landmark_correspondence, mediapipe_pose
from motionrecon.skeleton import H36M17, MEDIAPIPE33

from video_support import DRIBBLE, H36M_SAMPLE, dribble_detection, require


def _write_video(path, frames, fps):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _dribble_frames(count, size=None):
    cap = cv2.VideoCapture(str(require(DRIBBLE)))
    frames = []
    while len(frames) < count:
        ok, f = cap.read()
        assert ok
        frames.append(f if size is None else cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def test_every_frame_of_the_real_video_is_detected_inside_the_image():
    track, _ = dribble_detection()
    assert track.num_frames == 40 and track.detected.all()
    assert track.fps == pytest.approx(12.0) and track.stride == 1
    assert (track.width, track.height) == (1080, 1920)
    assert track.joints2d.shape == (40, 33, 2) and track.joints3d.shape == (40, 33, 3)
    visible = track.visibility > 0.5
    assert visible.mean() > 0.8
    xy = track.joints2d[visible]
    assert np.all((xy[:, 0] >= 0) & (xy[:, 0] < 1080) & (xy[:, 1] >= 0) & (xy[:, 1] < 1920))
    # World landmarks are metric and hip-centred: hips' midpoint at the origin, body ~1.5-2 m tall.
    hips = track.joints3d[:, [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]].mean(1)
    assert np.abs(hips).max() < 0.02
    nose_to_heel = np.linalg.norm(track.joints3d[:, 0] - track.joints3d[:, MEDIAPIPE33.index("left_heel")], axis=1)
    assert 1.0 < np.median(nose_to_heel) < 2.0
    assert np.all(track.confidence == track.visibility)


def test_cache_is_reused_when_the_video_matches(tmp_path, monkeypatch):
    track, cache = dribble_detection()
    assert cache.is_file()

    def no_detection(*args, **kwargs):
        raise AssertionError("detection ran although the cache matches")

    monkeypatch.setattr(mediapipe_pose, "detect_video", no_detection)
    again, cached = mediapipe_pose.detect_video_cached(DRIBBLE, cache, progress=False,
                                                       write_cache_to=tmp_path / "out" / "keypoints.npz")
    assert cached
    np.testing.assert_array_equal(again.joints2d, track.joints2d)
    np.testing.assert_array_equal(again.detected, track.detected)
    assert (tmp_path / "out" / "keypoints.npz").is_file()
    # Other settings, or another video at the same path, do not match.
    assert mediapipe_pose.load_cached_track(cache, DRIBBLE, max_fps=6.0) is None
    other = tmp_path / "other.mp4"
    _write_video(other, _dribble_frames(3, (270, 480)), 12.0)
    assert mediapipe_pose.load_cached_track(cache, other) is None


def test_a_broken_cache_is_ignored(tmp_path):
    bad = tmp_path / "keypoints.npz"
    bad.write_bytes(b"not an npz")
    assert mediapipe_pose.load_cached_track(bad, require(DRIBBLE)) is None
    with pytest.raises(InputError, match="not a keypoints file"):
        mediapipe_pose.load_track(bad)


def test_no_person_is_an_input_error_and_writes_no_cache(tmp_path):
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (240, 320, 3), np.uint8) for _ in range(6)]
    path = _write_video(tmp_path / "noise.mp4", noise, 12.0)
    with pytest.raises(InputError, match="no person found in any of its 6 frames"):
        mediapipe_pose.detect_video_cached(path, tmp_path / "keypoints.npz", progress=False)
    assert not (tmp_path / "keypoints.npz").exists()


def test_frames_without_a_person_are_kept_and_marked(tmp_path):
    frames = _dribble_frames(6, (540, 960))
    frames[2] = np.full_like(frames[2], 128)  # a blank frame in the middle
    path = _write_video(tmp_path / "gap.mp4", frames, 12.0)
    track = mediapipe_pose.detect_video(path, progress=False)
    assert track.num_frames == 6
    assert not track.detected[2] and track.detected[[0, 1, 3, 4, 5]].all()
    assert np.isnan(track.joints2d[2]).all() and np.all(track.confidence[2] == 0)


def test_high_frame_rate_is_subsampled(tmp_path):
    frames = _dribble_frames(9, (270, 480))
    path = _write_video(tmp_path / "fast.mp4", frames, 240.0)
    track = mediapipe_pose.detect_video(path, progress=False)
    assert track.video_fps == pytest.approx(240.0) and track.fps == pytest.approx(60.0)
    assert track.frame_indices.tolist() == [0, 4, 8] and track.stride == 4


def test_4k_frames_are_detected_on_a_downscaled_copy_in_full_resolution_pixels(tmp_path):
    small = _dribble_frames(3, (540, 960))
    big = [cv2.resize(f, (2160, 3840), interpolation=cv2.INTER_LINEAR) for f in small]
    track_big = mediapipe_pose.detect_video(_write_video(tmp_path / "uhd.mp4", big, 12.0), progress=False)
    track_small = mediapipe_pose.detect_video(_write_video(tmp_path / "sd.mp4", small, 12.0), progress=False)
    assert (track_big.width, track_big.height) == (2160, 3840)
    assert track_big.detected.all() and track_small.detected.all()
    vis = (track_big.visibility > 0.8) & (track_small.visibility > 0.8)
    # Same person, 4x the pixels: landmarks agree after scaling by 4 (within a few small-video pixels).
    diff = np.linalg.norm(track_big.joints2d / 4 - track_small.joints2d, axis=-1)[vis]
    assert np.median(diff) < 4.0


def test_models_that_are_not_bundled_are_refused():
    heavy = Path(mediapipe_pose._mp.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_heavy.tflite"
    if heavy.exists():
        pytest.skip("the heavy model is installed here")
    with pytest.raises(InputError, match="will not download"):
        mediapipe_pose.check_model_available(2)
    with pytest.raises(InputError, match="must be 0, 1 or 2"):
        mediapipe_pose.check_model_available(5)


def test_missing_legacy_solutions_names_the_pinned_version(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", types.ModuleType("mediapipe"))  # a wheel without solutions
    spec = importlib.util.spec_from_file_location("mp_pose_probe", mediapipe_pose.__file__)
    with pytest.raises(ImportError, match=r"mediapipe==0\.10\.14"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def _h36m_frames():
    folder = require(H36M_SAMPLE)
    data = np.load(folder / "test_h36m_body3d.npz")
    for name, part in zip(data["imgname"], data["part"]):
        image = cv2.imread(str(folder / Path(str(name)).name))
        assert image is not None
        yield Path(str(name)).name, image, part[:, :2]


def test_h36m_sample_2d_error_against_ground_truth():
    pairs = landmark_correspondence(MEDIAPIPE33, H36M17)
    limbs = [(m, h) for m, h in pairs if H36M17.joints[h] != "neck_nose"]
    assert len(limbs) == 12
    errors = []
    for _, image, truth in _h36m_frames():
        found = mediapipe_pose.detect_image(image)
        assert found is not None
        joints2d, _, _ = found
        errors.append([np.linalg.norm(joints2d[m] - truth[h]) for m, h in limbs])
    errors = np.array(errors)  # [4 frames, 12 limb joints], pixels
    assert np.median(errors) < 25.0, errors.round(1)
    assert np.median(errors, axis=0).max() < 60.0, errors.round(1)


def test_observations_from_video_fails_early_and_writes_nothing(tmp_path):
    from motionrecon.keypoints import observations_from_video

    text = tmp_path / "clip.mp4"
    text.write_text("not a video")
    with pytest.raises(InputError, match="not a video"):
        observations_from_video(text, cache_path=tmp_path / "out" / "keypoints.npz", progress=False)
    with pytest.raises(InputError, match="at most one of --focal and --fov"):
        observations_from_video(require(DRIBBLE), cache_path=tmp_path / "out" / "keypoints.npz",
                                focal=1500.0, fov_deg=60.0, progress=False)
    assert not (tmp_path / "out").exists()
