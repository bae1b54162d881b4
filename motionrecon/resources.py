"""Where bundled files live: `data/` (splits, cameras, the DeepMimic clips) and `weights/` (pretrained
optimizers), at the top of a checkout (an editable install) or, for an install that is not editable
(`pip install .`, a wheel), under <prefix>/share/motionrecon/ (pyproject.toml's data-files)."""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

from motionrecon.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
KINDS = ("data", "weights")


def resource_roots() -> list[Path]:
    """Folders that may hold the bundled `data/` and `weights/`, in the order they are looked in: the checkout,
    then the installed share/motionrecon of this environment, of the user's site and of sys.prefix."""
    prefixes = [sysconfig.get_path("data"), getattr(site, "USER_BASE", None), sys.prefix]
    installed = [Path(p) / "share" / "motionrecon" for p in prefixes if p]
    return [REPO_ROOT] + list(dict.fromkeys(installed))


def resource_path(kind: str, name: str, *, must_exist: bool = True) -> Path:
    """Path of a bundled file, e.g. resource_path("weights", "optimus_classic.npz"): in the first of
    `resource_roots` whose `kind` folder exists (the checkout's where there is none)."""
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}")
    root = next((r for r in resource_roots() if (r / kind).is_dir()), REPO_ROOT)
    path = root / kind / name
    if must_exist and not path.exists():
        raise InputError(str(path), "bundled file is missing (is the package installed from a full checkout?)")
    return path
