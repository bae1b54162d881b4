"""`motionrecon eval --input video`: placement with a data set's calibrated camera, locating the entries' videos,
and the whole batch end to end on tiny fake Human3.6M and AIST++ folders holding a real video.

The end-to-end run keeps one window size for both data sets (10 fps, 0.5 s windows, 6 frames, 2 evaluations):
the MediaPipe-33 window problem is compiled once for the session.
"""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fake_datasets import (aist_motion_zup, aist_raw_from_zup, h36m_motion, write_aist, write_aist_video,
                           write_h36m_original, write_h36m_video)
from motionrecon.camera import intrinsics_matrix, make_camera, project
from motionrecon.cli import main
from motionrecon.datasets import cameras, splits
from motionrecon.errors import InputError
from motionrecon.export.contract import REQUIRED_FILES, is_complete
from motionrecon.keypoints import known_camera
from motionrecon.skeleton import MEDIAPIPE33

from video_support import look_at_camera, walking_body

HIPS = [MEDIAPIPE33.index("left_hip"), MEDIAPIPE33.index("right_hip")]
TINY = ["--max-evals", "2", "--window", "0.5", "--no-progress"]


def _scene(size_ratio: float, seed: int = 0, dist=(-0.3, 0.1, 0.001, -0.002, 0.0)):
    """A walking person seen by a calibrated camera with lens distortion; the 3D handed to the placement is
    hip-centred, turned a little per frame, and `size_ratio` times the person's true size (MediaPipe's 3D has
    an average person's size)."""
    rng = np.random.default_rng(seed)
    world, stance = walking_body()
    R, t = look_at_camera(position=(1.0, -5.0, 1.6), target=(1.2, 0.0, 0.9))
    camera = make_camera(intrinsics_matrix(1150.0, 1000, 1000), R, t, 1000, 1000, np.array(dist))
    joints2d = project(camera, world) + rng.normal(0, 0.3, world.shape[:2] + (2,))
    hips = world[:, HIPS].mean(1, keepdims=True)
    turns = Rotation.from_rotvec(rng.normal(size=(len(world), 3)) * np.radians(5) / np.sqrt(3)).as_matrix()
    own = size_ratio * np.einsum("tij,tkj->tki", turns @ R[None], world - hips)
    return world, stance, camera, joints2d, own


@pytest.mark.parametrize("size_ratio", [1.0, 0.85, 1.15])
def test_known_camera_places_the_person_in_the_calibrated_world(size_ratio):
    world, stance, camera, joints2d, own = _scene(size_ratio)
    T = len(world)
    p = known_camera.place_with_camera(joints2d, own, np.ones(world.shape[:2]), np.ones(T, bool), camera, 20.0)
    obs = p.observations
    # The depth scale undoes the size error: size and distance come out right, in the camera's own world.
    assert p.depth_scale == pytest.approx(1.0 / size_ratio, rel=0.04)
    assert p.camera_height == pytest.approx(1.6)
    root_err = np.linalg.norm(obs.joints3d[:, HIPS].mean(1) - world[:, HIPS].mean(1), axis=1)
    assert np.median(root_err) < 0.08, root_err
    assert np.abs(obs.joints3d[stance][:, 2]).max() < 0.06  # feet in stance on the known floor
    # The observations' camera is the calibration's, as a pinhole; their 2D keypoints are undistorted.
    np.testing.assert_allclose(obs.camera.R, camera.R)
    np.testing.assert_allclose(obs.camera.t, camera.t)
    assert obs.camera.dist is None
    pinhole = make_camera(camera.K, camera.R, camera.t, 1000, 1000)
    undistorted_err = np.median(np.linalg.norm(obs.joints2d - project(pinhole, world), axis=-1))
    distorted_err = np.median(np.linalg.norm(joints2d - project(pinhole, world), axis=-1))
    assert undistorted_err < 0.6 and distorted_err > 3 * undistorted_err, (undistorted_err, distorted_err)
    assert p.describe()["free_placement"]["up_angle_to_known_deg"] < 5.0


