"""BVH input for `motionrecon mocap`, and `load_motion` on single AIST++ / Human3.6M files."""

import json
import logging

import numpy as np
import pytest

from bvh_files import (DAZ_NAMES, Y_TO_Z, channel_index, cmu_rows, rest_world_m, standing_frames, walking_frames,
                       write_bvh, x_rest_rig)
from fake_datasets import aist_motion_zup, aist_raw_from_zup, h36m_motion, write_aist, write_h36m_original
from motionrecon.body.template import BodyShape
from motionrecon.datasets import aist, h36m, load_motion
from motionrecon.datasets.bvh_mocap import ANKLE_HEIGHT_M, chain_point, load_bvh
from motionrecon.datasets.bvh_rig import normalise_name
from motionrecon.errors import InputError
from motionrecon.skeleton import H36M17

J = {name: i for i, name in enumerate(H36M17.joints)}


def _standing(rows, n=4, root_height=95.0):
    frames = np.zeros((n, 3 + 3 * len(rows)))
    frames[:, 1] = root_height
    return frames


def _tumbling(rows):
    """A third of the clip along each file axis: no axis has the head above the feet in most frames."""
    frames = standing_frames(rows, 9)
    frames[3:6, channel_index(rows, "Hips", "Zrotation")] = -90.0  # y -> x
    frames[6:, channel_index(rows, "Hips", "Xrotation")] = 90.0  # y -> z
    return frames


def test_cmu_rest_pose_maps_onto_h36m17_landmarks(tmp_path):
    rows = cmu_rows()
    obs = load_bvh(write_bvh(tmp_path / "rest.bvh", rows, _standing(rows), 1 / 30))
    rest = rest_world_m(rows)
    # The lowest foot point is the toe End Site, 6 cm below the ankle: it sits 8 - 6 = 2 cm above the floor.
    toe_end = rest["LeftToeBase"] + 0.01 * np.array([0.0, -4.0, -1.0])
    floor = toe_end[2] - (ANKLE_HEIGHT_M - (rest["LeftFoot"][2] - toe_end[2]))
    lift = np.array([0.0, 0.0, -floor])
    assert obs.joint_set == "h36m17" and obs.fps == pytest.approx(30.0) and obs.joints3d.shape == (4, 17, 3)
    for joint, bvh_name in [("pelvis", "Hips"), ("left_hip", "LeftUpLeg"), ("left_knee", "LeftLeg"),
                            ("left_ankle", "LeftFoot"), ("right_hip", "RightUpLeg"), ("right_knee", "RightLeg"),
                            ("right_ankle", "RightFoot"), ("thorax", "Neck"), ("left_shoulder", "LeftArm"),
                            ("left_elbow", "LeftForeArm"), ("left_wrist", "LeftHand"),
                            ("right_shoulder", "RightArm"), ("right_elbow", "RightForeArm"),
                            ("right_wrist", "RightHand")]:
        np.testing.assert_allclose(obs.joints3d[0, J[joint]], rest[bvh_name] + lift, atol=1e-6, err_msg=joint)
    assert obs.joints3d[0, J["left_ankle"], 2] == pytest.approx(ANKLE_HEIGHT_M)
    # Left is +x (the file's +x) and the character faces the file's +z, which is the world's -y.
    assert obs.joints3d[0, J["left_hip"], 0] > 0 and obs.joints3d[0, J["neck_nose"], 1] < -0.05
    # Spine: on the Hips-Spine-Spine1-Neck chain at the template's fraction of its length.
    shape = BodyShape()
    fraction = 0.5 * shape.pelvis_to_chest / (shape.pelvis_to_chest + shape.chest_to_thorax)
    height = rest["Neck"][2] - rest["Hips"][2]
    assert obs.joints3d[0, J["spine"], 2] == pytest.approx(rest["Hips"][2] + fraction * height + lift[2])
    # Head top: the Head's End Site.
    head_top = rest["Head"] + 0.01 * np.array([0.0, 0.0, 17.0])
    np.testing.assert_allclose(obs.joints3d[0, J["head"]], head_top + lift, atol=1e-6)
    assert np.all(obs.confidence == 1.0)


