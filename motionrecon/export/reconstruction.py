"""Reading a reconstruction folder (the output contract) for the exporters.

A reconstruction folder DIR holds:
  motion.npz    fps, joint_names [J], joints3d [T,J,3], observed3d [T,J,3]
                (optional, may be NaN), qpos [T,nq], body_mjcf (0-d str),
                body (0-d str, JSON), control [K,nu], control_fps
  metrics.json  scalar metrics (optional for export)
  run.json      config, versions, windows[i].trace (optional for export)
  overlay.mp4, side.mp4 (optional)
Every problem with these files is an `InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import mujoco
import numpy as np

from motionrecon.errors import InputError
from motionrecon.export import kinematics

REQUIRED_KEYS = ("fps", "joint_names", "joints3d", "qpos", "body_mjcf")
VIDEO_NAMES = ("overlay.mp4", "side.mp4")


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    """One reconstruction folder, loaded and checked.

    Attributes:
      folder: the folder.
      fps: observation frame rate (frames per second).
      joint_names: [J] names of the joints in `joints3d`.
      joints3d: [T, J, 3] simulated joint positions (metres, world z up).
      observed3d: [T, J, 3] observed joint positions, or None (NaN where unobserved).
      qpos: [T, nq] MuJoCo generalised positions at the observation frames.
      body_mjcf: the MJCF XML of the simulated body.
      model: the MuJoCo model built from `body_mjcf`.
      body: body description (bone lengths, masses, height), {} when absent.
      metrics: contents of metrics.json, {} when absent.
      run: contents of run.json, {} when absent.
      videos: existing videos by file name (overlay.mp4, side.mp4).
      joint_set: the name of the joint set of `joints3d` ("" when absent).
      markers: [T, L, 3] the simulated body's landmark sites, or None when absent.
      landmark_names: [L] their names (`skeleton.BODY_LANDMARKS`), () when absent.
    """

    folder: Path
    fps: float
    joint_names: tuple[str, ...]
    joints3d: np.ndarray
    observed3d: np.ndarray | None
    qpos: np.ndarray
    body_mjcf: str
    model: mujoco.MjModel
    body: dict
    metrics: dict
    run: dict
    videos: dict[str, Path]
    joint_set: str = ""
    markers: np.ndarray | None = None
    landmark_names: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return self.qpos.shape[0]

    @property
    def times(self) -> np.ndarray:
        """[T] seconds from the first frame."""
        return np.arange(self.num_frames) / self.fps


def load_reconstruction(folder) -> Reconstruction:
    """Loads and checks DIR/motion.npz (+ metrics.json, run.json, videos when present)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(str(folder), "is not a folder (expected a reconstruction folder holding motion.npz)")
    npz_path = folder / "motion.npz"
    if not npz_path.is_file():
        raise InputError(str(npz_path), "not found: this is not a reconstruction folder")
    arrays = _read_npz(npz_path)
    src = str(npz_path)

    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise InputError(src, f"missing arrays {missing} (has {sorted(arrays)})")

    fps = _scalar(arrays["fps"], src, "fps")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(src, f"fps must be a positive number, got {fps}")
    joint_names = tuple(str(n) for n in np.asarray(arrays["joint_names"]).reshape(-1))
    joints3d = _float_array(arrays["joints3d"], src, "joints3d", ndim=3)
    n_frames, n_joints = joints3d.shape[:2]
    if joints3d.shape[2] != 3 or n_joints != len(joint_names):
        raise InputError(src, f"joints3d has shape {joints3d.shape}; expected [T, {len(joint_names)}, 3]")
    if n_frames < 1:
        raise InputError(src, "joints3d has no frames")
    qpos = _float_array(arrays["qpos"], src, "qpos", ndim=2)
    if qpos.shape[0] != n_frames:
        raise InputError(src, f"qpos has {qpos.shape[0]} frames but joints3d has {n_frames}")
    if not np.all(np.isfinite(qpos)):
        raise InputError(src, "qpos holds NaN or infinite values")
    observed3d = None
    if "observed3d" in arrays:
        obs = _float_array(arrays["observed3d"], src, "observed3d", ndim=3)
        if obs.shape != joints3d.shape:
            raise InputError(src, f"observed3d has shape {obs.shape} but joints3d has {joints3d.shape}")
        observed3d = obs if np.any(np.isfinite(obs)) else None

    body_mjcf = _string(arrays["body_mjcf"], src, "body_mjcf")
    model = kinematics.load_model(body_mjcf, f"{src} (body_mjcf)")
    if model.nq != qpos.shape[1]:
        raise InputError(src, f"qpos has {qpos.shape[1]} columns but body_mjcf has nq = {model.nq}")
    body = {}
    if "body" in arrays:
        try:
            body = json.loads(_string(arrays["body"], src, "body"))
        except json.JSONDecodeError as e:
            raise InputError(src, f"'body' is not valid JSON: {e}") from None

    markers, landmark_names = None, ()
    if "markers" in arrays and "landmark_names" in arrays:
        markers = _float_array(arrays["markers"], src, "markers", ndim=3)
        landmark_names = tuple(str(n) for n in np.asarray(arrays["landmark_names"]).reshape(-1))
        if markers.shape != (n_frames, len(landmark_names), 3):
            raise InputError(src, f"markers has shape {markers.shape}; expected [{n_frames}, {len(landmark_names)}, 3]")
    joint_set = _string(arrays["joint_set"], src, "joint_set") if "joint_set" in arrays else ""

    return Reconstruction(
        folder=folder,
        fps=float(fps),
        joint_names=joint_names,
        joints3d=joints3d,
        observed3d=observed3d,
        qpos=qpos,
        body_mjcf=body_mjcf,
        model=model,
        body=body if isinstance(body, dict) else {"value": body},
        metrics=_read_json(folder / "metrics.json"),
        run=_read_json(folder / "run.json"),
        videos={name: folder / name for name in VIDEO_NAMES if (folder / name).is_file()},
        joint_set=joint_set, markers=markers, landmark_names=landmark_names,
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise InputError(str(path), "is not a readable npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise InputError(str(path), "holds Python objects (pickled arrays); "
                                        "strings must be stored as str arrays") from None
        raise InputError(str(path), f"is not a readable npz file ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise InputError(str(path), f"is not a readable npz file ({type(e).__name__}: {e})") from None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(str(path), f"is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise InputError(str(path), "must hold a JSON object")
    return value


def _scalar(a, src, key) -> float:
    a = np.asarray(a)
    if a.size != 1 or a.dtype.kind not in "fiu":
        raise InputError(src, f"{key} must be one number, got dtype {a.dtype} shape {a.shape}")
    return float(a.reshape(()))


def _float_array(a, src, key, ndim) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "fiu" or a.ndim != ndim:
        raise InputError(src, f"{key} must be a {ndim}-d numeric array, got dtype {a.dtype} shape {a.shape}")
    return a.astype(np.float64)


def _string(a, src, key) -> str:
    a = np.asarray(a)
    if a.dtype.kind not in "US" or a.size != 1:
        raise InputError(src, f"{key} must be a 0-d string array, got dtype {a.dtype} shape {a.shape}")
    value = a.reshape(()).item()
    return value.decode() if isinstance(value, bytes) else str(value)