def test_depth_scale_ignores_frames_in_the_air():
    world, stance, camera, joints2d, own = _scene(1.0)
    up = camera.R[:, 2]
    cam = world @ camera.R.T + camera.t
    jumped = cam.copy()
    jumped[:20] += 0.3 * up  # a third of the frames 30 cm up
    assert known_camera.depth_scale(jumped, np.ones(len(cam), bool), up, 1.6) == pytest.approx(1.0, abs=0.03)


def test_h36m_camera_in_opencv_form_undistorts_like_its_own_model():
    cam = cameras.h36m_camera("S9", "60457274")
    cv_cam = cameras.h36m_as_opencv(cam)
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(-1.0, 1.0, 50), rng.uniform(-0.8, 0.8, 50), rng.uniform(3.5, 6.0, 50)], 1)
    world = (pts - cam.t) @ cam.R  # camera frame -> world
    distorted = cameras.project_h36m(cam, world)  # Human3.6M's own lens model, as its videos
    from motionrecon.camera import undistort_pixels

    ideal = cam.project(world)  # pinhole
    undone = undistort_pixels(distorted, cv_cam.K, cv_cam.dist)
    assert np.abs(distorted - ideal).max() > 2.0
    assert np.abs(undone - ideal).max() < 0.5


def test_entry_video_names_the_missing_file(tmp_path):
    write_h36m_original(tmp_path / "h36m", {("S11", "Walking"): h36m_motion(10)}, videos=False)
    entry = splits.SplitEntry("h36m", None, 25.0, subject="S11", action="Directions", camera="54138969")
    with pytest.raises(InputError) as e:
        splits.entry_video(tmp_path / "h36m", entry)
    assert "Videos" in str(e.value) and "Directions.54138969.mp4" in str(e.value) and "damaged" in str(e.value)
    aist_entry = splits.SplitEntry("aist", (1, 121), 60.0, sequence="gBR_sBM_cAll_d06_mBR4_ch06", view="c06")
    with pytest.raises(InputError) as e:
        splits.entry_video(tmp_path / "aist", aist_entry)
    assert "gBR_sBM_c06_d06_mBR4_ch06.mp4" in str(e.value) and "--videos" in str(e.value)
    assert splits.native_frame_indices(aist_entry, 3) == [1, 2, 3]
    assert splits.native_frame_indices(dataclasses_replace(entry, frames=(400, 600)), 3) == [400, 402, 404]


def dataclasses_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


# --------------------------------------------------------------------------- end to end

H36M_KEY, H36M_MISSING = "S9_Posing_1.60457274_f0-29", "S11_Directions.60457274_f0-29"
AIST_KEY = "gBR_sBM_c06_d06_mBR4_ch06_f0-35"