def test_name_variants_and_a_z_up_file_read_the_same(tmp_path):
    rows = cmu_rows()
    reference = load_bvh(write_bvh(tmp_path / "cmu.bvh", rows, walking_frames(rows, 12), 1 / 30)).joints3d
    variants = {
        "mixamo": cmu_rows(rename=lambda n: f"mixamorig:{n}"),
        "daz": cmu_rows(rename=lambda n: DAZ_NAMES[n]),
        "unreal": cmu_rows(rename=lambda n: {"Hips": "pelvis", "LeftUpLeg": "thigh_l", "LeftLeg": "calf_l",
                                             "LeftFoot": "foot_l", "LeftArm": "upperarm_l", "LeftForeArm": "lowerarm_l",
                                             "LeftHand": "hand_l", "LeftShoulder": "clavicle_l", "Neck": "neck_01",
                                             "RightUpLeg": "thigh_r", "RightLeg": "calf_r", "RightFoot": "foot_r",
                                             "RightArm": "upperarm_r", "RightForeArm": "lowerarm_r",
                                             "RightHand": "hand_r", "RightShoulder": "clavicle_r"}.get(n, n)),
    }
    for name, variant in variants.items():
        got = load_bvh(write_bvh(tmp_path / f"{name}.bvh", variant, walking_frames(rows, 12), 1 / 30)).joints3d
        np.testing.assert_allclose(got, reference, atol=1e-6, err_msg=name)
    z_rows = cmu_rows(z_up=True)
    z_file = write_bvh(tmp_path / "zup.bvh", z_rows, walking_frames(z_rows, 12, z_up=True), 1 / 30)
    np.testing.assert_allclose(load_bvh(z_file).joints3d, reference, atol=1e-6)
    assert normalise_name("Bip01 L Thigh") == "lthigh" and normalise_name("mixamorig1:LeftUpLeg") == "leftupleg"


def test_motion_moves_the_landmarks_and_the_head_turns_the_nose(tmp_path):
    rows = cmu_rows()
    frames = walking_frames(rows, 12)
    frames[:, channel_index(rows, "Head", "Yrotation")] = np.linspace(0.0, 90.0, 12)  # look left
    obs = load_bvh(write_bvh(tmp_path / "walk.bvh", rows, frames, 1 / 30))
    x = obs.joints3d
    assert np.diff(x[:, J["pelvis"], 1]).mean() == pytest.approx(-0.01)  # 1 cm per frame along the file's +z
    shin = np.linalg.norm(x[:, J["left_knee"]] - x[:, J["left_ankle"]], axis=-1)
    np.testing.assert_allclose(shin, 0.01 * np.sqrt(40.0**2 + 1.0), rtol=1e-6)  # rigid bones while bending
    nose = x[:, J["neck_nose"], :2] - x[:, J["thorax"], :2]
    assert nose[0, 1] < -0.05 and abs(nose[0, 0]) < 1e-6  # straight ahead (-y)
    assert nose[-1, 0] > 0.05 and nose[-1, 0] > 3 * abs(nose[-1, 1])  # turned 90 degrees to the left (+x)


def test_chain_point_is_by_arc_length():
    pts = np.array([[[0.0, 0, 0], [0, 0, 1], [0, 1, 1]]])  # two unit segments
    np.testing.assert_allclose(chain_point(pts, 0.25), [[0, 0, 0.5]])
    np.testing.assert_allclose(chain_point(pts, 0.75), [[0, 0.5, 1]])


def test_a_rig_without_head_end_site_estimates_the_head_top(tmp_path):
    rows = [(n, p, o, None if n == "Head" else e) for n, p, o, e in cmu_rows()]
    obs = load_bvh(write_bvh(tmp_path / "nohead.bvh", rows, _standing(rows), 1 / 30))
    assert np.all(obs.confidence[:, J["head"]] == 0.5) and np.all(obs.confidence[:, J["neck_nose"]] == 0.5)
    assert obs.metadata["head_top"] == [] and "head top" in obs.metadata["summary"]
    # Straight up from the neck through the head joint (Neck -> Head is (0, 10, 2) cm: 11.3 degrees forward),
    # as far as the template's thorax-to-head-top distance for this leg length.
    shape = BodyShape()
    leg = 0.01 * (np.hypot(42, 1) + np.hypot(40, 1))
    reach = (shape.thorax_to_head + shape.radii()["head"]) * leg / (shape.thigh + shape.shin)
    rise = obs.joints3d[0, J["head"]] - obs.joints3d[0, J["thorax"]]
    np.testing.assert_allclose(rise, reach * np.array([0.0, -2.0, 10.0]) / np.hypot(10, 2), atol=1e-9)


