"""Triangle meshes of MJCF geoms (trimesh) and per-frame OBJ export.

`geom_mesh` builds any MuJoCo geom as a `trimesh.Trimesh` in the geom's own
frame: capsules, cylinders, spheres, ellipsoids, boxes, planes and mesh
geoms (height fields and SDFs are skipped). The glTF writer and the OBJ
writer both use it.

OBJ files (`meshes/frame_000000.obj`, one per observation frame) hold the
whole body in the world, Y up (x, y, z) -> (x, z, -y) like BVH and glTF, so
Blender's OBJ importer (defaults: up Y, forward -Z) stands the body on its
floor; metres. Vertex colours carry the geoms' rgba. `meshes/ground.obj` is
the floor, written once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mujoco
import numpy as np
import trimesh

from motionrecon.export import kinematics
from motionrecon.export.reconstruction import Reconstruction
from motionrecon.fileio import atomic_dir

_ROUND_SECTIONS = 16  # segments around capsules and cylinders
VISIBLE_GROUPS = 3  # geom groups 0, 1, 2 are drawn (MuJoCo's viewer default); 3-5 hold helper geoms


@dataclasses.dataclass(frozen=True)
class GeomMesh:
    """One geom's triangles in its own frame, and what it is attached to.

    Attributes:
      geom: MuJoCo geom id.
      body: MuJoCo body id it belongs to.
      name: geom name ("<body>_geom<k>" when the MJCF gives none).
      mesh: the triangles, geom frame, metres.
      rgba: [4] colour in 0..1.
      key: geometry identity (equal keys = identical triangles), for sharing meshes.
    """

    geom: int
    body: int
    name: str
    mesh: trimesh.Trimesh
    rgba: tuple[float, float, float, float]
    key: tuple


def geom_rgba(model: mujoco.MjModel, g: int) -> tuple[float, float, float, float]:
    if model.geom_matid[g] >= 0:
        rgba = model.mat_rgba[model.geom_matid[g]]
    else:
        rgba = model.geom_rgba[g]
    return tuple(float(x) for x in rgba)


def is_visible(model: mujoco.MjModel, g: int) -> bool:
    """Shown by MuJoCo's viewer by default: geom group 0-2 and a colour that is not fully transparent."""
    return int(model.geom_group[g]) < VISIBLE_GROUPS and geom_rgba(model, g)[3] > 0


def geom_mesh(model: mujoco.MjModel, g: int, *, plane_half_extent: float = 10.0,
              sections: int = _ROUND_SECTIONS) -> trimesh.Trimesh | None:
    """The triangles of geom `g` in its own frame (metres), or None for a type that has no surface here.

    Planes of size 0 (infinite in MuJoCo) become squares of `plane_half_extent`.
    """
    kind = int(model.geom_type[g])
    size = np.array(model.geom_size[g], dtype=np.float64)
    if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
        return trimesh.creation.capsule(height=2 * size[1], radius=size[0], count=[sections, sections])
    if kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        return trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=sections)
    if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        return trimesh.creation.icosphere(subdivisions=2, radius=size[0])
    if kind == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
        sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        return trimesh.Trimesh(sphere.vertices * size, sphere.faces, process=False)
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        box = trimesh.creation.box(extents=2 * size)
        box.unmerge_vertices()  # flat shading: one normal per face corner
        return box
    if kind == mujoco.mjtGeom.mjGEOM_PLANE:
        hx = size[0] if size[0] > 0 else plane_half_extent
        hy = size[1] if size[1] > 0 else plane_half_extent
        vertices = np.array([[-hx, -hy, 0.0], [hx, -hy, 0.0], [hx, hy, 0.0], [-hx, hy, 0.0]])
        return trimesh.Trimesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), process=False)
    if kind == mujoco.mjtGeom.mjGEOM_MESH:
        m = model.geom_dataid[g]
        start, count = model.mesh_vertadr[m], model.mesh_vertnum[m]
        fstart, fcount = model.mesh_faceadr[m], model.mesh_facenum[m]
        vertices = np.array(model.mesh_vert[start:start + count], dtype=np.float64)
        faces = np.array(model.mesh_face[fstart:fstart + fcount], dtype=np.int64)
        return trimesh.Trimesh(vertices, faces, process=False)
    return None


