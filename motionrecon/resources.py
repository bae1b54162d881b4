"""Where bundled files live: `models/` (body templates), `data/` (splits, small
samples) and `weights/` (pretrained optimizers) at the repository top level."""

from __future__ import annotations

from pathlib import Path

from motionrecon.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent


def resource_path(kind: str, name: str, *, must_exist: bool = True) -> Path:
    """Path of a bundled file, e.g. resource_path("weights", "optimus_classic.npz")."""
    if kind not in ("models", "data", "weights"):
        raise ValueError(f"unknown resource kind {kind!r}")
    path = REPO_ROOT / kind / name
    if must_exist and not path.exists():
        raise InputError(str(path), "bundled file is missing (is the package installed from a full checkout?)")
    return path
