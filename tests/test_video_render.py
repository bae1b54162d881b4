"""Overlay and side-view renderers: frame count, frame rate, drawing, PNG fallback, no partial output."""

import cv2
import numpy as np
import pytest

from motionrecon.errors import InputError
from motionrecon.export import overlay, side_view, video_writer
from motionrecon.skeleton import MEDIAPIPE33

from video_support import DRIBBLE, require, walking_body


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames, fps


def _small_video(path, count=6, size=(320, 240), fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(count):
        writer.write(np.full((size[1], size[0], 3), 30 + 10 * i, np.uint8))
    writer.release()
    return path


def test_overlay_on_the_real_video_keeps_frames_fps_and_size(tmp_path):
    require(DRIBBLE)
    T, J = 40, MEDIAPIPE33.num_joints
    # A vertical line of joints down the image centre, moving right by 10 px per frame.
    joints2d = np.zeros((T, J, 2))
    joints2d[:, :, 0] = 300 + 10 * np.arange(T)[:, None]
    joints2d[:, :, 1] = np.linspace(200, 1700, J)[None]
    out = overlay.write_overlay(DRIBBLE, joints2d, MEDIAPIPE33.parents, tmp_path / "overlay.mp4",
                                joint_names=MEDIAPIPE33.joints)
    assert out == tmp_path / "overlay.mp4"
    frames, fps = _read_all(out)
    source, source_fps = _read_all(DRIBBLE)
    assert len(frames) == len(source) == 40 and fps == pytest.approx(source_fps)
    assert frames[0].shape == source[0].shape == (1920, 1080, 3)
    # The skeleton is drawn where the joints are and the rest of the frame is the input.
    for i in (0, 39):
        x = int(joints2d[i, 0, 0])
        drawn = np.abs(frames[i][400:1500, x - 2:x + 3].astype(int) - source[i][400:1500, x - 2:x + 3]).mean()
        away = np.abs(frames[i][400:1500, 900:1000].astype(int) - source[i][400:1500, 900:1000]).mean()
        assert drawn > 40 and away < 12, (drawn, away)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_overlay_of_a_subsampled_track_interpolates_between_kept_frames(tmp_path):
    video = _small_video(tmp_path / "in.mp4", count=9)
    J = 2
    kept = np.array([0, 4, 8])
    joints2d = np.stack([np.array([[40.0 + 100 * k, 60.0], [40.0 + 100 * k, 180.0]]) for k in range(3)])
    target = tmp_path / "sortie à 日本" / "over lay.mp4"  # spaces and non-ASCII in the output path
    out = overlay.write_overlay(video, joints2d, [-1, 0], target, frame_indices=kept)
    assert out == target
    frames, _ = _read_all(out)
    assert len(frames) == 9
    # Frame 2 is halfway between kept frames 0 and 1: its line is at x = 90.
    column = np.abs(frames[2][80:160].astype(int) - (30 + 20)).sum(axis=(0, 2))
    assert abs(int(np.argmax(column)) - 90) <= 2


def test_overlay_covers_only_the_reconstructed_frames_and_marks_undetected_ones(tmp_path):
    """A reconstruction of frames 4-7 of a 12-frame video (--start/--duration): the overlay holds those
    frames, each the input frame with the skeleton of that frame, and a banner where nobody was detected."""
    video = _small_video(tmp_path / "in.mp4", count=12)
    kept = np.array([4, 5, 6, 7])
    joints2d = np.stack([np.array([[40.0 + 30 * k, 60.0], [40.0 + 30 * k, 180.0]]) for k in kept])
    undetected = np.array([False, False, True, False])
    out = overlay.write_overlay(video, joints2d, [-1, 0], tmp_path / "ov.mp4", frame_indices=kept,
                                undetected=undetected)
    frames, _ = _read_all(out)
    source, _ = _read_all(video)
    assert len(frames) == 4
    for row, (k, frame) in enumerate(zip(kept, frames)):
        # The input frame k underneath (grey level 30 + 10 k), not another one.
        assert abs(float(np.median(frame[200:, 250:])) - float(np.median(source[k][200:, 250:]))) < 3
        column = np.abs(frame[80:160].astype(int) - source[k][80:160]).sum(axis=(0, 2))
        assert abs(int(np.argmax(column)) - int(joints2d[row, 0, 0])) <= 2  # this frame's skeleton
        red_band = frame[:12, :, 2].mean() > 150 and frame[:12, :, 0].mean() < 80
        assert red_band == undetected[row]


def test_side_view_marks_undetected_frames(tmp_path):
    world, _ = walking_body(num_frames=6)
    undetected = np.array([False, False, False, True, False, False])
    out = side_view.write_side_view(world, MEDIAPIPE33.parents, 20.0, tmp_path / "side.mp4", start_time=2.0,
                                    undetected=undetected)
    frames, _ = _read_all(out)
    corner = lambda f: int(np.sum((f[28:48, -135:, 2] > 150) & (f[28:48, -135:, 0] < 100)))  # red text
    assert [corner(f) > 20 for f in frames] == undetected.tolist()
    with pytest.raises(ValueError, match="one flag per frame"):
        side_view.write_side_view(world, MEDIAPIPE33.parents, 20.0, tmp_path / "x.mp4", undetected=undetected[:3])


def test_png_strip_when_no_video_writer_opens(tmp_path, monkeypatch):
    video = _small_video(tmp_path / "in.mp4")
    joints2d = np.full((6, 2, 2), 100.0)
    joints2d[:, 1, 1] = 200
    monkeypatch.setattr(video_writer, "FOURCCS", ("ZZZZ",))  # no such codec
    out = overlay.write_overlay(video, joints2d, [-1, 0], tmp_path / "ov.mp4")
    assert out == tmp_path / "ov.png" and not (tmp_path / "ov.mp4").exists()
    strip = cv2.imread(str(out))
    assert strip is not None and strip.shape[0] >= 240 and strip.shape[1] >= 320


def test_overlay_of_a_truncated_video_fails_without_output(tmp_path):
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(tmp_path / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (160, 120))
    for _ in range(30):
        writer.write(rng.integers(0, 255, (120, 160, 3), np.uint8))
    writer.release()
    data = (tmp_path / "full.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        overlay.write_overlay(tmp_path / "cut.avi", np.zeros((30, 2, 2)), [-1, 0], tmp_path / "out" / "ov.mp4")
    assert not (tmp_path / "out" / "ov.mp4").exists()
    assert not list((tmp_path / "out").glob("*"))


def test_side_view_video_and_contact_marks(tmp_path):
    world, stance = walking_body(num_frames=20)
    out = side_view.write_side_view(world, MEDIAPIPE33.parents, 20.0, tmp_path / "side.mp4",
                                    joint_names=MEDIAPIPE33.joints)
    frames, fps = _read_all(out)
    assert len(frames) == 20 and fps == pytest.approx(20.0)
    assert frames[0].shape[1] % 2 == 0 and frames[0].shape[0] % 2 == 0
    # Red contact rings appear exactly when a foot point is on the ground.
    views = side_view.fit_views(world, (480, 540))
    colors = overlay.joint_colors(MEDIAPIPE33.joints, 33)
    on = side_view.render_panel(views[0], world[0], MEDIAPIPE33.parents, colors)
    lifted = world[0].copy()
    lifted[:, 2] += 0.5
    off = side_view.render_panel(views[0], lifted, MEDIAPIPE33.parents, colors)
    red = lambda img: int(np.sum((img[..., 2] > 200) & (img[..., 0] < 60) & (img[..., 1] < 60)))
    assert stance[0].any() and red(on) > 50 and red(off) == 0


def test_side_view_png_fallback(tmp_path):
    world, _ = walking_body(num_frames=12)
    out = side_view.write_side_view(world, MEDIAPIPE33.parents, 20.0, tmp_path / "side.mp4", allow_video=False)
    assert out.suffix == ".png" and out.exists() and not (tmp_path / "side.mp4").exists()
    assert cv2.imread(str(out)).shape[1] > 960


def test_side_view_draws_a_seat_from_the_ground_to_its_top():
    """A seat (metrics "seats") is a filled box in both panels: across its rectangle's extent along the panel's
    axis, from the ground line up to its height; nothing of it is drawn without it."""
    world, _ = walking_body(num_frames=4)
    x, y = world[0, :, :2].mean(axis=0)  # under the body, within both panels
    seat = {"height_m": 0.45, "x_m": [x - 0.2, x + 0.1], "y_m": [y - 0.15, y + 0.2], "from_s": 0.0, "to_s": 0.2}
    colors = overlay.joint_colors(MEDIAPIPE33.joints, 33)
    for view in side_view.fit_views(world, (480, 540)):
        img = side_view.render_panel(view, world[0] + [0, 0, 1.0], MEDIAPIPE33.parents, colors, seats=[seat])
        corners = np.zeros((2, 3))
        corners[:, view.horizontal] = seat["y_m"] if view.horizontal == 1 else seat["x_m"]
        corners[1, 2] = seat["height_m"]
        (u0, v0), (u1, v1) = view.to_pixels(corners)
        rows, cols = np.nonzero(np.all(img == side_view.SEAT, axis=-1))
        assert abs(cols.min() - u0) <= 1 and abs(cols.max() - u1) <= 1, (cols.min(), u0, cols.max(), u1)
        assert abs(rows.min() - v1) <= 1 and abs(rows.max() - v0) <= 4, (rows.min(), v1, rows.max(), v0)  # ground line
        plain = side_view.render_panel(view, world[0] + [0, 0, 1.0], MEDIAPIPE33.parents, colors)
        assert not np.all(plain == side_view.SEAT, axis=-1).any()
