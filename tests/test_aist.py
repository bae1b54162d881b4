"""AIST++ reader: real-format pickles/JSON with known motion, world frame and cameras, bad input."""

import json
import pickle

import numpy as np
import pytest

from fake_datasets import aist_motion_zup, aist_raw_from_zup, write_aist
from motionrecon.datasets import aist
from motionrecon.datasets.cameras import project, to_camera_frame
from motionrecon.errors import InputError

SEQ = "gBR_sBM_cAll_d06_mBR4_ch06"
VIDEO = "gBR_sBM_c06_d06_mBR4_ch06"
FLOOR_CM = -23.0  # where the fake's floor lies in the AIST++ (y-up, cm) world


@pytest.fixture
def folder(tmp_path):
    expected = aist_motion_zup(130)
    written = write_aist(tmp_path, SEQ, aist_raw_from_zup(expected, FLOOR_CM), floor_y_cm=FLOOR_CM)
    return tmp_path, expected, written


def test_names():
    assert aist.parse_name(VIDEO) == (SEQ, "c06")
    assert aist.parse_name(SEQ) == (SEQ, None)
    assert aist.parse_name(VIDEO + ".mp4") == (SEQ, "c06")
    assert aist.video_name(SEQ, 6) == aist.video_name(SEQ, "c06") == VIDEO
    with pytest.raises(InputError, match="not an AIST\\+\\+ name"):
        aist.parse_name("S9_Walking")
    with pytest.raises(InputError, match="not an AIST\\+\\+ view"):
        aist.view_name("c10")


def test_3d_in_metres_z_up_on_the_floor(folder):
    root, expected, _ = folder
    obs = aist.load_aist(root, SEQ)
    assert obs.joint_set == "coco17" and obs.fps == 60.0 and obs.num_frames == 130
    assert obs.camera is None and obs.joints2d is None
    assert obs.source.endswith(f"keypoints3d/{SEQ}.pkl")
    np.testing.assert_allclose(obs.joints3d, expected, atol=1e-9)  # cm -> m, y-up -> z-up, floor -> 0
    assert np.all(obs.confidence == 1.0)
    # The raw (not temporally optimised) keypoints are the noisy ones.
    raw = aist.load_aist(root, SEQ, use_optim=False)
    assert 0.001 < np.abs(raw.joints3d - expected).mean() < 0.01


def test_view_gives_2d_scores_and_a_camera_consistent_with_the_3d(folder):
    root, expected, written = folder
    obs = aist.load_aist(root, VIDEO)
    k2d = written["keypoints2d"][5]  # c06
    np.testing.assert_allclose(obs.joints2d, k2d[:, :, :2])
    np.testing.assert_allclose(obs.confidence, k2d[:, :, 2])
    # The camera was moved with the 3D: projecting the converted joints lands on the 2D.
    np.testing.assert_allclose(project(obs.camera, obs.joints3d), obs.joints2d, atol=1e-6)
    centre = -obs.camera.R.T @ obs.camera.t
    assert centre[2] == pytest.approx(1.5, abs=1e-9)  # the fake's cameras are 1.5 m above its floor
    assert (obs.camera.width, obs.camera.height) == (1920, 1080)
    assert np.all(to_camera_frame(obs.camera, obs.joints3d)[..., 2] > 3.0)
    same = aist.load_aist(root, SEQ, view=6)
    np.testing.assert_allclose(same.joints2d, obs.joints2d)


def test_frames_and_fps(folder):
    root, expected, _ = folder
    obs = aist.load_aist(root, VIDEO, frames=(1, 121))
    assert obs.num_frames == 120
    np.testing.assert_allclose(obs.joints3d, expected[1:121], atol=1e-9)
    half = aist.load_aist(root, SEQ, frames=(0, 120), fps=30)
    assert half.fps == 30.0 and half.num_frames == 60
    np.testing.assert_allclose(half.joints3d, expected[0:120:2], atol=1e-9)
    with pytest.raises(InputError, match="only 130 frames"):
        aist.load_aist(root, SEQ, frames=(100, 200))


def test_floor_estimate_ignores_jumps_and_outliers(tmp_path):
    expected = aist_motion_zup(100)
    expected[20:40, :, 2] += 0.3  # a jump
    expected[50, 15, 2] -= 0.5  # one triangulation outlier half a metre under the floor
    write_aist(tmp_path, SEQ, aist_raw_from_zup(expected, FLOOR_CM), floor_y_cm=FLOOR_CM)
    obs = aist.load_aist(tmp_path, SEQ)
    shift = obs.joints3d[:, 0, 2] - expected[:, 0, 2]
    assert np.ptp(shift) < 1e-9  # one rigid shift for the whole sequence
    assert abs(shift[0]) < 0.01  # ground found within 1 cm


