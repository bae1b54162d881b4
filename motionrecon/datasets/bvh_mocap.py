"""BVH motion capture as `Observations`: a BVH skeleton mapped onto body landmarks.

`load_bvh(path)` reads the file with `motionrecon.datasets.bvh.read_bvh`, decides how its rig is
read with `motionrecon.datasets.bvh_rig.decide_rig` (joint roles by joint map, name or tree; up
axis from the motion; unit from the leg length; leading calibration frames skipped), and returns
"h36m17" observations (the layout every BVH skeleton can fill) in metres, world z-up, ground
z = 0, at the file's frame rate. What was decided is in `Observations.metadata` (see
`reading_metadata`), with a one-line `summary`.

Landmarks that are not one joint:
- thorax: the thorax role's joint, or the mean of its joints (by the tree: where the two arm
  chains start).
- spine: the point at the template body's fraction (its `spine` site is half way from pelvis to
  chest) of the way along the joint chain from the pelvis to the thorax, by arc length, per frame.
- head_top: the joint map's "head_top", else the descendant of the head joint (joint or End Site)
  highest above it (median over the clip), when at least 5 cm above it; otherwise (e.g. Bandai
  Namco's rig, whose head End Site has no length) it is estimated from the thorax through the
  head joint, as far as the template body's thorax-to-head-top distance scaled by the leg length
  (`estimated_head_top`), at confidence 0.5.
- nose: from the thorax along the thorax-to-head-top line and the head's forward direction, in
  the template body's proportions (nose at the head centre's height, one head radius in front of
  it). The head's forward direction is a fixed direction in the head joint's frame: the mean over
  the clip of the body's facing direction (from the hips) seen from the head joint; or the rest
  pose's facing direction when the rest pose stands upright and agrees with that mean within 60
  degrees (`head_forward`). With an estimated head top the nose has confidence 0.5 too.

Ground. The floor is placed at z = 0 from the lowest foot points: per frame the lowest of the
ankles and everything below them in the skeleton (toe joints, End Sites); the 5th percentile of
that over the clip (robust to a few glitches below the floor), lowered by the height at which
that point sits when the foot is flat: an ankle 8 cm above the floor minus the drop from ankle to
the lowest point of the lower foot (median over the clip; 0 for a rig whose toe End Sites touch
the floor, 8 cm for a rig with ankles only).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from motionrecon.body.template import BodyShape
from motionrecon.datasets.bvh import BvhMotion, read_bvh, rest_positions
from motionrecon.datasets.bvh_rig import (SIDES, UNIT_NAMES, JointMap, RigDecision, ancestors, axes_to_world,
                                          common_ancestor, decide_rig, descendants, joint_map_from_dict, point,
                                          read_joint_map)
from motionrecon.datasets.common import check_thigh_length, time_window
from motionrecon.errors import InputError
from motionrecon.observations import Observations
from motionrecon.skeleton import get_joint_set

# Height of the ankle joint above the floor when the foot is flat, metres (as the AIST++ reader).
ANKLE_HEIGHT_M = 0.08
FLOOR_PERCENTILE = 5.0
HEAD_TOP_MIN_RISE_M = 0.05
# The rest pose stands upright when pelvis-to-head is within this cosine of the up axis.
STANDING_REST_COSINE = 0.8
REST_FACING_MAX_DEGREES = 60.0


# --------------------------------------------------------------------------- geometry helpers

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


def facing(positions: np.ndarray, roles: dict[str, tuple[int, ...]]) -> np.ndarray:
    """[T, 3] horizontal unit direction the hips face (world z-up): left hip - right hip turned by -90 degrees."""
    left = point(positions, roles["left_hip"]) - point(positions, roles["right_hip"])
    return _unit(np.cross(left, [0.0, 0.0, 1.0]) * np.array([1.0, 1.0, 0.0]))


def rest_stands_upright(rest: np.ndarray, roles: dict[str, tuple[int, ...]]) -> bool:
    """Whether the rest pose [J, 3] (world z-up) has its head above its pelvis (within `STANDING_REST_COSINE`)."""
    d = point(rest[None], roles["head"])[0] - point(rest[None], roles["pelvis"])[0]
    return bool(d[2] >= STANDING_REST_COSINE * np.linalg.norm(d) > 0)


def head_forward(rotations: np.ndarray, body_facing: np.ndarray, rest_facing: np.ndarray | None) -> np.ndarray:
    """[T, 3] the head's forward direction: a fixed direction in the head joint's frame, turned by its rotation.

    The fixed direction is the mean over frames of `body_facing` seen from the head joint; or, when the
    rest pose stands upright and its facing direction is within `REST_FACING_MAX_DEGREES` of that mean, the
    rest pose's facing direction (the rig's joint frames are then the world's at rest, as in CMU's or
    Mixamo's rigs, and a head that turns during the clip does not bias it).

    Args:
      rotations: [T, 3, 3] world orientation of the head joint.
      body_facing: [T, 3] the body's facing direction per frame.
      rest_facing: [3] the rest pose's facing direction when the rest pose stands upright, else None.
    """
    local = _unit(np.einsum("tji,tj->ti", rotations, body_facing).mean(axis=0))
    if rest_facing is not None and float(local @ rest_facing) >= np.cos(np.deg2rad(REST_FACING_MAX_DEGREES)):
        local = rest_facing
    return np.einsum("tij,j->ti", rotations, local)


def head_top_joint(positions: np.ndarray, parents: tuple[int, ...], head: int) -> int | None:
    """The descendant of `head` highest above it (median over frames of z difference) if >= 5 cm, else None."""
    below = descendants(parents, head)
    if not below:
        return None
    rise = [float(np.median(positions[:, k, 2] - positions[:, head, 2])) for k in below]
    best = int(np.argmax(rise))
    return below[best] if rise[best] >= HEAD_TOP_MIN_RISE_M else None


# --------------------------------------------------------------------------- landmarks and floor

def estimated_head_top(thorax: np.ndarray, head: np.ndarray, leg_m: float) -> np.ndarray:
    """[T, 3] a head top where the rig has none: from the thorax [T, 3] through the head joint [T, 3], as far as
    the template body's thorax-to-head-top distance scaled by the leg (hip-knee-ankle, metres) to the template's."""
    shape = BodyShape()
    reach = (shape.thorax_to_head + shape.radii()["head"]) * leg_m / (shape.thigh + shape.shin)
    return thorax + reach * _unit(head - thorax)


def landmark_tracks(positions: np.ndarray, rotations: np.ndarray, parents: tuple[int, ...],
                    roles: dict[str, tuple[int, ...]], head_top: np.ndarray | None, rest_facing: np.ndarray | None,
                    leg_m: float, source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Body landmark -> (positions [T, 3] metres, confidence [T]), world z-up (ground not yet placed).

    Args:
      positions, rotations: [T, J, 3] and [T, J, 3, 3] world joint positions and orientations, z-up, metres.
      parents: [J] parent indices. roles: role -> joint indices (`bvh_rig.RigDecision.roles`).
      head_top: [T, 3] the top of the head, or None (then estimated, `estimated_head_top`, and the head top
        and nose get confidence 0.5). rest_facing: see `head_forward`. leg_m: the leg length, metres.
    """
    T = positions.shape[0]
    ones = np.ones(T)
    tracks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for role, joints in roles.items():
        if role not in ("head", "head_top"):  # the head joint (skull base) gives nose and head top
            tracks[role] = (point(positions, joints), ones)

    pelvis = common_ancestor(parents, roles["pelvis"])
    thorax = common_ancestor(parents, roles["thorax"])
    chain = ancestors(parents, thorax)
    if pelvis not in chain:
        raise InputError(source, "the thorax joint is not below the pelvis joint in the hierarchy")
    inner = [j for j in chain[: chain.index(pelvis)][::-1] if j not in roles["thorax"]]
    points = np.concatenate([tracks["pelvis"][0][:, None], positions[:, inner], tracks["thorax"][0][:, None]], axis=1)
    shape = BodyShape()
    spine_fraction = 0.5 * shape.pelvis_to_chest / (shape.pelvis_to_chest + shape.chest_to_thorax)
    tracks["spine"] = (chain_point(points, spine_fraction), ones)

    head = common_ancestor(parents, roles["head"])
    neck = tracks["thorax"][0]
    confidence = ones
    if head_top is None:
        head_top, confidence = estimated_head_top(neck, positions[:, head], leg_m), np.full(T, 0.5)
    radius = shape.radii()["head"]
    reach = shape.thorax_to_head + radius  # thorax -> head top in the template
    length = np.linalg.norm(head_top - neck, axis=-1, keepdims=True)
    up = _unit(head_top - neck)
    forward = head_forward(rotations[:, head], facing(positions, roles), rest_facing)
    forward = _unit(forward - np.sum(forward * up, axis=-1, keepdims=True) * up)
    nose = neck + length * (shape.thorax_to_head / reach * up + radius / reach * forward)
    tracks["head_top"] = (head_top, confidence)
    tracks["nose"] = (nose, confidence)
    return tracks


