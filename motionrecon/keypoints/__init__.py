"""Video -> `Observations`: MediaPipe Pose keypoints placed in a gravity-aligned world.

    from motionrecon.keypoints import observations_from_video
    result = observations_from_video("clip.mp4", cache_path="out/clip/keypoints.npz")
    result.observations   # Observations, joint_set "mediapipe33", world z-up, ground z = 0
    result.track          # raw detections (mediapipe_pose.PoseTrack)
    result.intrinsics     # camera.Intrinsics (K and how it was chosen)
    result.placement      # placement.Placement (camera height, ground contacts, ...)

Modules: `mediapipe_pose` (detection and its cache), `placement` (camera-frame
fit, ground plane, world frame). MediaPipe is imported only when detection runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING

from motionrecon.skeleton import JointSet

if TYPE_CHECKING:  # the modules import MediaPipe and OpenCV; load them only when used
    from motionrecon.camera import Intrinsics
    from motionrecon.keypoints.mediapipe_pose import PoseTrack
    from motionrecon.keypoints.placement import Placement
    from motionrecon.observations import Observations


@dataclasses.dataclass(frozen=True)
class VideoObservations:
    """Everything `observations_from_video` found.

    Attributes:
      observations: the placed keypoints (see `placement.place`).
      track: the raw MediaPipe detections (`mediapipe_pose.PoseTrack`).
      intrinsics: the camera intrinsics used (`camera.Intrinsics`).
      placement: the placement and its estimates (`placement.Placement`).
      from_cache: whether the detections came from the keypoint cache.
      seconds: wall time of "detection" (0 when cached) and "placement".
    """

    observations: "Observations"
    track: "PoseTrack"
    intrinsics: "Intrinsics"
    placement: "Placement"
    from_cache: bool
    seconds: dict


def observations_from_video(video_path: str | os.PathLike, *, cache_path: str | os.PathLike | None = None,
                            write_cache_to: str | os.PathLike | None = None, focal: float | None = None,
                            fov_deg: float | None = None, model_complexity: int = 1,
                            max_fps: float | None = 60.0, progress: bool = True) -> VideoObservations:
    """Detects (or loads cached) MediaPipe Pose keypoints and places them in a world frame.

    Args:
      video_path: the video of one person.
      cache_path: keypoints.npz to reuse when it matches the video and settings.
      write_cache_to: where to write the keypoints (default: `cache_path`).
      focal / fov_deg: the camera's focal length in pixels, or field of view across
        the longer image side in degrees; neither: `camera.DEFAULT_FOV_DEG`.
      model_complexity, max_fps: see `mediapipe_pose.detect_video`.
      progress: tqdm progress bar for detection.

    Raises:
      InputError: unreadable video, no person found, bad --focal/--fov.
    """
    from motionrecon import camera
    from motionrecon.keypoints import mediapipe_pose, placement
    from motionrecon.video import probe_video

    info = probe_video(video_path)
    intr = camera.choose_intrinsics(info.width, info.height, focal=focal, fov_deg=fov_deg)
    t0 = time.perf_counter()
    track, cached = mediapipe_pose.detect_video_cached(video_path, cache_path, model_complexity=model_complexity,
                                                       max_fps=max_fps, progress=progress,
                                                       write_cache_to=write_cache_to)
    t1 = time.perf_counter()
    placed = placement.place(track.joints2d, track.joints3d, track.visibility, track.detected, intr.K,
                             track.width, track.height, track.fps, source=str(video_path))
    t2 = time.perf_counter()
    return VideoObservations(observations=placed.observations, track=track, intrinsics=intr, placement=placed,
                             from_cache=cached, seconds={"detection": 0.0 if cached else t1 - t0,
                                                         "placement": t2 - t1})


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
