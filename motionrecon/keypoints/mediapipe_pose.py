"""MediaPipe Pose (legacy `mediapipe.solutions.pose`) on every frame of a video.

Per frame it gives the 33 landmarks of `motionrecon.skeleton.MEDIAPIPE33` as
  * image positions, mapped to pixels of the full-resolution frame,
  * a visibility in [0, 1],
  * "world" landmarks: metric 3D positions (metres) relative to the midpoint
    of the hips, axes roughly aligned with the camera's (x right, y down,
    z away from the camera). Their orientation is MediaPipe's estimate, not a
    calibrated one; `motionrecon.keypoints.placement` fits it.

Nothing is smoothed (MediaPipe's own landmark filter is switched off:
`smooth_landmarks=False`); the physics does the smoothing. Video mode
(`static_image_mode=False`) lets MediaPipe track the person from frame to
frame instead of re-detecting, which is both faster and steadier.

Frames where nobody is found keep their place in the arrays: NaN positions,
visibility 0, `detected` False. A video with no person in any frame is an
InputError.

Only `model_complexity=1` ("full") is bundled with mediapipe 0.10.14; the
lite (0) and heavy (2) models would be downloaded from the internet by
MediaPipe, which motionrecon never does, so they are refused unless their
model file is already installed.

Results are cached in an npz file (`save_track` / `load_cached_track`); the
cache is used when the video's content fingerprint and the detection settings
match, so a rerun with other solver settings skips detection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from motionrecon import video as videoio
from motionrecon.errors import InputError
from motionrecon.fileio import write_npz

PINNED_MEDIAPIPE = "0.10.14"
_MISSING = (f"motionrecon needs the legacy MediaPipe Pose solution (mediapipe.solutions.pose) with its bundled "
            f"models; install the pinned version: pip install mediapipe=={PINNED_MEDIAPIPE}")

try:
    import mediapipe as _mp
    _mp_pose = _mp.solutions.pose
    _PoseSolution = _mp_pose.Pose
except (ImportError, AttributeError) as _e:  # pragma: no cover - depends on the installed wheel
    raise ImportError(_MISSING) from _e

NUM_LANDMARKS = 33
# Longer side of the frames handed to MediaPipe; larger frames (4K) are
# downscaled first. MediaPipe crops the person to 256x256 internally.
DETECT_MAX_SIDE = 1920
# Frame rates above this are subsampled (every k-th frame, k = ceil(fps / 60)).
DEFAULT_MAX_FPS = 60.0
CACHE_FORMAT = 1

_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PoseTrack:
    """MediaPipe Pose detections over the kept frames of one video.

    Attributes:
      joints2d: [T, 33, 2] float32 pixels in the full-resolution frame; NaN where not detected.
      joints3d: [T, 33, 3] float32 MediaPipe world landmarks, metres, origin at the
        hips' midpoint, axes ~camera-aligned (x right, y down, z away); NaN where not detected.
      visibility: [T, 33] float32 in [0, 1]; 0 where not detected.
      detected: [T] bool, whether a person was found in the frame.
      frame_indices: [T] int, index of each kept frame in the full-rate video.
      fps: frame rate of the track (video fps / stride).
      video_fps: frame rate of the video.
      width, height: full-resolution frame size in pixels.
      video_path: the video the track came from.
      fingerprint: `motionrecon.video.fingerprint` of the video file.
      model_complexity: MediaPipe Pose model (1 = full).
      seconds_per_frame: measured detection time per kept frame (0 if loaded from cache).
    """

    joints2d: np.ndarray
    joints3d: np.ndarray
    visibility: np.ndarray
    detected: np.ndarray
    frame_indices: np.ndarray
    fps: float
    video_fps: float
    width: int
    height: int
    video_path: str
    fingerprint: str
    model_complexity: int = 1
    seconds_per_frame: float = 0.0

    @property
    def num_frames(self) -> int:
        return int(self.detected.shape[0])

    @property
    def stride(self) -> int:
        """Kept every `stride`-th frame of the video."""
        return int(self.frame_indices[1] - self.frame_indices[0]) if self.num_frames > 1 else 1

    @property
    def confidence(self) -> np.ndarray:
        """[T, 33] visibility, 0 on frames without a detection."""
        return np.where(self.detected[:, None], self.visibility, 0.0).astype(np.float32)


def check_model_available(model_complexity: int) -> None:
    """Raises InputError unless the model file for `model_complexity` is installed (no downloads)."""
    if model_complexity not in _MODEL_FILES:
        raise InputError("model_complexity", f"must be 0, 1 or 2, got {model_complexity}")
    model = Path(_mp.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[model_complexity]
    if not model.exists():
        raise InputError("model_complexity",
                         f"{model_complexity} needs {model.name}, which mediapipe {PINNED_MEDIAPIPE} does not bundle "
                         f"and motionrecon will not download; use model_complexity=1")


def _landmarks_to_arrays(result, width: int, height: int):
    """A MediaPipe result -> (joints2d [33, 2] pixels, joints3d [33, 3] m, visibility [33]) or None."""
    if result.pose_landmarks is None or result.pose_world_landmarks is None:
        return None
    image = result.pose_landmarks.landmark
    world = result.pose_world_landmarks.landmark
    j2 = np.array([[lm.x * width, lm.y * height] for lm in image], np.float32)
    j3 = np.array([[lm.x, lm.y, lm.z] for lm in world], np.float32)
    vis = np.clip(np.array([lm.visibility for lm in image], np.float32), 0.0, 1.0)
    return j2, j3, vis


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Sends file descriptor 2 to /dev/null for the block.

    MediaPipe's C++ side and TensorFlow Lite print start-up notices straight
    to stderr ("Created TensorFlow Lite XNNPACK delegate", absl warnings about
    feedback tensors) from their own threads between creating a graph and its
    first result; no setting turns them off. Used only for that window; Python
    exceptions are unaffected (an error message printed by MediaPipe's C++
    code in that window would be lost).
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _process(pose, frame_bgr: np.ndarray):
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    with warnings.catch_warnings():  # protobuf deprecation noise from inside mediapipe
        warnings.simplefilter("ignore", UserWarning)
        return pose.process(rgb)


def detect_image(image_bgr: np.ndarray, *, model_complexity: int = 1):
    """MediaPipe Pose on one still image (static image mode).

    Returns (joints2d [33, 2] pixels, joints3d [33, 3] metres, visibility [33]),
    or None when no person is found.
    """
    check_model_available(model_complexity)
    h, w = image_bgr.shape[:2]
    with native_stderr_silenced(), _PoseSolution(static_image_mode=True, model_complexity=model_complexity,
                                                 smooth_landmarks=False, enable_segmentation=False) as pose:
        return _landmarks_to_arrays(_process(pose, image_bgr), w, h)


def detect_video(video_path: str | os.PathLike, *, model_complexity: int = 1,
                 max_fps: float | None = DEFAULT_MAX_FPS, max_side: int = DETECT_MAX_SIDE,
                 progress: bool = True, start: int = 0, stop: int | None = None,
                 stride: int | None = None) -> PoseTrack:
    """Runs MediaPipe Pose on every kept frame of a video (see module docstring).

    Args:
      video_path: the video.
      model_complexity: MediaPipe Pose model; only 1 is bundled.
      max_fps: videos above this frame rate are subsampled to at most it (None: keep all).
      max_side: frames are downscaled to at most this longer side for detection.
      progress: show a tqdm progress bar on stderr.
      start, stop, stride: only frames start, start + stride, ... below stop
        (stop None: to the end); `stride` given overrides the one `max_fps` implies.

    Raises:
      InputError: the file is not a readable video, or no person is found in
        any frame (or in fewer than 2 frames).
    """
    from tqdm import tqdm

    check_model_available(model_complexity)
    info = videoio.probe_video(video_path)
    if stride is None:
        stride = videoio.frame_stride(info.fps, max_fps)
    last = info.frame_count if stop is None else min(stop, info.frame_count)
    expected = max(0, math.ceil((last - start) / stride))
    j2, j3, vis, found, indices = [], [], [], [], []
    nan2 = np.full((NUM_LANDMARKS, 2), np.nan, np.float32)
    nan3 = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
    zeros = np.zeros(NUM_LANDMARKS, np.float32)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        # MediaPipe's start-up notices are printed from its threads between creation and the first result.
        quiet = stack.enter_context(contextlib.ExitStack())
        quiet.enter_context(native_stderr_silenced())
        pose = stack.enter_context(_PoseSolution(static_image_mode=False, model_complexity=model_complexity,
                                                 smooth_landmarks=False, enable_segmentation=False))
        bar = stack.enter_context(tqdm(total=expected, desc="keypoints", unit="frame", disable=not progress,
                                       file=sys.stderr, leave=False))
        for index, frame in videoio.iter_frames(info.path, stride=stride, max_side=max_side, start=start,
                                                stop=stop):
            result = _process(pose, frame)
            quiet.close()
            out = _landmarks_to_arrays(result, info.width, info.height)
            indices.append(index)
            found.append(out is not None)
            a2, a3, av = out if out is not None else (nan2, nan3, zeros)
            j2.append(a2), j3.append(a3), vis.append(av)
            bar.update(1)
    elapsed = time.perf_counter() - t0
    detected = np.array(found, bool)
    n_found = int(detected.sum())
    if n_found == 0:
        raise InputError(info.path, f"no person found in any of its {len(found)} frames")
    if n_found < 2:
        raise InputError(info.path, f"a person was found in only {n_found} of its {len(found)} frames")
    if n_found < len(found):
        log.warning("%s: no person found in %d of %d frames; they are kept with confidence 0",
                    info.path, len(found) - n_found, len(found))
    return PoseTrack(joints2d=np.stack(j2), joints3d=np.stack(j3), visibility=np.stack(vis), detected=detected,
                     frame_indices=np.array(indices, np.int64), fps=info.fps / stride, video_fps=info.fps,
                     width=info.width, height=info.height, video_path=str(info.path),
                     fingerprint=videoio.fingerprint(info.path), model_complexity=model_complexity,
                     seconds_per_frame=elapsed / len(found))


# ------------------------------------------------------------------ cache

def save_track(track: PoseTrack, path: str | os.PathLike) -> None:
    """Writes `track` to an npz file atomically (see `load_cached_track`)."""
    write_npz(path, joints2d=track.joints2d, joints3d=track.joints3d, visibility=track.visibility,
              detected=track.detected, frame_indices=track.frame_indices, fps=np.float64(track.fps),
              video_fps=np.float64(track.video_fps), width=np.int64(track.width), height=np.int64(track.height),
              video_path=np.str_(track.video_path), fingerprint=np.str_(track.fingerprint),
              model_complexity=np.int64(track.model_complexity), format=np.int64(CACHE_FORMAT),
              mediapipe_version=np.str_(_mp.__version__))


def load_track(path: str | os.PathLike) -> PoseTrack:
    """Reads a track written by `save_track`; InputError if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != CACHE_FORMAT:
                raise InputError(path, f"keypoint file format {int(z['format'])}, expected {CACHE_FORMAT}")
            return PoseTrack(joints2d=z["joints2d"], joints3d=z["joints3d"], visibility=z["visibility"],
                             detected=z["detected"].astype(bool), frame_indices=z["frame_indices"],
                             fps=float(z["fps"]), video_fps=float(z["video_fps"]), width=int(z["width"]),
                             height=int(z["height"]), video_path=str(z["video_path"]),
                             fingerprint=str(z["fingerprint"]), model_complexity=int(z["model_complexity"]))
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise InputError(path, f"is not a keypoints file written by motionrecon ({e})") from None


