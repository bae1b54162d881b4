"""BVH rigs as people have them: rest pose along x with a dummy root, units, CMU's T-pose frame, CRLF,
names never seen (roles by the tree), zero-length bones, the joint map; each against known positions."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bvh_files import TOE_END, channel_index, cmu_rows, rest_world_m, standing_frames, write_bvh, x_rest_rig
from motionrecon.datasets.bvh import parse_bvh, rest_positions
from motionrecon.datasets.bvh_mocap import ANKLE_HEIGHT_M, load_bvh
from motionrecon.datasets.bvh import LENGTH_UNITS_M
from motionrecon.datasets.bvh_rig import axes_to_world, read_joint_map
from motionrecon.errors import InputError
from motionrecon.skeleton import H36M17

J = {name: i for i, name in enumerate(H36M17.joints)}
# h36m17 joints that are one joint of the CMU-style test rig.
SAME_JOINT = {"pelvis": "Hips", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot",
              "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
              "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
              "right_shoulder": "RightArm", "right_elbow": "RightForeArm", "right_wrist": "RightHand"}
STEP_CM = np.array([0.0, 0.0, 1.0])  # the standing body moves 1 cm per frame along the file's +z (world -y)


def known_positions(num_frames: int, rows=None) -> dict[str, np.ndarray]:
    """[T, 3] world positions (metres, z-up, floor z = 0) of the rig's joints in the standing clip.

    From the offsets alone: y-up (x, y, z) -> (x, -z, y), centimetres; the floor sits where the toe End Site
    (the lowest foot point, 6 cm below the ankle) is when an ankle is 8 cm above the floor.
    """
    rest = rest_world_m(cmu_rows() if rows is None else rows)
    toe_drop = rest["LeftFoot"][2] - (rest["LeftToeBase"][2] + 0.01 * TOE_END[1])
    floor = rest["LeftFoot"][2] - ANKLE_HEIGHT_M
    assert toe_drop == pytest.approx(0.06)
    path = 0.01 * np.arange(num_frames)[:, None] * (STEP_CM @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0.0]]))
    return {name: p - np.array([0.0, 0.0, floor]) + path for name, p in rest.items()}


def assert_standing_clip(obs, num_frames: int):
    known = known_positions(num_frames)
    assert obs.num_frames == num_frames and obs.joint_set == "h36m17"
    for joint, name in SAME_JOINT.items():
        np.testing.assert_allclose(obs.joints3d[:, J[joint]], known[name], atol=1e-6, err_msg=joint)


@pytest.fixture
def plain(tmp_path):
    """The CMU-style rig in centimetres, y-up, standing and moving: the reference every variant must match."""
    rows = cmu_rows()
    obs = load_bvh(write_bvh(tmp_path / "plain.bvh", rows, standing_frames(rows, 10), 1 / 30))
    assert_standing_clip(obs, 10)
    return obs


def test_rest_pose_along_x_with_a_static_dummy_root(tmp_path, plain):
    """Bandai Namco's convention: the rest pose lies along x, a static `joint_Root` above `Hips`, 6 channels
    per joint whose position channels replace the offsets; the up axis comes from the motion."""
    rows, channels, frames = x_rest_rig(cmu_rows(), 10)
    path = write_bvh(tmp_path / "bandai.bvh", rows, frames, 1 / 30, channels=channels)
    skeleton, _, _ = parse_bvh(path.read_text())
    rest = rest_positions(skeleton)
    spine = rest[skeleton.names.index("Neck")] - rest[skeleton.names.index("Hips")]
    assert abs(spine[0]) > 0.95 * np.linalg.norm(spine)  # the file really lies along x at rest

    obs = load_bvh(path)
    assert_standing_clip(obs, 10)
    np.testing.assert_allclose(obs.joints3d, plain.joints3d, atol=1e-6)  # nose, spine, head top too
    md = obs.metadata
    assert md["up"] == "+y" and md["up_cosine"] > 0.99 and md["unit"] == "cm"
    assert md["above_pelvis"] == ["joint_Root"] and md["above_pelvis_static"] is True
    assert "static root joint_Root above Hips" in md["summary"] and "up +y" in md["summary"]


@pytest.mark.parametrize("up", ["+x", "-x", "-y", "+z", "-z"])
def test_up_axis_comes_from_the_motion(tmp_path, plain, up):
    """The same clip with the file's up along any signed axis reads the same (x-rest rig: no upright rest)."""
    rows, channels, frames = x_rest_rig(cmu_rows(), 10)
    turn = axes_to_world(up).T @ axes_to_world("+y")  # file y-up -> a file whose `up` is up
    root = [channel_index(rows, "Hips", f"{a}position", channels) for a in "XYZ"]
    rot = [channel_index(rows, "Hips", c, channels) for c in ("Zrotation", "Xrotation", "Yrotation")]
    frames = frames.copy()
    frames[:, root] = frames[:, root] @ turn.T
    hips = Rotation.from_euler("ZXY", frames[:, rot], degrees=True).as_matrix()
    frames[:, rot] = Rotation.from_matrix(turn @ hips).as_euler("ZXY", degrees=True)
    obs = load_bvh(write_bvh(tmp_path / "turned.bvh", rows, frames, 1 / 30, channels=channels))
    assert obs.metadata["up"] == up
    # `axes_to_world(up)` undoes the turn: the same world as the y-up file.
    np.testing.assert_allclose(obs.joints3d, plain.joints3d, atol=1e-6)