@pytest.fixture(scope="module")
def video_eval(shared_data, tmp_path_factory):
    """Fake Human3.6M (one entry with a video, S11 Directions without) and AIST++ (one entry) folders, evaluated
    from video; then the Human3.6M run again (everything done: skipped)."""
    dribble = shared_data / "video" / "single_person_dribble.mp4"
    base = tmp_path_factory.mktemp("eval_video")
    write_h36m_original(base / "h36m", {("S9", "Posing 1"): h36m_motion(60, 0), ("S11", "Directions"): h36m_motion(60, 1)},
                        videos=False)
    write_h36m_video(base / "h36m", "S9", "Posing 1", "60457274", dribble, num_frames=30)
    seq = "gBR_sBM_cAll_d06_mBR4_ch06"
    write_aist(base / "aist", seq, aist_raw_from_zup(aist_motion_zup(80), 20.0))
    write_aist_video(base / "aist_videos", "gBR_sBM_c06_d06_mBR4_ch06", dribble, num_frames=40)
    (base / "h36m.txt").write_text("S9 Posing_1 60457274 0-29 10\nS11 Directions 60457274 0-29 10\n")
    (base / "aist.txt").write_text("gBR_sBM_c06_d06_mBR4_ch06 0-35 10\n")
    h36m_cmd = ["eval", "--dataset", "h36m", "--root", str(base / "h36m"), "--split", str(base / "h36m.txt"),
                "--input", "video", "--out", str(base / "out_h36m"), *TINY]
    codes = {"h36m": main(h36m_cmd)}
    codes["aist"] = main(["eval", "--dataset", "aist", "--root", str(base / "aist"), "--split", str(base / "aist.txt"),
                          "--input", "video", "--videos", str(base / "aist_videos"), "--out", str(base / "out_aist"),
                          *TINY])
    stamps = {f: os.stat(base / "out_h36m" / H36M_KEY / f).st_mtime_ns for f in REQUIRED_FILES}
    first_rows = {"h36m": _rows(base / "out_h36m"), "aist": _rows(base / "out_aist")}
    codes["rerun"] = main(h36m_cmd)
    return base, codes, stamps, first_rows


