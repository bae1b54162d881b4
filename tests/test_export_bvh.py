"""BVH export (motionrecon.export.bvh) and the BVH reader (motionrecon.datasets.bvh)."""

import mujoco
import numpy as np
import pytest
from export_checks import bvh_round_trip_error, load_contract, mujoco_poses
from synthetic_reconstruction import FIXTURE_MJCF, synthetic_qpos, write_reconstruction

from motionrecon.datasets.bvh import parse_bvh, read_bvh
from motionrecon.errors import InputError
from motionrecon.export import bvh, export_all, kinematics


@pytest.fixture(scope="module")
def recon_dir(tmp_path_factory):
    folder = write_reconstruction(tmp_path_factory.mktemp("recon"))
    export_all(folder, "bvh")
    return folder


def test_round_trip_within_1mm_every_frame(recon_dir):
    model, qpos, fps = load_contract(recon_dir)
    error, motion = bvh_round_trip_error(recon_dir / "motion.bvh", model, qpos)
    assert error < 1e-3, f"max joint error {error * 1000:.3f} mm"
    assert motion.num_frames == qpos.shape[0]
    assert motion.fps == pytest.approx(fps, rel=1e-6)
    bodies = kinematics.body_tree(model)
    assert motion.joint_names == tuple(bodies.names[b] for b in bodies.humanoid)


def test_hierarchy_channels_and_y_up(recon_dir):
    text = (recon_dir / "motion.bvh").read_text()
    skeleton, frame_time, values = parse_bvh(text)
    assert skeleton.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    joints = [j for j in range(len(skeleton.names)) if not skeleton.is_end_site[j]]
    assert all(skeleton.channels[j] == ("Zrotation", "Xrotation", "Yrotation") for j in joints[1:])
    leaves = {"head", "right_hand", "left_forearm", "right_foot", "left_foot"}
    ends = {skeleton.names[skeleton.parents[j]] for j in range(len(skeleton.names)) if skeleton.is_end_site[j]}
    assert ends == leaves
    model, qpos, _ = load_contract(recon_dir)
    # Y up: the root's Yposition channel is the pelvis height, Zposition is minus the world y.
    np.testing.assert_allclose(values[:, 1], qpos[:, 2], atol=1e-5)
    np.testing.assert_allclose(values[:, 2], -qpos[:, 1], atol=1e-5)
    # Read with the file's own axes, the feet stand on y = 0 at their lowest (the world's ground is z = 0).
    motion = read_bvh(recon_dir / "motion.bvh", up="keep")
    world = read_bvh(recon_dir / "motion.bvh")
    np.testing.assert_allclose(motion.positions[..., 1], world.positions[..., 2], atol=1e-9)


@pytest.mark.parametrize("order", bvh.ROTATION_ORDERS)
def test_every_rotation_order_round_trips(tmp_path, order):
    model = mujoco.MjModel.from_xml_string(FIXTURE_MJCF)
    qpos = synthetic_qpos(model, 20, 25.0, seed=3)
    path = tmp_path / "m.bvh"
    path.write_text(bvh.bvh_text(model, qpos, 25.0, rotation_order=order))
    error, motion = bvh_round_trip_error(path, model, qpos)
    assert error < 1e-3
    assert motion.skeleton.channels[1] == tuple(f"{a}rotation" for a in order)


def test_euler_curves_are_continuous(recon_dir):
    """The root turns 200 degrees: angles must be unwrapped (no 360-degree jumps between frames)."""
    _, _, values = parse_bvh((recon_dir / "motion.bvh").read_text())
    model, qpos, _ = load_contract(recon_dir)
    heading_change = np.degrees(np.abs(np.diff(np.unwrap(2 * np.arctan2(qpos[:, 6], qpos[:, 3])))))
    assert heading_change.max() < 30  # the motion itself is smooth
    jumps = np.abs(np.diff(values[:, 3:], axis=0))
    assert jumps.max() < 60, f"an Euler angle jumps {jumps.max():.1f} degrees between frames"


