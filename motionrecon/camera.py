"""Camera intrinsics, projection and distortion (OpenCV convention: x right, y down, z forward).

Default intrinsics
------------------
When the user gives neither ``--focal`` nor ``--fov``, the focal length comes
from a horizontal-equivalent field of view of ``DEFAULT_FOV_DEG`` = 65 degrees
across the *longer* image side, with the principal point at the image centre
and square pixels:

    f = (max(W, H) / 2) / tan(fov / 2)

Why 65 degrees: phone main cameras are sold as 24-26 mm full-frame equivalent
lenses. On a 4:3 sensor, 26 mm gives 2*atan(17.3 / 26) = 67 degrees across
the long side (24 mm: 72 degrees); video modes use the full sensor width and
crop the short side, and electronic stabilisation crops a further ~5-10 %,
which brings the long-side field of view to ~60-67 degrees. 65 degrees is
in the middle of what phones record.

Why the longer side: turning a phone to portrait turns the sensor with it, so
the long side of a portrait frame (its height) is still the sensor's long side
and still spans the same ~65 degrees. Applying the field of view to the image
width would make portrait focal lengths 1.8x too short. A wrong focal length
scales the estimated camera distance (a 10 % focal error gives ~10 % depth
error) but barely changes the pose, because the body's size is known in metres.

Distortion
----------
``Camera.dist`` holds OpenCV coefficients (k1, k2, p1, p2[, k3]). Human3.6M
calibrations use a slightly different tangential model (see `h36m_distort`);
`camera_from_h36m` converts it to the closest OpenCV coefficients (radial
terms exact, tangential fitted by least squares: at most 0.33 px apart
anywhere in the image on all 44 Human3.6M cameras, 0.06 px on the sample's
joints), so OpenCV's own `projectPoints`, `undistortPoints` and `solvePnP`
work on them.

Human3.6M extrinsics map world to camera as x_cam = R (X - T), T being the
camera centre (metres in cameras.pkl). Checked on the sample: S1's camera
54138969 puts the ankles within 0.2 m of z = 0 and the head at 1.54 m. The
entries for cameras 55011271 and 60457274 in ../shared/data/h36m_sample's
cameras.pkl turn the same ground truth upside down (their optical axes point
away from the capture area), so their R looks inconsistent with the others;
the intrinsics of all four reproduce the 2D ground truth exactly.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from motionrecon.errors import InputError
from motionrecon.observations import Camera

DEFAULT_FOV_DEG = 65.0


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics and how they were chosen.

    Attributes:
      K: [3, 3] intrinsics in pixels.
      width, height: image size in pixels.
      source: "focal" (user's --focal), "fov" (user's --fov) or "default_fov".
    """

    K: np.ndarray
    width: int
    height: int
    source: str

    @property
    def focal(self) -> float:
        return float(self.K[0, 0])

    @property
    def fov_long_side_deg(self) -> float:
        """Field of view across the longer image side, degrees."""
        return fov_from_focal(self.focal, max(self.width, self.height))

    def describe(self) -> dict:
        """JSON-ready summary for metrics/run files."""
        how = {
            "focal": "focal length given by the user (--focal)",
            "fov": "field of view given by the user (--fov), across the longer image side",
            "default_fov": f"default field of view {DEFAULT_FOV_DEG:g} deg across the longer image side "
                           "(typical phone main camera); principal point at the image centre",
        }[self.source]
        return {"K": self.K.tolist(), "focal_px": self.focal, "fov_long_side_deg": self.fov_long_side_deg,
                "width": self.width, "height": self.height, "source": self.source, "how": how}


def focal_from_fov(fov_deg: float, side_px: float) -> float:
    """Focal length (pixels) that makes `side_px` pixels span `fov_deg` degrees."""
    return 0.5 * side_px / math.tan(math.radians(fov_deg) / 2)


