"""The nine real BVH clips of ../shared/data/mocap (skipped with a reason when the folder is absent).

Expected values come from the folder's README (frame rate, frames, rig facts), not from this reader.
"""

import numpy as np
import pytest

from motionrecon.datasets import load_motion
from motionrecon.datasets.bvh import LENGTH_UNITS_M, read_bvh
from motionrecon.skeleton import H36M17

J = {name: i for i, name in enumerate(H36M17.joints)}
BANDAI = dict(fps=30.0, unit="cm", skipped=0, root="joint_Root")
# file -> (frames in the file, expected reading)
CLIPS = {
    "bandai_dataset-1_walk_normal_001.bvh": (195, BANDAI),
    "bandai_dataset-1_walk_old_001.bvh": (285, BANDAI),
    "bandai_dataset-1_walk-right_normal_001.bvh": (135, BANDAI),
    "bandai_dataset-2_walk-turn-right_normal_007.bvh": (195, BANDAI),
    "bandai_dataset-2_run_normal_040.bvh": (114, BANDAI),
    "bandai_dataset-1_punch_normal_002.bvh": (284, BANDAI),
    "bandai_dataset-1_bow_feminine_001.bvh": (218, BANDAI),
    "cmu_01_01_hops.bvh": (2752, dict(fps=120.0, unit="cmu", skipped=1, root=None)),
    "figure8_walk.bvh": (1064, dict(fps=120.0, unit="in", skipped=0, root=None)),
}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_real_clip_reads_as_a_person_standing_on_the_floor(shared_data, name):
    frames, expected = CLIPS[name]
    obs = load_motion(shared_data / "mocap" / name)
    md = obs.metadata
    assert obs.fps == expected["fps"] and md["frames_in_file"] == frames
    assert obs.num_frames == frames - expected["skipped"] and md["skipped_frames"] == expected["skipped"]
    assert md["up"] == "+y" and md["unit"] == expected["unit"]  # the README: all Y-up
    assert md["above_pelvis"] == ([expected["root"]] if expected["root"] else [])
    x = obs.joints3d
    # Height: the head top (observed, or estimated from the neck at confidence 0.5) in a standing frame.
    height = float(np.percentile(x[:, J["head"], 2], 95))
    assert 1.4 <= height <= 2.0, height
    # Feet near the floor: the lower ankle sits 5-12 cm up in most frames (ankle joints are ~8 cm up).
    lower_ankle = x[:, [J["left_ankle"], J["right_ankle"]], 2].min(axis=1)
    assert 0.05 <= np.median(lower_ankle) <= 0.12 and np.percentile(lower_ankle, 1) >= 0.0
    # Upright: head above the pelvis, pelvis above the knees, in every frame; left on the left.
    assert np.all(x[:, J["head"], 2] > x[:, J["pelvis"], 2] + 0.3)
    assert np.all(x[:, J["pelvis"], 2] > x[:, [J["left_knee"], J["right_knee"]], 2].max(axis=1))
    left = x[:, J["left_hip"]] - x[:, J["right_hip"]]
    forward = x[:, J["neck_nose"]] - x[:, J["thorax"]]
    assert np.mean(np.cross(forward, left)[:, 2] > 0) > 0.9  # left = up x forward <=> (forward x left) is up
    thigh = np.linalg.norm(x[:, J["left_hip"]] - x[:, J["left_knee"]], axis=-1)
    assert 0.3 <= np.median(thigh) <= 0.5


def test_cmu_t_pose_frame_is_skipped(shared_data):
    obs = load_motion(shared_data / "mocap" / "cmu_01_01_hops.bvh")
    md = obs.metadata
    assert md["skipped_why"] == "T-pose" and "skipped frame 0 (T-pose)" in md["summary"]
    # The file's frame 0 has the arms spread (wrists 1.4 m apart); the first kept frame has them in front.
    motion = read_bvh(shared_data / "mocap" / "cmu_01_01_hops.bvh", length_unit=LENGTH_UNITS_M["cmu"])
    hands = [motion.joint_names.index(n) for n in ("LeftHand", "RightHand")]
    assert np.linalg.norm(np.diff(motion.positions[0, hands], axis=0)) > 1.3
    x = obs.joints3d[0]
    assert np.linalg.norm(x[J["left_wrist"]] - x[J["right_wrist"]]) < 0.8
    np.testing.assert_allclose(x[J["left_wrist"]] - x[J["pelvis"]],  # read_bvh: y-up file -> z-up world
                               motion.positions[1, hands[0]] - motion.positions[1, 0], atol=1e-6)


def test_figure8_thorax_comes_from_the_tree(shared_data):
    md = load_motion(shared_data / "mocap" / "figure8_walk.bvh").metadata
    assert md["joints_by"]["thorax"] == "tree" and md["joints_by"]["left_knee"] == "name"
    assert sorted(md["joints"]["thorax"]) == ["LeftShoulder", "RightShoulder"]
