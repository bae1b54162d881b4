"""The DeepMimic clip reader on pybullet's real clips (data/deepmimic/) and on small bad files."""

import json
import logging
import math
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionrecon.datasets import deepmimic as dm
from motionrecon.errors import InputError
from motionrecon.skeleton import DEEPMIMIC

J = DEEPMIMIC.index


@pytest.fixture(scope="module")
def walk():
    return dm.load_deepmimic(dm.clip_path("walk"))


@pytest.fixture(scope="module")
def walk_clip():
    return dm.read_clip(dm.clip_path("walk"))


# --- clip table -------------------------------------------------------------


def test_every_clip_loads_with_its_loop_mode():
    assert len(dm.CLIPS) == 15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # roll has one double-length frame
        clips = {name: dm.read_clip(dm.clip_path(name)) for name in dm.CLIPS}
    assert {n for n, c in clips.items() if c.loop == "none"} == {"kick", "punch", "getup_facedown", "getup_faceup"}
    walk = clips["walk"]
    assert walk.num_frames == 39 and walk.fps == pytest.approx(30.0, rel=1e-3)
    assert clips["spin"].fps == pytest.approx(24.0, rel=1e-3)
    assert clips["backflip"].fps == pytest.approx(16.0, rel=1e-3)


def test_clip_path_rejects_unknown_names_listing_known_ones():
    with pytest.raises(InputError, match="known clips: walk, run"):
        dm.clip_path("moonwalk")


def test_roll_warns_about_its_uneven_frame_durations():
    with pytest.warns(UserWarning, match="frame durations vary"):
        dm.read_clip(dm.clip_path("roll"))


# --- known frames -----------------------------------------------------------


def test_observations_fields(walk, walk_clip):
    assert walk.joint_set == "deepmimic"
    assert walk.joints3d.shape == (39, 18, 3) and walk.joints2d is None
    assert np.all(walk.confidence == 1.0) and walk.confidence.shape == (39, 18)
    assert walk.fps == pytest.approx(1.0 / walk_clip.frames[0, 0])
    assert walk.source == str(dm.clip_path("walk"))


def test_pelvis_is_the_files_root_position_in_z_up(walk, walk_clip):
    x, y, z = walk_clip.frames[:, 1:4].T
    np.testing.assert_allclose(walk.joints3d[:, J("pelvis")], np.stack([x, -z, y], axis=1), atol=1e-9)
    # Frame 0 of walk: root at (0, 0.847532, 0) y-up -> 0.8475 m high z-up.
    np.testing.assert_allclose(walk.joints3d[0, J("pelvis")], [0.0, 0.0, 0.847532], atol=1e-9)


def test_bone_lengths_are_constant(walk):
    for parent, child in DEEPMIMIC.bones():
        lengths = np.linalg.norm(walk.joints3d[:, child] - walk.joints3d[:, parent], axis=-1)
        assert lengths.max() - lengths.min() < 1e-6, (DEEPMIMIC.joints[parent], DEEPMIMIC.joints[child])
        assert lengths.min() > 0.04


def test_body_is_upright_with_feet_on_the_floor(walk):
    p = walk.joints3d
    for side in ("left", "right"):
        ankle, toe = p[:, J(f"{side}_ankle")], p[:, J(f"{side}_toe")]
        assert np.mean(toe[:, 2] < ankle[:, 2]) > 0.9  # toe below ankle (not during toe-off)
        assert toe[0, 2] < ankle[0, 2]
        assert np.mean(toe[:, 0] > ankle[:, 0]) > 0.9  # and ahead of it: facing +x
    assert np.all(p[:, J("head"), 2] > p[:, J("neck"), 2])
    assert np.all(p[:, J("neck"), 2] > p[:, J("pelvis"), 2])
    feet = p[:, [J("left_toe"), J("right_toe"), J("left_ankle"), J("right_ankle")], 2]
    assert -0.03 < feet.min() < 0.03  # the lowest foot point touches z = 0 within 3 cm
    assert np.all(feet.min(axis=1) < 0.06)  # some foot is always near the floor when walking


def _urdf():
    raw = dm.urdf_path().read_bytes().rstrip(b"\0")  # the file ends in a NUL byte
    root = ET.fromstring(raw)
    joints = {}
    for j in root.iter("joint"):
        origin = [float(v) for v in j.find("origin").get("xyz").split()]
        joints[j.find("child").get("link")] = (j.find("parent").get("link"), np.array(origin))
    links = {ln.get("name"): ln for ln in root.iter("link")}
    return joints, links


