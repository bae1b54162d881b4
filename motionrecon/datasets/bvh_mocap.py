"""BVH motion capture as `Observations`: a BVH skeleton mapped onto body landmarks.

`load_bvh(path)` reads the file with `motionrecon.datasets.bvh.read_bvh`, finds
the joints by name, and returns "h36m17" observations (the layout every BVH
skeleton can fill) in metres, world z-up, ground z = 0, at the file's frame rate.

Names. A joint name is normalised before matching: the part after the last
":" or "|" (Mixamo's "mixamorig:" namespace, Maya paths), lower case, letters
and digits only, a leading "mixamorig" or "bip01" (3ds Max Biped) dropped. A
side is a prefix or suffix "left"/"l" or "right"/"r". The first name of each
list below that the file has is used:

  pelvis    hips, pelvis, hip
  hip       upleg, thigh, upperleg, hip          (e.g. LeftUpLeg, lThigh, thigh_l)
  knee      leg, shin, calf, lowerleg, knee      (LeftLeg, lShin, calf_l)
  ankle     foot, ankle                          (LeftFoot, lFoot, foot_l)
  toe       toebase, toe, toes, ball             (LeftToeBase, ball_l)
  shoulder  arm, upperarm, shldr, then l/r+shoulder (LeftArm, lShldr, upperarm_l, L_Shoulder)
  elbow     forearm, lowerarm, elbow             (LeftForeArm, lowerarm_l)
  wrist     hand, wrist                          (LeftHand, hand_l)
  thorax    neck, neck01, neck1                  (Neck, neck_01)
  head      head

"LeftShoulder" is deliberately not a shoulder: in the CMU and Mixamo rigs it is
the clavicle, and the shoulder joint is "LeftArm".

Landmarks that are not a joint:
- spine: the point at the template body's fraction (its `spine` site is half
  way from pelvis to chest) of the way along the joint chain from the pelvis
  joint to the neck joint, by arc length, in every frame.
- head_top: the descendant of the head joint (joint or End Site) highest
  above it in the rest pose, when at least 5 cm above it; otherwise it is
  unobserved (confidence 0).
- nose: from the neck (thorax) along the neck-to-head-top line and the head's
  forward direction, in the template body's proportions (nose at the head
  centre's height, one head radius in front of it); the head's forward
  direction is the rest pose's facing direction (from the hips) turned by the
  head joint's world rotation. Without a head top, the head joint itself, at
  confidence 0.5.

Up axis. `up="auto"` takes the rest pose (all channels zero) as upright: the
file axis, +y or +z, along which the neck lies above the pelvis is "up".

Ground. The floor is placed at z = 0 from the lowest foot points: per frame
the lowest of the ankles and everything below them in the skeleton (toe
joints, End Sites); the 5th percentile of that over the whole file (robust to
a few glitches below the floor), lowered by the height at which that point
sits when the foot is flat. That height comes from the rest pose (feet flat):
an ankle 8 cm above the floor minus the rest-pose drop from ankle to the
lowest foot point (0 for a rig whose toe end sites touch the floor, 8 cm for a
rig with ankles only).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from motionrecon.body.template import BodyShape
from motionrecon.datasets.bvh import BvhMotion, read_bvh, rest_positions
from motionrecon.datasets.common import check_thigh_length
from motionrecon.datasets.single_files import time_window
from motionrecon.errors import InputError
from motionrecon.observations import Observations
from motionrecon.skeleton import get_joint_set

# Height of the ankle joint above the floor when the foot is flat, metres (as the AIST++ reader).
ANKLE_HEIGHT_M = 0.08
FLOOR_PERCENTILE = 5.0
HEAD_TOP_MIN_RISE_M = 0.05

_SIDES = {"left": ("left", "l"), "right": ("right", "r")}
_SIDED_BASES: dict[str, tuple[str, ...]] = {
    "hip": ("upleg", "thigh", "upperleg", "hip"),
    "knee": ("leg", "shin", "calf", "lowerleg", "knee"),
    "ankle": ("foot", "ankle"),
    "toe": ("toebase", "toe", "toes", "ball"),
    "shoulder": ("arm", "upperarm", "shldr"),
    "elbow": ("forearm", "lowerarm", "elbow"),
    "wrist": ("hand", "wrist"),
}
# Extra, lowest-priority names (SMPL-style "L_Shoulder"; "LeftShoulder" is a clavicle elsewhere).
_SIDED_EXTRA: dict[str, dict[str, tuple[str, ...]]] = {
    "shoulder": {"left": ("lshoulder", "shoulderl"), "right": ("rshoulder", "shoulderr")},
}
_CENTRAL: dict[str, tuple[str, ...]] = {
    "pelvis": ("hips", "pelvis", "hip"),
    "thorax": ("neck", "neck01", "neck1"),
    "head": ("head",),
}
REQUIRED_ROLES: tuple[str, ...] = (
    "pelvis", "thorax", "head",
    *(f"{side}_{part}" for side in ("left", "right")
      for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")),
)
_NAME_PREFIXES = ("mixamorig", "bip001", "bip01")
# y-up file axes -> z-up world: (x, y, z) -> (x, -z, y), a rotation of +90 degrees about x.
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


# --------------------------------------------------------------------------- names

def normalise_name(name: str) -> str:
    """"mixamorig:LeftUpLeg" -> "leftupleg", "Bip01 L Thigh" -> "lthigh", "thigh_l" -> "thighl"."""
    key = re.sub(r"[^a-z0-9]", "", re.split(r"[:|]", name)[-1].lower())
    for prefix in _NAME_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix):]
    return key


def role_candidates(role: str) -> list[str]:
    """Normalised names that may play `role` ("pelvis", "left_knee", ...), best first."""
    if role in _CENTRAL:
        return list(_CENTRAL[role])
    side, part = role.split("_", 1)
    names = []
    for base in _SIDED_BASES[part]:
        for word in _SIDES[side]:
            names += [word + base, base + word]
    names += list(_SIDED_EXTRA.get(part, {}).get(side, ()))
    return names


def find_roles(joint_names: tuple[str, ...], source: str) -> dict[str, int]:
    """role -> joint index, for every role the file has; InputError when a required one is missing."""
    index: dict[str, int] = {}
    for i, name in enumerate(joint_names):
        index.setdefault(normalise_name(name), i)
    roles = list(REQUIRED_ROLES) + ["left_toe", "right_toe"]
    found = {}
    for role in roles:
        hit = next((index[c] for c in role_candidates(role) if c in index), None)
        if hit is not None:
            found[role] = hit
    missing = [r for r in REQUIRED_ROLES if r not in found]
    if missing:
        shown = ", ".join(joint_names[:40]) + (" ..." if len(joint_names) > 40 else "")
        raise InputError(source, f"cannot find the BVH joints for {', '.join(missing)} "
                                 f"(see docs/mocap-formats.md for the names understood); the file's joints: {shown}")
    return found


# --------------------------------------------------------------------------- skeleton helpers

def _ancestors(parents: tuple[int, ...], j: int) -> list[int]:
    """[j, parent of j, ..., root]."""
    out = [j]
    while parents[out[-1]] >= 0:
        out.append(parents[out[-1]])
    return out


def _descendants(parents: tuple[int, ...], j: int) -> list[int]:
    """Every joint below j (parents come before children in a BVH skeleton)."""
    below = {j}
    for k in range(j + 1, len(parents)):
        if parents[k] in below:
            below.add(k)
    return sorted(below - {j})


def up_axis(rest: np.ndarray, roles: dict[str, int], source: str) -> str:
    """"y" or "z": the file axis along which the rest pose's neck lies above its pelvis."""
    d = rest[roles["thorax"]] - rest[roles["pelvis"]]
    axis = int(np.argmax(np.abs(d)))
    if axis in (1, 2) and d[axis] > 0:
        return "yz"[axis - 1]
    raise InputError(source, f"the rest pose is not upright along +y or +z (pelvis to neck {np.round(d, 3).tolist()} "
                             "in file units): cannot tell the up axis")