def fov_from_focal(focal_px: float, side_px: float) -> float:
    """Field of view (degrees) spanned by `side_px` pixels at focal length `focal_px`."""
    return math.degrees(2 * math.atan(0.5 * side_px / focal_px))


def intrinsics_matrix(focal_px: float, width: int, height: int) -> np.ndarray:
    """[3, 3] K with square pixels and the principal point at the image centre."""
    return np.array([[focal_px, 0.0, width / 2.0],
                     [0.0, focal_px, height / 2.0],
                     [0.0, 0.0, 1.0]])


def choose_intrinsics(width: int, height: int, *, focal: float | None = None,
                      fov_deg: float | None = None) -> Intrinsics:
    """Intrinsics from the user's --focal (pixels) or --fov (degrees, longer side), else the default.

    Raises InputError for both options at once or out-of-range values.
    """
    if focal is not None and fov_deg is not None:
        raise InputError("--focal/--fov", "give at most one of --focal and --fov")
    if focal is not None:
        if not (math.isfinite(focal) and focal > 0):
            raise InputError("--focal", f"focal length must be a positive number of pixels, got {focal}")
        return Intrinsics(intrinsics_matrix(float(focal), width, height), width, height, "focal")
    if fov_deg is not None:
        if not (math.isfinite(fov_deg) and 1.0 <= fov_deg <= 170.0):
            raise InputError("--fov", f"field of view must be between 1 and 170 degrees, got {fov_deg}")
        f = focal_from_fov(float(fov_deg), max(width, height))
        return Intrinsics(intrinsics_matrix(f, width, height), width, height, "fov")
    f = focal_from_fov(DEFAULT_FOV_DEG, max(width, height))
    return Intrinsics(intrinsics_matrix(f, width, height), width, height, "default_fov")


def make_camera(K: np.ndarray, R: np.ndarray, t: np.ndarray, width: int, height: int,
                dist: np.ndarray | None = None) -> Camera:
    """`Camera` with world-to-camera rotation R [3, 3] and translation t [3] (metres)."""
    R = np.asarray(R, np.float64).reshape(3, 3)
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise ValueError("R is not a rotation matrix")
    return Camera(K=np.asarray(K, np.float64).reshape(3, 3), R=R, t=np.asarray(t, np.float64).reshape(3),
                  width=int(width), height=int(height),
                  dist=None if dist is None else np.asarray(dist, np.float64).ravel())