def test_missing_3d_keypoints_get_zero_confidence(tmp_path):
    raw = aist_raw_from_zup(aist_motion_zup(20), FLOOR_CM)
    write_aist(tmp_path, SEQ, raw, floor_y_cm=FLOOR_CM)
    with open(tmp_path / "keypoints3d" / f"{SEQ}.pkl", "rb") as f:
        data = pickle.load(f)
    data["keypoints3d"][3, 7] = np.nan
    with open(tmp_path / "keypoints3d" / f"{SEQ}.pkl", "wb") as f:
        pickle.dump(data, f)
    obs = aist.load_aist(tmp_path, SEQ, use_optim=False)
    assert obs.confidence[3, 7] == 0.0 and np.all(obs.joints3d[3, 7] == 0.0)
    assert obs.confidence.sum() == 20 * 17 - 1


# --------------------------------------------------------------------------- bad input

def test_not_an_aist_folder(tmp_path):
    with pytest.raises(InputError, match="not an AIST\\+\\+ folder: expected keypoints3d/ and cameras/mapping.txt"):
        aist.load_aist(tmp_path, SEQ)


def test_listed_but_absent_sequence(folder):
    root, _, _ = folder
    other = "gLH_sBM_c04_d18_mLH5_ch07"
    with pytest.raises(InputError, match="gLH_sBM_cAll_d18_mLH5_ch07 is not in this copy") as e:
        aist.load_aist(root, other)
    assert e.value.source.endswith("keypoints3d/gLH_sBM_cAll_d18_mLH5_ch07.pkl")
    # 3D present, but no camera setting listed for it
    (root / "keypoints3d" / "gLH_sBM_cAll_d18_mLH5_ch07.pkl").write_bytes((root / "keypoints3d" / f"{SEQ}.pkl").read_bytes())
    with pytest.raises(InputError, match="no camera setting listed"):
        aist.load_aist(root, other)
    with pytest.raises(InputError, match="names view c06 but view c02 was requested"):
        aist.load_aist(root, VIDEO, view="c02")


def test_corrupt_pickles(folder):
    root, _, _ = folder
    k2d = root / "keypoints2d" / f"{SEQ}.pkl"
    k2d.write_bytes(k2d.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot read the pickle") as e:
        aist.load_aist(root, VIDEO)
    assert e.value.source == str(k2d)
    k3d = root / "keypoints3d" / f"{SEQ}.pkl"
    k3d.write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read the pickle"):
        aist.load_aist(root, SEQ)
    with open(k3d, "wb") as f:
        pickle.dump({"keypoints3d": np.zeros((5, 17, 3))}, f)
    with pytest.raises(InputError, match="has no 'keypoints3d_optim'"):
        aist.load_aist(root, SEQ)


def test_corrupt_camera_json(folder):
    root, _, _ = folder
    (root / "cameras" / "setting1.json").write_text("[{\"name\": \"c01\"")
    with pytest.raises(InputError, match="not valid JSON"):
        aist.load_aist(root, VIDEO)
    (root / "cameras" / "setting1.json").write_text(json.dumps([{"name": "c06", "size": [1, 1]}]))
    with pytest.raises(InputError, match="camera entry 0 is malformed"):
        aist.load_aist(root, VIDEO)


def test_units_in_metres_instead_of_centimetres_are_refused(tmp_path):
    raw_m = aist_raw_from_zup(aist_motion_zup(20), FLOOR_CM) / 100.0
    write_aist(tmp_path, SEQ, raw_m)
    with pytest.raises(InputError, match=r"median thigh length is 0\.004\d+ m.*units"):
        aist.load_aist(tmp_path, SEQ)


def test_z_up_input_is_refused_as_not_upright(tmp_path):
    zup_cm = 100.0 * aist_motion_zup(20)  # forgot that AIST++ is y-up
    write_aist(tmp_path, SEQ, zup_cm)
    with pytest.raises(InputError, match="not upright"):
        aist.load_aist(tmp_path, SEQ)


def test_raw_multi_person_2d_format_and_length_mismatch(folder):
    root, _, _ = folder
    k2d = root / "keypoints2d" / f"{SEQ}.pkl"
    with open(k2d, "wb") as f:
        pickle.dump({"keypoints2d": [[None]] * 9, "bboxes": [[None]] * 9, "timestamps": [[0]] * 9}, f)
    with pytest.raises(InputError, match="raw multi-person"):
        aist.load_aist(root, VIDEO)
    with open(k2d, "wb") as f:
        pickle.dump({"keypoints2d": np.zeros((9, 50, 17, 3)), "det_scores": np.ones((9, 50))}, f)
    with pytest.raises(InputError, match="has 50 frames but the 3D keypoints have 130"):
        aist.load_aist(root, VIDEO)


def test_video_resolver(tmp_path):
    (tmp_path / f"{VIDEO}.mp4").write_bytes(b"")
    assert aist.aist_video(tmp_path, SEQ, "c06").name == f"{VIDEO}.mp4"
    assert aist.aist_video(tmp_path, VIDEO).name == f"{VIDEO}.mp4"
    with pytest.raises(InputError, match="video not found"):
        aist.aist_video(tmp_path, SEQ, 2)


def test_no_ankle_at_all_cannot_place_the_floor(tmp_path):
    raw = aist_raw_from_zup(aist_motion_zup(10), FLOOR_CM)
    raw[:, 15:17] = np.nan
    write_aist(tmp_path, SEQ, raw)
    with pytest.raises(InputError, match="no finite ankle keypoint"):
        aist.load_aist(tmp_path, SEQ)
