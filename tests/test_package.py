import numpy as np
import pytest

from motionrecon import skeleton
from motionrecon.errors import InputError
from motionrecon.observations import Observations


def test_joint_sets_are_trees_on_known_landmarks():
    for js in skeleton.JOINT_SETS.values():
        assert js.parents[0] == -1
        assert all(p < i for i, p in enumerate(js.parents)), js.name
    assert skeleton.MEDIAPIPE33.num_joints == 33
    assert skeleton.H36M17.num_joints == 17 and skeleton.COCO17.num_joints == 17


def test_observations_reject_nan_and_single_frame():
    js = skeleton.DEEPMIMIC
    good = np.zeros((3, js.num_joints, 3))
    Observations(30.0, "deepmimic", good, None, np.ones((3, js.num_joints)), source="x")
    bad = good.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        Observations(30.0, "deepmimic", bad, None, np.ones((3, js.num_joints)), source="x")
    with pytest.raises(InputError, match="at least 2 frames"):
        Observations(30.0, "deepmimic", good[:1], None, np.ones((1, js.num_joints)), source="x")