def _independent_fk(frame, joints):
    """Link frames of root, chest, neck and the right leg from the URDF offsets (y-up)."""
    s = dm.URDF_SCALE
    quat = lambda a: Rotation.from_quat(frame[a:a + 4], scalar_first=True)
    local = {
        "chest": quat(8), "neck": quat(12), "right_hip": quat(16),
        "right_knee": Rotation.from_rotvec([0, 0, frame[20]]),  # hinge about z
        "right_ankle": quat(21),
    }
    world = {"root": (np.array(frame[1:4]), quat(4))}
    for link in ("chest", "neck", "right_hip", "right_knee", "right_ankle"):
        parent, origin = joints[link]
        pos, rot = world[parent]
        world[link] = (pos + rot.apply(s * origin), rot * local[link])
    return world


def test_forward_kinematics_matches_an_independent_computation(walk, walk_clip):
    joints, links = _urdf()
    # The end-point offsets in the code are the URDF's geometry.
    box = links["right_ankle"].find("collision")
    centre = np.array([float(v) for v in box.find("origin").get("xyz").split()])
    size = np.array([float(v) for v in box.find("geometry/box").get("size").split()])
    toe_local = centre + [size[0] / 2, -size[1] / 2, 0.0]
    np.testing.assert_allclose(dm.TOE_IN_ANKLE, toe_local, atol=1e-12)
    sphere = links["neck"].find("collision")
    assert sphere.find("geometry/sphere") is not None
    head_local = np.array([float(v) for v in sphere.find("origin").get("xyz").split()])
    np.testing.assert_allclose(dm.HEAD_IN_NECK, head_local, atol=1e-12)

    for t in (0, 17, 38):
        world = _independent_fk(walk_clip.frames[t], joints)
        expect = {name: world[name][0] for name in ("chest", "neck", "right_hip", "right_knee", "right_ankle")}
        pos, rot = world["right_ankle"]
        expect["right_toe"] = pos + rot.apply(dm.URDF_SCALE * toe_local)
        pos, rot = world["neck"]
        expect["head"] = pos + rot.apply(dm.URDF_SCALE * head_local)
        for name, p in expect.items():
            np.testing.assert_allclose(walk.joints3d[t, J(name)], dm.y_up_to_z_up(p), atol=1e-6, err_msg=name)


# --- looping ----------------------------------------------------------------


def test_walk_looped_to_four_seconds(walk, walk_clip):
    obs = dm.load_deepmimic(dm.clip_path("walk"), duration=4.0)
    assert obs.num_frames == round(4.0 * walk.fps) == 120
    p = obs.joints3d
    np.testing.assert_allclose(p[:39], walk.joints3d, atol=1e-12)  # first cycle = the file
    for parent, child in DEEPMIMIC.bones():
        lengths = np.linalg.norm(p[:, child] - p[:, parent], axis=-1)
        assert lengths.max() - lengths.min() < 1e-6

    # Seamless: the mean joint displacement between frames at each seam is of
    # the size of the steps elsewhere (the mocap itself is not exactly cyclic:
    # its last frame is ~3 cm from its first, so the seam step is a bit larger).
    step = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(axis=1)  # [T-1], metres
    period = walk_clip.num_frames - 1
    seams = [period, 2 * period - 1, 3 * period - 1]
    others = np.delete(step, seams)
    assert np.all(step[seams] < 1.25 * others.max())
    assert np.all(step[seams] < 2.0 * np.median(others))
    # Repeating without the cycle offset would jump back by a whole cycle.
    assert np.linalg.norm(p[0, 0] - p[period, 0]) > 1.0

    # Forward progress: ~1.24 m per 1.27 s cycle, about 3.9 m in 4 s, along +x.
    pelvis = p[:, J("pelvis")]
    assert 3.0 < pelvis[-1, 0] - pelvis[0, 0] < 4.5
    assert abs(pelvis[-1, 1] - pelvis[0, 1]) < 1.0
    # Height stays the clip's own; nothing sinks or climbs cycle after cycle.
    feet = p[:, [J("left_toe"), J("right_toe")], 2].reshape(-1, 2)
    np.testing.assert_allclose(feet[-39:].min(), feet[:39].min(), atol=1e-9)