@pytest.mark.parametrize("rows, message", [
    (cmu_rows(drop=("LeftForeArm", "LeftHand")), "left_elbow, left_wrist"),
    (cmu_rows(scale=3.0), "cannot tell the length unit"),  # a 2.5 m leg in cm, 0.25 m in mm, 6.2 m in inches
])
def test_bad_bvh_files_name_the_file_and_the_problem(tmp_path, rows, message):
    path = write_bvh(tmp_path / "bad.bvh", rows, _standing(rows, root_height=95.0 * 3.0), 1 / 30)
    with pytest.raises(InputError) as e:
        load_bvh(path)
    assert str(path) in str(e.value) and message in str(e.value) and "--joint-map" in str(e.value)


def test_a_body_upright_along_no_axis_cannot_tell_up(tmp_path):
    rows = cmu_rows()
    path = write_bvh(tmp_path / "tumbling.bvh", rows, _tumbling(rows), 1 / 30)
    with pytest.raises(InputError, match="cannot tell the up axis") as e:
        load_bvh(path)
    assert e.value.source == str(path)
    # The joint map settles it: with up = +y the first third stands.
    assert load_bvh(path, joint_map={"up": "y"}).metadata["up"] == "+y"


def test_load_motion_time_window_and_formats(tmp_path, caplog):
    rows = cmu_rows()
    path = write_bvh(tmp_path / "clip.bvh", rows, walking_frames(rows, 30), 1 / 30)
    whole = load_motion(path)
    part = load_motion(path, start=0.1, duration=0.5)
    assert part.num_frames == 15 and np.array_equal(part.joints3d, whole.joints3d[3:18])
    with caplog.at_level(logging.WARNING):
        tail = load_motion(path, start=0.5, duration=1.0)  # 1 s from 0.5 s of a 1 s clip: the 0.5 s to the end
    assert tail.num_frames == 15 and np.array_equal(tail.joints3d, whole.joints3d[15:])
    assert "runs past the end" in caplog.text and "using the 0.500 s to the end" in caplog.text
    with pytest.raises(InputError, match="fewer than 2 frames"):
        load_motion(path, start=0.99, duration=1.0)

    # AIST++ keypoints3d pickle: the same as the data-set reader, 60 fps.
    seq = "gBR_sBM_cAll_d06_mBR4_ch06"
    write_aist(tmp_path / "aist", seq, aist_raw_from_zup(aist_motion_zup(40), 12.0))
    single = load_motion(tmp_path / "aist" / "keypoints3d" / f"{seq}.pkl", start=0.1)
    full = aist.load_aist(tmp_path / "aist", seq, frames=(6, 40))
    assert single.fps == 60.0 and single.joint_set == "coco17"
    np.testing.assert_allclose(single.joints3d, full.joints3d, atol=1e-9)

    # Human3.6M D3_Positions CDF: the same as the data-set reader, 50 fps.
    write_h36m_original(tmp_path / "h36m", {("S9", "Walking"): h36m_motion(20)}, videos=False)
    cdf = tmp_path / "h36m" / "S9" / "MyPoseFeatures" / "D3_Positions" / "Walking.cdf"
    single = load_motion(cdf, duration=0.2)
    np.testing.assert_allclose(single.joints3d, h36m.load_h36m(tmp_path / "h36m", "S9", "Walking").joints3d[:10])
    with pytest.raises(InputError, match="D3_Positions"):
        load_motion(tmp_path / "h36m" / "S9" / "MyPoseFeatures" / "D2_Positions" / "Walking.54138969.cdf")
    (tmp_path / "data_3d_h36m.npz").write_bytes(b"")
    with pytest.raises(InputError, match="motionrecon eval"):
        load_motion(tmp_path / "data_3d_h36m.npz")
    (tmp_path / "x.c3d").write_bytes(b"")
    with pytest.raises(InputError, match="BVH .bvh"):
        load_motion(tmp_path / "x.c3d")
    (tmp_path / "phone clip.MOV").write_bytes(b"")  # a video given to `mocap`: pointed to the video command
    with pytest.raises(InputError, match="is a video, not motion capture: run `motionrecon '.*phone clip.MOV' --out DIR`"):
        load_motion(tmp_path / "phone clip.MOV")


