"""Camera intrinsics, projection and distortion, checked against the real Human3.6M calibration."""

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from motionrecon import camera
from motionrecon.errors import InputError
from motionrecon.observations import Camera

from video_support import H36M_SAMPLE, require


def test_default_fov_applies_to_the_longer_side():
    portrait = camera.choose_intrinsics(1080, 1920)
    landscape = camera.choose_intrinsics(1920, 1080)
    assert portrait.source == "default_fov"
    assert portrait.focal == pytest.approx(landscape.focal)
    assert portrait.focal == pytest.approx(960 / math.tan(math.radians(camera.DEFAULT_FOV_DEG / 2)))
    assert portrait.fov_long_side_deg == pytest.approx(camera.DEFAULT_FOV_DEG)
    np.testing.assert_allclose(portrait.K[:2, 2], [540, 960])
    d = portrait.describe()
    assert d["source"] == "default_fov" and "65" in d["how"] and np.array(d["K"]).shape == (3, 3)


def test_user_focal_and_fov_and_their_errors():
    assert camera.choose_intrinsics(1280, 720, focal=1000.0).focal == 1000.0
    k = camera.choose_intrinsics(1280, 720, fov_deg=90.0)
    assert k.source == "fov" and k.focal == pytest.approx(640.0)
    with pytest.raises(InputError, match="at most one"):
        camera.choose_intrinsics(1280, 720, focal=1000.0, fov_deg=60.0)
    with pytest.raises(InputError, match="--focal"):
        camera.choose_intrinsics(1280, 720, focal=-3.0)
    with pytest.raises(InputError, match="--fov"):
        camera.choose_intrinsics(1280, 720, fov_deg=180.0)


def test_world_camera_round_trip_and_observations_camera_agree():
    rng = np.random.default_rng(0)
    angle = 0.4
    R = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])
    t = np.array([0.1, 0.2, 4.0])
    cam = camera.make_camera(camera.intrinsics_matrix(1000.0, 640, 480), R, t, 640, 480)
    assert isinstance(cam, Camera)
    pts = rng.normal(size=(10, 3)) * 0.5
    np.testing.assert_allclose(camera.camera_to_world(camera.world_to_camera(pts, R, t), R, t), pts, atol=1e-12)
    np.testing.assert_allclose(camera.project(cam, pts), cam.project(pts), atol=1e-9)
    with pytest.raises(ValueError, match="rotation"):
        camera.make_camera(np.eye(3), np.diag([1.0, 1.0, -1.0]), t, 640, 480)


def test_opencv_distortion_projects_and_undistorts_back():
    K = camera.intrinsics_matrix(800.0, 640, 480)
    dist = np.array([-0.2, 0.1, 0.001, -0.002, 0.0])
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-0.8, 0.8, (50, 2)), np.full(50, 2.0)]
    distorted = camera.project_points(pts, K, dist)
    ideal = camera.project_points(pts, K)
    assert np.abs(distorted - ideal).max() > 5.0  # the distortion is real
    np.testing.assert_allclose(camera.undistort_pixels(distorted, K, dist), ideal, atol=0.01)


def _h36m():
    folder = require(H36M_SAMPLE)
    data = np.load(folder / "test_h36m_body3d.npz")
    with open(folder / "cameras.pkl", "rb") as f:
        cams = pickle.load(f)
    out = []
    for name, S, part in zip(data["imgname"], data["S"], data["part"]):
        base = Path(str(name)).name  # e.g. S1_Directions_1.54138969_000001.jpg
        subject, cam_id = base.split("_")[0], base.split(".")[1].split("_")[0]
        out.append((subject, cams[(subject, cam_id)], S[:, :3], part[:, :2]))
    return out, cams


def test_h36m_ground_truth_projects_onto_its_2d_ground_truth():
    frames, _ = _h36m()
    for subject, entry, joints_cam, truth in frames:
        f, c = entry["f"].ravel(), entry["c"].ravel()
        K = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]])
        pinhole = camera.project_points(joints_cam, K)
        assert np.abs(pinhole - truth).max() < 4.0  # the lens distortion is a few pixels
        exact = camera.h36m_project(joints_cam, entry["f"], entry["c"], entry["k"], entry["p"])
        assert np.abs(exact - truth).max() < 0.01  # Human3.6M's own lens model reproduces its 2D exactly
        cam = camera.camera_from_h36m(entry)
        opencv = camera.project_points(joints_cam, cam.K, cam.dist)
        assert np.abs(opencv - truth).max() < 0.1  # converted to OpenCV's model
        undistorted = camera.undistort_pixels(truth, cam.K, cam.dist)
        assert np.abs(undistorted - pinhole).max() < 0.1


def test_h36m_distortion_as_opencv_coefficients_over_the_whole_image():
    _, cams = _h36m()
    grid = np.stack(np.meshgrid(np.linspace(-0.45, 0.45, 15), np.linspace(-0.45, 0.45, 15)), -1).reshape(-1, 2)
    pts = np.c_[grid * 4.0, np.full(len(grid), 4.0)]
    for entry in cams.values():
        cam = camera.camera_from_h36m(entry)
        exact = camera.h36m_project(pts, entry["f"], entry["c"], entry["k"], entry["p"])
        assert np.abs(camera.project_points(pts, cam.K, cam.dist) - exact).max() < 0.5


def test_h36m_extrinsics_convention_puts_the_feet_on_the_floor():
    # x_cam = R (X - T): camera 54138969 of S1 sees a standing person, feet near z = 0, head ~1.5 m.
    frames, _ = _h36m()
    subject, entry, joints_cam, _ = frames[0]
    assert subject == "S1" and entry["id"] == "54138969"
    cam = camera.camera_from_h36m(entry)
    world = camera.camera_to_world(joints_cam, cam.R, cam.t)
    ankles, head = world[[3, 6], 2], world[10, 2]
    assert np.all(np.abs(ankles) < 0.25) and 1.3 < head < 1.9
    np.testing.assert_allclose(-cam.R.T @ cam.t, entry["T"].ravel(), atol=1e-9)  # T is the camera centre
