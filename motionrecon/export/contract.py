"""The reconstruction folder: `motion.npz`, `metrics.json`, `run.json`.

The folder is written under a temporary name and renamed when complete, so a
folder that exists is complete (an interrupted run leaves none).

motion.npz: fps, joint_names [J], joints3d [T,J,3] simulated (m, world z-up),
observed3d [T,J,3], confidence [T,J], qpos [T,nq], qpos_kinematic [T,nq],
markers [T,L,3] with landmark_names [L], contact_pos [T,C,3], control [W,K,U],
control_fps, body (JSON: bone lengths, masses, height), body_mjcf (MJCF XML),
simulated [T] (bool: the frames the physics simulated; the others, in long gaps
without any observation, hold the kinematic reference's pose).
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from motionrecon.fileio import atomic_dir, write_json, write_npz
from motionrecon.skeleton import BODY_LANDMARKS

REQUIRED_FILES = ("motion.npz", "metrics.json", "run.json")


def is_complete(folder: Path) -> bool:
    return all((Path(folder) / f).is_file() for f in REQUIRED_FILES)


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("motionrecon", "jax", "jaxlib", "mujoco", "optimistix", "numpy", "scipy", "optax", "dm-haiku"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def motion_arrays(rec) -> dict:
    observed = rec.observed3d if rec.observed3d is not None else np.full_like(rec.joints3d, np.nan)
    return dict(
        fps=np.float64(rec.fps), joint_names=np.asarray(rec.joint_names), joint_set=np.asarray(rec.joint_set),
        joints3d=rec.joints3d.astype(np.float32), observed3d=observed.astype(np.float32),
        confidence=rec.confidence.astype(np.float32), qpos=rec.qpos, qpos_kinematic=rec.qpos_kinematic,
        markers=rec.markers.astype(np.float32), landmark_names=np.asarray(BODY_LANDMARKS),
        contact_pos=rec.contact_pos.astype(np.float32), control=rec.control.astype(np.float32),
        control_fps=np.float64(rec.control_fps), body=np.asarray(json.dumps(rec.body.summary())),
        body_mjcf=np.asarray(rec.body.mjcf),
        simulated=np.ones(len(rec.qpos), bool) if rec.simulated is None else np.asarray(rec.simulated, bool))


def write_reconstruction(rec, folder: str | Path, run_info: dict | None = None, extra_files=None) -> Path:
    """Writes the folder atomically. `extra_files(tmp_folder)` may add more files before the rename."""
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        write_npz(tmp / "motion.npz", **motion_arrays(rec))
        write_json(tmp / "metrics.json", rec.metrics)
        run = {"source": rec.source, "config": rec.config.to_dict(), "versions": versions(),
               "windows": rec.windows, **(run_info or {})}
        write_json(tmp / "run.json", run)
        if extra_files is not None:
            extra_files(tmp)
    return folder
