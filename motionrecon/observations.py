"""The `Observations` type: what was seen, in one layout, at one frame rate."""

from __future__ import annotations

import dataclasses

import numpy as np

from motionrecon.errors import InputError
from motionrecon.skeleton import JointSet, get_joint_set


@dataclasses.dataclass(frozen=True)
class Camera:
    """Pinhole camera, OpenCV convention (x right, y down, z forward).

    Attributes:
      K: [3, 3] intrinsics in pixels.
      R: [3, 3] world-to-camera rotation (x_cam = R x_world + t).
      t: [3] world-to-camera translation, metres.
      width, height: image size in pixels.
      dist: OpenCV distortion coefficients (k1, k2, p1, p2[, k3]) or None.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    dist: np.ndarray | None = None

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """[..., 3] world points (metres) -> [..., 2] pixels (no distortion)."""
        p = np.asarray(points_world, np.float64) @ self.R.T + self.t
        uvw = p @ self.K.T
        return uvw[..., :2] / uvw[..., 2:3]


@dataclasses.dataclass(frozen=True)
class Observations:
    """Observed keypoints of one person over time.

    Attributes:
      fps: frames per second of the observations.
      joint_set: name of the layout (see `motionrecon.skeleton.JOINT_SETS`).
      joints3d: [T, J, 3] world positions in metres (z-up, ground z = 0), or None.
      joints2d: [T, J, 2] image positions in pixels, or None.
      confidence: [T, J] weights in [0, 1]; 0 marks a missing joint or frame.
      camera: the camera of `joints2d`, or None.
      source: where they came from (a path, or a description).
      metadata: how the reader read the input (JSON-ready facts, e.g. a BVH file's up axis, unit and
        joint mapping, with a one-line "summary"); empty when there is nothing to say.
    """

    fps: float
    joint_set: str
    joints3d: np.ndarray | None
    joints2d: np.ndarray | None
    confidence: np.ndarray
    camera: Camera | None = None
    source: str = ""
    metadata: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self):
        js = get_joint_set(self.joint_set)
        arrays = [a for a in (self.joints3d, self.joints2d) if a is not None]
        if not arrays:
            raise InputError(self.source, "observations hold neither 3D nor 2D joints")
        T = arrays[0].shape[0]
        if self.joints3d is not None and self.joints3d.shape[1:] != (js.num_joints, 3):
            raise InputError(self.source, f"joints3d has shape {self.joints3d.shape}, expected [T, {js.num_joints}, 3]")
        if self.joints2d is not None and self.joints2d.shape[1:] != (js.num_joints, 2):
            raise InputError(self.source, f"joints2d has shape {self.joints2d.shape}, expected [T, {js.num_joints}, 2]")
        if self.confidence.shape != (T, js.num_joints):
            raise InputError(self.source, f"confidence has shape {self.confidence.shape}, expected ({T}, {js.num_joints})")
        if T < 2:
            raise InputError(self.source, f"needs at least 2 frames, got {T}")
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise InputError(self.source, f"invalid frame rate {self.fps}")
        for name, a in (("joints3d", self.joints3d), ("joints2d", self.joints2d)):
            if a is not None and not np.all(np.isfinite(a[self.confidence > 0])):
                raise InputError(self.source, f"{name} contains NaN or infinite values")

    @property
    def num_frames(self) -> int:
        a = self.joints3d if self.joints3d is not None else self.joints2d
        return a.shape[0]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def skeleton(self) -> JointSet:
        return get_joint_set(self.joint_set)

    def slice_frames(self, start: int, stop: int) -> "Observations":
        """Frames [start, stop)."""
        cut = lambda a: None if a is None else a[start:stop]
        return dataclasses.replace(self, joints3d=cut(self.joints3d), joints2d=cut(self.joints2d),
                                   confidence=self.confidence[start:stop])
