"""MediaPipe Pose (legacy `mediapipe.solutions.pose`) following one person through a video.

The person is chosen in the first frame and followed in a window around them
(`motionrecon.keypoints.tracking` has the rules: choice, search window,
identity checks); detections of anybody else are rejected. The same pass
measures the background's motion between frames
(`motionrecon.keypoints.camera_motion`).

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
frame instead of re-detecting, which is both faster and steadier; the search
window is centred on the person, so they stay where MediaPipe expects them.

Frames where the followed person is not found (hidden, out of view, or only
another person detected) keep their place in the arrays: NaN positions,
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

import collections
import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from motionrecon import video as videoio
from motionrecon.errors import InputError
from motionrecon.fileio import write_npz
from motionrecon.keypoints import camera_motion, shots, tracking

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
# Longer side of the whole frames handed to MediaPipe when searching for people (larger frames, 4K,
# are downscaled to it); once a person is followed, MediaPipe sees a window around them
# (`tracking.CROP_INPUT_SIDE`). MediaPipe crops the person to 256x256 internally.
DETECT_MAX_SIDE = 1920
MAX_PEOPLE = 6  # people looked for in the first frame (each found one is painted out before the next search)
# Frame rates above this are subsampled (every k-th frame, k = ceil(fps / 60)).
DEFAULT_MAX_FPS = 60.0
CACHE_FORMAT = 3  # 3: the frames' colours and their changes (shot cuts) are kept

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
      boxes: [T, 4] float32 box of the followed person (`tracking.landmark_box`, x0, y0, x1, y1 pixels);
        NaN where not detected.
      windows: [T, 4] float32 square searched in each frame (pixels, may reach past the frame);
        NaN before the person was first found.
      rejected: [T] bool, frames where a detection was rejected as another person (`tracking.check_identity`).
      events: one line per rejected detection (frame and reasons).
      people_at_start: people found in the frame where the person was chosen.
      person_point: the `--person` point (x, y pixels of the first frame), or None: the most visible person.
      homographies: [T, 3, 3] background motion from the previous kept frame to this one, full-resolution
        pixels (`camera_motion.background_step`); NaN where not measured (always in row 0).
      background_inliers: [T] int, background points that agree with each homography.
      background_parallax: [T] fraction of the image's grid cells whose background moves off the
        homography (`camera_motion.parallax_fraction`): a travelling camera; NaN where not measured.
      frame_change, span_change: [T] how much each frame's colours changed from the previous kept frame
        and from `shots.SPAN_S` seconds before (`shots.changes`); `shots` finds the cuts from them.
      colour_signatures: [T, S] float32 each kept frame's colours (`shots.frame_signature`): whether the
        picture came back after a change (a flash, not a cut).
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
    boxes: np.ndarray | None = None
    windows: np.ndarray | None = None
    rejected: np.ndarray | None = None
    events: tuple[str, ...] = ()
    people_at_start: int = 1
    person_point: tuple[float, float] | None = None
    homographies: np.ndarray | None = None
    background_inliers: np.ndarray | None = None
    background_parallax: np.ndarray | None = None
    frame_change: np.ndarray | None = None
    span_change: np.ndarray | None = None
    colour_signatures: np.ndarray | None = None

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

    @property
    def shots(self) -> shots.Shots:
        """The video's cuts between shots (`shots.find_shots`); none when the changes were not measured."""
        if self.frame_change is None or self.span_change is None:
            return shots.Shots(starts=(), transition=np.zeros(self.num_frames, bool))
        return shots.find_shots(self.frame_change, self.span_change, self.fps, self.colour_signatures)

    def describe_person(self) -> dict:
        """JSON-ready summary of whom the track followed and how (metrics.json "person"); frames are
        given as [first, last] spans of track frames."""
        rejected = np.zeros(self.num_frames, bool) if self.rejected is None else self.rejected
        cuts = self.shots
        return {
            "chosen": ("the most visible person" if self.person_point is None
                       else f"the person at {tuple(round(v, 1) for v in self.person_point)} px in the first frame"),
            "people_at_start": int(self.people_at_start),
            "detected_frames": int(self.detected.sum()),
            "frames": self.num_frames,
            "undetected_frames": _spans(~self.detected),
            "rejected_frames": _spans(rejected),
            "jumps_in_track": tracking.find_jumps(self.joints2d, self.detected, cuts.starts),
            "shot_cuts": [{"frame": k, "time_s": round(k / self.fps, 3)} for k in cuts.starts],
            "shot_transition_frames": _spans(cuts.transition),
            "search_window": f"square of {tracking.CROP_SCALE:g} x the person's box (at least "
                             f"{tracking.CROP_MIN_SIDE} px, x{tracking.LOST_GROWTH:g} per missed frame), "
                             f"resized to {tracking.CROP_INPUT_SIDE} px",
        }


