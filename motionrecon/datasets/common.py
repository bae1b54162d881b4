"""Small helpers shared by the data-set readers: frame selection, unit checks, file reading."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import numpy as np

from motionrecon.errors import InputError

log = logging.getLogger(__name__)

# Plausible median thigh (hip-knee) length of an adult, metres. A skeleton
# outside this range was almost surely read in the wrong unit.
THIGH_RANGE_M: tuple[float, float] = (0.25, 0.75)


def start_frame(start: float, fps: float, source: str) -> int:
    """The first frame at or after `start` seconds; InputError naming `source` unless start is a time >= 0."""
    if not (math.isfinite(start) and start >= 0):
        raise InputError(source, f"start must be a time >= 0 s, got {start}")
    return math.ceil(start * fps - 1e-6)


def frame_count(duration: float, fps: float, source: str) -> int:
    """round(duration * fps) frames; InputError naming `source` unless that is a duration > 0 s of 2 frames or more."""
    if not (math.isfinite(duration) and duration > 0):
        raise InputError(source, f"duration must be > 0 s, got {duration}")
    count = round(duration * fps)
    if count < 2:
        raise InputError(source, f"duration {duration} s is less than 2 frames at {fps:g} fps")
    return count


def time_window(num_frames: int, fps: float, start: float, duration: float | None, source: str) -> slice:
    """Frames of [start, start + duration) seconds: the first at or after `start`, round(duration * fps) of them.

    duration None: every frame from `start` to the end. A window that runs past the end stops at the end, with a
    warning naming the duration kept (as `motionrecon VIDEO --duration` does: "the first 5 s" of a 4.5 s clip is
    the clip). InputError when fewer than 2 frames remain.
    """
    first = start_frame(start, fps, source)
    count = num_frames - first if duration is None else frame_count(duration, fps, source)
    if num_frames - first < 2:
        raise InputError(source, f"start {start} s leaves fewer than 2 frames ({num_frames} frames at {fps:g} fps)")
    if first + count > num_frames:
        log.warning("%s: start %g s + duration %g s runs past the end (%d frames = %.3f s at %g fps); using the "
                    "%.3f s to the end", source, start, duration, num_frames, num_frames / fps, fps,
                    (num_frames - first) / fps)
        count = num_frames - first
    return slice(first, first + count)


def frame_slice(num_frames: int, frames: tuple[int, int] | None, step: int, source: str) -> slice:
    """Frames [start, stop) of a sequence of `num_frames`, every `step`-th one.

    `frames` holds native frame indices (0-based, stop exclusive); None means all.
    """
    if frames is None:
        start, stop = 0, num_frames
    else:
        start, stop = (int(v) for v in frames)
        if not 0 <= start < stop:
            raise InputError(source, f"invalid frame range [{start}, {stop})")
        if stop > num_frames:
            raise InputError(source, f"frames {start}-{stop - 1} requested but the sequence has only {num_frames} frames")
    if len(range(start, stop, step)) < 2:
        raise InputError(source, f"frames [{start}, {stop}) every {step} leave fewer than 2 frames")
    return slice(start, stop, step)


def downsample_step(native_fps: float, fps: float | None, source: str) -> int:
    """Integer stride that turns `native_fps` into `fps` (None: keep the native rate)."""
    if fps is None:
        return 1
    ratio = native_fps / float(fps)
    step = int(round(ratio))
    if step < 1 or abs(ratio - step) > 1e-6:
        raise InputError(source, f"cannot resample {native_fps:g} fps to {fps:g} fps by keeping every n-th frame")
    return step


def median_bone_length(joints3d: np.ndarray, bones: list[tuple[int, int]]) -> float:
    """Median length over frames and the given (a, b) joint pairs, ignoring non-finite values."""
    a = np.array([p for p, _ in bones])
    b = np.array([c for _, c in bones])
    lengths = np.linalg.norm(joints3d[:, a] - joints3d[:, b], axis=-1)
    lengths = lengths[np.isfinite(lengths)]
    return float(np.median(lengths)) if lengths.size else float("nan")


def check_thigh_length(joints3d_m: np.ndarray, thigh_bones: list[tuple[int, int]], source: str, unit_note: str) -> float:
    """Raises InputError when the median thigh length (metres) is implausible: wrong units or wrong joint order."""
    thigh = median_bone_length(joints3d_m, thigh_bones)
    lo, hi = THIGH_RANGE_M
    if not (lo <= thigh <= hi):
        raise InputError(source, f"median thigh length is {thigh:.4g} m after reading {unit_note}; "
                                 f"expected {lo}-{hi} m: the units or the joint layout look wrong")
    return thigh


def read_pickle(path: Path) -> object:
    """Unpickles a data-set file; any failure is an InputError naming it."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except Exception as e:  # corrupt or truncated pickles raise many exception types
        raise InputError(str(path), f"cannot read the pickle ({type(e).__name__}: {e})") from None