@pytest.mark.parametrize("unit", ["m", "cm", "mm", "in", "cmu"])
def test_the_unit_comes_from_the_skeleton_size(tmp_path, plain, unit):
    scale = 0.01 / LENGTH_UNITS_M[unit]  # centimetres -> the unit
    rows = cmu_rows(scale=scale)
    frames = standing_frames(rows, 10, step=STEP_CM * scale, root_height=95.0 * scale)
    obs = load_bvh(write_bvh(tmp_path / f"{unit}.bvh", rows, frames, 1 / 30))
    assert obs.metadata["unit"] == unit and obs.metadata["metres_per_unit"] == LENGTH_UNITS_M[unit]
    assert obs.metadata["leg_m"] == pytest.approx(0.01 * (np.hypot(42, 1) + np.hypot(40, 1)), abs=1e-4)
    np.testing.assert_allclose(obs.joints3d, plain.joints3d, atol=1e-6)


def test_cmu_unit_with_a_t_pose_first_frame(tmp_path):
    """CMU's files: 1/0.45 inch per unit, frame 0 a T-pose; the frame is skipped and reported."""
    scale = 0.01 / LENGTH_UNITS_M["cmu"]
    rows = cmu_rows(scale=scale)
    frames = standing_frames(rows, 12, step=STEP_CM * scale, root_height=95.0 * scale)
    frames[1:, channel_index(rows, "LeftArm", "Zrotation")] = -80.0  # arms down after the T-pose
    frames[1:, channel_index(rows, "RightArm", "Zrotation")] = 80.0
    obs = load_bvh(write_bvh(tmp_path / "cmu.bvh", rows, frames, 1 / 120))
    assert obs.fps == 120.0 and obs.num_frames == 11
    md = obs.metadata
    assert md["unit"] == "cmu" and md["skipped_frames"] == 1 and md["skipped_why"] == "T-pose"
    assert md["frames_in_file"] == 12 and "skipped frame 0 (T-pose)" in md["summary"]
    known = known_positions(12)
    for joint in ("pelvis", "left_knee", "right_ankle", "left_shoulder"):
        np.testing.assert_allclose(obs.joints3d[:, J[joint]], known[SAME_JOINT[joint]][1:], atol=1e-6)
    # The arms hang: each wrist below its shoulder by (28 + 25) cm x sin 80 degrees.
    drop = obs.joints3d[:, J["left_shoulder"], 2] - obs.joints3d[:, J["left_wrist"], 2]
    np.testing.assert_allclose(drop, 0.53 * np.sin(np.deg2rad(80.0)), atol=1e-6)
    # --start counts from the first frame after the skipped one.
    part = load_bvh(tmp_path / "cmu.bvh", start=2 / 120, duration=5 / 120)
    np.testing.assert_allclose(part.joints3d, obs.joints3d[2:7])


def test_a_clip_that_is_all_t_pose_keeps_its_frames(tmp_path):
    rows = cmu_rows()  # arms along x: every frame is a T-pose
    obs = load_bvh(write_bvh(tmp_path / "t.bvh", rows, standing_frames(rows, 6), 1 / 30))
    assert obs.num_frames == 6 and obs.metadata["skipped_frames"] == 0


