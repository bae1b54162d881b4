"""What a BVH rig is: which joints play the body's roles, which file axis is up, the length unit,
and which leading frames are calibration poses. Decided from the motion, not from the rest pose
(many rigs, e.g. Bandai Namco's, have a rest pose that is no pose at all).

Every function here works on a posed skeleton: joint positions [T, J, 3] in the file's units and
axes (`motionrecon.datasets.bvh.forward_kinematics`, End Sites included), its parents [J] and
names [J]. `decide_rig` makes every decision and returns a `RigDecision`; `bvh_mocap.load_bvh`
applies it.

Roles. A role ("pelvis", "left_knee", ...; `REQUIRED_ROLES`, `OPTIONAL_ROLES`) is played by one
joint, or by the mean position of several (a joint map may say `"thorax": ["LShoulder",
"RShoulder"]`). In order of precedence a role comes from
  1. the joint map (`--joint-map FILE`, `JointMap`),
  2. the joint names (`roles_by_name`),
  3. the tree (`rig_tree` then `sided_tree_roles`): the pelvis is the first joint below the root
     with three or more child joints; of its subtrees the one with the most joints is the spine,
     the two with the longest chains (by bone length) are the legs. Going up the spine, the first
     joint with three or more child joints is the chest; its two subtrees with the longest chains
     are the arms, the longest of the others holds the head. A limb's chain runs from its branch
     to its farthest end (by bone length); from that end, the first bone at least half as long as
     the chain's longest bone, and the long bone above it, are shin and thigh (forearm and upper
     arm), which gives ankle, knee, hip (wrist, elbow, shoulder); the joint after the ankle, if its
     bone has a length, is the toe. The head joint is the deepest joint (not End Site) of the head
     chain; the thorax is the mean of the two arm chains' first joints (where the clavicles start).
     Left is told from right by the motion: the feet point forward (toe minus ankle, or the knees'
     bend when there are no toes), left = up x forward.
Bone lengths are medians over the frames of the distance between a joint and its parent, so
position channels on any joint and zero-length bones are fine.

Up axis. Of the six signed file axes, the one along which the head joint lies above the mean of
the two ankles in most of the clip: the largest median over frames of the cosine between the axis
and (head - ankles). Below `UP_MIN_COSINE` (0.75, about 41 degrees) nothing is upright enough
(a crawl, a body lying diagonally) and the file is refused unless the joint map sets "up".

Unit. The leg (median hip-knee plus knee-ankle length) must be a human leg, `LEG_RANGE_M`
(0.55-1.2 m); of the units in `LENGTH_UNITS_M` (metres, centimetres, millimetres, inches, and the CMU
library's unit of 1/0.45 inch = 0.05644 m), the one that makes it so is used. The range is
narrower than a factor 2.22 (inches to CMU units, the closest pair), so at most one unit fits.

Calibration frames. A leading run of frames in a T-pose (both arms straight and sideways,
`is_t_pose`) or in the bind pose (every rotation channel below the root zero) is skipped when
it is shorter than half the clip: the motion starts after it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from motionrecon.datasets.bvh import LENGTH_UNITS_M
from motionrecon.errors import InputError

SIDES = ("left", "right")
LIMB_PARTS = {"leg": ("hip", "knee", "ankle"), "arm": ("shoulder", "elbow", "wrist")}
REQUIRED_ROLES: tuple[str, ...] = (
    "pelvis", "thorax", "head",
    *(f"{side}_{part}" for side in SIDES for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")),
)
OPTIONAL_ROLES: tuple[str, ...] = ("left_toe", "right_toe", "head_top")
ALL_ROLES: tuple[str, ...] = REQUIRED_ROLES + OPTIONAL_ROLES
JOINT_MAP_SETTINGS: tuple[str, ...] = ("up", "unit")

UNIT_NAMES = {"m": "metres", "cm": "centimetres", "mm": "millimetres", "in": "inches", "cmu": "CMU units"}
# A human leg, hip to ankle (thigh + shin), metres: about 0.45-0.5 of the height, here 1.2-2.4 m tall.
LEG_RANGE_M: tuple[float, float] = (0.55, 1.2)
UP_AXES: tuple[str, ...] = ("+x", "-x", "+y", "-y", "+z", "-z")
# Two axes cannot both reach a median cosine of 0.75 (0.75² + 0.75² > 1), so the axis found is unique.
UP_MIN_COSINE = 0.75
# A bone at least this fraction of its chain's longest is a long bone (thigh, shin, upper arm, forearm).
LONG_BONE_FRACTION = 0.5
# T-pose: each arm straight (shoulder-wrist at least this fraction of upper arm + forearm) and
# pointing sideways (cosine with the outward shoulder line at least T_POSE_SIDEWAYS).
T_POSE_STRAIGHT = 0.9
T_POSE_SIDEWAYS = 0.85
BIND_POSE_DEGREES = 1e-6
# Left is told from right when the frames agree this often.
SIDE_MIN_AGREEMENT = 0.8


# --------------------------------------------------------------------------- names

_SIDE_WORDS = {"left": ("left", "l"), "right": ("right", "r")}
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
_NAME_PREFIXES = ("mixamorig", "bip001", "bip01")


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
    if part not in _SIDED_BASES:
        return []
    names = []
    for base in _SIDED_BASES[part]:
        for word in _SIDE_WORDS[side]:
            names += [word + base, base + word]
    names += list(_SIDED_EXTRA.get(part, {}).get(side, ()))
    return names


def roles_by_name(names: tuple[str, ...], is_end_site: tuple[bool, ...]) -> dict[str, tuple[int, ...]]:
    """role -> (joint index,) for every role whose joint the names give (End Sites never play a role)."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if not is_end_site[i]:
            index.setdefault(normalise_name(name), i)
    found = {}
    for role in ALL_ROLES:
        hit = next((index[c] for c in role_candidates(role) if c in index), None)
        if hit is not None:
            found[role] = (hit,)
    return found


