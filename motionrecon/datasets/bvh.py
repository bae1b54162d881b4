"""BVH (Biovision Hierarchy) reader: hierarchy, motion, and forward kinematics.

Reads any BVH file: one or more ROOTs, joints with any number of channels in
any order (position channels on any joint, rotation channels in any of the six
axis orders, even interleaved with position channels), End Sites, and any
length unit. Forward kinematics follows the conventions of the original
format and of Blender's importer:

  local rotation  R = R_c1 @ R_c2 @ R_c3 for the rotation channels in the
                  order listed (e.g. "Zrotation Xrotation Yrotation" gives
                  Rz @ Rx @ Ry), angles in degrees;
  local position  OFFSET, with each axis that has a position channel replaced
                  by that channel's value (so a ROOT's Xposition/Yposition/
                  Zposition is its position in the file's world);
  world           R_w = R_parent_w @ R,  p_w = p_parent_w + R_parent_w @ position.

`read_bvh` returns joint positions in metres in the project's world (z up):
files are Y-up by default (`up="y"`), mapped by (x, y, z) -> (x, -z, y).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from motionrecon.errors import InputError

# Metres per file unit; "cmu": the CMU library's BVH files (1/0.45 inch = 0.05644 m).
LENGTH_UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "cmu": 0.0254 / 0.45}
_CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_CHANNEL_BY_LOWER = {c.lower(): c for c in _CHANNEL_NAMES}
# Rest-pose extent (file units) that `length_unit="auto"` maps to each unit.
_AUTO_UNIT_RANGES = (("m", 0.2, 4.0), ("cm", 20.0, 400.0), ("mm", 400.0, 4000.0))


@dataclasses.dataclass(frozen=True)
class BvhSkeleton:
    """The HIERARCHY section. End Sites are joints too (`is_end_site`), with no channels.

    Attributes:
      names: [J] joint names (End Sites: "<parent>_end", made unique).
      parents: [J] parent index, -1 for a ROOT; parents come before children.
      offsets: [J, 3] OFFSET of each joint, file units and axes.
      channels: [J] channel names per joint, normalised to e.g. "Xposition", "Zrotation".
      is_end_site: [J] whether the joint is an End Site.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    is_end_site: tuple[bool, ...]

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def channel_slices(self) -> list[slice]:
        """Where each joint's channels sit in a frame row of the MOTION section."""
        out, start = [], 0
        for c in self.channels:
            out.append(slice(start, start + len(c)))
            start += len(c)
        return out


@dataclasses.dataclass(frozen=True)
class BvhMotion:
    """A BVH file read and posed.

    Attributes:
      source: the file it came from.
      skeleton: the hierarchy (file units and axes).
      frame_time: seconds per frame.
      values: [T, C] the raw MOTION values.
      joint_names: [J] names of the joints in `positions` (End Sites only if asked for).
      parents: [J] parent index within `joint_names`, -1 for roots.
      positions: [T, J, 3] joint world positions, metres, project world (z up unless up="keep").
      rotations: [T, J, 3, 3] joint world orientations in the same axes.
      metres_per_unit: the length unit used.
    """

    source: str
    skeleton: BvhSkeleton
    frame_time: float
    values: np.ndarray
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    positions: np.ndarray
    rotations: np.ndarray
    metres_per_unit: float

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return self.values.shape[0]


def read_bvh(path, *, length_unit="auto", up: str = "y", include_end_sites: bool = False) -> BvhMotion:
    """Reads a BVH file and computes joint world positions [T, J, 3] in metres, world z up.

    Args:
      path: the .bvh file.
      length_unit: a key of `LENGTH_UNITS_M` ("m", "cm", "mm", "in", "cmu"), metres per file unit, or
        "auto" (from the rest-pose size: a 0.2-4 extent is metres, 20-400
        centimetres, 400-4000 millimetres; anything else asks for the unit).
      up: the file's up axis, "y" (the BVH norm) or "z", converted to the
        project's z up; or "keep" to return the file's own axes.
      include_end_sites: also return End Site positions (e.g. head top, toe tips).
    """
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), f"cannot read as text ({e})") from None
    skeleton, frame_time, values = parse_bvh(text, source=str(path))
    scale = _metres_per_unit(skeleton, length_unit, str(path))
    positions, rotations = forward_kinematics(skeleton, values)
    positions = positions * scale
    axes = _axes_to_world(up, str(path))
    positions = positions @ axes.T
    rotations = axes @ rotations @ axes.T
    keep = [j for j in range(len(skeleton.names)) if include_end_sites or not skeleton.is_end_site[j]]
    remap = {j: i for i, j in enumerate(keep)}
    parents = tuple(remap.get(skeleton.parents[j], -1) for j in keep)
    return BvhMotion(
        source=str(path),
        skeleton=skeleton,
        frame_time=frame_time,
        values=values,
        joint_names=tuple(skeleton.names[j] for j in keep),
        parents=parents,
        positions=positions[:, keep],
        rotations=rotations[:, keep],
        metres_per_unit=scale,
    )