def test_cycle_transform_carries_the_first_frame_onto_the_last(walk_clip):
    rot, trans = dm.cycle_transform(walk_clip)
    joints = dm.clip_joints(walk_clip)
    carried = joints[0] @ rot.T + trans
    # The root lands exactly where the last frame's root stands (horizontally),
    # and the rotation is about the vertical axis only.
    np.testing.assert_allclose(carried[0, :2], joints[-1, 0, :2], atol=1e-9)
    np.testing.assert_allclose(rot[2], [0, 0, 1], atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    heading = dm.root_heading(walk_clip.frames[[0, -1]])
    assert math.atan2(rot[1, 0], rot[0, 0]) == pytest.approx(heading[1] - heading[0])


def test_start_picks_the_first_frame_at_or_after_it(walk, walk_clip):
    dt = walk_clip.frame_duration
    obs = dm.load_deepmimic(dm.clip_path("walk"), start=15 * dt)
    np.testing.assert_allclose(obs.joints3d, walk.joints3d[15:], atol=1e-12)
    obs = dm.load_deepmimic(dm.clip_path("walk"), start=15.2 * dt, duration=10 * dt)
    np.testing.assert_allclose(obs.joints3d, walk.joints3d[16:26], atol=1e-12)
    # A start in a later cycle of a looping clip is the same stretch of the long motion.
    long = dm.load_deepmimic(dm.clip_path("walk"), duration=4.0)
    later = dm.load_deepmimic(dm.clip_path("walk"), start=60 * dt, duration=30 * dt)
    np.testing.assert_allclose(later.joints3d, long.joints3d[60:90], atol=1e-9)


def test_non_looping_clip_past_its_end_stops_at_its_end_with_a_warning(caplog):
    """As the video command's --duration: "the first 2 s" of a 1.57 s clip is the clip, said in a warning."""
    path = dm.clip_path("kick")
    whole = dm.load_deepmimic(path)
    assert dm.load_deepmimic(path, duration=1.5).num_frames == 45  # 47 frames at 30 fps
    with caplog.at_level(logging.WARNING):
        longer = dm.load_deepmimic(path, duration=2.0)
        tail = dm.load_deepmimic(path, start=1.0, duration=1.0)
    assert longer.num_frames == whole.num_frames == 47
    np.testing.assert_array_equal(longer.joints3d, whole.joints3d)
    # the first frame at or after 1 s: frame 31 (the file's frame time is a hair under 1/30 s)
    assert tail.num_frames == 16 and np.array_equal(tail.joints3d, whole.joints3d[31:])
    assert caplog.text.count("past the end") == 2 and "humanoid3d_kick.txt" in caplog.text
    with pytest.raises(InputError, match="fewer than 2 frames"):
        dm.load_deepmimic(path, start=1.55, duration=1.0)


# --- bad input --------------------------------------------------------------


def _frame(duration=1 / 30):
    f = [duration, 0.0, 0.85, 0.0, 1.0, 0, 0, 0]
    for _, _, n in dm.FRAME_JOINTS:
        f += [1.0, 0.0, 0.0, 0.0] if n == 4 else [0.0]
    assert len(f) == 44
    return f


def _write(tmp_path, text):
    path = tmp_path / "clip.txt"
    path.write_text(text)
    return path


def test_a_minimal_written_file_loads(tmp_path):
    path = _write(tmp_path, json.dumps({"Loop": "none", "Frames": [_frame(), _frame(), _frame(0.0)]}))
    obs = dm.load_deepmimic(path)
    assert obs.num_frames == 3 and obs.fps == pytest.approx(30.0)


def _bad_files():
    good = {"Loop": "wrap", "Frames": [_frame(), _frame(), _frame(0.0)]}
    with_frames = lambda frames: json.dumps({"Loop": "wrap", "Frames": frames})
    nan = _frame()
    nan[3] = float("nan")
    inf = _frame()
    inf[9] = float("inf")
    return [
        ("not json", "this is not JSON", "invalid JSON"),
        ("truncated", json.dumps(good)[:200], "invalid JSON"),
        ("no frames key", json.dumps({"Loop": "wrap"}), '"Frames"'),
        ("a list", json.dumps([_frame(), _frame()]), '"Frames"'),
        ("short frame", with_frames([_frame(), _frame()[:43]]), "frame 1 has 43 values, expected 44"),
        ("long frame", with_frames([_frame() + [0.0], _frame()]), "frame 0 has 45 values"),
        ("strings", with_frames([_frame(), ["x"] * 44]), "not numbers"),
        ("empty", with_frames([]), "no frames"),
        ("single", with_frames([_frame()]), "single frame"),
        ("nan", with_frames([_frame(), nan]), "frame 1 contains NaN"),
        ("inf", with_frames([inf, _frame()]), "frame 0 contains NaN or infinite"),
        ("zero duration", with_frames([_frame(), _frame(0.0), _frame()]), "frame 1 has a non-positive duration"),
        ("negative duration", with_frames([_frame(-0.1), _frame()]), "non-positive duration"),
        ("bad loop", json.dumps({"Loop": "bounce", "Frames": good["Frames"]}), '"Loop"'),
        ("zero quaternion", with_frames([_frame(), _frame()[:8] + [0.0] * 36]), "quaternion has zero length"),
    ]


@pytest.mark.parametrize("label, text, match", _bad_files(), ids=[b[0] for b in _bad_files()])
def test_bad_files_raise_input_error_naming_the_file(tmp_path, label, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=match) as err:
        dm.load_deepmimic(path)
    assert err.value.source == str(path)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        dm.load_deepmimic(tmp_path / "nope.txt")
    path = dm.clip_path("walk")
    with pytest.raises(InputError, match="duration must be > 0"):
        dm.load_deepmimic(path, duration=0.0)
    with pytest.raises(InputError, match="start must be"):
        dm.load_deepmimic(path, start=-1.0)
    with pytest.raises(InputError, match="fewer than 2 frames"):
        dm.load_deepmimic(path, start=5.0)
    with pytest.raises(InputError, match="less than 2 frames"):
        dm.load_deepmimic(path, duration=0.01)


def _pybullet_forward_kinematics(frames):
    """[N, 18, 3] y-up: the DeepMimic joint set by pybullet's own forward kinematics of the URDF (the reference)."""
    import pybullet as pb

    def xyzw(q):
        q = q / np.linalg.norm(q)
        return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]

    client = pb.connect(pb.DIRECT)
    try:
        body = pb.loadURDF(str(dm.urdf_path()), globalScaling=dm.URDF_SCALE, useFixedBase=True,
                           flags=pb.URDF_MAINTAIN_LINK_ORDER, physicsClientId=client)
        index = {pb.getJointInfo(body, j, physicsClientId=client)[12].decode(): j
                 for j in range(pb.getNumJoints(body, physicsClientId=client))}
        joints = [index[name] for name, _, _ in dm.FRAME_JOINTS]
        out = np.empty((len(frames), DEEPMIMIC.num_joints, 3))
        for t, frame in enumerate(frames):
            pb.resetBasePositionAndOrientation(body, frame[dm.ROOT_POS].tolist(), xyzw(frame[dm.ROOT_QUAT]),
                                               physicsClientId=client)
            pb.resetJointStatesMultiDof(body, joints, [xyzw(frame[a:a + 4]) if n == 4 else [float(frame[a])]
                                                       for _, a, n in dm.FRAME_JOINTS], physicsClientId=client)
            for k, (link, offset) in enumerate(dm._JOINT_SOURCES.values()):
                if link == "root":
                    pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=client)
                else:
                    state = pb.getLinkState(body, index[link], computeForwardKinematics=True,
                                            physicsClientId=client)
                    pos, orn = state[4], state[5]
                pos = np.asarray(pos)
                if offset is not None:
                    pos = pos + Rotation.from_quat(orn).apply(dm.URDF_SCALE * np.asarray(offset))
                out[t, k] = pos
        return out
    finally:
        pb.disconnect(client)


@pytest.mark.parametrize("name", dm.CLIPS)
def test_forward_kinematics_is_pybullets(name):
    """The NumPy forward kinematics gives pybullet's positions on every frame of every shipped clip, to a
    micrometre (they differ by up to 1.1e-7 m: pybullet's own rounding)."""
    pytest.importorskip("pybullet", reason="pybullet (the reference) has wheels for Linux x86_64 and Python 3.11 only")
    frames = dm.read_clip(dm.clip_path(name)).frames
    np.testing.assert_allclose(dm.forward_kinematics(frames), _pybullet_forward_kinematics(frames), rtol=0,
                               atol=1e-6)
