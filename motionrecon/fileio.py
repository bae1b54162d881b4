"""Atomic output: files and folders appear complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files owner-only
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


PARTIAL = ".partial-"  # `atomic_dir`'s temporary folder for `path` is `.<path name>.partial-<random>`


def final_name(folder: str | os.PathLike) -> str:
    """The name `folder` has once written: the output folder's name for an `atomic_dir` temporary folder (whose
    contents, e.g. a report, are made before it is renamed), otherwise its own name."""
    name = Path(folder).resolve().name
    if name.startswith(".") and PARTIAL in name:
        return name[1:name.rindex(PARTIAL)]
    return name


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yields a temporary folder beside `path`; it becomes `path` only if the block succeeds.

    An existing `path` is replaced. An interrupted run leaves only a hidden
    `.name.partial-*` folder, which is removed on failure when possible.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{PARTIAL}", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes folders owner-only
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def beside(folder: str | os.PathLike, what: str) -> Path:
    """A hidden file next to an output folder, `<parent>/.<folder name>.<what>`, for work that must survive a
    killed run (detections, solved windows) until the folder itself is written."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.{what}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
