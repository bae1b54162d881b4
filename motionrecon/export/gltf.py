"""Animated glTF 2.0 binary (GLB) of the simulated body, written with pygltflib.

Scene graph (node-animated, no skinning):
  z_up_to_y_up          rotation -90 deg about x: glTF is +Y up, the project z up
  +- ground             the MJCF's floor plane (or a z = 0 square), static
  +- seat_<i>           a box under each seat the reconstruction found (metrics "seats"), static
  +- <root body>        one node per MuJoCo body of the articulated tree, named
     +- <geom>          after the body; children: its geoms' mesh nodes (static,
     +- <child body>    at the geom's pose in the body frame) and child bodies
Below `z_up_to_y_up` everything is in the project's world frame, so each body
node's world transform (without that top node) is MuJoCo's body pose
(xpos, xquat) exactly.

Animation: one clip, "motion", keys at the observation frames t = i / fps
(LINEAR interpolation). Every body node has a rotation channel (quaternions
x, y, z, w, signs kept continuous); nodes whose translation relative to the
parent changes (the root, bodies on slide joints or off-origin joints) also
have a translation channel.

Meshes come from `motionrecon.export.meshes` (trimesh); identical geoms share
one mesh. Materials: the geoms' rgba as PBR base colour (alpha < 1 blends).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from motionrecon.export import kinematics, meshes
from motionrecon.export.reconstruction import Reconstruction
from motionrecon.fileio import atomic_path

_Z_UP_TO_Y_UP_QUAT_XYZW = [-float(np.sqrt(0.5)), 0.0, 0.0, float(np.sqrt(0.5))]
_STATIC_TOLERANCE_M = 1e-7


def write_glb(path, recon: Reconstruction, *, generator: str = "motionrecon") -> Path:
    """Writes `recon`'s body and motion as an animated GLB to `path` (atomically). Returns the path."""
    gltf = build_gltf(recon, generator=generator)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(gltf.save_to_bytes()))
    return path


class _Buffer:
    """Collects binary data for one glTF buffer; each array gets a 4-byte aligned buffer view."""

    def __init__(self, gltf: gl.GLTF2):
        self.gltf = gltf
        self.data = bytearray()

    def accessor(self, array: np.ndarray, kind: str, *, target: int | None = None, min_max: bool = False) -> int:
        array = np.ascontiguousarray(array)
        component = {np.dtype(np.float32): gl.FLOAT, np.dtype(np.uint32): gl.UNSIGNED_INT}[array.dtype]
        while len(self.data) % 4:
            self.data.append(0)
        view = gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=array.nbytes, target=target)
        self.data.extend(array.tobytes())
        self.gltf.bufferViews.append(view)
        rows = array.reshape(array.shape[0], -1)
        accessor = gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1, byteOffset=0, componentType=component,
                               count=int(array.shape[0]), type=kind)
        if min_max:
            accessor.min = [float(x) for x in rows.min(axis=0)]
            accessor.max = [float(x) for x in rows.max(axis=0)]
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def finish(self) -> None:
        while len(self.data) % 4:
            self.data.append(0)
        self.gltf.buffers = [gl.Buffer(byteLength=len(self.data))]
        self.gltf.set_binary_blob(bytes(self.data))