def _spans(mask: np.ndarray) -> list[list[int]]:
    """[[first, last], ...] track frames of each run of True in `mask` (inclusive)."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    return [[int(a), int(b) - 1] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def check_model_available(model_complexity: int) -> None:
    """Raises InputError unless the model file for `model_complexity` is installed (no downloads)."""
    if model_complexity not in _MODEL_FILES:
        raise InputError("model_complexity", f"must be 0, 1 or 2, got {model_complexity}")
    model = Path(_mp.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[model_complexity]
    if not model.exists():
        raise InputError("model_complexity",
                         f"{model_complexity} needs {model.name}, which mediapipe {PINNED_MEDIAPIPE} does not bundle "
                         f"and motionrecon will not download; use model_complexity=1")


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Sends file descriptor 2 to /dev/null for the block; yields a text stream to the stderr it replaced (for a
    progress bar that should still be seen), or sys.stderr when not `enabled`.

    MediaPipe's C++ side and TensorFlow Lite print notices straight to stderr
    ("Created TensorFlow Lite XNNPACK delegate", absl warnings about feedback
    tensors) from their own graph threads: when a graph starts, and again
    whenever a tracker meets a new person or the single-image finder runs
    (every frame with several people in view), at moments no caller can
    bracket; no setting turns them off. Python exceptions are unaffected and
    are printed after the block; what Python itself writes to sys.stderr in
    the block, or an error message printed by MediaPipe's C++ code, is lost.
    """
    if not enabled:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull, os.fdopen(os.dup(saved), "w") as console:
            os.dup2(devnull.fileno(), 2)
            yield console
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _process(pose, frame_bgr: np.ndarray):
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    with warnings.catch_warnings():  # protobuf deprecation noise from inside mediapipe
        warnings.simplefilter("ignore", UserWarning)
        return pose.process(rgb)


# ------------------------------------------------------------------ one image, one window

