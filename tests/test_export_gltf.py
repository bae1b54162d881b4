"""GLB export: structure, node transforms vs MuJoCo, meshes on the geom surfaces, third-party loaders."""

import json
import shutil
import subprocess
from pathlib import Path

import mujoco
import numpy as np
import pygltflib
import pytest
import trimesh
from export_checks import (accessor_array, check_glb_structure, glb_world_poses, load_contract, mujoco_poses,
                           quat_angle_deg, surface_residual)
from synthetic_reconstruction import write_reconstruction
from test_export_bvh import ODD_BODY

from motionrecon.export import export_all, kinematics
from motionrecon.export.gltf import build_gltf
from motionrecon.export.reconstruction import load_reconstruction


@pytest.fixture(scope="module")
def recon_dir(tmp_path_factory):
    folder = write_reconstruction(tmp_path_factory.mktemp("recon"))
    export_all(folder, "glb")
    return folder


@pytest.fixture(scope="module")
def glb(recon_dir):
    return pygltflib.GLTF2().load(str(recon_dir / "motion.glb"))


def test_structure(glb):
    check_glb_structure(glb)
    assert len(glb.animations) == 1 and glb.animations[0].name == "motion"
    assert glb.nodes[glb.scenes[0].nodes[0]].name == "z_up_to_y_up"
    assert any(node.name == "ground" and node.mesh is not None for node in glb.nodes)


def test_node_transforms_match_mujoco_within_1mm_and_0p1deg(recon_dir, glb):
    model, qpos, fps = load_contract(recon_dir)
    poses = mujoco_poses(model, qpos)
    nodes = glb_world_poses(glb)
    tree = kinematics.body_tree(model)
    for b in tree.humanoid:
        times, pos, quat = nodes[tree.names[b]]
        np.testing.assert_allclose(times, np.arange(len(qpos)) / fps, atol=1e-6)
        assert np.max(np.linalg.norm(pos - poses["xpos"][:, b], axis=-1)) < 1e-3, tree.names[b]
        assert np.max(quat_angle_deg(quat, poses["xquat"][:, b])) < 0.1, tree.names[b]
    # Every body has a rotation channel; translation changes for the root and for the head, whose neck
    # joint sits 8 cm below its origin (so turning the neck moves the head's origin).
    paths = {(glb.nodes[c.target.node].name, c.target.path) for c in glb.animations[0].channels}
    assert {n for n, p in paths if p == "rotation"} == {tree.names[b] for b in tree.humanoid}
    assert {n for n, p in paths if p == "translation"} == {"pelvis", "head"}


def test_y_up_top_node_puts_the_ground_at_y0(glb):
    top = glb.nodes[glb.scenes[0].nodes[0]]
    np.testing.assert_allclose(top.rotation, [-np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-7)
    from scipy.spatial.transform import Rotation
    up = Rotation.from_quat(top.rotation).apply([0.0, 0.0, 1.0])
    np.testing.assert_allclose(up, [0.0, 1.0, 0.0], atol=1e-7)
    ground = next(n for n in glb.nodes if n.name == "ground")
    vertices = accessor_array(glb, glb.meshes[ground.mesh].primitives[0].attributes.POSITION)
    np.testing.assert_allclose(vertices[:, 2], 0.0)  # z = 0 in the world below the top node


def test_meshes_lie_on_the_geom_surfaces(recon_dir, glb):
    """Every geom node's vertices, placed by the node hierarchy, lie on MuJoCo's geom surface (frame 0 and last)."""
    model, qpos, _ = load_contract(recon_dir)
    poses = mujoco_poses(model, qpos)
    nodes = glb_world_poses(glb)
    checked = 0
    for g in range(model.ngeom):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g)
        if model.geom_bodyid[g] == 0:
            continue
        if model.geom_group[g] >= 3:  # hidden helper geoms (contact spheres) are not exported
            assert all(n.name != name for n in glb.nodes), name
            continue
        node = next(n for n in glb.nodes if n.name == name)
        vertices = accessor_array(glb, glb.meshes[node.mesh].primitives[0].attributes.POSITION).astype(np.float64)
        _, pos, quat = nodes[name]
        from scipy.spatial.transform import Rotation
        for t in (0, len(qpos) - 1):
            world = Rotation.from_quat(quat[t], scalar_first=True).apply(vertices) + pos[t]
            residual = surface_residual(world, model, g, poses["geom_xpos"][t, g], poses["geom_xmat"][t, g])
            assert residual.max() < 1e-4, (name, residual.max())
        checked += 1
    assert checked == model.ngeom - 3  # all but the floor and the two hidden heel spheres


def test_identical_geoms_share_a_mesh(glb):
    by_name = {n.name: n.mesh for n in glb.nodes}
    assert by_name["left_thigh_geom"] == by_name["right_thigh_geom"]
    assert by_name["left_upper_arm_geom"] == by_name["right_upper_arm_geom"]
    assert by_name["left_forearm_geom"] != by_name["right_forearm_geom"]  # cylinder vs capsule