@pytest.mark.parametrize("rows, frames, message", [
    (cmu_rows(drop=("LeftForeArm", "LeftHand")), None, "cannot find the BVH joints for left_elbow, left_wrist"),
    (cmu_rows(), _tumbling(cmu_rows()), "cannot tell the up axis"),
])
def test_mocap_command_refuses_a_bad_bvh_in_one_line_and_writes_nothing(tmp_path, capsys, rows, frames, message):
    from motionrecon.cli import main

    path = write_bvh(tmp_path / "bad.bvh", rows, _standing(rows) if frames is None else frames, 1 / 30)
    out = tmp_path / "out"
    code = main(["mocap", str(path), "--out", str(out), "--solver", "lbfgs", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[0].startswith(f"motionrecon: error: {path}: ") and message in err[0]
    assert err[1:] == ["motionrecon: 1 of 1 inputs failed"]
    assert not out.exists() or not any(out.iterdir())


def test_mocap_command_stops_on_a_bad_joint_map_before_any_work(tmp_path, capsys):
    from motionrecon.cli import main

    rows = cmu_rows()
    path = write_bvh(tmp_path / "walk.bvh", rows, _standing(rows), 1 / 30)
    jmap = tmp_path / "map.json"
    jmap.write_text('{"left_kneee": "LeftLeg"}')
    code = main(["mocap", str(path), "--out", str(tmp_path / "out"), "--solver", "lbfgs", "--joint-map", str(jmap)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"motionrecon: error: {jmap}: unknown keys")
    assert not (tmp_path / "out").exists()
    clip = tmp_path / "clip.txt"
    clip.write_text("{}")
    with pytest.raises(InputError, match="applies to BVH files only"):
        load_motion(clip, joint_map={})


def test_run_json_gets_the_reading_decisions(tmp_path):
    from argparse import Namespace

    from motionrecon.commands.mocap import run_info
    from motionrecon.datasets.deepmimic import clip_path

    rows = cmu_rows()
    path = write_bvh(tmp_path / "walk.bvh", rows, walking_frames(rows, 8), 0.1)
    obs = load_motion(path, joint_map={"unit": "cm"})
    info = json.loads(json.dumps(run_info(path, Namespace(start=0.0, duration=None, joint_map="m.json"), obs)))
    assert info["input"] == str(path) and info["joint_map"] == "m.json"
    reader = info["reader"]
    assert reader["unit"] == "cm" and reader["up"] == "+y" and reader["joints"]["left_knee"] == ["LeftLeg"]
    assert reader["skipped_frames"] == 0 and reader["summary"].startswith("up +y, centimetres")
    assert info["seconds"] == pytest.approx(0.8)  # 8 frames at 10 fps
    deepmimic = load_motion(clip_path("walk"))
    assert "reader" not in run_info("walk.txt", Namespace(start=0.0, duration=None), deepmimic)
    kick = load_motion(clip_path("kick"), duration=5.0)  # runs past the end of the 1.57 s clip: stops there
    info = run_info("kick.txt", Namespace(start=0.0, duration=5.0), kick)
    assert kick.num_frames == 47 and info["duration"] == 5.0 and info["seconds"] == pytest.approx(47 / kick.fps)


@pytest.mark.slow
def test_mocap_command_reconstructs_a_bvh_file(tmp_path, capsys):
    from motionrecon.cli import main

    rows = cmu_rows()
    path = write_bvh(tmp_path / "walk.bvh", rows, walking_frames(rows, 8), 0.1)  # 10 fps: the eval tests' setting
    code = main(["mocap", str(path), "--out", str(tmp_path / "out"), "--max-evals", "2", "--window", "0.5",
                 "--no-progress"])
    assert code == 0
    assert f"{path}: read as up +y, centimetres" in capsys.readouterr().out
    folder = tmp_path / "out" / "walk"
    with np.load(folder / "motion.npz") as z:
        np.testing.assert_allclose(z["observed3d"], load_bvh(path).joints3d, atol=1e-6)
        assert str(z["joint_set"]) == "h36m17" and z["joints3d"].shape == (8, 17, 3)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0 < metrics["mpjpe_g_mm"] < 300
    # Foot skate and penetration are read on the simulated body's ankles and toes (H36M-17 has ankles alone).
    from motionrecon import metrics as m

    with np.load(folder / "motion.npz") as z:
        names = [str(n) for n in z["landmark_names"]]
        feet = z["markers"][:, [names.index(n) for n in ("left_ankle", "left_toe", "right_ankle", "right_toe")]]
    assert metrics["penetration_mm"] == pytest.approx(m.penetration_mm(feet), abs=1e-3)
    assert metrics["foot_skate_pct"] == pytest.approx(m.foot_skate_pct(feet, 10.0, [0, 1, 2, 3]))
    assert float(feet[..., 2].min()) < m.CONTACT_HEIGHT_M  # the toes come low enough for the rules to see them
    assert json.loads((folder / "run.json").read_text())["reader"]["joints"]["pelvis"] == ["Hips"]
