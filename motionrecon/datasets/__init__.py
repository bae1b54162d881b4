"""Readers of motion data into `Observations`: DeepMimic/pybullet clips, Human3.6M,
AIST++ (and BVH), plus the evaluation splits.

`load_motion(path, start=, duration=)` picks the reader from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from motionrecon.errors import InputError


def load_motion(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None):
    """Observations from a motion file, by its format (DeepMimic/pybullet motion JSON)."""
    p = Path(path)
    if not p.exists():
        raise InputError(str(path), "no such file")
    if not p.is_file():
        raise InputError(str(path), "not a file")
    suffix = p.suffix.lower()
    if suffix in (".txt", ".json"):
        from motionrecon.datasets.deepmimic import load_deepmimic

        return load_deepmimic(p, start=start, duration=duration)
    raise InputError(str(path), f"unknown motion format {suffix!r} (supported: DeepMimic .txt/.json)")
