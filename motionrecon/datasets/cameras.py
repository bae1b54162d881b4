"""Camera calibrations of the data sets, as `motionrecon.observations.Camera`.

- Human3.6M: the public calibration, carried in `data/h36m_cameras.json`
  (7 subjects x 4 cameras). There R is camera-to-world and T the camera centre
  in world metres; `h36m_camera` turns that into the world-to-camera form
  x_cam = R_wc X + t_wc with R_wc = R^T and t_wc = -R^T T.
- AIST++: `cameras/<setting>.json`, a list of 9 views with a Rodrigues vector
  and translation (world-to-camera, centimetres) as written by aniposelib.

`transform_world` rewrites a camera for a changed world frame, so that a reader
that rotates, scales or shifts the 3D points keeps its camera consistent.
`project` applies OpenCV's distortion model (cv2.projectPoints);
`project_h36m` applies Human3.6M's own, slightly different, tangential terms,
which reproduce its 2D ground truth exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from motionrecon.errors import InputError
from motionrecon.observations import Camera
from motionrecon.resources import resource_path

H36M_CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")
AIST_VIEWS: tuple[str, ...] = tuple(f"c{i:02d}" for i in range(1, 10))


# --------------------------------------------------------------------------- Human3.6M

@functools.lru_cache(maxsize=4)
def load_h36m_calibration(path: str | None = None) -> dict:
    """The calibration table {subject: {camera id: {R, T, f, c, k, p, w, h}}} (bundled copy by default)."""
    path = Path(path) if path is not None else resource_path("data", "h36m_cameras.json")
    try:
        table = json.loads(Path(path).read_text())["calibration"]
    except (OSError, ValueError, KeyError) as e:
        raise InputError(str(path), f"cannot read the Human3.6M calibration ({e})") from None
    return table


def h36m_camera(subject: str, camera_id: str | int, *, calibration: dict | None = None) -> Camera:
    """World-to-camera `Camera` (metres) of one Human3.6M subject and camera id, e.g. ("S9", "60457274")."""
    table = load_h36m_calibration() if calibration is None else calibration
    camera_id = str(camera_id)
    if subject not in table:
        raise InputError(subject, f"no Human3.6M calibration for this subject; known: {', '.join(table)}")
    if camera_id not in table[subject]:
        raise InputError(camera_id, f"not a Human3.6M camera id; known: {', '.join(table[subject])}")
    c = table[subject][camera_id]
    R_cw = np.asarray(c["R"], np.float64)  # camera-to-world
    centre = np.asarray(c["T"], np.float64).reshape(3)  # camera centre, world metres
    f, pp = np.asarray(c["f"], np.float64).ravel(), np.asarray(c["c"], np.float64).ravel()
    k, p = np.asarray(c["k"], np.float64).ravel(), np.asarray(c["p"], np.float64).ravel()
    K = np.array([[f[0], 0.0, pp[0]], [0.0, f[1], pp[1]], [0.0, 0.0, 1.0]])
    return Camera(K=K, R=R_cw.T, t=-R_cw.T @ centre, width=int(c["w"]), height=int(c["h"]),
                  dist=np.array([k[0], k[1], p[0], p[1], k[2]]))


def h36m_as_opencv(camera: Camera) -> Camera:
    """A Human3.6M camera (`h36m_camera`, distortion in Human3.6M's model) with OpenCV distortion coefficients.

    Radial terms carry over; the tangential ones are fitted to Human3.6M's
    (`motionrecon.camera.h36m_to_opencv_dist`: at most 0.33 px apart anywhere in
    the image), so OpenCV's `undistortPoints` and `projectPoints` apply.
    """
    from motionrecon.camera import h36m_to_opencv_dist

    if camera.dist is None:
        return camera
    k1, k2, p1, p2, k3 = np.asarray(camera.dist, np.float64).ravel()
    return dataclasses.replace(camera, dist=h36m_to_opencv_dist([k1, k2, k3], [p1, p2]))


# --------------------------------------------------------------------------- AIST++

def read_aist_setting(path: str | Path, *, unit_m: float = 0.01) -> dict[str, Camera]:
    """Cameras of one AIST++ setting file `cameras/<setting>.json`, keyed by view name ("c01".."c09").

    Each entry: name, size [w, h], matrix [3x3] (pixels), rotation [3] (Rodrigues,
    world-to-camera), translation [3] (world-to-camera, in the world's unit:
    centimetres in AIST++), distortions [5] (OpenCV k1, k2, p1, p2, k3).
    Translations are converted to metres with `unit_m`, so the returned cameras
    map world points in metres (same axes as the AIST++ world, y-up).
    """
    path = Path(path)
    try:
        views = json.loads(path.read_text())
    except OSError as e:
        raise InputError(str(path), f"cannot read the camera file ({e.strerror or e})") from None
    except ValueError as e:
        raise InputError(str(path), f"not valid JSON ({e})") from None
    if not isinstance(views, list) or not views:
        raise InputError(str(path), "expected a list of camera dicts (name, size, matrix, rotation, translation, distortions)")
    cameras = {}
    for i, v in enumerate(views):
        try:
            K = np.asarray(v["matrix"], np.float64).reshape(3, 3)
            rvec = np.asarray(v["rotation"], np.float64).reshape(3)
            tvec = np.asarray(v["translation"], np.float64).reshape(3)
            dist = np.asarray(v.get("distortions", [0.0] * 5), np.float64).ravel()
            w, h = (int(s) for s in v["size"])
            name = str(v["name"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(str(path), f"camera entry {i} is malformed ({type(e).__name__}: {e})") from None
        cameras[name] = Camera(K=K, R=Rotation.from_rotvec(rvec).as_matrix(), t=tvec * unit_m,
                               width=w, height=h, dist=dist)
    return cameras


# --------------------------------------------------------------------------- common

def transform_world(camera: Camera, A: np.ndarray, b: np.ndarray) -> Camera:
    """The same camera after a change of world frame X' = A X + b (A a rotation, b metres).

    x_cam = R X + t = R A^T (X' - b) + t, so R' = R A^T and t' = t - R' b.
    """
    A = np.asarray(A, np.float64)
    R_new = camera.R @ A.T
    return dataclasses.replace(camera, R=R_new, t=camera.t - R_new @ np.asarray(b, np.float64))


def project(camera: Camera, points_world: np.ndarray, *, distort: bool = True) -> np.ndarray:
    """[..., 3] world points (metres) -> [..., 2] pixels, with OpenCV's distortion model when `distort`.

    Points must lie in front of the camera (see `motionrecon.camera.project`).
    """
    from motionrecon import camera as camera_model

    pts = np.asarray(points_world, np.float64)
    if not distort or camera.dist is None:
        return camera.project(pts)
    return camera_model.project(camera, pts)


def project_h36m(camera: Camera, points_world: np.ndarray) -> np.ndarray:
    """[..., 3] world points -> [..., 2] pixels with Human3.6M's own distortion model.

    Human3.6M's calibration code (and so its D2_Positions ground truth) applies,
    with (x, y) = normalised image coordinates, r2 = x^2 + y^2,
    radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3 and tan = p1 y + p2 x:
      x' = x (radial + tan) + p2 r2,   y' = y (radial + tan) + p1 r2.
    OpenCV's tangential terms (2 p1 x y + p2 (r2 + 2 x^2), ...) differ; with the
    same coefficients the two models disagree by at most a few tenths of a pixel
    on Human3.6M's 1000x1000 images. `camera.dist` holds (k1, k2, p1, p2, k3).
    """
    x_cam = to_camera_frame(camera, points_world)
    xy = x_cam[..., :2] / x_cam[..., 2:3]
    k1, k2, p1, p2, k3 = (np.zeros(5) if camera.dist is None else np.asarray(camera.dist, np.float64))
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = p1 * xy[..., 1:2] + p2 * xy[..., 0:1]
    distorted = xy * (radial + tan) + np.array([p2, p1]) * r2
    K = np.asarray(camera.K, np.float64)
    return distorted @ K[:2, :2].T + K[:2, 2]


def to_camera_frame(camera: Camera, points_world: np.ndarray) -> np.ndarray:
    """[..., 3] world points -> [..., 3] camera-frame points (same unit)."""
    return np.asarray(points_world, np.float64) @ camera.R.T + camera.t


def projected_error_px(joints3d: np.ndarray, observed, dataset: str) -> float:
    """MPJPE-2d (pixels) of 3D joints [T, J, 3] projected through the observations' camera, against their 2D.

    Human3.6M's 2D ground truth is projected with its own distortion model
    (`project_h36m`), AIST++'s with OpenCV's (`project`). Weighted by the observations' confidence.
    """
    from motionrecon import metrics

    pred = (project_h36m if dataset == "h36m" else project)(observed.camera, joints3d)
    return metrics.mpjpe_2d(pred, observed.joints2d, observed.confidence)