def load_cached_track(cache_path: str | os.PathLike, video_path: str | os.PathLike, *, model_complexity: int = 1,
                      max_fps: float | None = DEFAULT_MAX_FPS) -> PoseTrack | None:
    """The cached track if `cache_path` holds one for this video's content and these settings, else None."""
    cache_path = Path(cache_path)
    if not cache_path.is_file():
        return None
    try:
        track = load_track(cache_path)
    except InputError as e:
        log.warning("ignoring keypoint cache: %s", e)
        return None
    stride = videoio.frame_stride(track.video_fps, max_fps)
    if (track.fingerprint != videoio.fingerprint(video_path) or track.model_complexity != model_complexity
            or (track.num_frames > 1 and track.stride != stride)):
        return None
    return dataclasses.replace(track, video_path=str(video_path))


def detect_video_cached(video_path: str | os.PathLike, cache_path: str | os.PathLike | None, *,
                        model_complexity: int = 1, max_fps: float | None = DEFAULT_MAX_FPS,
                        max_side: int = DETECT_MAX_SIDE, progress: bool = True,
                        write_cache_to: str | os.PathLike | None = None) -> tuple[PoseTrack, bool]:
    """`detect_video`, skipped when `cache_path` holds a matching track.

    The track is written to `write_cache_to` (default: `cache_path`) when it
    was detected anew or read from elsewhere. Returns (track, came_from_cache).
    """
    track = None
    if cache_path is not None:
        videoio.probe_video(video_path)  # a bad video is an error even with a cache beside it
        track = load_cached_track(cache_path, video_path, model_complexity=model_complexity, max_fps=max_fps)
    cached = track is not None
    if track is None:
        track = detect_video(video_path, model_complexity=model_complexity, max_fps=max_fps, max_side=max_side,
                             progress=progress)
    target = write_cache_to if write_cache_to is not None else cache_path
    if target is not None and not (cached and Path(target) == Path(cache_path)):
        save_track(track, target)
    return track, cached
