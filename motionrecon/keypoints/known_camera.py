"""Placing video keypoints in a calibrated world: known intrinsics, extrinsics and ground (z = 0).

`placement.place` estimates the world from the video alone (default field of
view, ground plane from the feet). When the camera is calibrated, as in
Human3.6M and AIST++, nothing needs estimating but the person's distance:

1. The 2D keypoints are undistorted with the camera's OpenCV coefficients
   (`camera.undistort_pixels`, i.e. `cv2.undistortPoints`), so everything
   after works with the ideal pinhole camera of the same K.
2. Per frame, the MediaPipe 3D pose is fitted into the camera frame with the
   known K (`placement.place`: `cv2.solvePnP`, gaps filled). Its ground
   estimate is kept only for comparison (`describe()`).
3. Depth scale. MediaPipe's metric 3D has the size of an average person, so
   the fitted distance is off by the ratio of the person's true size to it;
   scaling the whole camera-frame skeleton about the camera centre by s keeps
   every projection and scales size and distance together. With the known
   ground, s follows from the feet: in each frame the lowest foot point
   (heels, toe tips) at camera-frame height m_t (along the world's up axis,
   relative to the camera) is on the floor when s m_t + h = 0, h being the
   camera's height above the floor. s is the median over the frames of
   -h / m_t (robust to jumps and to frames in which both feet are in the air,
   as long as they are fewer than half), clipped to [0.5, 2].
4. World = the calibration's: X = R^T (s x_cam - t), so the placed keypoints,
   the reconstruction and the data set's ground truth share one frame and the
   global position error (MPJPE-G) compares them without any alignment.

The `Observations` carry the undistorted 2D keypoints and a pinhole camera
(K, R, t, no distortion), which is what the loss's reprojection term uses.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from motionrecon.camera import make_camera, undistort_pixels
from motionrecon.errors import InputError
from motionrecon.keypoints import placement
from motionrecon.observations import Camera, Observations

SCALE_RANGE = (0.5, 2.0)  # plausible ratios of a person's size to MediaPipe's average body
MIN_FOOT_DROP = 0.2  # metres: frames whose lowest foot is less far below the camera do not constrain the scale


@dataclasses.dataclass(frozen=True)
class KnownCameraPlacement:
    """Keypoints placed in a calibrated world.

    Attributes:
      observations: joint_set "mediapipe33"; joints3d [T, 33, 3] in the
        calibration's world (metres, z-up, ground z = 0), joints2d [T, 33, 2]
        undistorted pixels, confidence [T, 33], camera (pinhole K, R, t).
      camera: the calibrated camera as given (with its distortion).
      depth_scale: s of the module docstring (after clipping).
      depth_scale_unclipped: s before clipping (NaN when no frame constrained it).
      camera_height: metres of the camera centre above the ground.
      free: the placement without the calibration's extrinsics (`placement.place`
        with the known K), for comparison.
    """

    observations: Observations
    camera: Camera
    depth_scale: float
    depth_scale_unclipped: float
    camera_height: float
    free: placement.Placement

    def describe(self) -> dict:
        """JSON-ready summary: the scale, and how the free ground estimate compares with the known ground."""
        up_known = np.asarray(self.camera.R, np.float64)[:, 2]
        cos = float(np.clip(self.free.up_cam @ up_known, -1.0, 1.0))
        return {
            "depth_scale": self.depth_scale,
            "depth_scale_unclipped": self.depth_scale_unclipped,
            "camera_height_m": self.camera_height,
            "free_placement": {**self.free.describe(),
                               "up_angle_to_known_deg": float(np.degrees(np.arccos(cos)))},
        }


def camera_height(camera: Camera) -> float:
    """Height (metres) of the camera centre above the world's z = 0 plane: -(R^T t)_z."""
    return float(-(np.asarray(camera.R, np.float64).T @ np.asarray(camera.t, np.float64))[2])


def depth_scale(joints_cam: np.ndarray, valid: np.ndarray, up_cam: np.ndarray, height: float) -> float:
    """Median over valid frames of -height / m_t, m_t the lowest foot point's coordinate along `up_cam`.

    Args:
      joints_cam: [T, 33, 3] camera-frame MediaPipe joints, metres.
      valid: [T] frames with a fitted pose.
      up_cam: [3] the world's up axis in camera coordinates (unit).
      height: camera height above the ground, metres.

    Returns NaN when no frame has its lowest foot at least `MIN_FOOT_DROP` below the camera.
    """
    feet = joints_cam[valid][:, list(placement.FOOT_POINTS)] @ np.asarray(up_cam, np.float64)  # [n, 4]
    lowest = feet.min(axis=1)
    usable = np.isfinite(lowest) & (lowest < -MIN_FOOT_DROP)
    if not usable.any():
        return float("nan")
    return float(np.median(height / -lowest[usable]))


def place_with_camera(joints2d: np.ndarray, joints3d: np.ndarray, visibility: np.ndarray, detected: np.ndarray,
                      camera: Camera, fps: float, *, source: str = "") -> KnownCameraPlacement:
    """MediaPipe keypoints placed in the world of a calibrated camera (see module docstring).

    Args:
      joints2d: [T, 33, 2] detected pixels (distorted, as in the video; NaN where not detected).
      joints3d: [T, 33, 3] MediaPipe world landmarks (metres, hip-centred, own orientation).
      visibility: [T, 33] in [0, 1]. detected: [T] bool.
      camera: the calibrated camera; `dist` in OpenCV's model (k1, k2, p1, p2[, k3]) or None.
        Its width and height must be the video's.
      fps: frame rate of the keypoints.
      source: recorded in the Observations.

    Raises:
      InputError: the pose could be placed in fewer than 2 frames, or the camera
        is below the ground.
    """
    K = np.asarray(camera.K, np.float64)
    finite = np.isfinite(joints2d).all(axis=-1)
    pixels = np.where(finite[..., None], joints2d, 0.0)
    undistorted = np.where(finite[..., None], undistort_pixels(pixels, K, camera.dist), np.nan)
    free = placement.place(undistorted, joints3d, visibility, detected, K, camera.width, camera.height, fps,
                           source=source)
    R = np.asarray(camera.R, np.float64)
    t = np.asarray(camera.t, np.float64)
    height = camera_height(camera)
    if not height > 0:
        raise InputError(source, f"the calibrated camera is {height:.2f} m above the ground; expected above it")
    raw_scale = depth_scale(free.joints_cam, free.detected, R[:, 2], height)
    scale = float(np.clip(raw_scale, *SCALE_RANGE)) if np.isfinite(raw_scale) else 1.0
    joints_world = (scale * free.joints_cam - t) @ R
    pinhole = make_camera(K, R, t, camera.width, camera.height)
    obs = dataclasses.replace(free.observations, joints3d=joints_world.astype(np.float32), camera=pinhole)
    return KnownCameraPlacement(observations=obs, camera=camera, depth_scale=scale,
                                depth_scale_unclipped=float(raw_scale), camera_height=height, free=free)