def floor_height(positions: np.ndarray, parents: tuple[int, ...], roles: dict[str, tuple[int, ...]],
                 *, ankle_height: float = ANKLE_HEIGHT_M) -> float:
    """Height (metres, z-up) of the floor under the motion [T, J, 3]; see the module docstring."""
    lowest, drops = [], []
    for side in SIDES:
        ankle = point(positions, roles[f"{side}_ankle"])[:, 2]
        feet = list(roles[f"{side}_ankle"]) + descendants(parents, common_ancestor(parents, roles[f"{side}_ankle"]))
        low = np.minimum(positions[:, feet, 2].min(axis=1), ankle)
        lowest.append(low)
        drops.append(ankle - low)
    lowest, drops = np.stack(lowest), np.stack(drops)  # [2, T]
    lower = np.argmin(lowest, axis=0)
    drop = float(np.median(drops[lower, np.arange(lowest.shape[1])]))
    clearance = ankle_height - float(np.clip(drop, 0.0, ankle_height))
    return float(np.percentile(lowest.min(axis=0), FLOOR_PERCENTILE)) - clearance


# --------------------------------------------------------------------------- the reader

def file_fps(frame_time: float) -> float:
    """1 / frame_time, snapped to a whole number within 0.1 % (files print "Frame Time: 0.008333" for 120 fps)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if round(fps) > 0 and abs(fps - round(fps)) <= 1e-3 * fps else fps


def as_joint_map(joint_map, source: str) -> JointMap | None:
    """None, a `JointMap`, a dict (see `bvh_rig.joint_map_from_dict`) or the path of a JSON file."""
    if joint_map is None or isinstance(joint_map, JointMap):
        return joint_map
    if isinstance(joint_map, dict):
        return joint_map_from_dict(joint_map)
    if isinstance(joint_map, (str, Path)):
        return read_joint_map(joint_map)
    raise InputError(source, f"joint_map must be a dict, a JointMap or a JSON file path, "
                             f"got {type(joint_map).__name__}")


@dataclasses.dataclass(frozen=True)
class PosedRig:
    """A BVH file read and placed: every joint in metres, world z-up, floor z = 0, calibration frames dropped.

    Attributes:
      motion: the file as read (file units and axes, every frame).
      rig: the reading decisions (`bvh_rig.decide_rig`; roles index `motion.joint_names`, End Sites included).
      positions: [T, J, 3] joint positions of the kept frames, metres, world z-up, floor at z = 0.
      rotations: [T, J, 3, 3] joint world orientations of the kept frames.
      rest: [J, 3] the rest pose (every channel zero) in the same axes and unit (not placed on the floor).
      floor_m: the floor's height in the file's world (metres, z-up) before it was moved to z = 0.
    """

    motion: BvhMotion
    rig: RigDecision
    positions: np.ndarray
    rotations: np.ndarray
    rest: np.ndarray
    floor_m: float


def read_rig(path: str | Path, joint_map=None) -> PosedRig:
    """Reads a BVH file, decides how to read its rig (`bvh_rig.decide_rig`) and places it on the floor.

    Args:
      path: the .bvh file.
      joint_map: see `load_bvh`.
    """
    path = Path(path)
    source = str(path)
    joint_map = as_joint_map(joint_map, source)
    motion: BvhMotion = read_bvh(path, length_unit=1.0, up="keep", include_end_sites=True)
    skeleton = motion.skeleton
    rig = decide_rig(motion.joint_names, motion.parents, skeleton.is_end_site, skeleton.channels, motion.values,
                     motion.positions, joint_map, source)
    A = axes_to_world(rig.up)
    kept = slice(rig.skipped, None)
    positions = (motion.positions[kept] * rig.metres_per_unit) @ A.T
    floor = floor_height(positions, motion.parents, rig.roles)
    return PosedRig(motion=motion, rig=rig, positions=positions - np.array([0.0, 0.0, floor]),
                    rotations=A @ motion.rotations[kept] @ A.T,
                    rest=(rest_positions(skeleton) * rig.metres_per_unit) @ A.T, floor_m=floor)


def load_bvh(path: str | Path, *, start: float = 0.0, duration: float | None = None, joint_map=None,
             joint_set: str = "h36m17") -> Observations:
    """A BVH file as 3D observations (metres, world z-up, ground z = 0, the file's frame rate).

    Args:
      path: the .bvh file.
      start, duration: seconds, as `common.time_window`, counted from the first frame after
        any skipped calibration frames (the floor uses every kept frame).
      joint_map: roles, up axis and unit the file cannot tell (`bvh_rig.JointMap`, a dict of the same
        keys, or a JSON file path); None decides everything from the file.
      joint_set: the layout to fill; every landmark of it must be one `landmark_tracks` gives.
    Returns:
      Observations whose `metadata` holds the reading decisions (`reading_metadata`).
    """
    source = str(path)
    posed = read_rig(path, joint_map)
    rig, positions, names, parents = posed.rig, posed.positions, posed.motion.joint_names, posed.motion.parents
    roles = rig.roles
    if "head_top" in roles:
        top_joints = roles["head_top"]
    else:
        top = head_top_joint(positions, parents, common_ancestor(parents, roles["head"]))
        top_joints = () if top is None else (top,)
    rest_facing = facing(posed.rest[None], roles)[0] if rest_stands_upright(posed.rest, roles) else None
    tracks = landmark_tracks(positions, posed.rotations, parents, roles,
                             point(positions, top_joints) if top_joints else None, rest_facing, rig.leg_m, source)
    js = get_joint_set(joint_set)
    missing = [lm for lm in js.landmarks if lm not in tracks]
    if missing:
        raise InputError(source, f"a BVH skeleton gives no {', '.join(missing)} for joint set {js.name}")
    joints3d = np.stack([tracks[lm][0] for lm in js.landmarks], axis=1)
    confidence = np.stack([tracks[lm][1] for lm in js.landmarks], axis=1)
    thighs = [(js.landmarks.index(f"{s}_hip"), js.landmarks.index(f"{s}_knee")) for s in SIDES]
    check_thigh_length(joints3d, thighs, source, f"{rig.metres_per_unit:g} m per file unit (BVH, {rig.unit})")
    fps = file_fps(posed.motion.frame_time)
    sel = time_window(len(joints3d), fps, start, duration, source)
    head_height = float(np.percentile(tracks["head_top"][0][:, 2], 95))
    metadata = reading_metadata(rig, names, fps, posed.motion.num_frames, [names[j] for j in top_joints],
                                posed.floor_m, head_height)
    return Observations(fps=fps, joint_set=js.name, joints3d=joints3d[sel], joints2d=None,
                        confidence=confidence[sel], source=source, metadata=metadata)


def reading_metadata(rig: RigDecision, names: tuple[str, ...], fps: float, num_frames: int, head_top: list[str],
                     floor_m: float, head_height_m: float) -> dict:
    """The reading decisions as JSON-ready facts, with a one-line `summary`.

    Keys: format, frames_in_file, fps, up, up_cosine, unit, metres_per_unit, leg_m, joints (role ->
    joint names), joints_by (role -> "joint map" / "name" / "tree"), skipped_frames, skipped_why,
    above_pelvis, above_pelvis_static, head_top (joint names; [] when estimated), floor_m (the floor's height
    in the file's world, metres, before it is moved to z = 0), head_height_m (95th percentile over the
    kept frames of the head top above the floor: about the standing height), tree_problem, summary.
    """
    facts = {
        "format": "bvh", "frames_in_file": int(num_frames), "fps": fps,
        "up": rig.up, "up_cosine": None if rig.up_cosine is None else round(rig.up_cosine, 4),
        "unit": rig.unit, "metres_per_unit": rig.metres_per_unit, "leg_m": round(rig.leg_m, 4),
        "joints": {role: [names[j] for j in joints] for role, joints in rig.roles.items()},
        "joints_by": dict(rig.how),
        "skipped_frames": rig.skipped, "skipped_why": rig.skipped_why,
        "above_pelvis": list(rig.above_pelvis), "above_pelvis_static": rig.above_pelvis_static,
        "head_top": head_top, "floor_m": round(floor_m, 4), "head_height_m": round(head_height_m, 3),
        "tree_problem": rig.tree_problem,
    }
    facts["summary"] = reading_summary(facts)
    return facts


def reading_summary(facts: dict) -> str:
    """One line: up axis, unit, how the joints were found, root above the pelvis, skipped frames."""
    unit = UNIT_NAMES.get(facts["unit"], f"{facts['metres_per_unit']:g} m per unit")
    how = facts["joints_by"]
    counts: dict[str, int] = {}
    for h in how.values():
        counts[h] = counts.get(h, 0) + 1
    major = max(counts, key=counts.get)
    others = [f"{role} by {h} ({'+'.join(facts['joints'][role])})" for role, h in how.items() if h != major]
    joints = f"joints by {major}" + (f", {', '.join(others)}" if others else "")
    top = "estimated" if not facts["head_top"] else "+".join(facts["head_top"])
    parts = [f"up {facts['up']}", f"{unit} (leg {facts['leg_m']:.2f} m, head top {facts['head_height_m']:.2f} m: "
             f"{top})", joints]
    if facts["above_pelvis"]:
        kind = "static root" if facts["above_pelvis_static"] else "root"
        parts.append(f"{kind} {'/'.join(facts['above_pelvis'])} above {'+'.join(facts['joints']['pelvis'])}")
    n = facts["skipped_frames"]
    parts.append(f"skipped frame{'s' if n > 1 else ''} {'0' if n == 1 else f'0-{n - 1}'} ({facts['skipped_why']})"
                 if n else "no frame skipped")
    return ", ".join(parts)
