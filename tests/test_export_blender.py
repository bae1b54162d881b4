"""The exports in real Blender (its built-in BVH and glTF importers, default options), when Blender is installed.

Debian: apt-get install -y --no-install-recommends blender python3-numpy (Blender 3.4.1).
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from export_checks import body_joint_point, load_contract, mujoco_poses, quat_angle_deg
from scipy.spatial.transform import Rotation
from synthetic_reconstruction import write_reconstruction

from motionrecon.export import export_all, kinematics

BLENDER_SCRIPT = r'''
import builtins, json, sys
# Debian's Blender 3.4.1 runs on Python 3.11 (its BVH add-on opens files with the removed "rU" mode)
# and numpy 1.24 (its glTF add-on uses the removed np.bool). Shim both; the importers are unchanged.
_open = builtins.open
builtins.open = lambda f, mode="r", *a, **k: _open(f, mode.replace("U", ""), *a, **k)
import numpy
if not hasattr(numpy, "bool") or numpy.bool is not bool:
    numpy.bool = bool
import bpy

bvh_path, glb_path, fps, out_path = sys.argv[sys.argv.index("--") + 1:]
fps = int(round(float(fps)))
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
out = {"bvh": {}, "glb": {}}
bpy.ops.import_anim.bvh(filepath=bvh_path)  # defaults: forward -Z, up Y, scale 1, start frame 1
arm = next(o for o in scene.objects if o.type == "ARMATURE")
start, end = (int(x) for x in arm.animation_data.action.frame_range)
out["bvh_frames"] = end - start + 1
for f in range(start, end + 1):
    scene.frame_set(f)
    for bone in arm.pose.bones:
        out["bvh"].setdefault(bone.name, []).append(list(arm.matrix_world @ bone.head))
for o in list(scene.objects):
    bpy.data.objects.remove(o)
scene.render.fps = fps
bpy.ops.import_scene.gltf(filepath=glb_path)
animated = [o for o in scene.objects if o.animation_data and o.animation_data.action]
start, end = (int(round(x)) for x in animated[0].animation_data.action.frame_range)
out["glb_frames"] = end - start + 1
for f in range(start, end + 1):
    scene.frame_set(f)
    for o in scene.objects:
        m = o.matrix_world
        out["glb"].setdefault(o.name, []).append(list(m.translation) + list(m.to_quaternion()))
json.dump(out, open(out_path, "w"))
'''


def _blender_env(blender: str) -> dict:
    """Debian's Blender embeds the system Python and finds its home from the first python3.x on PATH;
    a virtualenv or pyenv python first on PATH would hide Debian's packages (numpy) from it."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(os.path.realpath(blender)), env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def blender_result(tmp_path_factory):
    blender = shutil.which("blender")
    if blender is None:
        pytest.skip("Blender is not installed (apt-get install -y --no-install-recommends blender python3-numpy)")
    folder = write_reconstruction(tmp_path_factory.mktemp("recon"), n_frames=30)
    export_all(folder, ["bvh", "glb"])
    script = folder / "check_in_blender.py"
    script.write_text(BLENDER_SCRIPT)
    out = folder / "blender.json"
    _, _, fps = load_contract(folder)
    run = subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script),
                          "--", str(folder / "motion.bvh"), str(folder / "motion.glb"), str(fps), str(out)],
                         capture_output=True, text=True, timeout=180, env=_blender_env(blender))
    assert run.returncode == 0 and out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    return folder, json.loads(out.read_text())


def test_bvh_in_blender_matches_mujoco_and_stands_on_the_floor(blender_result):
    folder, result = blender_result
    model, qpos, _ = load_contract(folder)
    poses = mujoco_poses(model, qpos)
    tree = kinematics.body_tree(model)
    assert result["bvh_frames"] == len(qpos)
    assert set(result["bvh"]) == {tree.names[b] for b in tree.humanoid}
    for name, heads in result["bvh"].items():
        expected = body_joint_point(model, poses, tree.names.index(name))
        error = np.max(np.linalg.norm(np.array(heads) - expected, axis=-1))
        assert error < 1e-3, (name, error)  # Blender's z-up world is MuJoCo's: ground at z = 0


def test_glb_in_blender_matches_mujoco(blender_result):
    folder, result = blender_result
    model, qpos, _ = load_contract(folder)
    poses = mujoco_poses(model, qpos)
    tree = kinematics.body_tree(model)
    assert result["glb_frames"] == len(qpos)
    # Blender's glTF importer keeps each object's local axes in glTF's Y-up convention: a fixed
    # rotation of -90 degrees about the object's x axis relative to the MuJoCo body frame.
    axis_fix = Rotation.from_euler("x", -90, degrees=True)
    for b in tree.humanoid:
        data = np.array(result["glb"][tree.names[b]])
        assert np.max(np.linalg.norm(data[:, :3] - poses["xpos"][:, b], axis=-1)) < 1e-3
        expected = (Rotation.from_quat(poses["xquat"][:, b], scalar_first=True) * axis_fix).as_quat(scalar_first=True)
        assert np.max(quat_angle_deg(data[:, 3:], expected)) < 0.1, tree.names[b]
