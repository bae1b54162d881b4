import mujoco
import numpy as np

from motionrecon.body import build_body
from motionrecon.body.fit import inverse_kinematics, landmark_sites, measure_shape
from motionrecon.body.template import BodyShape
from motionrecon.skeleton import BODY_LANDMARKS


def test_template_stands_on_the_floor_with_realistic_mass():
    body = build_body()
    s = body.summary()
    assert 55 < s["total_mass"] < 80
    assert 1.5 < s["height"] < 1.75
    d = mujoco.MjData(body.model)
    mujoco.mj_kinematics(body.model, d)
    geoms = list(body.layout.contact_geoms)
    bottoms = d.geom_xpos[geoms, 2] - body.model.geom_size[geoms, 0]
    np.testing.assert_allclose(bottoms, 0.0, atol=1e-9)
    assert len(geoms) == 8 and body.layout.num_controls == 28


def test_bigger_shape_is_heavier_and_taller():
    small, big = build_body(BodyShape()), build_body(BodyShape(thigh=0.5, shin=0.5))
    assert big.summary()["total_mass"] > small.summary()["total_mass"]
    assert big.summary()["height"] > small.summary()["height"] + 0.15


def test_measured_shape_and_ik_fit_the_walk(walk_1s):
    shape = measure_shape(walk_1s)
    assert abs(shape.thigh - 0.4215) < 0.005 and abs(shape.shin - 0.41) < 0.005
    assert abs(shape.hip_half_width - 0.085) < 0.005
    body = build_body(shape)
    q = inverse_kinematics(body.model, walk_1s)
    sites = landmark_sites(body.model, q)
    idx = [BODY_LANDMARKS.index(lm) for lm in walk_1s.skeleton.landmarks]
    err = np.linalg.norm(sites[:, idx] - walk_1s.joints3d, axis=-1)
    assert err.mean() < 0.01, err.mean()
    assert err.max() < 0.04, err.max()
