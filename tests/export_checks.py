"""Independent checks of exported files against MuJoCo, reusable on any reconstruction.

These use MuJoCo (mj_kinematics) and pygltflib directly, not the exporters'
own kinematics, so a mistake there cannot hide itself. The lead can run them
on the demo run's exports in CI:

    from export_checks import check_bvh_round_trip, check_glb
    check_bvh_round_trip(folder); check_glb(folder)
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from motionrecon.datasets.bvh import read_bvh

_COMPONENTS = {gl.FLOAT: np.float32, gl.UNSIGNED_INT: np.uint32, gl.UNSIGNED_SHORT: np.uint16,
               gl.UNSIGNED_BYTE: np.uint8, gl.SHORT: np.int16, gl.BYTE: np.int8}
_WIDTH = {gl.SCALAR: 1, gl.VEC2: 2, gl.VEC3: 3, gl.VEC4: 4, gl.MAT4: 16}


def load_contract(folder):
    """(model, qpos [T,nq], fps) straight from DIR/motion.npz."""
    with np.load(Path(folder) / "motion.npz") as npz:
        model = mujoco.MjModel.from_xml_string(str(npz["body_mjcf"]))
        return model, npz["qpos"].astype(np.float64), float(npz["fps"])


def mujoco_poses(model, qpos):
    """Per frame: xpos [T,B,3], xquat [T,B,4] (w first), xanchor [T,njnt,3], geom_xpos, geom_xmat."""
    data = mujoco.MjData(model)
    out = {k: [] for k in ("xpos", "xquat", "xanchor", "geom_xpos", "geom_xmat")}
    for q in qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out["xpos"].append(data.xpos.copy())
        out["xquat"].append(data.xquat.copy())
        out["xanchor"].append(data.xanchor.copy())
        out["geom_xpos"].append(data.geom_xpos.copy())
        out["geom_xmat"].append(data.geom_xmat.reshape(-1, 3, 3).copy())
    return {k: np.array(v) for k, v in out.items()}


def body_joint_point(model, poses, body: int) -> np.ndarray:
    """[T,3] where a skeleton joint for `body` belongs: its first ball/hinge joint's anchor, else the body origin.

    (MuJoCo's xanchor of a slide joint stays put while the body slides, so slide joints do not count.)
    """
    for j in range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body]):
        if int(model.jnt_type[j]) in (mujoco.mjtJoint.mjJNT_BALL, mujoco.mjtJoint.mjJNT_HINGE):
            return poses["xanchor"][:, j]
    return poses["xpos"][:, body]


def bvh_round_trip_error(bvh_path, model, qpos) -> tuple[float, object]:
    """Largest distance (m) over frames and joints between the BVH read back and MuJoCo FK; and the BvhMotion."""
    motion = read_bvh(bvh_path)
    poses = mujoco_poses(model, qpos)
    expected = np.stack([body_joint_point(model, poses, mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n))
                         for n in motion.joint_names], axis=1)
    assert motion.positions.shape == expected.shape, (motion.positions.shape, expected.shape)
    return float(np.max(np.linalg.norm(motion.positions - expected, axis=-1))), motion


def accessor_array(gltf: gl.GLTF2, index: int) -> np.ndarray:
    """An accessor's data as [count, width] (checks that it lies inside its buffer view and buffer)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = np.dtype(_COMPONENTS[acc.componentType])
    width = _WIDTH[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    nbytes = acc.count * width * dtype.itemsize
    assert (acc.byteOffset or 0) + nbytes <= view.byteLength, f"accessor {index} overruns its buffer view"
    assert (view.byteOffset or 0) + view.byteLength <= gltf.buffers[view.buffer].byteLength, "view overruns buffer"
    assert start % dtype.itemsize == 0, f"accessor {index} is not aligned"
    blob = gltf.binary_blob()
    return np.frombuffer(blob[start:start + nbytes], dtype=dtype).reshape(acc.count, width)


def check_glb_structure(gltf: gl.GLTF2) -> None:
    """Structural rules of glTF 2.0 that a loader relies on (raises AssertionError)."""
    assert gltf.asset.version == "2.0"
    assert len(gltf.buffers) == 1 and gltf.buffers[0].uri is None, "GLB must hold one embedded buffer"
    assert len(gltf.binary_blob()) >= gltf.buffers[0].byteLength
    for i, acc in enumerate(gltf.accessors):
        data = accessor_array(gltf, i)
        assert np.all(np.isfinite(data.astype(np.float64))), f"accessor {i} holds NaN/inf"
        if acc.min:
            assert np.allclose(acc.min, data.min(axis=0)) and np.allclose(acc.max, data.max(axis=0)), \
                f"accessor {i} min/max do not match its data"
    children = [c for node in gltf.nodes for c in node.children]
    assert len(children) == len(set(children)), "a node has two parents"
    roots = set(range(len(gltf.nodes))) - set(children)
    assert roots == set(gltf.scenes[gltf.scene].nodes), "scene roots are not the parentless nodes"
    for mesh in gltf.meshes:
        for prim in mesh.primitives:
            pos = gltf.accessors[prim.attributes.POSITION]
            assert pos.min and pos.max, "POSITION needs min/max"
            assert gltf.bufferViews[pos.bufferView].target == gl.ARRAY_BUFFER
            idx = accessor_array(gltf, prim.indices)
            assert gltf.bufferViews[gltf.accessors[prim.indices].bufferView].target == gl.ELEMENT_ARRAY_BUFFER
            assert idx.max() < pos.count and idx.size % 3 == 0
            if prim.attributes.NORMAL is not None:
                normals = accessor_array(gltf, prim.attributes.NORMAL)
                assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-3), "normals must be unit"
    for anim in gltf.animations:
        for ch in anim.channels:
            sampler = anim.samplers[ch.sampler]
            times = accessor_array(gltf, sampler.input)[:, 0]
            values = accessor_array(gltf, sampler.output)
            assert gltf.accessors[sampler.input].min, "sampler input needs min/max"
            assert np.all(np.diff(times) > 0), "key times must increase"
            assert len(values) == len(times), "sampler output count differs from input"
            assert sampler.interpolation in ("LINEAR", "STEP")
            if ch.target.path == "rotation":
                assert values.shape[1] == 4 and np.allclose(np.linalg.norm(values, axis=1), 1.0, atol=1e-5)
            else:
                assert values.shape[1] == 3


def glb_world_poses(gltf: gl.GLTF2, below: str = "z_up_to_y_up"):
    """Per node name: (times [K], positions [K,3], quats [K,4] w first), world = frame of node `below`.

    Static node transforms and animation keys are combined up the hierarchy
    (every animated channel shares the same key times).
    """
    anim = gltf.animations[0]
    times = None
    keyed = {}
    for ch in anim.channels:
        sampler = anim.samplers[ch.sampler]
        t = accessor_array(gltf, sampler.input)[:, 0]
        times = t if times is None else times
        assert np.array_equal(times, t)
        keyed[(ch.target.node, ch.target.path)] = accessor_array(gltf, sampler.output).astype(np.float64)
    n = len(times)
    parent = {c: i for i, node in enumerate(gltf.nodes) for c in node.children}
    top = next(i for i, node in enumerate(gltf.nodes) if node.name == below)
    cache = {}

    def world(i):
        if i in cache:
            return cache[i]
        node = gltf.nodes[i]
        assert node.matrix is None and (node.scale is None or np.allclose(node.scale, 1))
        trans = keyed.get((i, "translation"), np.tile(node.translation or [0.0, 0.0, 0.0], (n, 1)))
        rot = Rotation.from_quat(keyed.get((i, "rotation"), np.tile(node.rotation or [0, 0, 0, 1.0], (n, 1))))
        if i == top:
            result = (np.zeros((n, 3)), Rotation.identity(n))
        elif i not in parent:
            raise AssertionError(f"node {node.name} is not below {below}")
        else:
            p_pos, p_rot = world(parent[i])
            result = (p_pos + p_rot.apply(trans), p_rot * rot)
        cache[i] = result
        return result

    out = {}
    for i, node in enumerate(gltf.nodes):
        if i == top or node.name is None:
            continue
        pos, rot = world(i)
        out[node.name] = (times, pos, rot.as_quat(scalar_first=True))
    return out


def quat_angle_deg(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Angle (degrees) between rotations given as w-first quaternions [..., 4]."""
    dot = np.abs(np.sum(q1 * q2, axis=-1) / (np.linalg.norm(q1, axis=-1) * np.linalg.norm(q2, axis=-1)))
    return np.degrees(2 * np.arccos(np.clip(dot, 0.0, 1.0)))


def surface_residual(points: np.ndarray, model, g: int, centre: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """[P] distance (m) of world points from the surface of geom `g` posed at (centre, rot)."""
    local = (points - centre) @ rot  # into the geom frame
    size = np.array(model.geom_size[g])
    kind = int(model.geom_type[g])
    if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        return np.abs(np.linalg.norm(local, axis=1) - size[0])
    if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
        z = np.clip(local[:, 2], -size[1], size[1])
        return np.abs(np.linalg.norm(local - np.stack([0 * z, 0 * z, z], 1), axis=1) - size[0])
    if kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        r = np.linalg.norm(local[:, :2], axis=1)
        side = np.where(np.abs(local[:, 2]) <= size[1] + 1e-4, np.abs(r - size[0]), np.inf)
        cap = np.where(r <= size[0] + 1e-4, np.abs(np.abs(local[:, 2]) - size[1]), np.inf)
        return np.minimum(side, cap)
    if kind == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
        return np.abs(np.linalg.norm(local / size, axis=1) - 1.0) * size.min()
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        outside = np.linalg.norm(np.maximum(np.abs(local) - size, 0.0), axis=1)
        inside = np.min(size - np.abs(local), axis=1)
        return np.where(outside > 0, outside, np.maximum(inside, 0.0))
    raise ValueError(f"no surface test for geom type {kind}")
