"""Human3.6M reader: real-format CDF/npz files with known motion, the real calibration, bad input."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from fake_datasets import h36m_2d, h36m_motion, write_cdf_pose, write_h36m_original, write_h36m_preprocessed
from motionrecon import skeleton
from motionrecon.datasets import cameras, h36m
from motionrecon.errors import InputError
from motionrecon.resources import resource_path

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "h36m_sample"
needs_sample = pytest.mark.skipif(not (SAMPLE / "cameras.pkl").is_file(),
                                  reason=f"real Human3.6M sample not present at {SAMPLE}")
IDX = list(h36m.H36M32_TO_17)

# Joint names of the 32-joint Human3.6M skeleton (its motion-capture hierarchy).
H36M32_NAMES = [
    "Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "Site", "LeftUpLeg", "LeftLeg", "LeftFoot",
    "LeftToeBase", "Site", "Spine", "Spine1", "Neck", "Head", "Site", "LeftShoulder", "LeftArm", "LeftForeArm",
    "LeftHand", "LeftHandThumb", "Site", "L_Wrist_End", "Site", "RightShoulder", "RightArm", "RightForeArm",
    "RightHand", "RightHandThumb", "Site", "R_Wrist_End", "Site",
]


def test_32_to_17_reduction_picks_the_h36m17_joints_in_order():
    expected = {
        "pelvis": "Hips", "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
        "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "spine": "Spine1",
        "thorax": "Neck", "neck_nose": "Head", "head": "Site", "left_shoulder": "LeftArm",
        "left_elbow": "LeftForeArm", "left_wrist": "LeftHand", "right_shoulder": "RightArm",
        "right_elbow": "RightForeArm", "right_wrist": "RightHand",
    }
    assert len(IDX) == skeleton.H36M17.num_joints == 17
    assert [H36M32_NAMES[i] for i in IDX] == [expected[j] for j in skeleton.H36M17.joints]
    assert IDX[10] == 15 and H36M32_NAMES[14] == "Head"  # head top is the Site after Head


def test_action_spellings_keep_the_take_and_cover_aliases():
    assert h36m.action_candidates("Posing_1") == ["Posing_1", "Posing 1"]
    assert "Photo 1" in h36m.action_candidates("TakingPhoto_1")
    assert "TakingPhoto" in h36m.action_candidates("Photo")
    assert "WalkingDog" in h36m.action_candidates("WalkDog")
    assert "WalkTogether" in h36m.action_candidates("WalkingTogether")
    assert h36m.action_candidates("Walking") == ["Walking"]  # no take invented
    assert h36m.canonical_action("WalkingDog 1") == h36m.canonical_action("WalkDog_1") == "WalkDog 1"


def test_written_cdf_has_the_real_layout(tmp_path):
    import cdflib

    joints = h36m_motion(12)
    write_h36m_original(tmp_path, {("S9", "Posing 1"): joints})
    pose = cdflib.CDF(str(tmp_path / "S9/MyPoseFeatures/D3_Positions/Posing 1.cdf")).varget("Pose")
    assert pose.shape == (1, 12, 96)
    assert np.allclose(pose[0, 3, 3:6], joints[3, 1] * 1000, atol=1e-3)  # mm, joint-major xyz
    pose2d = cdflib.CDF(str(tmp_path / "S9/MyPoseFeatures/D2_Positions/Posing 1.60457274.cdf")).varget("Pose")
    assert pose2d.shape == (1, 12, 64)


def test_original_layout_reads_metres_frames_fps_2d_and_camera(tmp_path):
    joints = h36m_motion(60)
    write_h36m_original(tmp_path, {("S9", "Posing 1"): joints, ("S9", "TakingPhoto"): joints[::-1]})
    obs = h36m.load_h36m(tmp_path, "S9", "Posing_1", "60457274", frames=(4, 44), fps=25)
    assert obs.joint_set == "h36m17" and obs.fps == 25.0 and obs.num_frames == 20
    np.testing.assert_allclose(obs.joints3d, joints[4:44:2][:, IDX], atol=1e-6)  # mm -> m, 32 -> 17
    assert np.all(obs.confidence == 1.0)
    assert obs.source.endswith("S9/MyPoseFeatures/D3_Positions/Posing 1.cdf")
    np.testing.assert_allclose(obs.joints2d, h36m_2d("S9", "60457274", joints[4:44:2][:, IDX]), atol=1e-3)
    cam = cameras.h36m_camera("S9", "60457274")
    np.testing.assert_allclose(obs.camera.R, cam.R)
    np.testing.assert_allclose(obs.camera.t, cam.t)
    assert (obs.camera.width, obs.camera.height) == (1000, 1002)
    # The other spelling of the subject's files resolves too, and without a camera there is no 2D.
    other = h36m.load_h36m(tmp_path, "S9", "Photo")
    assert other.camera is None and other.joints2d is None and other.fps == 50.0 and other.num_frames == 60
    np.testing.assert_allclose(other.joints3d, joints[::-1][:, IDX], atol=1e-6)


def test_preprocessed_layout_reads_npz_dicts(tmp_path):
    joints = h36m_motion(30, seed=1)
    write_h36m_preprocessed(tmp_path, {("S11", "Photo 1"): joints, ("S11", "WalkDog"): joints + 0.1})
    obs = h36m.load_h36m(tmp_path, "S11", "TakingPhoto_1", 1, frames=(10, 30))  # camera index 1 = 55011271
    np.testing.assert_allclose(obs.joints3d, joints[10:30][:, IDX], atol=1e-6)
    np.testing.assert_allclose(obs.joints2d, h36m_2d("S11", "55011271", joints[10:30][:, IDX]), atol=1e-3)
    assert obs.source.endswith("data_3d_h36m.npz[S11][Photo 1]")
    walk = h36m.load_h36m(tmp_path, "S11", "WalkingDog")
    np.testing.assert_allclose(walk.joints3d, joints[:, IDX] + 0.1, atol=1e-6)


def test_preprocessed_2d_with_32_joints_is_reduced(tmp_path):
    joints = h36m_motion(20)
    write_h36m_preprocessed(tmp_path, {("S9", "Walking"): joints}, joints2d=32)
    obs = h36m.load_h36m(tmp_path, "S9", "Walking", "58860488")
    np.testing.assert_allclose(obs.joints2d, h36m_2d("S9", "58860488", joints[:, IDX]), atol=1e-3)


def test_video_resolver_finds_the_file_and_names_what_it_tried(tmp_path):
    write_h36m_original(tmp_path, {("S9", "Posing 1"): h36m_motion(5)})
    assert h36m.h36m_video(tmp_path, "S9", "Posing_1", "60457274").name == "Posing 1.60457274.mp4"
    with pytest.raises(InputError, match=r"tried 'Waiting\.60457274\.mp4'"):
        h36m.h36m_video(tmp_path, "S9", "Waiting", "60457274")


# --------------------------------------------------------------------------- the real calibration

@needs_sample
def test_bundled_calibration_equals_cameras_pkl():
    with open(SAMPLE / "cameras.pkl", "rb") as f:
        ref = pickle.load(f)
    table = json.loads(resource_path("data", "h36m_cameras.json").read_text())["calibration"]
    assert sorted(table) == sorted(h36m.SUBJECTS)
    for subject in h36m.SUBJECTS:
        assert sorted(table[subject]) == sorted(cameras.H36M_CAMERA_IDS)
        for cam in cameras.H36M_CAMERA_IDS:
            r, c = ref[(subject, cam)], table[subject][cam]
            for key in ("R", "T", "f", "c", "k", "p"):
                np.testing.assert_array_equal(np.asarray(c[key]).ravel(), r[key].ravel(), err_msg=f"{subject} {cam} {key}")
            assert (c["w"], c["h"]) == (r["w"], r["h"])


def _sample_frames():
    z = np.load(SAMPLE / "test_h36m_body3d.npz")
    for i, name in enumerate(z["imgname"]):
        stem = Path(str(name)).name  # e.g. S1_Directions_1.54138969_000001.jpg
        yield stem.split("_")[0], stem.split(".")[1].split("_")[0], z["S"][i, :, :3], z["part"][i, :, :2]


@needs_sample
def test_sample_3d_projects_onto_its_2d_ground_truth():
    for subject, cam_id, joints_cam, uv_true in _sample_frames():
        cam = cameras.h36m_camera(subject, cam_id)
        identity = cameras.transform_world(cam, cam.R, cam.t)  # camera frame as the world: R' = I, t' = 0
        np.testing.assert_allclose(identity.R, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(identity.t, 0, atol=1e-9)
        err_h36m = np.linalg.norm(cameras.project_h36m(identity, joints_cam) - uv_true, axis=-1)
        err_opencv = np.linalg.norm(cameras.project(identity, joints_cam) - uv_true, axis=-1)
        err_pinhole = np.linalg.norm(cameras.project(identity, joints_cam, distort=False) - uv_true, axis=-1)
        assert err_h36m.max() < 0.01, (subject, cam_id, err_h36m.max())  # Human3.6M's own model: exact
        assert err_opencv.max() < 0.5, (subject, cam_id, err_opencv.max())  # OpenCV's model: close
        assert err_opencv.mean() < err_pinhole.mean()  # the distortion coefficients are applied the right way


@needs_sample
def test_extrinsics_put_the_real_sample_on_the_floor_upright():
    """x_cam = R X + t with the bundled extrinsics; inverting it must give a person on the floor at z = 0."""
    for subject, cam_id, joints_cam, _ in _sample_frames():
        cam = cameras.h36m_camera(subject, cam_id)
        world = (joints_cam - cam.t) @ cam.R  # R^T (x - t)
        assert world[:, 2].min() > -0.05, subject  # nothing below the floor
        assert np.linalg.norm(world[0, :2]) < 3.0  # inside the capture area around the origin
        if subject != "S5":  # S5's frame is SittingDown on the floor
            assert 0.0 < world[[3, 6], 2].min() < 0.2, subject  # an ankle near the floor
            assert world[10, 2] > 1.4, subject  # head top well above
            torso = world[8] - world[0]
            assert torso[2] / np.linalg.norm(torso) > 0.8, subject  # upright along +z


def test_world_to_camera_of_a_standing_person_for_every_bundled_camera():
    """A person standing at the world origin is seen 3-7 m ahead, inside the image, head up."""
    table = cameras.load_h36m_calibration()
    standing = h36m_motion(1)[0] - [0, -0.5, 0]  # h36m_motion starts 0.5 m off along -y
    for subject in h36m.SUBJECTS:
        for cam_id in cameras.H36M_CAMERA_IDS:
            cam = cameras.h36m_camera(subject, cam_id)
            c = table[subject][cam_id]
            R_cw, centre = np.asarray(c["R"]), np.asarray(c["T"])
            x_cam = cameras.to_camera_frame(cam, standing)
            np.testing.assert_allclose(x_cam, (standing - centre) @ R_cw, atol=1e-9)  # R^T (X - T)
            assert np.all((x_cam[:, 2] > 3.0) & (x_cam[:, 2] < 7.0)), (subject, cam_id)
            uv = cameras.project(cam, standing)
            assert np.all((uv >= 0) & (uv < [cam.width, cam.height])), (subject, cam_id)
            assert uv[15, 1] < uv[3, 1] - 200  # head top far above the ankle in the image (y down)


# --------------------------------------------------------------------------- bad input

def test_not_a_h36m_folder(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(InputError, match="not a Human3.6M folder: expected S\\*/MyPoseFeatures or data_3d_h36m.npz"):
        h36m.load_h36m(tmp_path, "S9", "Walking")
    with pytest.raises(InputError, match="folder not found"):
        h36m.load_h36m(tmp_path / "nope", "S9", "Walking")


def test_missing_sequence_names_what_was_tried_and_what_is_there(tmp_path):
    write_h36m_original(tmp_path, {("S11", "Phoning 2"): h36m_motion(5), ("S11", "Phoning 3"): h36m_motion(5)})
    with pytest.raises(InputError, match=r"tried 'Phoning_4\.cdf', 'Phoning 4\.cdf'.*present \(take order\): "
                                         r"'Phoning 2\.cdf', 'Phoning 3\.cdf', none is take 4") as e:
        h36m.load_h36m(tmp_path, "S11", "Phoning_4", "55011271")
    assert "D3_Positions" in e.value.source
    with pytest.raises(InputError, match="damaged"):
        h36m.resolve_h36m(tmp_path, "S11", "Directions", "54138969")
    with pytest.raises(InputError, match="S7 part of this copy"):
        h36m.load_h36m(tmp_path, "S7", "Walking")


def test_missing_sequence_in_preprocessed_npz(tmp_path):
    write_h36m_preprocessed(tmp_path, {("S11", "Walking"): h36m_motion(5)})
    with pytest.raises(InputError, match="no 3D poses for S11 Directions.*damaged") as e:
        h36m.load_h36m(tmp_path, "S11", "Directions", "60457274")
    assert e.value.source.endswith("data_3d_h36m.npz")
    with pytest.raises(InputError, match="no subject S9"):
        h36m.load_h36m(tmp_path, "S9", "Walking")


def test_corrupt_and_malformed_cdf(tmp_path):
    write_h36m_original(tmp_path, {("S9", "Walking"): h36m_motion(8), ("S9", "Eating"): h36m_motion(8)})
    path = tmp_path / "S9/MyPoseFeatures/D3_Positions/Walking.cdf"
    path.write_bytes(path.read_bytes()[:200])  # truncated download
    with pytest.raises(InputError, match="cannot read the CDF") as e:
        h36m.load_h36m(tmp_path, "S9", "Walking")
    assert e.value.source == str(path)
    path.write_bytes(b"not a cdf at all" * 8)
    with pytest.raises(InputError, match="cannot read the CDF"):
        h36m.load_h36m(tmp_path, "S9", "Walking")
    write_cdf_pose(tmp_path / "S9/MyPoseFeatures/D3_Positions/Eating.cdf", np.zeros((8, 90)))
    with pytest.raises(InputError, match=r"expected \(1, N, 96\)"):
        h36m.load_h36m(tmp_path, "S9", "Eating")


def test_units_100x_too_large_are_refused(tmp_path):
    write_h36m_preprocessed(tmp_path, {("S9", "Walking"): h36m_motion(10)}, scale=100.0)
    with pytest.raises(InputError, match=r"median thigh length is 4\d\.\d+ m.*units"):
        h36m.load_h36m(tmp_path, "S9", "Walking")


def test_corrupt_npz_and_missing_camera_array(tmp_path):
    joints = h36m_motion(10)
    write_h36m_preprocessed(tmp_path, {("S9", "Walking"): joints})
    z = np.load(tmp_path / "data_2d_h36m_gt.npz", allow_pickle=True)
    p2d = z["positions_2d"].item()
    p2d["S9"]["Walking"][3] = None
    np.savez_compressed(tmp_path / "data_2d_h36m_gt.npz", positions_2d=p2d)
    with pytest.raises(InputError, match="no 2D keypoints for camera 60457274"):
        h36m.load_h36m(tmp_path, "S9", "Walking", "60457274")
    (tmp_path / "data_3d_h36m.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(InputError, match="cannot read the npz") as e:
        h36m.load_h36m(tmp_path, "S9", "Walking")
    assert e.value.source.endswith("data_3d_h36m.npz")


def test_bad_frames_fps_and_camera(tmp_path):
    write_h36m_original(tmp_path, {("S9", "Walking"): h36m_motion(30)})
    with pytest.raises(InputError, match="only 30 frames"):
        h36m.load_h36m(tmp_path, "S9", "Walking", frames=(400, 600))
    with pytest.raises(InputError, match="cannot resample 50 fps to 30 fps"):
        h36m.load_h36m(tmp_path, "S9", "Walking", fps=30)
    with pytest.raises(InputError, match="not a Human3.6M camera"):
        h36m.load_h36m(tmp_path, "S9", "Walking", "12345")


def test_2d_shorter_than_3d_is_refused(tmp_path):
    joints = h36m_motion(30)
    write_h36m_original(tmp_path, {("S9", "Walking"): joints})
    write_cdf_pose(tmp_path / "S9/MyPoseFeatures/D2_Positions/Walking.54138969.cdf",
                   h36m_2d("S9", "54138969", joints[:20]).reshape(20, 64))
    with pytest.raises(InputError, match="has 20 frames but the 3D poses have 30"):
        h36m.load_h36m(tmp_path, "S9", "Walking", "54138969")