def test_crlf_lines_read_the_same(tmp_path, plain):
    rows = cmu_rows()
    path = write_bvh(tmp_path / "crlf.bvh", rows, standing_frames(rows, 10), 1 / 30, newline="\r\n")
    assert b"\r\n" in path.read_bytes()
    np.testing.assert_allclose(load_bvh(path).joints3d, plain.joints3d, atol=0)


def _anonymous(rows):
    """The rig with every joint renamed "bone_NN" (in a shuffled order) and a zero-length joint above each hip."""
    order = np.random.default_rng(3).permutation(len(rows))
    names = {row[0]: f"bone_{k:02d}" for row, k in zip(rows, order)}
    out = []
    for name, parent, off, end in rows:
        if name in ("LeftUpLeg", "RightUpLeg"):
            out.append((f"zero_{name}", names["Hips"], np.zeros(3), None))
            parent_name = f"zero_{name}"
        else:
            parent_name = None if parent is None else names[parent]
        out.append((names[name], parent_name, off, end))
    return out, names


def test_names_never_seen_are_mapped_by_the_tree(tmp_path, plain):
    rows = cmu_rows()
    anon, names = _anonymous(rows)
    path = write_bvh(tmp_path / "anon.bvh", anon, standing_frames(anon, 10), 1 / 30)
    obs = load_bvh(path)
    assert_standing_clip(obs, 10)  # legs, arms, pelvis: the right joints, left told from right
    md = obs.metadata
    assert set(md["joints_by"].values()) == {"tree"} and md["joints"]["left_knee"] == [names["LeftLeg"]]
    assert md["joints"]["left_toe"] == [names["LeftToeBase"]] and md["head_top"] == [f"{names['Head']}_end"]
    # The thorax is where the two clavicles start (the Neck joint is 3 cm higher).
    known = known_positions(10)
    np.testing.assert_allclose(obs.joints3d[:, J["thorax"]], 0.5 * (known["LeftShoulder"] + known["RightShoulder"]),
                               atol=1e-6)
    assert sorted(md["joints"]["thorax"]) == sorted([names["LeftShoulder"], names["RightShoulder"]])

    # A joint map names what the tree cannot know: the neck joint plays the thorax.
    mapped = load_bvh(path, joint_map={"thorax": names["Neck"]})
    assert mapped.metadata["joints_by"]["thorax"] == "joint map"
    np.testing.assert_allclose(mapped.joints3d, plain.joints3d, atol=1e-6)


def test_a_joint_map_file_pins_roles_up_and_unit(tmp_path, plain):
    rows = cmu_rows()
    path = write_bvh(tmp_path / "walk.bvh", rows, standing_frames(rows, 10), 1 / 30)
    jmap = tmp_path / "map.json"
    # Swap the arms on purpose: the map wins over the names.
    jmap.write_text(json.dumps({"left_wrist": "RightHand", "right_wrist": "LeftHand", "up": "y", "unit": "cm"}))
    obs = load_bvh(path, joint_map=str(jmap))
    np.testing.assert_allclose(obs.joints3d[:, J["left_wrist"]], plain.joints3d[:, J["right_wrist"]], atol=1e-9)
    md = obs.metadata
    assert md["joints_by"]["left_wrist"] == "joint map" and md["up_cosine"] is None and md["unit"] == "cm"
    assert "left_wrist by joint map (RightHand)" in md["summary"]


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read the joint map as JSON"),
    ('["Hips"]', "a joint map is a JSON object"),
    ('{"left_kneee": "LeftLeg"}', "unknown keys ['left_kneee']"),
    ('{"left_knee": 3}', "left_knee: expected a joint name"),
    ('{"up": "w"}', "up must be one of"),
    ('{"unit": "furlong"}', "unit must be one of"),
    ('{"left_knee": "LKnee"}', "has no joint 'LKnee'"),
])
def test_bad_joint_maps_name_the_map_file(tmp_path, content, message):
    rows = cmu_rows()
    path = write_bvh(tmp_path / "walk.bvh", rows, standing_frames(rows, 4), 1 / 30)
    jmap = tmp_path / "map.json"
    jmap.write_text(content)
    with pytest.raises(InputError) as e:
        load_bvh(path, joint_map=jmap)
    assert e.value.source == str(jmap) and message in e.value.problem
    with pytest.raises(InputError, match="joint map file not found"):
        read_joint_map(tmp_path / "nope.json")