def body_geom_meshes(model: mujoco.MjModel, bodies, *, sections: int = _ROUND_SECTIONS) -> list[GeomMesh]:
    """Visible geoms (`is_visible`) of `bodies` with their meshes (planes excluded)."""
    names = kinematics.body_names(model)
    bodies = set(int(b) for b in bodies)
    out, per_body = [], {}
    for g in range(model.ngeom):
        body = int(model.geom_bodyid[g])
        if body not in bodies or int(model.geom_type[g]) == mujoco.mjtGeom.mjGEOM_PLANE:
            continue
        rgba = geom_rgba(model, g)
        if not is_visible(model, g):
            continue
        mesh = geom_mesh(model, g, sections=sections)
        if mesh is None:
            continue
        k = per_body[body] = per_body.get(body, -1) + 1
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"{names[body]}_geom{k}"
        key = (int(model.geom_type[g]), tuple(np.round(model.geom_size[g], 9)), int(model.geom_dataid[g]), sections)
        out.append(GeomMesh(g, body, "_".join(name.split()), mesh, rgba, key))
    return out


def ground_mesh(model: mujoco.MjModel, half_extent: float) -> tuple[trimesh.Trimesh, np.ndarray, tuple]:
    """The floor: the world's first plane geom (as placed in the MJCF), or a z = 0 square.

    Returns (mesh in world coordinates z up, [4] rgba, (geom id or -1,)).
    """
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == 0 and int(model.geom_type[g]) == mujoco.mjtGeom.mjGEOM_PLANE:
            mesh = geom_mesh(model, g, plane_half_extent=half_extent)
            transform = np.eye(4)
            transform[:3, :3] = _quat_to_matrix(model.geom_quat[g])
            transform[:3, 3] = model.geom_pos[g]
            mesh.apply_transform(transform)
            return mesh, np.array(geom_rgba(model, g)), (g,)
    vertices = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float64) * half_extent
    mesh = trimesh.Trimesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), process=False)
    return mesh, np.array([0.8, 0.8, 0.8, 1.0]), (-1,)


SEAT_RGBA = np.array([0.55, 0.45, 0.35, 1.0])


def seat_mesh(seat: dict) -> trimesh.Trimesh:
    """A box from the floor up to a seat's top over its rectangle (`body.seats.Seat.describe`: "x_m", "y_m",
    "height_m"), in world coordinates z up."""
    (x0, x1), (y0, y1), h = seat["x_m"], seat["y_m"], seat["height_m"]
    box = trimesh.creation.box(extents=[x1 - x0, y1 - y0, h])
    box.apply_translation([(x0 + x1) / 2, (y0 + y1) / 2, h / 2])
    return box


def ground_half_extent(recon: Reconstruction, margin: float = 2.0) -> float:
    """Half size of a floor square centred at the origin that covers the motion plus `margin` metres."""
    reach = np.nanmax(np.abs(recon.joints3d[..., :2])) if recon.joints3d.size else 0.0
    return float(np.ceil(reach + margin))


def body_mesh_at(meshes: list[GeomMesh], poses: kinematics.Poses, t: int) -> trimesh.Trimesh:
    """All geoms of one frame merged into one mesh in the world (z up), vertex colours from rgba."""
    parts = []
    for gm in meshes:
        transform = np.eye(4)
        transform[:3, :3] = poses.geom_xmat[t, gm.geom]
        transform[:3, 3] = poses.geom_xpos[t, gm.geom]
        part = gm.mesh.copy()
        part.apply_transform(transform)
        part.visual.vertex_colors = np.tile(np.round(np.array(gm.rgba) * 255).astype(np.uint8), (len(part.vertices), 1))
        parts.append(part)
    return trimesh.util.concatenate(parts)


def write_obj_frames(folder, recon: Reconstruction, *, sections: int = 12) -> Path:
    """Writes `folder` (e.g. DIR/meshes) with frame_%06d.obj per frame and ground.obj, atomically.

    Returns the folder.
    """
    folder = Path(folder)
    tree = kinematics.body_tree(recon.model)
    poses = kinematics.forward_kinematics(recon.model, recon.qpos)
    meshes = body_geom_meshes(recon.model, tree.humanoid, sections=sections)
    to_y_up = np.eye(4)
    to_y_up[:3, :3] = kinematics.Z_UP_TO_Y_UP
    with atomic_dir(folder) as tmp:
        ground, rgba, _ = ground_mesh(recon.model, ground_half_extent(recon))
        ground.apply_transform(to_y_up)
        ground.visual.vertex_colors = np.tile(np.round(rgba * 255).astype(np.uint8), (len(ground.vertices), 1))
        (tmp / "ground.obj").write_text(trimesh.exchange.obj.export_obj(ground, include_normals=False, digits=5))
        for t in range(recon.num_frames):
            mesh = body_mesh_at(meshes, poses, t)
            mesh.apply_transform(to_y_up)
            text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, digits=5)
            (tmp / f"frame_{t:06d}.obj").write_text(text)
    return folder


def _quat_to_matrix(quat_wxyz) -> np.ndarray:
    m = np.empty(9)
    mujoco.mju_quat2Mat(m, np.asarray(quat_wxyz, dtype=np.float64))
    return m.reshape(3, 3)
