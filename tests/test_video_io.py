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
    bvh = tmp_path / "walk.bvh"  # motion capture given to the video command: pointed to mocap
    bvh.write_text("HIERARCHY\nROOT Hips\n")
    with pytest.raises(InputError, match="is motion capture, not a video: run `motionrecon mocap .*walk.bvh --out DIR`"):
        video.probe_video(bvh)


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


def _mark_rotated_90(path):
    """Writes into an MP4's track header ('tkhd', version 0) the display matrix of a clip to be shown turned 90
    degrees clockwise, as phones store a portrait recording (the pixels stay landscape)."""
    import struct

    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd") - 4
    assert box >= 0 and data[box + 8] == 0  # version 0: 4 bytes each for the times and the duration
    matrix = box + 8 + 4 + 20 + 8 + 8  # header, version+flags, times/ids/duration, reserved, layer..volume
    height = struct.unpack(">I", data[matrix + 40: matrix + 44])[0]  # 16.16 fixed point, as the matrix
    data[matrix: matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, height, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_phone_clip_with_rotation_metadata_is_read_upright(tmp_path):
    """A phone's portrait clip is stored landscape with a rotation in its metadata: frames (and the size the
    pipeline reads from them) come upright, so the detector, the camera and the overlay see what the phone
    showed."""
    h, w = 48, 80
    frames = []
    for k in range(6):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, :8] = 255  # a white band along the stored frame's left edge: the top once shown turned clockwise
        f[20:28, 30 + k:38 + k] = 128
        frames.append(f)
    path = _write_video(tmp_path / "phone.mp4", frames)
    _mark_rotated_90(path)
    info = video.probe_video(path)
    assert (info.width, info.height, info.frame_count) == (h, w, 6)
    first = next(video.iter_frames(path))[1]
    assert first.shape == (w, h, 3)
    assert first[:8].mean() > 200 and first[-8:].mean() < 30  # the band is on top