ODD_BODY = """
<mujoco model="odd">
  <asset><mesh name="wedge" vertex="0 0 0  0.1 0 0  0 0.1 0  0 0 0.1"/></asset>
  <worldbody>
    <geom type="plane" size="2 2 0.1"/>
    <body name="base" pos="0 0 1">
      <freejoint/>
      <geom type="box" size="0.1 0.1 0.1"/>
      <body name="slider" pos="0.2 0 0">
        <joint name="slide" type="slide" axis="1 0 0"/>
        <geom type="sphere" size="0.05"/>
        <body name="arm" pos="0 0 -0.1" quat="0.7071068 0 0.7071068 0">
          <joint name="swing" type="hinge" axis="0 1 0" pos="0.05 0 0"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.03"/>
          <body name="tip" pos="0 0 -0.35">
            <joint name="twist" type="ball" pos="0 0.02 0"/>
            <geom type="mesh" mesh="wedge"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_generic_body_slide_joint_off_origin_anchors(tmp_path):
    """A body unlike the humanoid: a slide joint gets position channels; off-origin anchors are honoured."""
    model = mujoco.MjModel.from_xml_string(ODD_BODY)
    qpos = synthetic_qpos(model, 15, 30.0, seed=5)
    slide = model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "slide")]
    qpos[:, slide] = np.linspace(0.0, 0.3, 15)
    path = tmp_path / "odd.bvh"
    path.write_text(bvh.bvh_text(model, qpos, 30.0))
    error, motion = bvh_round_trip_error(path, model, qpos)
    assert error < 1e-3
    channels = dict(zip(motion.skeleton.names, motion.skeleton.channels))
    assert len(channels["slider"]) == 6 and len(channels["arm"]) == 3 and len(channels["tip"]) == 3


# --- the reader on files written by hand -----------------------------------------------------------

HAND_BVH = """HIERARCHY
ROOT Hips
{
\tOFFSET 0.0 0.0 0.0
\tCHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
\tJOINT Spine{
\t\tOFFSET 0 10 0
\t\tCHANNELS 3 Xrotation Yrotation Zrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 20 0
\t\t}
\t}
\tJOINT Leg Left
\t{
\t\tOFFSET 10 0 0
\t\tCHANNELS 6 Zrotation Xposition Yposition Zposition Xrotation Yrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 -90 0
\t\t}
\t}
}
MOTION
Frames: 2
Frame Time: 0.04
0 100 0 0 0 0  90 0 0  0 10 -5 0 0 0
5 100 0 90 0 0  0 0 0  0 10 -5 0 90 0
"""


def test_reader_general_features(tmp_path):
    path = tmp_path / "hand.bvh"
    path.write_text(HAND_BVH)
    motion = read_bvh(path, up="keep", include_end_sites=True)  # extent 1.2 m in cm units -> "auto" picks cm
    assert motion.metres_per_unit == 0.01
    assert motion.joint_names == ("Hips", "Spine", "Spine_end", "Leg Left", "Leg Left_end")
    assert motion.parents == (-1, 0, 1, 0, 3)
    assert motion.fps == pytest.approx(25.0)
    p = motion.positions * 100  # back to cm for readable numbers
    # Frame 0: hips at (0,100,0); spine rotated 90 deg about x, so its end (0,20,0) goes to (0,0,20).
    np.testing.assert_allclose(p[0, 0], [0, 100, 0], atol=1e-9)
    np.testing.assert_allclose(p[0, 1], [0, 110, 0], atol=1e-9)
    np.testing.assert_allclose(p[0, 2], [0, 110, 20], atol=1e-9)
    # The leg's position channels (10, -5, 0) replace its OFFSET (10, 0, 0).
    np.testing.assert_allclose(p[0, 3], [10, 95, 0], atol=1e-9)
    np.testing.assert_allclose(p[0, 4], [10, 5, 0], atol=1e-9)
    # Frame 1: hips yawed 90 deg about y: the leg's local +x becomes world -z.
    np.testing.assert_allclose(p[1, 0], [5, 100, 0], atol=1e-9)
    np.testing.assert_allclose(p[1, 3], [5, 95, -10], atol=1e-9)
    # Leg's own Xrotation 90 (after the hips' Yrotation 90) swings its end site (0,-90,0) to world -x.
    np.testing.assert_allclose(p[1, 4], [-85, 95, -10], atol=1e-9)
    # Default: Y-up file into the z-up world, end sites dropped.
    world = read_bvh(path)
    assert world.joint_names == ("Hips", "Spine", "Leg Left")
    np.testing.assert_allclose(world.positions[1, 2], [0.05, 0.10, 0.95], atol=1e-9)


def test_reader_units_and_axes_options(tmp_path):
    path = tmp_path / "hand.bvh"
    path.write_text(HAND_BVH)
    cm = read_bvh(path, length_unit="cm")
    inches = read_bvh(path, length_unit="in")
    np.testing.assert_allclose(inches.positions, cm.positions * 2.54, atol=1e-12)
    zup = read_bvh(path, length_unit=0.01, up="z")
    np.testing.assert_allclose(zup.positions[0, 0], [0, 1.0, 0], atol=1e-12)
    with pytest.raises(InputError, match="unknown up axis"):
        read_bvh(path, up="x")
    tiny = tmp_path / "tiny.bvh"
    tiny.write_text(HAND_BVH.replace("OFFSET 0 -90 0", "OFFSET 0 -90000 0"))
    with pytest.raises(InputError, match="cannot guess the length unit"):
        read_bvh(tiny)


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.replace("Xrotation Yrotation Zrotation", "Xrotation Yrotation Wrotation"), r"line 8: unknown channel"),
    (lambda s: s.rsplit("\n", 2)[0] + "\n", r"MOTION has 15 values"),
    (lambda s: s.replace("Frame Time: 0.04", "Frame Time: 0"), "Frame Time must be positive"),
    (lambda s: s.replace("0 100 0 0", "0 abc 0 0"), r"line 27: expected a number"),
    (lambda s: s.split("MOTION")[0], "file ends early"),
    (lambda s: s.replace("HIERARCHY", "HIERARCHIE"), "line 1: expected 'HIERARCHY'"),
])
def test_reader_errors_name_file_and_line(tmp_path, mutate, message):
    path = tmp_path / "bad.bvh"
    path.write_text(mutate(HAND_BVH))
    with pytest.raises(InputError, match=message) as info:
        read_bvh(path)
    assert str(path) in str(info.value)


def test_reader_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_bvh(tmp_path / "nope.bvh")


def test_written_joint_offsets_are_the_body_geometry(recon_dir):
    """Rest OFFSETs equal MuJoCo's anchor-to-anchor vectors at qpos0 (Y up)."""
    model, _, _ = load_contract(recon_dir)
    skeleton, _, _ = parse_bvh((recon_dir / "motion.bvh").read_text())
    poses = mujoco_poses(model, model.qpos0[None])
    thigh = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "right_thigh")
    shin = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "right_shin")
    world_vec = poses["xpos"][0, shin] - poses["xpos"][0, thigh]  # both joints sit at their body origins
    offset = skeleton.offsets[skeleton.names.index("right_shin")]
    np.testing.assert_allclose(offset, kinematics.Z_UP_TO_Y_UP @ world_vec, atol=1e-6)