def test_trimesh_loads_it(recon_dir, glb):
    scene = trimesh.load(recon_dir / "motion.glb", force="scene")
    assert len(scene.geometry) == len(glb.meshes)
    assert {"pelvis", "right_foot", "ground"} <= set(scene.graph.nodes)
    # trimesh places meshes at the nodes' static (first frame) transforms: the scene spans the body, Y up.
    lo, hi = scene.bounds
    assert hi[1] > 1.3 and lo[1] <= 0.0  # head above 1.3 m; floor at y = 0


def test_pygltflib_validator_finds_nothing(glb):
    from pygltflib.validator import validate
    with pytest.warns(UserWarning, match="provisional"):
        assert validate(glb, warning=True) == []


def _khronos_validator():
    node = shutil.which("node")
    if node is None:
        return None, "node is not installed"
    probe = subprocess.run([node, "-e", "console.log(require.resolve('gltf-validator'))"], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        return None, "the npm package gltf-validator is not installed (npm install gltf-validator; set NODE_PATH)"
    return node, ""


def test_khronos_gltf_validator_reports_no_issues(recon_dir):
    """The Khronos reference validator (npm gltf-validator; no pip package exists), when installed."""
    node, reason = _khronos_validator()
    if node is None:
        pytest.skip(reason)
    script = ("const v=require('gltf-validator');const fs=require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))"
              ".then(r=>console.log(JSON.stringify(r.issues))).catch(e=>{console.error(e);process.exit(2)});")
    out = subprocess.run([node, "-e", script, str(recon_dir / "motion.glb")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    issues = json.loads(out.stdout)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]


def test_generic_body_with_slide_joint_and_mesh_geom(tmp_path):
    """A body with a slide joint, off-origin hinge/ball anchors and a mesh geom: transforms still match."""
    from synthetic_reconstruction import synthetic_qpos
    from motionrecon.fileio import write_npz
    model = mujoco.MjModel.from_xml_string(ODD_BODY)
    qpos = synthetic_qpos(model, 12, 24.0, seed=2)
    qpos[:, model.jnt_qposadr[1]] = np.linspace(0.0, 0.25, 12)
    write_npz(tmp_path / "motion.npz", fps=np.float64(24.0), joint_names=np.array(["base"]),
              joints3d=qpos[:, None, :3], qpos=qpos, body_mjcf=np.array(ODD_BODY))
    gltf = build_gltf(load_reconstruction(tmp_path))
    check_glb_structure(gltf)
    nodes = glb_world_poses(gltf)
    poses = mujoco_poses(model, qpos)
    tree = kinematics.body_tree(model)
    for b in tree.humanoid:
        _, pos, quat = nodes[tree.names[b]]
        assert np.max(np.linalg.norm(pos - poses["xpos"][:, b], axis=-1)) < 1e-3
        assert np.max(quat_angle_deg(quat, poses["xquat"][:, b])) < 0.1
    translated = {gltf.nodes[c.target.node].name for c in gltf.animations[0].channels if c.target.path == "translation"}
    assert translated == {"base", "slider", "arm", "tip"}  # arm, tip: they pivot about off-origin anchors
    assert any(m.name.startswith("tip") for m in gltf.meshes)  # the mesh geom was exported


def test_file_is_a_glb_container(recon_dir):
    data = Path(recon_dir / "motion.glb").read_bytes()
    assert data[:4] == b"glTF" and int.from_bytes(data[4:8], "little") == 2
    assert int.from_bytes(data[8:12], "little") == len(data)


def test_a_seat_is_a_static_box_from_the_floor_to_its_top(tmp_path):
    """A reconstruction that sat on a seat (metrics "seats") exports a box node under it, reaching from the floor to
    the seat's height over its rectangle (world z up, below the y-up top node)."""
    folder = write_reconstruction(tmp_path / "recon")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["seats"] = [{"height_m": 0.42, "x_m": [-0.6, -0.2], "y_m": [-0.25, 0.15], "from_s": 0.5, "to_s": 1.2}]
    (folder / "metrics.json").write_text(json.dumps(metrics))
    gltf = build_gltf(load_reconstruction(folder))
    seat = next(n for n in gltf.nodes if n.name == "seat_0")
    top = next(n for n in gltf.nodes if n.name == "z_up_to_y_up")
    assert gltf.nodes.index(seat) in top.children and seat.translation is None and seat.rotation is None
    position = gltf.meshes[seat.mesh].primitives[0].attributes.POSITION
    np.testing.assert_allclose(gltf.accessors[position].min, [-0.6, -0.25, 0.0], atol=1e-6)
    np.testing.assert_allclose(gltf.accessors[position].max, [-0.2, 0.15, 0.42], atol=1e-6)
