"""Reading videos: real file, frame striding and downscaling, bad inputs, paths, fingerprints."""

import shutil

import cv2
import numpy as np
import pytest

from motionrecon import video
from motionrecon.errors import InputError

from video_support import DRIBBLE, require


def _write_video(path, frames, fps=12.0, fourcc="mp4v"):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_probe_and_iterate_real_video():
    info = video.probe_video(require(DRIBBLE))
    assert (info.width, info.height) == (1080, 1920)
    assert info.fps == pytest.approx(12.0) and info.frame_count == 40
    frames = list(video.iter_frames(DRIBBLE))
    assert [i for i, _ in frames] == list(range(40))
    assert frames[0][1].shape == (1920, 1080, 3) and frames[0][1].dtype == np.uint8
    small = list(video.iter_frames(DRIBBLE, stride=4, max_side=960))
    assert [i for i, _ in small] == list(range(0, 40, 4))
    assert small[0][1].shape == (960, 540, 3)
    # The downscaled frame is the full frame, smaller (not a crop).
    full = cv2.resize(frames[8][1], (540, 960), interpolation=cv2.INTER_AREA)
    assert np.abs(full.astype(int) - small[2][1].astype(int)).mean() < 1.0


def test_frame_stride_and_downscale_rules():
    assert video.frame_stride(240, 60) == 4 and video.frame_stride(120, 60) == 2
    assert video.frame_stride(90, 60) == 2 and video.frame_stride(60, 60) == 1 and video.frame_stride(30, 60) == 1
    assert video.frame_stride(59.94, 60) == 1 and video.frame_stride(240, None) == 1
    assert video.downscale_factor(3840, 2160, 1920) == pytest.approx(0.5)
    assert video.downscale_factor(1080, 1920, 1920) == 1.0


def test_path_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "my clips ñ 日本"
    folder.mkdir()
    target = folder / "vidéo du match.mp4"
    shutil.copy(require(DRIBBLE), target)
    info = video.probe_video(target)
    assert info.frame_count == 40
    assert video.count_frames(target) == 40


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a text file, renamed\n")
    with pytest.raises(InputError, match="not a video"):
        video.probe_video(path)


def test_empty_missing_and_folder(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        video.probe_video(empty)
    with pytest.raises(InputError, match="no such file"):
        video.probe_video(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="folder"):
        video.probe_video(tmp_path)


def test_truncated_mp4(tmp_path):
    data = require(DRIBBLE).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as e:
        video.probe_video(cut)
    assert str(cut) in str(e.value) and "\n" not in str(e.value)


def test_truncated_file_that_still_opens(tmp_path):
    # AVI keeps its index at the end: cut in half, OpenCV opens it and decodes half the frames.
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), np.uint8) for _ in range(30)]
    full = _write_video(tmp_path / "full.avi", frames, fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert video.probe_video(cut).frame_count == 30  # the header still declares 30
    with pytest.raises(InputError, match="truncated: decoded"):
        list(video.iter_frames(cut))
    assert len(list(video.iter_frames(full))) == 30


def test_zero_frame_files(tmp_path):
    for name, fourcc in (("zero.mp4", "mp4v"), ("zero.avi", "MJPG")):
        writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*fourcc), 12.0, (160, 120))
        writer.release()
        with pytest.raises(InputError, match="no video frames"):
            video.probe_video(tmp_path / name)


def test_fingerprint_follows_content_not_name(tmp_path):
    a = tmp_path / "a.mp4"
    shutil.copy(require(DRIBBLE), a)
    b = tmp_path / "b copy.mp4"
    shutil.copy(a, b)
    assert video.fingerprint(a) == video.fingerprint(b) == video.fingerprint(DRIBBLE)
    data = bytearray(b.read_bytes())
    data[-10] ^= 0xFF
    b.write_bytes(bytes(data))
    assert video.fingerprint(b) != video.fingerprint(a)