def world_to_camera(points_world: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """[..., 3] world points -> camera frame: R x + t."""
    return np.asarray(points_world, np.float64) @ np.asarray(R).T + np.asarray(t)


def camera_to_world(points_cam: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """[..., 3] camera-frame points -> world: R^T (x - t)."""
    return (np.asarray(points_cam, np.float64) - np.asarray(t)) @ np.asarray(R)


def project_points(points_cam: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None) -> np.ndarray:
    """[..., 3] camera-frame points (z > 0) -> [..., 2] pixels; OpenCV distortion if `dist` is given."""
    pts = np.asarray(points_cam, np.float64)
    if dist is None or not np.any(dist):
        uvw = pts @ np.asarray(K, np.float64).T
        return uvw[..., :2] / uvw[..., 2:3]
    flat = pts.reshape(-1, 1, 3)
    uv, _ = cv2.projectPoints(flat, np.zeros(3), np.zeros(3), np.asarray(K, np.float64),
                              np.asarray(dist, np.float64))
    return uv.reshape(pts.shape[:-1] + (2,))


def project(camera: Camera, points_world: np.ndarray) -> np.ndarray:
    """[..., 3] world points -> [..., 2] pixels through `camera`, with its distortion if any."""
    return project_points(world_to_camera(points_world, camera.R, camera.t), camera.K, camera.dist)


def undistort_pixels(pixels: np.ndarray, K: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """[..., 2] distorted pixels -> [..., 2] pixels of the ideal pinhole camera with the same K."""
    px = np.asarray(pixels, np.float64)
    if dist is None or not np.any(dist):
        return px.copy()
    out = cv2.undistortPoints(px.reshape(-1, 1, 2), np.asarray(K, np.float64), np.asarray(dist, np.float64),
                              P=np.asarray(K, np.float64))
    return out.reshape(px.shape)


# ---------------------------------------------------------------- Human3.6M

def h36m_distort(xy: np.ndarray, k: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Human3.6M's lens model on normalised image coordinates [..., 2] (x/z, y/z).

    From the dataset's own code (ProjectPointRadial):
      r2 = x^2 + y^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3, tan = p1 y + p2 x,
      (x', y') = (x, y) (radial + tan) + (p2, p1) r2.
    The tangential part differs from OpenCV's (2 p1 x y + p2 (r2 + 2 x^2), ...).
    """
    xy = np.asarray(xy, np.float64)
    k = np.asarray(k, np.float64).ravel()
    p = np.asarray(p, np.float64).ravel()
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = p[0] * y + p[1] * x
    scale = (radial + tan)[..., None]
    return xy * scale + r2[..., None] * np.array([p[1], p[0]])


def h36m_project(points_cam: np.ndarray, f: np.ndarray, c: np.ndarray, k: np.ndarray, p: np.ndarray) -> np.ndarray:
    """[..., 3] camera-frame points -> [..., 2] pixels with Human3.6M's distortion model."""
    pts = np.asarray(points_cam, np.float64)
    xy = pts[..., :2] / pts[..., 2:3]
    return h36m_distort(xy, k, p) * np.asarray(f, np.float64).ravel() + np.asarray(c, np.float64).ravel()


def h36m_to_opencv_dist(k: np.ndarray, p: np.ndarray, *, max_radius: float = 0.6) -> np.ndarray:
    """OpenCV (k1, k2, p1, p2, k3) closest to Human3.6M's (k, p).

    Radial terms carry over exactly; OpenCV's tangential (p1, p2) are fitted by
    linear least squares to Human3.6M's tangential displacement over normalised
    coordinates within `max_radius` (0.6 covers a 1000-pixel image at f = 1145).
    """
    k = np.asarray(k, np.float64).ravel()
    p = np.asarray(p, np.float64).ravel()
    g = np.linspace(-max_radius, max_radius, 25)
    x, y = [a.ravel() for a in np.meshgrid(g, g)]
    r2 = x * x + y * y
    # Human3.6M tangential displacement (both coordinates).
    target = np.concatenate([x * (p[0] * y + p[1] * x) + p[1] * r2,
                             y * (p[0] * y + p[1] * x) + p[0] * r2])
    # OpenCV: dx = 2 P1 x y + P2 (r2 + 2 x^2), dy = P1 (r2 + 2 y^2) + 2 P2 x y.
    A = np.stack([np.concatenate([2 * x * y, r2 + 2 * y * y]),
                  np.concatenate([r2 + 2 * x * x, 2 * x * y])], axis=1)
    (P1, P2), *_ = np.linalg.lstsq(A, target, rcond=None)
    return np.array([k[0], k[1], P1, P2, k[2]])


def camera_from_h36m(entry: dict) -> Camera:
    """`Camera` from one Human3.6M calibration entry (as in cameras.pkl).

    The entry holds `R` [3, 3], `T` [3, 1] (the camera centre in the world,
    metres), `f`, `c` [2, 1], `k` [3, 1], `p` [2, 1], `w`, `h`. Human3.6M maps
    world to camera as x_cam = R (X - T), so t = -R T. Distortion becomes
    OpenCV coefficients (`h36m_to_opencv_dist`).
    """
    f = np.asarray(entry["f"], np.float64).ravel()
    c = np.asarray(entry["c"], np.float64).ravel()
    K = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]])
    R = np.asarray(entry["R"], np.float64)
    T = np.asarray(entry["T"], np.float64).ravel()
    return make_camera(K, R, -R @ T, int(entry["w"]), int(entry["h"]),
                       dist=h36m_to_opencv_dist(entry["k"], entry["p"]))
