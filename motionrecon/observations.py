"""The `Observations` type: what was seen, in one layout, at one frame rate."""

from __future__ import annotations

import dataclasses

import numpy as np

from motionrecon.errors import InputError
from motionrecon.skeleton import JointSet, get_joint_set


def shot_spans(shot_starts: tuple[int, ...], num_frames: int) -> list[tuple[int, int]]:
    """[(first, stop), ...] the frame ranges of the shots of a clip of `num_frames` frames that an edited video
    cuts at `shot_starts` (`Observations.shot_starts`; starts outside (0, num_frames) ignored), in order;
    [(0, num_frames)] without a cut."""
    edges = [0, *[k for k in shot_starts if 0 < k < num_frames], num_frames]
    return list(zip(edges[:-1], edges[1:]))


def frame_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(first, stop), ...] of every run of True in a per-frame [T] bool array, in order."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


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
class CameraModel:
    """The camera model a video's observations assume, and whether their world trajectory can be trusted.

    `Observations.camera` is one static camera. Where the video's camera moved, the observations
    are expressed as that camera would have seen them, and `to_video` maps their pixels back to
    the video's frames (for drawing over the video).

    Attributes:
      kind: "static" (one camera for every frame) or "rotating" (the camera turns about a fixed centre;
        its rotation per frame was recovered from the background and undone).
      rotations: [T, 3, 3] for "rotating": x_t = rotations[t] @ x, x in `Observations.camera`'s frame (the
        first video frame's camera), x_t in frame t's camera; None otherwise.
      to_video: [T, 3, 3] homographies from the observations' pixels (`joints2d`, and anything projected
        with `Observations.camera`) to the pixels of each video frame (K R_t K^-1 for "rotating", a
        shift where the body was kept on the ground); None: the same pixels.
      trajectory_reliable: True when the world trajectory can be trusted (a static camera, or a rotation
        that was undone); False when the camera moved in a way that was not undone (the body's path in
        the world is then partly the camera's); None when the camera's motion could not be measured.
      note: one sentence for people: what the camera did and what was assumed.
    """

    kind: str
    rotations: np.ndarray | None = None
    to_video: np.ndarray | None = None
    trajectory_reliable: bool | None = True
    note: str = ""

    def video_pixels(self, points: np.ndarray) -> np.ndarray:
        """[T, J, 2] observation pixels -> [T, J, 2] pixels of the video frames (`to_video`)."""
        points = np.asarray(points, np.float64)
        if self.to_video is None:
            return points
        p = np.concatenate([points, np.ones((*points.shape[:-1], 1))], -1)
        q = np.einsum("tij,tkj->tki", self.to_video, p)
        return q[..., :2] / q[..., 2:3]

    def describe(self) -> dict:
        """JSON-ready summary (without the per-frame arrays)."""
        return {"camera_model": self.kind, "trajectory_reliable": self.trajectory_reliable, "note": self.note}


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
      camera_model: for video, the camera model assumed (static or rotating, per-frame rotations) and
        whether the world trajectory is reliable; None where nothing is known (motion capture).
      shot_starts: frames where an edited video cuts to another shot (`keypoints.shots`): the motion is not
        continuous across them, so the simulation starts again there.
    """

    fps: float
    joint_set: str
    joints3d: np.ndarray | None
    joints2d: np.ndarray | None
    confidence: np.ndarray
    camera: Camera | None = None
    source: str = ""
    metadata: dict = dataclasses.field(default_factory=dict, compare=False)
    camera_model: CameraModel | None = None
    shot_starts: tuple[int, ...] = ()

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
        for name in ("rotations", "to_video"):
            a = None if self.camera_model is None else getattr(self.camera_model, name)
            if a is not None and a.shape != (T, 3, 3):
                raise InputError(self.source, f"camera_model.{name} has shape {a.shape}, expected ({T}, 3, 3)")

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
        model = self.camera_model
        if model is not None:
            model = dataclasses.replace(model, rotations=cut(model.rotations), to_video=cut(model.to_video))
        return dataclasses.replace(self, joints3d=cut(self.joints3d), joints2d=cut(self.joints2d),
                                   confidence=self.confidence[start:stop], camera_model=model,
                                   shot_starts=tuple(k - start for k in self.shot_starts if start < k < stop))
