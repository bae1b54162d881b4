"""Shot cuts in edited videos: where the picture changes to another shot, at once or in a dissolve.

Broadcasts and edited clips cut between shots (a replay, another camera). Across
a cut nothing is continuous: the person's position and size in the image, the
camera, the background. motionrecon finds the cuts from the frames' colours
and treats every shot as a stretch of its own (the person is found again by
their clothes, the body restarts, each shot is kept on the ground).

1. **Signature** (`frame_signature`): the hue-saturation-value histogram of the
   frame downscaled to `SIGNATURE_SIDE` pixels (`SIGNATURE_BINS` bins,
   normalised). People moving, a camera panning over one scene, lighting
   flicker change it a little; a cut to another view changes it a lot.
2. **Changes** (`changes`): the Bhattacharyya distance (0 same, 1 disjoint) of
   each kept frame's signature to the previous frame's ("frame change") and to
   the one `span_frames(fps)` frames before (`SPAN_S` seconds, "span change"):
   a dissolve changes the picture a little in each of many frames, and a lot
   over its span.
3. **Shots** (`find_shots`): a cut is where the span change exceeds
   `CUT_DISTANCE`. Its transition is the run of frames around that point whose
   frame change exceeds `TRANSITION_DISTANCE` (the blended frames of a
   dissolve; the first frame of a hard cut, which differs from the one before);
   the new shot starts at the first frame after it. A transition lasts at most
   `MAX_TRANSITION_S`; a new cut is looked for only once the span no longer
   reaches back before the last shot's start.
4. **A flash is no cut**: a flash, a strobe or lightning changes a frame or
   a few and the picture comes back. A cut is kept only where the new shot's
   first `HOLD_S` seconds (`hold_frames`) all differ, by more than
   `CUT_DISTANCE`, from every frame of the span before the one the cut was
   seen against (`find_shots` with the signatures: frames `SPAN_S` to twice
   that before it; more than one, in case that one was lit by an earlier
   flash). So a cut is known `HOLD_S` after the new shot starts (the tracker
   keeps those frames and searches them then).

Measured on the dev videos (docs/video.md "Shot cuts"): the span change
(0.25 s) peaks at 0.76 in the soccer broadcast's dissolve to a replay, and
stays at or below 0.15 in every other clip (a studio dance with turns, a running
track filmed by a panning camera, a basketball dribble at 12 fps); the frame
change stays below 0.1 outside the dissolve. `find_shots` decides from the
frames so far only, so the tracker calls it on the frames seen up to each one
(`mediapipe_pose.detect_video`) and finds the cuts the whole clip gives, as
they come; only a dissolve's first blended frames are known as such later,
once the dissolve is (the tracker has looked at them; the placement drops
what it found there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

SIGNATURE_SIDE = 320        # px: longer side of the downscaled frame the histogram is taken over
SIGNATURE_BINS = (16, 4, 4)  # hue, saturation, value
SPAN_S = 0.25               # seconds: the span change compares frames this far apart
CUT_DISTANCE = 0.4          # span change (Bhattacharyya) above which the picture is another shot
TRANSITION_DISTANCE = 0.1   # frame change above which a frame near a cut is part of the transition
MAX_TRANSITION_S = 1.0      # seconds: the longest dissolve
HOLD_S = 0.1                # seconds a new picture must last past its first frame to be a new shot, not a flash


def frame_signature(frame_bgr: np.ndarray) -> np.ndarray:
    """[prod(SIGNATURE_BINS)] float32 normalised HSV histogram of a BGR uint8 frame (step 1)."""
    h, w = frame_bgr.shape[:2]
    scale = min(1.0, SIGNATURE_SIDE / max(h, w))
    small = cv2.resize(frame_bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else frame_bgr
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(SIGNATURE_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def signature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two signatures: 0 the same colours, 1 none in common."""
    return float(cv2.compareHist(a.astype(np.float32), b.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


def span_frames(fps: float) -> int:
    """Kept frames the span change reaches back: `SPAN_S` seconds, at least 1."""
    return max(1, int(round(SPAN_S * fps)))


def hold_frames(fps: float) -> int:
    """Kept frames past a new shot's first that must differ from the last shot too: `HOLD_S`, at least 1."""
    return max(1, int(round(HOLD_S * fps)))


def changes(signatures: list[np.ndarray], fps: float) -> tuple[float, float]:
    """(frame change, span change) of the last of `signatures` (the kept frames so far, oldest first;
    only the last `span_frames(fps) + 1` are read): its distance to the previous one and to the one
    `span_frames(fps)` before (or the first, early in the clip). (0, 0) for the first frame."""
    if len(signatures) < 2:
        return 0.0, 0.0
    back = signatures[max(0, len(signatures) - 1 - span_frames(fps))]
    return signature_distance(signatures[-2], signatures[-1]), signature_distance(back, signatures[-1])


@dataclasses.dataclass(frozen=True)
class Shots:
    """The shots of a clip.

    Attributes:
      starts: track frames where a new shot begins after a cut (the first shot, at 0, not listed).
      transition: [T] bool, frames of a cut's transition (blended or changing frames): no person is
        looked for in them, and their detections would not be trusted.
    """

    starts: tuple[int, ...]
    transition: np.ndarray

    def shot_of(self, frames: np.ndarray) -> np.ndarray:
        """[n] shot number (0 for the first) of each track frame in `frames`."""
        return np.searchsorted(np.asarray(self.starts, np.int64), np.asarray(frames), side="right")


def find_shots(frame_change: np.ndarray, span_change: np.ndarray, fps: float,
               signatures: np.ndarray | Sequence[np.ndarray] | None = None) -> Shots:
    """The cuts of a clip from its changes (module docstring, steps 3 and 4).

    Args:
      frame_change, span_change: [T] per kept frame (`changes`); NaN counts as no change.
      fps: frame rate of the kept frames.
      signatures: [T, S] the frames' signatures (`frame_signature`; or a list of them), to tell a flash from
        a cut (step 4); None: every change over `CUT_DISTANCE` is a cut.

    The cuts up to frame t depend on the frames up to t only; frames at the end that may still be part
    of a transition, or the first frames of a new picture that may yet be a flash, are marked as a
    transition (and unmarked if the picture comes back).
    """
    d1 = np.nan_to_num(np.asarray(frame_change, np.float64))
    dk = np.nan_to_num(np.asarray(span_change, np.float64))
    T = len(d1)
    transition = np.zeros(T, bool)
    starts: list[int] = []
    k, longest, hold = span_frames(fps), max(1, int(round(MAX_TRANSITION_S * fps))), hold_frames(fps)
    shot_start = 0
    for t in np.flatnonzero(dk > CUT_DISTANCE):
        if t - k < shot_start:  # the span reaches back into the last shot, or it is the same cut
            continue
        first = t
        while first - 1 > shot_start and d1[first - 1] > TRANSITION_DISTANCE and t - first < longest:
            first -= 1
        end = t
        while end < T and d1[end] > TRANSITION_DISTANCE and end - first < longest:
            end += 1
        if signatures is not None:
            before = [signatures[s] for s in range(max(shot_start, t - 2 * k), t - k + 1)]
            like_before = lambda j: min(signature_distance(signatures[j], b) for b in before) <= CUT_DISTANCE
            if like_before(t):
                continue  # the change was against one odd frame back then (an earlier flash)
            if end < T and any(like_before(j) for j in range(end, min(end + hold, T - 1) + 1)):
                continue  # the picture came back: a flash
        if end + (0 if signatures is None else hold) >= T:  # the transition goes on, or the new picture may not last
            transition[first:] = True
            break
        transition[first:end] = True
        starts.append(int(end))
        shot_start = end
    return Shots(starts=tuple(starts), transition=transition)