def parse_bvh(text: str, source: str = "<string>") -> tuple[BvhSkeleton, float, np.ndarray]:
    """Parses BVH text into (skeleton, frame_time in seconds, values [T, C])."""
    tokens = _tokenize(text)
    pos = 0

    def fail(line: int, problem: str):
        raise InputError(source, f"line {line}: {problem}")

    def take(expected: str | None = None, what: str | None = None) -> tuple[str, int]:
        """Next token; with `expected`, it must be that keyword (case-insensitive)."""
        nonlocal pos
        if pos >= len(tokens):
            last_line = tokens[-1][1] if tokens else 1
            fail(last_line, f"file ends early (expected {expected or what or 'more'})")
        tok, line = tokens[pos]
        if expected is not None and tok.upper() != expected.upper():
            fail(line, f"expected '{expected}', found '{tok}'")
        pos += 1
        return tok, line

    def take_float(what: str) -> float:
        tok, line = take()
        try:
            return float(tok)
        except ValueError:
            fail(line, f"expected a number for {what}, found '{tok}'")

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    is_end: list[bool] = []

    def parse_joint(parent: int, keyword_line: int) -> None:
        nonlocal pos
        # The name is the rest of the keyword's line (names may hold spaces or colons).
        name_tokens = []
        while pos < len(tokens) and tokens[pos][1] == keyword_line and tokens[pos][0] != "{":
            name_tokens.append(tokens[pos][0])
            pos += 1
        if not name_tokens:
            fail(keyword_line, "joint without a name")
        index = len(names)
        names.append(" ".join(name_tokens))
        parents.append(parent)
        is_end.append(False)
        take("{")
        tok, line = take("OFFSET")
        offsets.append([take_float("OFFSET") for _ in range(3)])
        tok, line = take("CHANNELS")
        count_tok, count_line = take()
        if not count_tok.isdigit():
            fail(count_line, f"expected a channel count, found '{count_tok}'")
        chans = []
        for _ in range(int(count_tok)):
            ch, ch_line = take()
            if ch.lower() not in _CHANNEL_BY_LOWER:
                fail(ch_line, f"unknown channel '{ch}' (known: {', '.join(_CHANNEL_NAMES)})")
            chans.append(_CHANNEL_BY_LOWER[ch.lower()])
        channels.append(tuple(chans))
        while True:
            tok, line = take(what="JOINT, End Site or }")
            upper = tok.upper()
            if upper == "}":
                return
            if upper == "JOINT":
                parse_joint(index, line)
            elif upper == "END":
                take("Site")
                take("{")
                take("OFFSET")
                offset = [take_float("End Site OFFSET") for _ in range(3)]
                take("}")
                names.append(_unique(f"{names[index]}_end", names))
                parents.append(index)
                offsets.append(offset)
                channels.append(())
                is_end.append(True)
            else:
                fail(line, f"expected JOINT, End Site or '}}', found '{tok}'")

    take("HIERARCHY")
    while pos < len(tokens) and tokens[pos][0].upper() == "ROOT":
        _, line = take("ROOT")
        parse_joint(-1, line)
    if not names:
        fail(tokens[pos][1] if pos < len(tokens) else 1, "no ROOT joint in HIERARCHY")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(source, f"joint names are not unique: {dup}")
    take("MOTION")
    take("Frames:")
    n_tok, n_line = take()
    if not n_tok.isdigit():
        fail(n_line, f"expected the number of frames, found '{n_tok}'")
    n_frames = int(n_tok)
    take("Frame")
    take("Time:")
    frame_time = take_float("Frame Time")
    if not np.isfinite(frame_time) or frame_time <= 0:
        fail(n_line + 1, f"Frame Time must be positive, got {frame_time}")

    skeleton = BvhSkeleton(tuple(names), tuple(parents), np.array(offsets, dtype=np.float64),
                           tuple(channels), tuple(is_end))
    n_channels = skeleton.num_channels
    data = tokens[pos:]
    if len(data) != n_frames * n_channels:
        got_rows = len(data) / n_channels if n_channels else float(len(data))
        raise InputError(source, f"MOTION has {len(data)} values; Frames: {n_frames} x {n_channels} channels "
                                 f"needs {n_frames * n_channels} (about {got_rows:g} frames found)")
    try:
        values = np.array([float(tok) for tok, _ in data], dtype=np.float64).reshape(n_frames, n_channels)
    except ValueError:
        bad = next((tok, line) for tok, line in data if not _is_float(tok))
        fail(bad[1], f"expected a number in MOTION, found '{bad[0]}'")
    if not np.all(np.isfinite(values)):
        raise InputError(source, "MOTION holds NaN or infinite values")
    return skeleton, frame_time, values