# --------------------------------------------------------------------------- the joint map file

@dataclasses.dataclass(frozen=True)
class JointMap:
    """What a user pins down for a rig (`--joint-map FILE`).

    Attributes:
      source: the file (or "joint map" for a dict given in Python).
      roles: role -> joint names whose mean position plays it (End Sites as "<parent>_end").
      up: "+y", "-z", ... (a bare "y" means "+y"), or None to detect it.
      unit: a key of `LENGTH_UNITS_M`, or metres per file unit, or None to detect it.
    """

    source: str
    roles: dict[str, tuple[str, ...]]
    up: str | None = None
    unit: str | float | None = None


def read_joint_map(path: str | Path) -> JointMap:
    """A JSON joint map: {"left_knee": "LKnee", "thorax": ["LClav", "RClav"], "up": "y", "unit": "cm"}."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(str(path), "joint map file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(str(path), f"cannot read the joint map as JSON ({e})") from None
    return joint_map_from_dict(data, str(path))


def joint_map_from_dict(data, source: str = "joint map") -> JointMap:
    """Checks a joint map given as a dict (see `read_joint_map`); InputError naming `source` when malformed."""
    if not isinstance(data, dict):
        raise InputError(source, f"a joint map is a JSON object (role -> joint name), got {type(data).__name__}")
    unknown = sorted(k for k in data if k not in ALL_ROLES and k not in JOINT_MAP_SETTINGS)
    if unknown:
        raise InputError(source, f"unknown keys {unknown}; roles are {', '.join(ALL_ROLES)}, "
                                 f"settings {', '.join(JOINT_MAP_SETTINGS)}")
    roles = {}
    for role in ALL_ROLES:
        if role not in data:
            continue
        value = data[role]
        joints = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else None
        if not joints or not all(isinstance(j, str) and j for j in joints):
            raise InputError(source, f"{role}: expected a joint name or a list of joint names, got {value!r}")
        roles[role] = joints
    up = data.get("up")
    if up is not None:
        up = normalise_up(up, source)
    unit = data.get("unit")
    if unit is not None:
        unit = check_unit(unit, source)
    return JointMap(source, roles, up, unit)


def normalise_up(up, source: str) -> str:
    """"y" / "+y" / "Y" -> "+y"; InputError naming `source` otherwise."""
    text = str(up).strip().lower()
    text = text if text[:1] in "+-" else "+" + text
    if text not in UP_AXES:
        raise InputError(source, f"up must be one of {', '.join(UP_AXES)} (or x, y, z), got {up!r}")
    return text


def check_unit(unit, source: str) -> str | float:
    if isinstance(unit, (int, float)) and not isinstance(unit, bool):
        if not (np.isfinite(unit) and unit > 0):
            raise InputError(source, f"unit must be positive metres per file unit, got {unit}")
        return float(unit)
    if unit not in LENGTH_UNITS_M:
        raise InputError(source, f"unit must be one of {', '.join(LENGTH_UNITS_M)} or metres per file unit, "
                                 f"got {unit!r}")
    return unit


def resolve_joint_map(joint_map: JointMap, names: tuple[str, ...], source: str) -> dict[str, tuple[int, ...]]:
    """role -> joint indices of the names a joint map gives; InputError (naming the map) on a name the file lacks."""
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for role, joints in joint_map.roles.items():
        missing = [j for j in joints if j not in index]
        if missing:
            raise InputError(joint_map.source, f"{role}: {source} has no joint {', '.join(map(repr, missing))}; "
                                               f"its joints: {', '.join(names)}")
        out[role] = tuple(index[j] for j in joints)
    return out


# --------------------------------------------------------------------------- the tree

def children_of(parents: tuple[int, ...]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            out[p].append(j)
    return out


def ancestors(parents: tuple[int, ...], j: int) -> list[int]:
    """[j, parent of j, ..., root]."""
    out = [j]
    while parents[out[-1]] >= 0:
        out.append(parents[out[-1]])
    return out


def descendants(parents: tuple[int, ...], j: int) -> list[int]:
    """Every joint below j (parents come before children in a BVH skeleton)."""
    below = {j}
    for k in range(j + 1, len(parents)):
        if parents[k] in below:
            below.add(k)
    return sorted(below - {j})


def common_ancestor(parents: tuple[int, ...], joints: tuple[int, ...]) -> int:
    """The deepest joint that is `joints` or above every one of them (the joint itself for one joint)."""
    paths = [ancestors(parents, j) for j in joints]
    shared = set(paths[0]).intersection(*paths[1:])
    return next((a for a in paths[0] if a in shared), paths[0][-1])


def bone_lengths(positions: np.ndarray, parents: tuple[int, ...]) -> np.ndarray:
    """[J] median over frames of |p_j - p_parent(j)| (file units; 0 for roots). positions: [T, J, 3]."""
    out = np.zeros(len(parents))
    for j, p in enumerate(parents):
        if p >= 0:
            out[j] = float(np.median(np.linalg.norm(positions[:, j] - positions[:, p], axis=-1)))
    return out


def _chain_length_below(children: list[list[int]], bones: np.ndarray, j: int) -> float:
    """Longest sum of bone lengths from j down to any end below it."""
    return max((bones[c] + _chain_length_below(children, bones, c) for c in children[j]), default=0.0)


def chain_to_farthest_end(children: list[list[int]], bones: np.ndarray, start: int) -> list[int]:
    """[start, ..., end]: down the tree, always into the child with the longest chain below it."""
    chain = [start]
    while children[chain[-1]]:
        chain.append(max(children[chain[-1]], key=lambda c: bones[c] + _chain_length_below(children, bones, c)))
    return chain


@dataclasses.dataclass(frozen=True)
class LimbChain:
    """A leg or an arm found in the tree (file indices).

    Attributes:
      joints: from the joint below the branch (pelvis or chest) to the farthest end.
      root, middle, end: hip, knee, ankle (or shoulder, elbow, wrist).
      tip: the joint after `end` on the chain when its bone has a length (the toe), else None.
    """

    joints: tuple[int, ...]
    root: int
    middle: int
    end: int
    tip: int | None


def limb_chain(children: list[list[int]], bones: np.ndarray, first: int, what: str,
               names: tuple[str, ...]) -> LimbChain:
    """The limb whose chain starts at `first`; ValueError when it has no two long consecutive bones."""
    chain = chain_to_farthest_end(children, bones, first)
    longest = max(bones[j] for j in chain)
    long = [bones[j] >= LONG_BONE_FRACTION * longest and bones[j] > 0 for j in chain]
    # From the far end: the first long bone (chain[k-1] -> chain[k]), then the first bone above it with a
    # length (ending at chain[i]), which must be long too and must not start at the branch itself.
    for k in range(len(chain) - 1, 0, -1):
        if not long[k]:
            continue
        i = next((i for i in range(k - 1, -1, -1) if bones[chain[i]] > 0), None)
        if i is None or i == 0 or not long[i]:
            break
        tip = chain[k + 1] if k + 1 < len(chain) and bones[chain[k + 1]] > 0 else None
        return LimbChain(tuple(chain), root=chain[i - 1], middle=chain[k - 1], end=chain[k], tip=tip)
    long_bones = "thigh and shin" if what == "leg" else "upper arm and forearm"
    raise ValueError(f"no two long bones ({long_bones}) on the {what} chain from {names[first]}")


@dataclasses.dataclass(frozen=True)
class RigTree:
    """The body found in the tree alone (file indices; legs and arms not yet told left from right).

    Attributes:
      pelvis, chest, head: joints.
      legs, arms: two `LimbChain` each, in no particular order (an arm chain's first joint is where its
        clavicle starts; their mean is the thorax).
    """

    pelvis: int
    legs: tuple[LimbChain, LimbChain]
    chest: int
    arms: tuple[LimbChain, LimbChain]
    head: int


def _branch_point(children: list[list[int]], is_end_site: tuple[bool, ...], names: tuple[str, ...], start: int,
                  what: str) -> int:
    """The first joint at or below `start`, down single-child joints, with three or more child joints."""
    j = start
    while True:
        kids = [c for c in children[j] if not is_end_site[c]]
        if len(kids) >= 3:
            return j
        if len(kids) != 1:
            raise ValueError(f"no {what}: {names[j]} has {len(kids)} child joints where 1 (going down) or "
                             f"3 or more were expected")
        j = kids[0]


def rig_tree(names: tuple[str, ...], parents: tuple[int, ...], is_end_site: tuple[bool, ...],
             bones: np.ndarray) -> RigTree:
    """Pelvis, legs, chest, arms and head from the tree and the bone lengths [J]; ValueError saying what is missing."""
    children = children_of(parents)
    roots = [j for j, p in enumerate(parents) if p < 0]
    root = max(roots, key=lambda r: len(descendants(parents, r)))
    pelvis = _branch_point(children, is_end_site, names, root, "pelvis (a joint with the legs and the spine below it)")
    kids = [c for c in children[pelvis] if not is_end_site[c]]
    spine = max(kids, key=lambda c: len(descendants(parents, c)))
    leg_starts = sorted((c for c in kids if c != spine),
                        key=lambda c: bones[c] + _chain_length_below(children, bones, c), reverse=True)[:2]
    legs = tuple(limb_chain(children, bones, c, "leg", names) for c in leg_starts)
    chest = _branch_point(children, is_end_site, names, spine, "chest (a joint with the arms and the neck above it)")
    branches = sorted((c for c in children[chest] if not is_end_site[c]),
                      key=lambda c: bones[c] + _chain_length_below(children, bones, c), reverse=True)
    arm_starts, rest = branches[:2], branches[2:]
    arms = tuple(limb_chain(children, bones, c, "arm", names) for c in arm_starts)
    head_chain = chain_to_farthest_end(children, bones, rest[0])
    head = [j for j in head_chain if not is_end_site[j]][-1]
    return RigTree(pelvis, legs, chest, arms, head)


def forward_directions(world: np.ndarray, legs: tuple[LimbChain, ...]) -> np.ndarray:
    """[T, 3] horizontal unit vectors the body faces per frame (world z-up), from the feet; NaN where unknown.

    Toes point forward of the ankles (the two feet's horizontal toe-minus-ankle directions, summed);
    without toes, bent knees point forward of the hip-ankle line (frames where a knee sits at least
    2 % of the leg off that line).
    """
    flat = np.array([1.0, 1.0, 0.0])
    if all(leg.tip is not None for leg in legs):
        vectors = [(world[:, leg.tip] - world[:, leg.end]) * flat for leg in legs]
        weights = [np.ones(world.shape[0]) for _ in legs]
    else:
        vectors, weights = [], []
        for leg in legs:
            bend = (world[:, leg.middle] - 0.5 * (world[:, leg.root] + world[:, leg.end])) * flat
            length = np.linalg.norm(world[:, leg.root] - world[:, leg.end], axis=-1)
            vectors.append(bend)
            weights.append((np.linalg.norm(bend, axis=-1) >= 0.02 * length).astype(float))
    total = sum(w[:, None] * v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
                for v, w in zip(vectors, weights))
    norm = np.linalg.norm(total, axis=-1, keepdims=True)
    return np.where(norm > 0.5, total / np.maximum(norm, 1e-12), np.nan)


def sided_tree_roles(tree: RigTree, world: np.ndarray) -> dict[str, tuple[int, ...]]:
    """role -> (joint,) from the tree, legs and arms told left from right by the motion (world z-up).

    Per frame, left = up x forward (`forward_directions`); a limb is the left one when it lies to the
    left of the other in at least `SIDE_MIN_AGREEMENT` of the frames where the feet give a direction.
    ValueError when they give none, or the frames disagree.
    """
    forward = forward_directions(world, tree.legs)
    known = ~np.isnan(forward[:, 0])
    if known.sum() < 1:
        raise ValueError("cannot tell left from right: the feet point nowhere (no toes, straight knees)")
    left = np.cross([0.0, 0.0, 1.0], forward[known])
    roles: dict[str, tuple[int, ...]] = {"pelvis": (tree.pelvis,), "head": (tree.head,)}
    for kind, pair in (("leg", tree.legs), ("arm", tree.arms)):
        a, b = pair
        votes = float(np.mean(np.sum((world[known, a.root] - world[known, b.root]) * left, axis=-1) > 0))
        if max(votes, 1.0 - votes) < SIDE_MIN_AGREEMENT:
            raise ValueError(f"cannot tell the left {kind} from the right: it is on the left in {100 * votes:.0f} % "
                             "of the frames")
        for side, limb in zip(SIDES, (a, b) if votes > 0.5 else (b, a)):
            for part, j in zip(LIMB_PARTS[kind], (limb.root, limb.middle, limb.end)):
                roles[f"{side}_{part}"] = (j,)
            if kind == "leg" and limb.tip is not None:
                roles[f"{side}_toe"] = (limb.tip,)
            if kind == "arm":
                roles["thorax"] = roles.get("thorax", ()) + (limb.joints[0],)  # where the clavicles start
    return roles


# --------------------------------------------------------------------------- up axis, unit, calibration

def axes_to_world(up: str) -> np.ndarray:
    """[3, 3] rotation R taking file axes to the world (z up): world = R @ file, R @ up = +z.

    "+y" is the BVH norm, (x, y, z) -> (x, -z, y), a rotation of +90 degrees about x; "+z" is the
    identity; for the others the rows are (u, up x u, up) with u the first file axis across `up`.
    """
    if up == "+y":
        return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    axis = np.zeros(3)
    axis["xyz".index(up[1])] = 1.0 if up[0] == "+" else -1.0
    u = np.eye(3)[next(i for i in range(3) if axis[i] == 0)]
    return np.stack([u, np.cross(axis, u), axis])


def point(positions: np.ndarray, joints: tuple[int, ...]) -> np.ndarray:
    """[T, 3] mean position of the joints playing a role."""
    return positions[:, list(joints)].mean(axis=1)


def detect_up(head: np.ndarray, ankles: np.ndarray, source: str) -> tuple[str, float]:
    """(up axis, its median cosine): the signed file axis along which the head [T, 3] is above the ankles [T, 3]."""
    v = head - ankles
    unit = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    scores = {}
    for up in UP_AXES:
        scores[up] = float(np.median(unit[:, "xyz".index(up[1])] * (1.0 if up[0] == "+" else -1.0)))
    best = max(scores, key=scores.get)
    if scores[best] < UP_MIN_COSINE:
        shown = ", ".join(f"{a} {s:.2f}" for a, s in scores.items())
        raise InputError(source, f"cannot tell the up axis: the head is not above the ankles along any file axis "
                                 f"in most frames (median cosine {shown}); set \"up\" in --joint-map")
    return best, scores[best]


def leg_length(positions: np.ndarray, roles: dict[str, tuple[int, ...]]) -> float:
    """Hip-knee plus knee-ankle length, medians over the frames of positions [T, J, 3], mean of both sides."""
    def median_distance(a: str, b: str) -> float:
        return float(np.median(np.linalg.norm(point(positions, roles[a]) - point(positions, roles[b]), axis=-1)))

    return float(np.mean([median_distance(f"{s}_hip", f"{s}_knee") + median_distance(f"{s}_knee", f"{s}_ankle")
                          for s in SIDES]))


def detect_unit(leg_file_units: float, source: str) -> str:
    """The key of `LENGTH_UNITS_M` that makes a leg (hip to ankle) of `leg_file_units` human (`LEG_RANGE_M`)."""
    lo, hi = LEG_RANGE_M
    fits = [u for u, m in LENGTH_UNITS_M.items() if lo <= leg_file_units * m <= hi]
    if len(fits) != 1:
        shown = ", ".join(f"{u} {leg_file_units * m:.3g} m" for u, m in LENGTH_UNITS_M.items())
        raise InputError(source, f"cannot tell the length unit: a leg (hip to ankle) of {leg_file_units:.4g} file "
                                 f"units is {shown}, and a human leg is {lo}-{hi} m; set \"unit\" in --joint-map")
    return fits[0]


def is_t_pose(world: np.ndarray, roles: dict[str, tuple[int, ...]]) -> np.ndarray:
    """[T] bool: both arms straight and pointing sideways, out along the shoulder line (world [T, J, 3])."""
    out = np.ones(world.shape[0], dtype=bool)
    for side, other in (("left", "right"), ("right", "left")):
        s, e, w = (point(world, roles[f"{side}_{p}"]) for p in ("shoulder", "elbow", "wrist"))
        reach = np.linalg.norm(w - s, axis=-1)
        length = np.linalg.norm(e - s, axis=-1) + np.linalg.norm(w - e, axis=-1)
        outward = s - point(world, roles[f"{other}_shoulder"])
        cos = np.sum((w - s) * outward, axis=-1) / np.maximum(reach * np.linalg.norm(outward, axis=-1), 1e-12)
        out &= (reach >= T_POSE_STRAIGHT * length) & (cos >= T_POSE_SIDEWAYS)
    return out


def is_bind_pose(channels: tuple[tuple[str, ...], ...], parents: tuple[int, ...], values: np.ndarray) -> np.ndarray:
    """[T] bool: every rotation channel of every joint below a root is zero (the rig's rest pose)."""
    below_roots = tuple(j for j, p in enumerate(parents) if p >= 0)
    columns = channel_columns(channels, below_roots, "rotation")
    if not columns:
        return np.zeros(values.shape[0], dtype=bool)
    return np.all(np.abs(values[:, columns]) <= BIND_POSE_DEGREES, axis=1)


def leading_run(flags: np.ndarray) -> int:
    """Length of the run of True at the start of `flags` [T], or 0 unless it is shorter than half of T."""
    n = int(np.argmin(flags)) if not flags.all() else len(flags)
    return n if 0 < n < len(flags) / 2 else 0


# --------------------------------------------------------------------------- every decision at once

@dataclasses.dataclass(frozen=True)
class RigDecision:
    """How a BVH file is read (file indices, before any frame is skipped).

    Attributes:
      roles: role -> joint indices whose mean position plays it.
      how: role -> "joint map", "name" or "tree".
      up, up_cosine: the file's up axis ("+y", ...) and how upright the clip is along it (median cosine,
        1 = head always straight above the ankles), or cosine None when the joint map set it.
      unit: a key of `LENGTH_UNITS_M`, or "joint map" for a number given there; metres_per_unit its size.
      leg_m: the leg (hip-knee + knee-ankle) in metres.
      skipped: number of leading calibration frames; skipped_why: "T-pose", "bind pose" or "".
      above_pelvis: names of the joints above the pelvis (e.g. a dummy root); static: whether they never move.
      tree_problem: why the tree gave no roles ("" when it did).
    """

    roles: dict[str, tuple[int, ...]]
    how: dict[str, str]
    up: str
    up_cosine: float | None
    unit: str
    metres_per_unit: float
    leg_m: float
    skipped: int
    skipped_why: str
    above_pelvis: tuple[str, ...]
    above_pelvis_static: bool
    tree_problem: str


def _pick(role: str, *sources: tuple[str, dict]) -> tuple[tuple[int, ...], str] | None:
    for how, roles in sources:
        if role in roles:
            return roles[role], how
    return None


def decide_rig(names: tuple[str, ...], parents: tuple[int, ...], is_end_site: tuple[bool, ...],
               channels: tuple[tuple[str, ...], ...], values: np.ndarray, positions: np.ndarray,
               joint_map: JointMap | None, source: str) -> RigDecision:
    """Every reading decision for a posed BVH skeleton (see the module docstring).

    Args:
      names, parents, is_end_site, channels: the skeleton, End Sites included.
      values: [T, C] the MOTION values. positions: [T, J, 3] forward kinematics, file units and axes.
      joint_map: what the user pinned down, or None.
      source: the file, for errors.
    """
    given = resolve_joint_map(joint_map, names, source) if joint_map is not None else {}
    named = roles_by_name(names, is_end_site)
    bones = bone_lengths(positions, parents)
    try:
        tree, tree_problem = rig_tree(names, parents, is_end_site, bones), ""
    except ValueError as e:
        tree, tree_problem = None, str(e)

    # Up: the head and the two ankles, sides not needed.
    head = _pick("head", ("joint map", given), ("name", named))
    ankles = [_pick(f"{s}_ankle", ("joint map", given), ("name", named)) for s in SIDES]
    if tree is not None:
        head = head or ((tree.head,), "tree")
        if None in ankles:
            ankles = [((leg.end,), "tree") for leg in tree.legs]
    if head is None or None in ankles:
        _missing_roles(names, {**named, **given}, tree_problem, source)
    if joint_map is not None and joint_map.up is not None:
        up, up_cosine = joint_map.up, None
    else:
        up, up_cosine = detect_up(point(positions, head[0]), 0.5 * (point(positions, ankles[0][0])
                                                                     + point(positions, ankles[1][0])), source)
    world = positions @ axes_to_world(up).T

    sided: dict[str, tuple[int, ...]] = {}
    if tree is not None:
        try:
            sided = sided_tree_roles(tree, world)
        except ValueError as e:
            tree_problem = str(e)
    roles, how = {}, {}
    for role in ALL_ROLES:
        hit = _pick(role, ("joint map", given), ("name", named), ("tree", sided))
        if hit is not None:
            roles[role], how[role] = hit
    if any(r not in roles for r in REQUIRED_ROLES):
        _missing_roles(names, roles, tree_problem, source)

    leg = leg_length(positions, roles)
    if joint_map is not None and joint_map.unit is not None:
        unit = joint_map.unit if isinstance(joint_map.unit, str) else "joint map"
        metres = LENGTH_UNITS_M[joint_map.unit] if isinstance(joint_map.unit, str) else float(joint_map.unit)
    else:
        unit = detect_unit(leg, source)
        metres = LENGTH_UNITS_M[unit]

    t_pose = leading_run(is_t_pose(world, roles))
    bind = leading_run(is_bind_pose(channels, parents, values))
    skipped, why = (t_pose, "T-pose") if t_pose >= bind else (bind, "bind pose")
    pelvis = common_ancestor(parents, roles["pelvis"])
    above = tuple(ancestors(parents, pelvis)[1:])
    static = bool(above) and bool(np.all(np.ptp(values[:, channel_columns(channels, above)], axis=0) == 0))
    return RigDecision(roles=roles, how=how, up=up, up_cosine=up_cosine, unit=unit, metres_per_unit=metres,
                       leg_m=leg * metres, skipped=skipped, skipped_why=why if skipped else "",
                       above_pelvis=tuple(names[j] for j in above), above_pelvis_static=static,
                       tree_problem=tree_problem)


def channel_columns(channels: tuple[tuple[str, ...], ...], joints: tuple[int, ...], kind: str = "") -> list[int]:
    """Columns of the MOTION values that hold the channels of `joints` (only "rotation" or "position" ones
    when `kind` says so)."""
    starts = np.concatenate([[0], np.cumsum([len(c) for c in channels])])
    return [int(starts[j]) + k for j in joints for k, c in enumerate(channels[j]) if c.endswith(kind)]


def _missing_roles(names, found: dict, tree_problem: str, source: str):
    missing = [r for r in REQUIRED_ROLES if r not in found]
    shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
    tree = f" nor by the tree ({tree_problem})" if tree_problem else " nor by the tree"
    raise InputError(source, f"cannot find the BVH joints for {', '.join(missing)} by name{tree}; give them with "
                             f"--joint-map FILE (JSON role -> joint name, see docs/mocap-formats.md); "
                             f"the file's joints: {shown}")
