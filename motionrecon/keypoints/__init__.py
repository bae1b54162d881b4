"""Video -> `Observations`: MediaPipe Pose keypoints placed in a gravity-aligned world.

    from motionrecon.keypoints import observations_from_video
    result = observations_from_video("clip.mp4", cache_path="out/clip/keypoints.npz")
    result.observations   # Observations, joint_set "mediapipe33", world z-up, ground z = 0
    result.track          # raw detections of the followed person (mediapipe_pose.PoseTrack)
    result.intrinsics     # camera.Intrinsics (K and how it was chosen)
    result.camera_motion  # camera_motion.CameraMotion (static / panning / moving / unknown)
    result.placement      # placement.Placement (camera height, ground contacts, ...)

Modules: `mediapipe_pose` (detection and its cache), `tracking` (following one
person), `camera_motion` (the camera's motion from the background),
`placement` (camera-frame fit, ground plane, world frame). MediaPipe is
imported only when detection runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from motionrecon.skeleton import JointSet

if TYPE_CHECKING:  # the modules import MediaPipe and OpenCV; load them only when used
    from motionrecon.camera import Intrinsics
    from motionrecon.keypoints.camera_motion import CameraMotion
    from motionrecon.keypoints.mediapipe_pose import PoseTrack
    from motionrecon.keypoints.placement import Placement
    from motionrecon.observations import Observations


@dataclasses.dataclass(frozen=True)
class VideoObservations:
    """Everything `observations_from_video` found.

    Attributes:
      observations: the placed keypoints (see `placement.place`); `observations.camera_model` says which
        camera model they assume and whether their world trajectory is reliable.
      track: the raw MediaPipe detections of the followed person (`mediapipe_pose.PoseTrack`, video pixels;
        `track.describe_person()` says whom and how).
      intrinsics: the camera intrinsics used (`camera.Intrinsics`).
      placement: the placement and its estimates (`placement.Placement`).
      from_cache: whether the detections came from the keypoint cache.
      seconds: wall time of "detection" (0 when cached) and "placement".
      camera_motion: the camera's motion judged from the background (`camera_motion.CameraMotion`); where
        it is "panning" the 2D keypoints were mapped into the first frame's camera before placement;
        where it is "moving" (not undone) the body is kept on the ground (`placement.keep_on_ground`).
    """

    observations: "Observations"
    track: "PoseTrack"
    intrinsics: "Intrinsics"
    placement: "Placement"
    from_cache: bool
    seconds: dict
    camera_motion: "CameraMotion | None" = None

    def describe(self) -> dict:
        """JSON-ready summary of the person followed and the camera's motion (for metrics.json:
        "person" and "camera_motion")."""
        return {"person": self.track.describe_person(),
                "camera_motion": None if self.camera_motion is None else self.camera_motion.describe()}


def observations_from_video(video_path: str | os.PathLike, *, cache_path: str | os.PathLike | None = None,
                            write_cache_to: str | os.PathLike | None = None, focal: float | None = None,
                            fov_deg: float | None = None, model_complexity: int = 1,
                            max_fps: float | None = 60.0, person: tuple[float, float] | None = None,
                            progress: bool = True) -> VideoObservations:
    """Detects (or loads cached) MediaPipe Pose keypoints of one person and places them in a world frame.

    With a panning camera (`camera_motion`), the 2D keypoints are first mapped into the first
    frame's camera, so the placement's static camera holds and the world stays fixed. With a
    camera that moved otherwise, a static one is assumed, the body is kept on the ground, and
    `observations.camera_model.trajectory_reliable` is False.

    Args:
      video_path: the video (several people may be in view: one is followed).
      cache_path: keypoints.npz to reuse when it matches the video and settings.
      write_cache_to: where to write the keypoints (default: `cache_path`).
      focal / fov_deg: the camera's focal length in pixels, or field of view across
        the longer image side in degrees; neither: `camera.DEFAULT_FOV_DEG`.
      model_complexity, max_fps, person: see `mediapipe_pose.detect_video` (`person`: follow the person
        at this point, x, y pixels of the first frame, instead of the most visible one).
      progress: tqdm progress bar for detection.

    Raises:
      InputError: unreadable video, no person found (or none at `person`), bad --focal/--fov.
    """
    from motionrecon import camera
    from motionrecon.keypoints import mediapipe_pose
    from motionrecon.video import probe_video

    info = probe_video(video_path)
    intr = camera.choose_intrinsics(info.width, info.height, focal=focal, fov_deg=fov_deg)
    t0 = time.perf_counter()
    track, cached = mediapipe_pose.detect_video_cached(video_path, cache_path, model_complexity=model_complexity,
                                                       max_fps=max_fps, person=person, progress=progress,
                                                       write_cache_to=write_cache_to)
    t1 = time.perf_counter()
    obs, placed, motion = place_track(track, intr.K, source=str(video_path))
    t2 = time.perf_counter()
    return VideoObservations(observations=obs, track=track, intrinsics=intr, placement=placed, from_cache=cached,
                             seconds={"detection": 0.0 if cached else t1 - t0, "placement": t2 - t1},
                             camera_motion=motion)


def place_track(track: "PoseTrack", K: np.ndarray, source: str = ""):
    """The camera's motion (`camera_motion`) and the placement (`placement.place`) of detections.

    A pan is undone first (2D mapped into the first frame's camera); a camera that moved
    otherwise is taken as static and the body kept on the ground (`placement.keep_on_ground`).
    A video that cuts between shots (`track.shots`) is kept on the ground shot by shot, its
    transitions' frames count as undetected, and `Observations.shot_starts` says where the
    motion starts again.

    Args:
      track: detections with their background homographies (`mediapipe_pose.detect_video`).
      K: [3, 3] intrinsics, pixels. source: named in errors and in the Observations.

    Returns:
      (Observations with their `camera_model`, Placement, camera_motion.CameraMotion).
    """
    from motionrecon.keypoints import camera_motion, placement

    cuts = track.shots
    motion = camera_motion.camera_motion(track.homographies, track.background_parallax, K, track.width,
                                         track.height, cuts)
    joints2d = track.joints2d
    if motion.rotation_recovered:
        joints2d = camera_motion.to_reference_pixels(track.joints2d, motion.rotations, K).astype(np.float32)
    detected = track.detected & ~cuts.transition
    placed = placement.place(joints2d, track.joints3d, np.where(detected[:, None], track.visibility, 0.0),
                             detected, K, track.width, track.height, track.fps, source=source,
                             shot_starts=cuts.starts)
    obs, model = placed.observations, motion.camera_model(K)
    if cuts.starts:
        at = ", ".join(f"{k / track.fps:.2f} s" for k in cuts.starts)
        model = dataclasses.replace(model, trajectory_reliable=False, note=(
            f"{model.note}; the video cuts to another shot at {at}: the body starts again at each cut, and "
            "where it stands in one shot says nothing of where it stands in another"))
    if model.trajectory_reliable is False:
        obs, lowered, shift = placement.keep_on_ground(obs, placed.detected, shot_starts=cuts.starts)
        to_video = np.repeat(np.eye(3)[None], len(shift), axis=0)
        to_video[:, :2, 2] = -shift
        if model.to_video is not None:  # a pan undone: the shift applies before the rotation back
            to_video = model.to_video @ to_video
        model = dataclasses.replace(model, to_video=to_video, note=(
            f"{model.note}; the body is kept on the ground over {placement.GROUND_WINDOW_S:g} s windows "
            f"(moved by up to {np.abs(lowered).max():.2f} m)"))
    obs = dataclasses.replace(obs, camera_model=model, shot_starts=cuts.starts)
    return obs, dataclasses.replace(placed, observations=obs), motion


def landmark_correspondence(source: JointSet, target: JointSet) -> list[tuple[int, int]]:
    """(source index, target index) pairs of joints that sit on the same body landmark.

    E.g. MEDIAPIPE33 -> H36M17 gives the 12 limb joints and the nose.
    Where several source joints share a landmark, the one whose name equals
    the landmark's is taken (else the first).
    """
    pairs = []
    for ti, landmark in enumerate(target.landmarks):
        candidates = [si for si, lm in enumerate(source.landmarks) if lm == landmark]
        if not candidates:
            continue
        exact = [si for si in candidates if source.joints[si] == landmark]
        pairs.append(((exact or candidates)[0], ti))
    return pairs