def window_image(frame_bgr: np.ndarray, window: np.ndarray, side_px: int):
    """The square `window` (integer [x0, y0, x1, y1] pixels, may reach past the frame) of a BGR frame,
    resized to [side_px, side_px, 3]; what lies outside the frame is black.

    Returns:
      (image, origin [2], scale [2]): a point u (continuous pixels) of the image is the frame's point
      origin + u / scale. The part inside the frame is resized on its own (INTER_AREA when shrinking), so
      the scale may differ from side_px / side by a rounding in each axis.
    """
    h, w = frame_bgr.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in window)
    f = side_px / (x1 - x0)
    out = np.zeros((side_px, side_px, 3), np.uint8)
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    ox, oy = min(side_px - 1, round((ix0 - x0) * f)), min(side_px - 1, round((iy0 - y0) * f))
    rw = min(side_px - ox, max(1, round((ix1 - ix0) * f)))
    rh = min(side_px - oy, max(1, round((iy1 - iy0) * f)))
    if ix1 <= ix0 or iy1 <= iy0:
        return out, np.array([x0, y0], np.float64), np.array([f, f])
    part = frame_bgr[iy0:iy1, ix0:ix1]
    n = int(1 / f)
    if n >= 2:  # shrink by a whole factor first (OpenCV's fast block average), then the rest linearly
        ix1, iy1 = ix0 + (ix1 - ix0) // n * n, iy0 + (iy1 - iy0) // n * n
        part = cv2.resize(frame_bgr[iy0:iy1, ix0:ix1], ((ix1 - ix0) // n, (iy1 - iy0) // n),
                          interpolation=cv2.INTER_AREA)
    out[oy:oy + rh, ox:ox + rw] = cv2.resize(part, (rw, rh), interpolation=cv2.INTER_LINEAR)
    scale = np.array([rw / (ix1 - ix0), rh / (iy1 - iy0)])
    return out, np.array([ix0, iy0]) - np.array([ox, oy]) / scale, scale


def integer_window(window: np.ndarray) -> np.ndarray:
    """[4] square window rounded to whole pixels (x0, y0 rounded, side at least 1), int64."""
    x0, y0 = round(float(window[0])), round(float(window[1]))
    side = max(1, round(float(window[2] - window[0])))
    return np.array([x0, y0, x0 + side, y0 + side], np.int64)


def detect_in_window(pose, frame_bgr: np.ndarray, window: np.ndarray,
                     side_px: int = tracking.CROP_INPUT_SIDE) -> tracking.Person | None:
    """MediaPipe `pose` on the square `window` of a frame (`window_image`); the person found, in
    full-frame pixels, or None."""
    image, origin, scale = window_image(frame_bgr, integer_window(window), side_px)
    result = _process(pose, image)
    if result.pose_landmarks is None or result.pose_world_landmarks is None:
        return None
    h, w = frame_bgr.shape[:2]
    crop = np.array([[lm.x * side_px, lm.y * side_px] for lm in result.pose_landmarks.landmark])
    j2 = (origin + crop / scale).astype(np.float32)
    j3 = np.array([[lm.x, lm.y, lm.z] for lm in result.pose_world_landmarks.landmark], np.float32)
    vis = np.clip(np.array([lm.visibility for lm in result.pose_landmarks.landmark], np.float32), 0.0, 1.0)
    return tracking.Person(joints2d=j2, joints3d=j3, visibility=vis, box=tracking.landmark_box(j2, w, h),
                           appearance=tracking.torso_histogram(frame_bgr, j2))


def _whole_frame(frame_bgr: np.ndarray) -> np.ndarray:
    h, w = frame_bgr.shape[:2]
    side = max(w, h)
    return np.array([(w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side])


def _painted_out(frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A copy of the frame with `box` (widened by 10 %) filled black."""
    out = frame_bgr.copy()
    h, w = out.shape[:2]
    pad = 0.1 * np.array([box[2] - box[0], box[3] - box[1]])
    x0, y0 = np.clip(np.floor(box[:2] - pad).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(box[2:] + pad).astype(int), 0, [w, h])
    out[y0:y1, x0:x1] = 0
    return out


def _head_painted_out(frame_bgr: np.ndarray, person: tracking.Person) -> np.ndarray:
    """A copy of the frame with the head of `person` (a disc around the face landmarks, as wide as
    half their torso length) filled black: MediaPipe's person detector looks for faces."""
    out = frame_bgr.copy()
    face = person.joints2d[:11]
    radius = max(4, int(round(0.5 * float(tracking.torso_length(person.joints2d)))))
    cv2.circle(out, tuple(int(v) for v in np.round(face.mean(0))), radius, (0, 0, 0), -1)
    return out


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def find_people(pose_static, frame_bgr: np.ndarray, *, point: tuple[float, float] | None = None,
                max_people: int = MAX_PEOPLE) -> list[tracking.Person]:
    """The people MediaPipe finds in one frame (static image mode `pose_static`).

    MediaPipe's legacy Pose returns one person per image, so the whole frame
    is searched again with each person found painted out, up to `max_people`.
    Where that finds nobody, overlapping square tiles of half the frame's
    shorter side are searched (a person small in the frame). With `point`
    (pixels) and nobody's box around it, windows of a quarter, a half and the
    whole shorter side centred on it are searched too.
    """
    h, w = frame_bgr.shape[:2]
    whole = _whole_frame(frame_bgr)
    side_px = int(min(DETECT_MAX_SIDE, whole[2] - whole[0]))
    people: list[tracking.Person] = []
    image = frame_bgr
    for _ in range(max_people):
        found = detect_in_window(pose_static, image, whole, side_px)
        if found is None or any(_overlap(found.box, p.box) > 0.5 for p in people):
            break
        people.append(dataclasses.replace(found, appearance=tracking.torso_histogram(frame_bgr, found.joints2d)))
        image = _painted_out(image, found.box)
    windows = []
    if not people:
        tile = min(w, h) // 2
        step = max(1, tile // 2)
        windows += [np.array([x, y, x + tile, y + tile]) for y in range(0, max(1, h - tile + 1), step)
                    for x in range(0, max(1, w - tile + 1), step)]
    inside = lambda p: point is not None and p.box[0] <= point[0] <= p.box[2] and p.box[1] <= point[1] <= p.box[3]
    if point is not None and not any(inside(p) for p in people):
        windows += [np.array([point[0] - s / 2, point[1] - s / 2, point[0] + s / 2, point[1] + s / 2])
                    for s in (min(w, h) / 4, min(w, h) / 2, min(w, h))]
    for window in windows:
        found = detect_in_window(pose_static, frame_bgr, window)
        if found is not None and not any(_overlap(found.box, p.box) > 0.3 for p in people):
            people.append(found)
    return people


def detect_image(image_bgr: np.ndarray, *, model_complexity: int = 1):
    """MediaPipe Pose on one still image (static image mode).

    Returns (joints2d [33, 2] pixels, joints3d [33, 3] metres, visibility [33]),
    or None when no person is found.
    """
    check_model_available(model_complexity)
    with native_stderr_silenced(), _PoseSolution(static_image_mode=True, model_complexity=model_complexity,
                                                 smooth_landmarks=False, enable_segmentation=False) as pose:
        found = detect_in_window(pose, image_bgr, _whole_frame(image_bgr),
                                 int(min(DETECT_MAX_SIDE, max(image_bgr.shape[:2]))))
    return None if found is None else (found.joints2d, found.joints3d, found.visibility)


# ------------------------------------------------------------------ a video, one person followed

@dataclasses.dataclass
class _Follower:
    """Loop state of one followed person: what the track knows and its own video-mode MediaPipe graph."""

    memory: tracking.TrackMemory
    tracker: object


def _follow_step(follower: _Follower, finder, frame_bgr: np.ndarray, k: int, frame_time: float,
                 background: np.ndarray, others: list[tuple[tracking.Person, tracking.IdentityCheck]] = ()):
    """One frame of one followed person in `detect_video`.

    The window around the predicted position is searched by the follower's video-mode
    graph. A detection fails when `tracking.check_identity` rejects it, or when it is the
    body another follower found in this frame (`others`: their detections and checks) and
    belongs to them (`tracking.holder`). Then the graph is reset (so it does not follow that
    person), and, given a static `finder`, the window is searched once more with that
    person's head painted out (MediaPipe's person detector looks for faces): while the person
    was seen within the last `tracking.RETRY_WITHIN` frames (or the shot began), then every
    `tracking.RETRY_EVERY`-th.

    Returns:
      (accepted Person or None, its IdentityCheck or None, window searched [4], rejection text or None).
    """
    memory = follower.memory
    window = integer_window(tracking.search_window(memory, k, frame_bgr.shape[1], frame_bgr.shape[0]))

    def judge(person):
        check = tracking.check_identity(person, memory, k, frame_time=frame_time, background=background)
        if check.accepted:
            for other, their in others:
                if tracking.same_body(person, other) and tracking.holder([check, their]) == 1:
                    return dataclasses.replace(check, accepted=False,
                                               reasons=("the body another followed person holds",))
        return check

    found = detect_in_window(follower.tracker, frame_bgr, window)
    if found is None:
        return None, None, window, None
    check = judge(found)
    if check.accepted:
        return found, check, window, None
    follower.tracker.reset()
    note = f"another person rejected ({', '.join(check.reasons)})"
    missing = k - max(memory.last_frame, memory.shot_start)  # a new shot starts the count again
    if finder is not None and (missing <= tracking.RETRY_WITHIN or missing % tracking.RETRY_EVERY == 0):
        retry = detect_in_window(finder, _head_painted_out(frame_bgr, found), window)
        if retry is not None:
            retry = dataclasses.replace(retry, appearance=tracking.torso_histogram(frame_bgr, retry.joints2d))
            again = judge(retry)
            if again.accepted:
                return retry, again, window, note + "; found again"
    return None, None, window, note


def _cut_to_next_shot(follower: _Follower | None, k: int) -> _Follower | None:
    """The follower when the video cuts to another shot at track frame k (`tracking.after_cut`); the
    neighbours followed alongside are let go (who is near whom starts again in the new shot)."""
    if follower is None:
        return None
    follower.tracker.reset()
    follower.memory = tracking.after_cut(follower.memory, k)
    return follower


def _start_following(finder, frame_bgr: np.ndarray, k: int, point: tuple[float, float] | None, tracker,
                     new_tracker, source: str) -> tuple[_Follower | None, list[_Follower], int]:
    """Chooses the person to follow in one frame (`find_people`, `tracking.choose_person`).

    Returns (the follower with `tracker`, the neighbours to follow alongside with graphs from
    `new_tracker()`, people found), or (None, [], people found) when nobody is chosen.

    Raises:
      InputError: nobody at `point` (naming --person).
    """
    h, w = frame_bgr.shape[:2]
    people = find_people(finder, frame_bgr, point=point)
    chosen = tracking.choose_person(people, w, h, point)
    if chosen is None and point is not None:
        where = "; ".join(f"{p.box[0]:.0f},{p.box[1]:.0f} to {p.box[2]:.0f},{p.box[3]:.0f}" for p in people) or "nobody"
        raise InputError("--person", f"no person at {point[0]:g},{point[1]:g} in the first frame of {source} "
                                     f"(people found, boxes in pixels: {where})")
    if chosen is None:
        return None, [], len(people)
    others = lambda i: people[:i] + people[i + 1:]
    follower = _Follower(tracking.start_memory(people[chosen], k, others(chosen)), tracker)
    neighbours = [_Follower(tracking.start_memory(people[i], k, others(i)), new_tracker())
                  for i in tracking.neighbours_of(people, chosen)]
    return follower, neighbours, len(people)


def _follow_frame(follower: _Follower, neighbours: list[_Follower], finder, frame_bgr: np.ndarray, k: int,
                  frame_time: float, background: np.ndarray):
    """One frame: the neighbours first, then the followed person, who may not take a body a neighbour
    holds (`_follow_step`); a neighbour that found the followed person's body is reset, and one not seen
    for `tracking.NEIGHBOUR_PATIENCE` seconds is dropped.

    Returns:
      (accepted Person or None, window searched [4], rejection text or None, the neighbours still followed).
    """
    theirs = [_follow_step(nb, None, frame_bgr, k, frame_time, background) for nb in neighbours]
    held = [(f, c) for f, c, _, _ in theirs if f is not None]
    found, _, window, note = _follow_step(follower, finder, frame_bgr, k, frame_time, background, held)
    if found is not None:
        follower.memory = tracking.remember(follower.memory, found, k)
    for nb, (their, _, _, _) in zip(neighbours, theirs):
        if their is None:
            continue
        if found is not None and tracking.same_body(found, their):
            nb.tracker.reset()
        else:
            nb.memory = tracking.remember(nb.memory, their, k)
    kept = [nb for nb in neighbours if (k - nb.memory.last_frame) * frame_time <= tracking.NEIGHBOUR_PATIENCE]
    return found, window, note, kept


def _detection_row(found: tracking.Person | None, window, note: str | None) -> dict:
    """One frame's entries of `detect_video`'s rows: the accepted detection (NaN, zero visibility where none),
    the window searched and whether a detection was rejected."""
    return {"found": found is not None,
            "j2": np.full((NUM_LANDMARKS, 2), np.nan, np.float32) if found is None else found.joints2d,
            "j3": np.full((NUM_LANDMARKS, 3), np.nan, np.float32) if found is None else found.joints3d,
            "vis": np.zeros(NUM_LANDMARKS, np.float32) if found is None else found.visibility,
            "box": np.full(4, np.nan, np.float32) if found is None else found.box.astype(np.float32),
            "window": np.asarray(window, np.float32), "rejected": note is not None}


def detect_video(video_path: str | os.PathLike, *, model_complexity: int = 1,
                 max_fps: float | None = DEFAULT_MAX_FPS, progress: bool = True, start: int = 0,
                 stop: int | None = None, stride: int | None = None,
                 person: tuple[float, float] | None = None) -> PoseTrack:
    """Follows one person through the kept frames of a video with MediaPipe Pose (`tracking`), and measures
    the background's motion between the frames (`camera_motion.background_step`, outside the person's box).

    The person is chosen in the first kept frame with anybody in it
    (`find_people`, `tracking.choose_person`): the most visible one, or the
    one at `person`. Every frame is then searched in a window around them and
    each detection checked (`tracking.check_identity`); frames without an
    accepted detection are kept with NaN positions and visibility 0.

    Args:
      video_path: the video.
      model_complexity: MediaPipe Pose model; only 1 is bundled.
      max_fps: videos above this frame rate are subsampled to at most it (None: keep all).
      progress: show a tqdm progress bar on stderr.
      start, stop, stride: only frames start, start + stride, ... below stop
        (stop None: to the end); `stride` given overrides the one `max_fps` implies.
      person: (x, y) pixels in the first kept frame: follow the person there.

    Raises:
      InputError: the file is not a readable video; no person is found in any
        frame (or in fewer than 2 frames); nobody at `person` (naming --person).
    """
    from tqdm import tqdm

    from motionrecon.workers import bar_position

    check_model_available(model_complexity)
    info = videoio.probe_video(video_path)
    if person is not None and not (0 <= person[0] < info.width and 0 <= person[1] < info.height):
        raise InputError("--person", f"{person[0]:g},{person[1]:g} is outside the {info.width}x{info.height} "
                                     f"frames of {info.path}")
    if stride is None:
        stride = videoio.frame_stride(info.fps, max_fps)
    last = info.frame_count if stop is None else min(stop, info.frame_count)
    expected = max(0, math.ceil((last - start) / stride))
    nan4 = np.full(4, np.nan, np.float32)
    rows: dict[str, list] = {key: [] for key in ("j2", "j3", "vis", "found", "index", "box", "window", "rejected",
                                                 "H", "inliers", "parallax", "d1", "dk", "colours")}
    events: list[str] = []
    follower, neighbours, people_at_start, previous, cuts_so_far = None, [], 0, None, 0
    recent = collections.deque(maxlen=shots.hold_frames(info.fps / stride))  # (k, frame): the last few frames
    frame_time = stride / info.fps
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        # MediaPipe's notices, printed from its threads at any frame, go nowhere until the graphs are closed
        console = stack.enter_context(native_stderr_silenced())
        options = dict(model_complexity=model_complexity, smooth_landmarks=False, enable_segmentation=False)
        tracker = stack.enter_context(_PoseSolution(static_image_mode=False, **options))
        finder = stack.enter_context(_PoseSolution(static_image_mode=True, **options))
        bar = stack.enter_context(tqdm(total=expected, desc=f"{info.path.stem} keypoints", unit="frame",
                                       disable=not progress, file=console, leave=False, position=bar_position()))
        for k, (index, frame) in enumerate(videoio.iter_frames(info.path, stride=stride, start=start, stop=stop)):
            found, window, note = None, nan4, None
            grey, scale = camera_motion.analysis_image(frame)
            step = camera_motion.BackgroundStep(np.full((3, 3), np.nan), 0, 0)
            if previous is not None:
                step = camera_motion.background_step(previous, grey, scale,
                                                     exclude=[f.memory.boxes[-1] for f in [follower] + neighbours
                                                              if f is not None])
            previous = grey
            rows["colours"].append(shots.frame_signature(frame))
            change = shots.changes(rows["colours"], 1 / frame_time)
            rows["d1"].append(change[0])
            rows["dk"].append(change[1])
            cuts = shots.find_shots(np.array(rows["d1"]), np.array(rows["dk"]), 1 / frame_time, rows["colours"])
            # Blended or changing frames of a cut, or a new picture not yet known to last: nobody is looked for.
            in_transition = bool(cuts.transition[-1])
            if len(cuts.starts) > cuts_so_far:  # a cut is known (`shots.HOLD_S` into the new shot) ...
                follower, neighbours = _cut_to_next_shot(follower, cuts.starts[-1]), []
                cuts_so_far = len(cuts.starts)
                for j, held in recent:  # ... and the new shot's frames until now are searched after all
                    if j >= cuts.starts[-1] and follower is not None:
                        found, window, note, neighbours = _follow_frame(follower, neighbours, finder, held, j,
                                                                        frame_time, rows["H"][j])
                        for key, value in _detection_row(found, window, note).items():
                            rows[key][j] = value
                        if note is not None:
                            events.append(f"frame {rows['index'][j]}: {note}")
                found, window, note = None, nan4, None
            recent.append((k, frame))
            if follower is None and not in_transition:
                follower, neighbours, people_at_start = _start_following(
                    finder, frame, k, person if k == 0 else None, tracker,
                    lambda: stack.enter_context(_PoseSolution(static_image_mode=False, **options)), str(info.path))
            if follower is not None and not in_transition:
                found, window, note, neighbours = _follow_frame(follower, neighbours, finder, frame, k, frame_time,
                                                                step.H)
            if note is not None:
                events.append(f"frame {index}: {note}")
            rows["index"].append(index)
            for key, value in _detection_row(found, window, note).items():
                rows[key].append(value)
            rows["H"].append(step.H)
            rows["inliers"].append(step.inliers)
            rows["parallax"].append(step.parallax)
            bar.update(1)
    elapsed = time.perf_counter() - t0
    detected = np.array(rows["found"], bool)
    n_found, n = int(detected.sum()), len(detected)
    if n_found == 0:
        raise InputError(info.path, f"no person found in any of its {n} frames")
    if n_found < 2:
        raise InputError(info.path, f"a person was found in only {n_found} of its {n} frames")
    if n_found < n:
        log.warning("%s: the followed person was not found in %d of %d frames (%d with another person "
                    "rejected); they are kept with confidence 0", info.path, n - n_found, n,
                    int(np.sum(rows["rejected"])))
    return PoseTrack(joints2d=np.stack(rows["j2"]), joints3d=np.stack(rows["j3"]), visibility=np.stack(rows["vis"]),
                     detected=detected, frame_indices=np.array(rows["index"], np.int64), fps=info.fps / stride,
                     video_fps=info.fps, width=info.width, height=info.height, video_path=str(info.path),
                     fingerprint=videoio.fingerprint(info.path), model_complexity=model_complexity,
                     seconds_per_frame=elapsed / n, boxes=np.stack(rows["box"]), windows=np.stack(rows["window"]),
                     rejected=np.array(rows["rejected"], bool), events=tuple(events),
                     people_at_start=people_at_start,
                     person_point=_as_point(person),
                     homographies=np.stack(rows["H"]), background_inliers=np.array(rows["inliers"], np.int64),
                     background_parallax=np.array(rows["parallax"], np.float64),
                     frame_change=np.array(rows["d1"], np.float64), span_change=np.array(rows["dk"], np.float64),
                     colour_signatures=np.array(rows["colours"], np.float32))


# ------------------------------------------------------------------ cache

def save_track(track: PoseTrack, path: str | os.PathLike) -> None:
    """Writes `track` to an npz file atomically (see `load_cached_track`)."""
    T = track.num_frames
    nan = lambda *shape: np.full((T, *shape), np.nan, np.float32)
    point = np.full(2, np.nan) if track.person_point is None else np.asarray(track.person_point, np.float64)
    write_npz(path, joints2d=track.joints2d, joints3d=track.joints3d, visibility=track.visibility,
              detected=track.detected, frame_indices=track.frame_indices, fps=np.float64(track.fps),
              video_fps=np.float64(track.video_fps), width=np.int64(track.width), height=np.int64(track.height),
              video_path=np.str_(track.video_path), fingerprint=np.str_(track.fingerprint),
              model_complexity=np.int64(track.model_complexity), format=np.int64(CACHE_FORMAT),
              mediapipe_version=np.str_(_mp.__version__),
              boxes=nan(4) if track.boxes is None else track.boxes,
              windows=nan(4) if track.windows is None else track.windows,
              rejected=np.zeros(T, bool) if track.rejected is None else track.rejected,
              events=np.array(track.events, dtype=np.str_).reshape(-1), people_at_start=np.int64(track.people_at_start),
              person_point=point, homographies=nan(3, 3) if track.homographies is None else track.homographies,
              background_inliers=(np.zeros(T, np.int64) if track.background_inliers is None
                                  else track.background_inliers),
              background_parallax=nan() if track.background_parallax is None else track.background_parallax,
              frame_change=nan() if track.frame_change is None else track.frame_change,
              span_change=nan() if track.span_change is None else track.span_change,
              colour_signatures=(np.zeros((T, 0), np.float32) if track.colour_signatures is None
                                 else track.colour_signatures))


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
                             fingerprint=str(z["fingerprint"]), model_complexity=int(z["model_complexity"]),
                             boxes=z["boxes"], windows=z["windows"], rejected=z["rejected"].astype(bool),
                             events=tuple(str(e) for e in z["events"]), people_at_start=int(z["people_at_start"]),
                             person_point=(None if not np.isfinite(z["person_point"]).all()
                                           else tuple(float(v) for v in z["person_point"])),
                             homographies=z["homographies"], background_inliers=z["background_inliers"],
                             background_parallax=z["background_parallax"], frame_change=z["frame_change"],
                             span_change=z["span_change"],
                             colour_signatures=z["colour_signatures"] if z["colour_signatures"].size else None)
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise InputError(path, f"is not a keypoints file written by motionrecon ({e})") from None


def load_cached_track(cache_path: str | os.PathLike, video_path: str | os.PathLike, *, model_complexity: int = 1,
                      max_fps: float | None = DEFAULT_MAX_FPS,
                      person: tuple[float, float] | None = None) -> PoseTrack | None:
    """The cached track if `cache_path` holds one for this video's content and these settings (the same
    `person` point among them), else None."""
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
            or (track.num_frames > 1 and track.stride != stride) or track.person_point != _as_point(person)):
        return None
    return dataclasses.replace(track, video_path=str(video_path))


def _as_point(person) -> tuple[float, float] | None:
    return None if person is None else (float(person[0]), float(person[1]))


def detect_video_cached(video_path: str | os.PathLike, cache_path: str | os.PathLike | None, *,
                        model_complexity: int = 1, max_fps: float | None = DEFAULT_MAX_FPS,
                        person: tuple[float, float] | None = None, progress: bool = True,
                        write_cache_to: str | os.PathLike | None = None) -> tuple[PoseTrack, bool]:
    """`detect_video`, skipped when `cache_path` holds a matching track.

    The track is written to `write_cache_to` (default: `cache_path`) when it
    was detected anew or read from elsewhere. Returns (track, came_from_cache).
    """
    track = None
    if cache_path is not None:
        videoio.probe_video(video_path)  # a bad video is an error even with a cache beside it
        track = load_cached_track(cache_path, video_path, model_complexity=model_complexity, max_fps=max_fps,
                                  person=person)
    cached = track is not None
    if track is None:
        track = detect_video(video_path, model_complexity=model_complexity, max_fps=max_fps, person=person,
                             progress=progress)
    target = write_cache_to if write_cache_to is not None else cache_path
    if target is not None and not (cached and Path(target) == Path(cache_path)):
        save_track(track, target)
    return track, cached