def chain_point(points: np.ndarray, fraction: float) -> np.ndarray:
    """[T, 3]: the point `fraction` of the way along the polyline points [T, N, 3], by arc length, per frame."""
    seg = np.linalg.norm(np.diff(points, axis=1), axis=-1)  # [T, N-1]
    total = seg.sum(axis=1)
    target = fraction * total
    cum = np.concatenate([np.zeros((len(points), 1)), np.cumsum(seg, axis=1)], axis=1)  # [T, N]
    out = np.empty((len(points), 3))
    for t in range(len(points)):
        k = int(np.clip(np.searchsorted(cum[t], target[t], side="right") - 1, 0, seg.shape[1] - 1))
        u = 0.0 if seg[t, k] <= 0 else (target[t] - cum[t, k]) / seg[t, k]
        out[t] = points[t, k] + u * (points[t, k + 1] - points[t, k])
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- landmarks

def landmark_tracks(positions: np.ndarray, rotations: np.ndarray, parents: tuple[int, ...], rest: np.ndarray,
                    roles: dict[str, int], source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Body landmark -> (positions [T, 3] metres, confidence [T]), world z-up (ground not yet placed).

    Args:
      positions, rotations: [T, J, 3] and [T, J, 3, 3] world joint positions and orientations, z-up, metres.
      parents: [J] parent indices. rest: [J, 3] rest-pose positions, same axes and unit.
      roles: from `find_roles`.
    """
    T = positions.shape[0]
    ones = np.ones(T)
    tracks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for role, j in roles.items():
        tracks[role] = (positions[:, j], ones)  # roles other than "head" are body landmarks
    tracks.pop("head", None)  # the head joint (skull base) is no body landmark; it gives nose and head_top

    pelvis, thorax, head = roles["pelvis"], roles["thorax"], roles["head"]
    chain = _ancestors(parents, thorax)
    if pelvis not in chain:
        raise InputError(source, "the neck joint is not below the pelvis joint in the hierarchy")
    chain = chain[: chain.index(pelvis) + 1][::-1]  # pelvis ... thorax
    shape = BodyShape()
    spine_fraction = 0.5 * shape.pelvis_to_chest / (shape.pelvis_to_chest + shape.chest_to_thorax)
    tracks["spine"] = (chain_point(positions[:, chain], spine_fraction), ones)

    below_head = _descendants(parents, head)
    rise = [rest[k, 2] - rest[head, 2] for k in below_head]
    if below_head and max(rise) >= HEAD_TOP_MIN_RISE_M:
        top = below_head[int(np.argmax(rise))]
        head_top = positions[:, top]
        radius = shape.radii()["head"]
        reach = shape.thorax_to_head + radius  # thorax -> head top in the template
        length = float(np.linalg.norm(rest[top] - rest[thorax]))
        left = rest[roles["left_hip"]] - rest[roles["right_hip"]]
        facing = _unit(np.cross(left, [0.0, 0.0, 1.0]) * np.array([1.0, 1.0, 0.0]))
        up = _unit(head_top - positions[:, thorax])
        forward = np.einsum("tij,j->ti", rotations[:, head], facing)
        forward = _unit(forward - np.sum(forward * up, axis=-1, keepdims=True) * up)
        nose = positions[:, thorax] + length * (shape.thorax_to_head / reach * up + radius / reach * forward)
        tracks["head_top"] = (head_top, ones)
        tracks["nose"] = (nose, ones)
    else:
        tracks["head_top"] = (positions[:, head], np.zeros(T))
        tracks["nose"] = (positions[:, head], np.full(T, 0.5))
    return tracks


def floor_height(positions: np.ndarray, parents: tuple[int, ...], rest: np.ndarray, roles: dict[str, int],
                 *, ankle_height: float = ANKLE_HEIGHT_M) -> float:
    """Height (metres, z-up) of the floor under the motion; see the module docstring."""
    drops, points = [], []
    for side in ("left", "right"):
        ankle = roles[f"{side}_ankle"]
        feet = [ankle] + _descendants(parents, ankle)
        points += feet
        drops.append(rest[ankle, 2] - min(rest[k, 2] for k in feet))
    clearance = max(0.0, ankle_height - float(np.mean(np.clip(drops, 0.0, ankle_height))))
    lowest = positions[:, points, 2].min(axis=1)
    return float(np.percentile(lowest, FLOOR_PERCENTILE)) - clearance


# --------------------------------------------------------------------------- the reader

def file_fps(frame_time: float) -> float:
    """1 / frame_time, snapped to a whole number within 0.1 % (files print "Frame Time: 0.008333" for 120 fps)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if round(fps) > 0 and abs(fps - round(fps)) <= 1e-3 * fps else fps


def load_bvh(path: str | Path, *, start: float = 0.0, duration: float | None = None, length_unit="auto",
             up: str = "auto", joint_set: str = "h36m17") -> Observations:
    """A BVH file as 3D observations (metres, world z-up, ground z = 0, the file's frame rate).

    Args:
      path: the .bvh file.
      start, duration: seconds, as `single_files.time_window` (the floor uses the whole file).
      length_unit: the file's unit, as `read_bvh` ("auto", "m", "cm", "mm", "in" or metres per unit).
      up: "auto" (from the rest pose), "y" or "z".
      joint_set: the layout to fill; every landmark of it must be one `landmark_tracks` gives.
    """
    path = Path(path)
    source = str(path)
    motion: BvhMotion = read_bvh(path, length_unit=length_unit, up="keep", include_end_sites=True)
    names, parents = motion.joint_names, motion.parents
    roles = find_roles(names, source)
    rest = rest_positions(motion.skeleton) * motion.metres_per_unit  # End Sites included: same order as names
    if up == "auto":
        up = up_axis(rest, roles, source)
    if up not in ("y", "z"):
        raise InputError(source, f"unknown up axis {up!r} (use auto, y or z)")
    A = _Y_UP_TO_Z_UP if up == "y" else np.eye(3)
    positions = motion.positions @ A.T
    rotations = A @ motion.rotations @ A.T
    rest = rest @ A.T

    tracks = landmark_tracks(positions, rotations, parents, rest, roles, source)
    floor = floor_height(positions, parents, rest, roles)
    js = get_joint_set(joint_set)
    missing = [lm for lm in js.landmarks if lm not in tracks]
    if missing:
        raise InputError(source, f"a BVH skeleton gives no {', '.join(missing)} for joint set {js.name}")
    joints3d = np.stack([tracks[lm][0] for lm in js.landmarks], axis=1) - np.array([0.0, 0.0, floor])
    confidence = np.stack([tracks[lm][1] for lm in js.landmarks], axis=1)
    thighs = [(js.landmarks.index(f"{s}_hip"), js.landmarks.index(f"{s}_knee")) for s in ("left", "right")]
    check_thigh_length(joints3d, thighs, source, f"{motion.metres_per_unit:g} m per file unit (BVH)")
    fps = file_fps(motion.frame_time)
    sel = time_window(len(joints3d), fps, start, duration, source)
    return Observations(fps=fps, joint_set=js.name, joints3d=joints3d[sel], joints2d=None,
                        confidence=confidence[sel], source=source)