def build_gltf(recon: Reconstruction, *, generator: str = "motionrecon") -> gl.GLTF2:
    """The glTF document (with its binary blob) for `recon` (see the module docstring)."""
    model = recon.model
    tree = kinematics.body_tree(model)
    bodies = list(tree.humanoid)
    poses = kinematics.forward_kinematics(model, recon.qpos)
    translations, rotations = kinematics.local_transforms(tree, poses, bodies, origin="body")
    quats = continuous_quaternions(rotations)  # [T, N, 4] xyzw

    gltf = gl.GLTF2(
        asset=gl.Asset(version="2.0", generator=generator),
        scene=0,
        scenes=[gl.Scene(name="motion", nodes=[0])],
        extras={"fps": recon.fps, "frames": recon.num_frames, "up": "y (node z_up_to_y_up maps the z-up world)"},
    )
    buf = _Buffer(gltf)
    materials: dict[tuple, int] = {}

    def material(rgba) -> int:
        key = tuple(round(float(c), 4) for c in rgba)
        if key not in materials:
            gltf.materials.append(gl.Material(
                name=f"rgba_{'_'.join(f'{c:.2f}' for c in key)}",
                pbrMetallicRoughness=gl.PbrMetallicRoughness(baseColorFactor=list(key), metallicFactor=0.0,
                                                             roughnessFactor=0.8),
                alphaMode=gl.BLEND if key[3] < 1.0 else gl.OPAQUE,
                doubleSided=False,
            ))
            materials[key] = len(gltf.materials) - 1
        return materials[key]

    def add_mesh(name: str, mesh, rgba) -> int:
        vertices = np.asarray(mesh.vertices, dtype=np.float32)
        normals = np.asarray(mesh.vertex_normals, dtype=np.float32)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        indices = np.asarray(mesh.faces, dtype=np.uint32).reshape(-1)
        position = buf.accessor(vertices, gl.VEC3, target=gl.ARRAY_BUFFER, min_max=True)
        normal = buf.accessor(normals, gl.VEC3, target=gl.ARRAY_BUFFER)
        index = buf.accessor(indices, gl.SCALAR, target=gl.ELEMENT_ARRAY_BUFFER)
        gltf.meshes.append(gl.Mesh(name=name, primitives=[gl.Primitive(
            attributes=gl.Attributes(POSITION=position, NORMAL=normal), indices=index,
            material=material(rgba), mode=gl.TRIANGLES)]))
        return len(gltf.meshes) - 1

    def add_node(node: gl.Node) -> int:
        gltf.nodes.append(node)
        return len(gltf.nodes) - 1

    top = add_node(gl.Node(name="z_up_to_y_up", rotation=list(_Z_UP_TO_Y_UP_QUAT_XYZW)))

    ground, ground_rgba, _ = meshes.ground_mesh(model, meshes.ground_half_extent(recon))
    gltf.nodes[top].children.append(add_node(gl.Node(name="ground", mesh=add_mesh("ground", ground, ground_rgba))))
    for i, seat in enumerate(recon.metrics.get("seats") or []):
        box = meshes.seat_mesh(seat)
        gltf.nodes[top].children.append(add_node(gl.Node(name=f"seat_{i}", mesh=add_mesh(f"seat_{i}", box,
                                                                                          meshes.SEAT_RGBA))))

    # Body nodes, then their geoms.
    body_node = {}
    for i, b in enumerate(bodies):
        node = add_node(gl.Node(name=tree.names[b], translation=[float(x) for x in translations[0, i]],
                                rotation=[float(x) for x in quats[0, i]]))
        body_node[b] = node
        parent = tree.parents[b]
        gltf.nodes[body_node[parent] if parent in body_node else top].children.append(node)
    mesh_by_key: dict[tuple, int] = {}
    for gm in meshes.body_geom_meshes(model, bodies):
        key = gm.key + (tuple(round(c, 4) for c in gm.rgba),)
        if key not in mesh_by_key:
            mesh_by_key[key] = add_mesh(gm.name, gm.mesh, gm.rgba)
        quat_xyzw = Rotation.from_quat(model.geom_quat[gm.geom], scalar_first=True).as_quat()
        node = add_node(gl.Node(name=gm.name, mesh=mesh_by_key[key],
                                translation=[float(x) for x in model.geom_pos[gm.geom]],
                                rotation=[float(x) for x in quat_xyzw]))
        gltf.nodes[body_node[gm.body]].children.append(node)

    # Animation.
    times = buf.accessor((np.arange(recon.num_frames) / recon.fps).astype(np.float32), gl.SCALAR, min_max=True)
    animation = gl.Animation(name="motion")
    for i, b in enumerate(bodies):
        channels = [("rotation", quats[:, i], gl.VEC4)]
        if np.max(np.abs(translations[:, i] - translations[:1, i])) > _STATIC_TOLERANCE_M:
            channels.insert(0, ("translation", translations[:, i], gl.VEC3))
        for path, values, kind in channels:
            output = buf.accessor(values.astype(np.float32), kind)
            animation.samplers.append(gl.AnimationSampler(input=times, output=output, interpolation=gl.ANIM_LINEAR))
            animation.channels.append(gl.AnimationChannel(
                sampler=len(animation.samplers) - 1,
                target=gl.AnimationChannelTarget(node=body_node[b], path=path)))
    gltf.animations.append(animation)
    buf.finish()
    return gltf


def continuous_quaternions(rotations: np.ndarray) -> np.ndarray:
    """[T, N, 4] unit quaternions (x, y, z, w) of rotation matrices [T, N, 3, 3], sign-continuous in time."""
    shape = rotations.shape[:2]
    quats = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat().reshape(*shape, 4)
    for t in range(1, shape[0]):
        flip = np.sum(quats[t] * quats[t - 1], axis=-1) < 0
        quats[t, flip] *= -1
    return quats