def forward_kinematics(skeleton: BvhSkeleton, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint world positions [T, J, 3] and orientations [T, J, 3, 3] (file units and axes)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    n_joints = len(skeleton.names)
    positions = np.zeros((n, n_joints, 3))
    rotations = np.zeros((n, n_joints, 3, 3))
    for j, (chans, sl) in enumerate(zip(skeleton.channels, skeleton.channel_slices())):
        local_pos = np.broadcast_to(skeleton.offsets[j], (n, 3)).copy()
        local_rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        for k, ch in enumerate(chans):
            column = values[:, sl.start + k]
            axis = "XYZ".index(ch[0])
            if ch.endswith("position"):
                local_pos[:, axis] = column
            else:
                local_rot = local_rot @ _axis_rotation(axis, np.deg2rad(column))
        p = skeleton.parents[j]
        if p < 0:
            positions[:, j] = local_pos
            rotations[:, j] = local_rot
        else:
            positions[:, j] = positions[:, p] + np.einsum("tij,tj->ti", rotations[:, p], local_pos)
            rotations[:, j] = rotations[:, p] @ local_rot
    return positions, rotations


def rest_positions(skeleton: BvhSkeleton) -> np.ndarray:
    """[J, 3] joint positions with every channel at zero except that OFFSETs apply (file units)."""
    out = np.zeros((len(skeleton.names), 3))
    for j, p in enumerate(skeleton.parents):
        out[j] = skeleton.offsets[j] + (out[p] if p >= 0 else 0.0)
    return out


def _metres_per_unit(skeleton: BvhSkeleton, length_unit, source: str) -> float:
    if isinstance(length_unit, (int, float)) and not isinstance(length_unit, bool):
        if not length_unit > 0:
            raise InputError(source, f"length unit must be positive, got {length_unit}")
        return float(length_unit)
    if length_unit in LENGTH_UNITS_M:
        return LENGTH_UNITS_M[length_unit]
    if length_unit != "auto":
        raise InputError(source, f"unknown length unit {length_unit!r} "
                                 f"(use auto, {', '.join(LENGTH_UNITS_M)} or a number)")
    rest = rest_positions(skeleton)
    extent = float(np.max(rest.max(axis=0) - rest.min(axis=0)))
    for unit, lo, hi in _AUTO_UNIT_RANGES:
        if lo <= extent < hi:
            return LENGTH_UNITS_M[unit]
    raise InputError(source, f"cannot guess the length unit from a rest-pose extent of {extent:g}; "
                             f"pass length_unit ({', '.join(LENGTH_UNITS_M)} or metres per unit)")


def _axes_to_world(up: str, source: str) -> np.ndarray:
    if up == "y":
        return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # (x, y, z) -> (x, -z, y)
    if up in ("z", "keep"):
        return np.eye(3)
    raise InputError(source, f"unknown up axis {up!r} (use 'y', 'z' or 'keep')")


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """[T, 3, 3] rotations by `angle` [T] (radians) about axis 0 (x), 1 (y) or 2 (z)."""
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i, k = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., k, k] = c
    out[..., i, k] = -s
    out[..., k, i] = s
    return out


def _tokenize(text: str) -> list[tuple[str, int]]:
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        # Braces may touch other words ("{" on a JOINT line, "}" after numbers).
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            tokens.append((tok, number))
    return tokens


def _unique(name: str, existing: list[str]) -> str:
    out, k = name, 1
    while out in existing:
        k += 1
        out = f"{name}{k}"
    return out


def _is_float(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False