def _rows(folder: Path) -> dict[str, dict]:
    with open(folder / "results.csv", newline="") as f:
        return {row["key"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_video_eval_tabulates_video_rows_with_the_known_camera(video_eval):
    base, codes, _, first_rows = video_eval
    assert codes["h36m"] == 1 and codes["aist"] == 0  # h36m: the entry without a video failed
    for out, key, dataset in ((base / "out_h36m", H36M_KEY, "h36m"), (base / "out_aist", AIST_KEY, "aist")):
        folder = out / key
        assert is_complete(folder) and (folder / "keypoints.npz").is_file()
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no partial folder or stray cache
        row = first_rows[dataset][key]
        assert row["status"] == "done"
        for name in ("mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "mpjpe_2d_px", "tv", "foot_skate_pct"):
            assert np.isfinite(float(row[name])), (key, name)
        m = json.loads((folder / "metrics.json").read_text())
        run = json.loads((folder / "run.json").read_text())
        assert float(row["mpjpe_2d_px"]) == pytest.approx(m["mpjpe_2d_px"])
        # The known camera: the data set's calibration, not a default field of view.
        seen = splits.load_entry(base / dataset, splits.read_split(base / f"{dataset}.txt", dataset)[0])
        assert m["camera"]["known"] and np.allclose(m["camera"]["K"], seen.camera.K)
        assert np.allclose(m["camera"]["R"], seen.camera.R) and np.allclose(m["camera"]["t"], seen.camera.t)
        assert ("h36m_cameras.json" in run["camera"]) if dataset == "h36m" else ("setting1.json" in run["camera"])
        assert run["input"] == "video" and run["video"].endswith(".mp4")
        assert run["video_frames"] == {"first": 0, "last": 25 if dataset == "h36m" else 30,
                                       "step": 5 if dataset == "h36m" else 6, "count": 6}
        assert m["detected_frames"] == 6 and m["frames"] == 6
        # The reconstruction is MediaPipe-33; the table's metrics are at the ground truth's 17 joints.
        with np.load(folder / "motion.npz") as z:
            assert z["joints3d"].shape == (6, 33, 3)
        assert len(m["shared_joints"]["joints"]) == (13 if dataset == "h36m" else 17)
        assert np.isfinite(m["shared_joints"]["keypoints"]["mpjpe_2d_px"])
        md = (out / "results.md").read_text()
        assert "video input" in md and f"| {key} |" in md


@pytest.mark.slow
def test_video_eval_lists_the_missing_video_and_skips_done_entries_on_rerun(video_eval):
    base, codes, stamps, first_rows = video_eval
    out = base / "out_h36m"
    assert first_rows["h36m"][H36M_MISSING]["status"] == "failed"
    rows = _rows(out)
    reason = rows[H36M_MISSING]["reason"]
    assert rows[H36M_MISSING]["status"] == "failed" and not (out / H36M_MISSING).exists()
    assert "Directions.60457274.mp4" in reason and "S11/Videos" in reason, reason
    assert f"- `{H36M_MISSING}`: {reason}" in (out / "results.md").read_text()
    assert codes["rerun"] == 1  # the missing video still fails
    assert rows[H36M_KEY]["status"] == "skipped"
    assert {f: os.stat(out / H36M_KEY / f).st_mtime_ns for f in REQUIRED_FILES} == stamps


def test_video_tasks_travel_to_worker_processes(tmp_path):
    import pickle

    from motionrecon.evaluation import batch
    from motionrecon.reconstruct import ReconstructionConfig

    entry = splits.read_split(Path(splits.split_path("aist", "paper")), "aist")[0]
    task = batch.EntryTask(str(tmp_path), entry, str(tmp_path / entry.key), ReconstructionConfig(), input="video",
                           videos=str(tmp_path))
    assert pickle.loads(pickle.dumps(task)) == task


def test_folder_from_other_input_is_kept_with_a_note(tmp_path):
    from motionrecon.commands.evaluate import _stale_settings

    (tmp_path / "run.json").write_text(json.dumps({"input": "mocap", "config": {"max_evals": 2}}))
    assert "made from mocap input" in _stale_settings(tmp_path, {"max_evals": 2}, "video")
    assert _stale_settings(tmp_path, {"max_evals": 2}, "mocap") is None


def test_known_camera_placement_on_real_h36m_frames(shared_data):
    """The four real Human3.6M sample frames: MediaPipe keypoints placed with the frame's calibrated camera land
    near the ground truth in the world frame, without any alignment (measured once: 104-255 mm over the 13
    shared joints; the depth scale from the feet took S8's from 800 mm to 255 mm)."""
    import cv2

    from motionrecon.keypoints import landmark_correspondence, mediapipe_pose
    from motionrecon.skeleton import H36M17

    sample = shared_data / "h36m_sample"
    z = np.load(sample / "test_h36m_body3d.npz")
    pairs = landmark_correspondence(MEDIAPIPE33, H36M17)
    src, tgt = [s for s, _ in pairs], [t for _, t in pairs]
    errors = []
    for i, name in enumerate(str(n).split("/")[-1] for n in z["imgname"]):
        subject, camera_id = name.split("_")[0], name.split(".")[1].split("_")[0]
        image = cv2.imread(str(sample / name))
        cam = cameras.h36m_camera(subject, camera_id)
        cam = cameras.h36m_as_opencv(dataclasses_replace(cam, width=image.shape[1], height=image.shape[0]))
        j2, j3, vis = mediapipe_pose.detect_image(image)
        p = known_camera.place_with_camera(np.stack([j2, j2]), np.stack([j3, j3]), np.stack([vis, vis]),
                                           np.ones(2, bool), cam, 25.0)
        gt_world = (z["S"][i, :, :3] - cam.t) @ cam.R
        errors.append(1000 * np.linalg.norm(p.observations.joints3d[0, src] - gt_world[tgt], axis=1).mean())
        assert 0.9 < p.depth_scale < 1.2
    assert max(errors) < 320 and np.mean(errors) < 220, errors


def test_frames_are_read_from_start_to_stop_every_stride(tmp_path):
    import cv2

    from motionrecon.video import iter_frames

    path = tmp_path / "ramp.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 50.0, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), 8 * i, np.uint8))
    writer.release()
    got = [(i, float(f.mean())) for i, f in iter_frames(path, start=3, stop=20, stride=4)]
    assert [i for i, _ in got] == [3, 7, 11, 15, 19]
    assert np.allclose([v for _, v in got], [8 * i for i, _ in got], atol=3)  # the frames themselves, not others
    assert [i for i, _ in iter_frames(path, stride=10)] == [0, 10, 20]  # the defaults are unchanged
