"""Following one person through a video: boxes, search windows, identity checks (pure functions).

MediaPipe's legacy Pose finds one person per image and, in video mode, follows
whoever it found last; with several people in view it jumps from one to
another (on soccer_broadcast.mp4, run on whole frames, the tracked hip centre
jumped across the image 6 times in 10 s). motionrecon follows one person
explicitly (`mediapipe_pose.detect_video` runs the loop; this module decides):

1. **Choice** (`choose_person`): of the people found in the first frame, the
   most visible one (largest `visible_size`: torso length times the mean
   visibility of the body landmarks), or the one at a point the user gave
   (`--person X,Y`, pixels of the first frame).
2. **Search window** (`search_window`): each later frame is searched in a
   square around where the person is predicted to be (`predict_centre`:
   constant velocity of the hip centre), `CROP_SCALE` times the longer side
   of their last box. MediaPipe sees that window resized to `CROP_INPUT_SIDE`
   pixels, so a person small in the frame is seen at the same resolution as
   a large one. Each frame without an accepted detection grows the window by
   `LOST_GROWTH`, up to the whole frame.
3. **Identity check** (`check_identity`): a detection is accepted only when
   it is where the person can be (hip centre within `MAX_JUMP` torso lengths
   of the prediction, more after missed frames), has their size (torso length
   within a factor `MAX_SCALE_CHANGE` of the recent median), their proportions
   (3D bone lengths within `MAX_BONE_CHANGE`) and their clothes (torso colour
   histogram within `MAX_APPEARANCE` Bhattacharyya distance of the reference).
   A rejected detection is another person: the frame is marked undetected,
   never filled with them.
4. **Cuts** (`after_cut`): where an edited video cuts to another shot
   (`shots.find_shots`, decided as the frames come), the frames of the
   transition are not searched, the people followed alongside are let go, and
   in the new shot the whole frame is searched; the person is taken by what a
   cut does not change (clothes, 3D proportions), their position and size
   start afresh, and the audit (`find_jumps`) does not compare across the cut.

Pixels are those of the full-resolution video frame; boxes are
[x0, y0, x1, y1]; frame numbers count the kept (track) frames.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from motionrecon.skeleton import MEDIAPIPE33

# Search window: side = CROP_SCALE x the longer side of the person's box, at least CROP_MIN_SIDE pixels,
# resized to CROP_INPUT_SIDE x CROP_INPUT_SIDE for MediaPipe.
CROP_SCALE = 2.0
CROP_MIN_SIDE = 160
CROP_INPUT_SIDE = 512
LOST_GROWTH = 1.25  # window side factor per frame without an accepted detection
# Identity checks (measured on the dev videos, docs/video.md "One person, followed").
MAX_JUMP = 1.0          # torso lengths between the hip centre and its prediction, one frame on
MAX_JUMP_PER_MISS = 0.5  # extra torso lengths allowed per missed frame
MAX_SCALE_CHANGE = 1.5  # torso length against the median of the recent ones, either way
MAX_FOOT_SPEED = 15.0   # torso lengths per second: how fast the slower foot may move against the ground
MAX_BONE_CHANGE = 0.35  # median |log| ratio of the 3D bone lengths to the track's
MAX_APPEARANCE = 0.75   # Bhattacharyya distance of the torso colour histograms (0 same, 1 disjoint)
OTHER_MARGIN = 0.1      # a detection this much closer to another person's histogram than to the track's is them
MEMORY = 15             # recent accepted frames the checks compare with
APPEARANCE_RATE = 0.05  # weight of each accepted frame in the reference histogram
SAME_BODY = 0.3         # torso lengths: median landmark distance under which two detections are one body
NEIGHBOURS = 2          # other people followed alongside (the nearest at the start), so that neither takes the other's body
NEIGHBOUR_RANGE = 6.0   # torso lengths: farther people at the start are not followed
NEIGHBOUR_PATIENCE = 1.0  # seconds: a neighbour not seen for this long is no longer followed
REACQUIRE_AFTER = 1.0   # seconds: a person missed this long may come back anywhere, at any size (clothes decide)
RETRY_WITHIN = 3        # frames: past a rejected detection the window is searched again while the person was seen
RETRY_EVERY = 3         # this recently, and after that on every RETRY_EVERY-th frame
# Audit of a finished track (`find_jumps`): what no person does between two consecutive frames.
AUDIT_JUMP = 1.5   # torso lengths per frame
AUDIT_SCALE = 1.6
AUDIT_GAP = 30     # frames

_I = MEDIAPIPE33.index
_SHOULDERS = [_I("left_shoulder"), _I("right_shoulder")]
_HIPS = [_I("left_hip"), _I("right_hip")]
_TORSO = [_I("left_shoulder"), _I("right_shoulder"), _I("right_hip"), _I("left_hip")]
_BODY = slice(11, 33)  # landmarks below the face
_FEET = ((_I("left_ankle"), _I("left_heel"), _I("left_foot_index")),
         (_I("right_ankle"), _I("right_heel"), _I("right_foot_index")))
FOOT_VISIBLE = 0.5
BONES = tuple((_I(a), _I(b)) for a, b in (
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip")))
HIST_BINS = (8, 3, 3)  # hue, saturation, value


# ------------------------------------------------------------ measures of one detection

def landmark_box(joints2d: np.ndarray, width: int, height: int) -> np.ndarray:
    """[4] box around all 33 landmarks (MediaPipe places hidden ones plausibly), clipped to the
    frame widened by a quarter on each side, pixels."""
    lo = joints2d.min(0)
    hi = joints2d.max(0)
    margin = 0.25 * np.array([width, height])
    lo = np.clip(lo, -margin, np.array([width, height]) + margin)
    hi = np.clip(hi, -margin, np.array([width, height]) + margin)
    return np.concatenate([lo, hi]).astype(np.float64)


def hip_centre(joints2d: np.ndarray) -> np.ndarray:
    """[..., 2] midpoint of the hips in pixels from [..., 33, 2] landmarks."""
    return joints2d[..., _HIPS, :].mean(-2)


def torso_length(joints2d: np.ndarray) -> np.ndarray:
    """[...] pixels from the hips' midpoint to the shoulders' midpoint."""
    return np.linalg.norm(joints2d[..., _SHOULDERS, :].mean(-2) - joints2d[..., _HIPS, :].mean(-2), axis=-1)


def bone_lengths(joints3d: np.ndarray) -> np.ndarray:
    """[..., len(BONES)] metres: upper arms, forearms, thighs, shins, shoulder and hip width, torso sides."""
    a = np.array([i for i, _ in BONES])
    b = np.array([j for _, j in BONES])
    return np.linalg.norm(joints3d[..., a, :] - joints3d[..., b, :], axis=-1)


def feet(joints2d: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """[k, 2] pixels: the mean of ankle, heel and toe tip of each foot whose three points are visible
    (visibility >= FOOT_VISIBLE); k is 0, 1 or 2."""
    return np.array([joints2d[list(f)].mean(0) for f in _FEET if visibility[list(f)].min() >= FOOT_VISIBLE]
                    ).reshape(-1, 2)


def visible_size(joints2d: np.ndarray, visibility: np.ndarray) -> float:
    """How much of a person the frame shows: torso length (pixels) x mean visibility of the body landmarks.
    (The torso, not the box: a detection that borrows another person's legs has a tall box.)"""
    return float(torso_length(joints2d) * visibility[_BODY].mean())


def torso_histogram(frame_bgr: np.ndarray, joints2d: np.ndarray) -> np.ndarray | None:
    """Normalised hue-saturation-value histogram [prod(HIST_BINS)] of the torso (the quadrilateral of
    shoulders and hips) in a BGR frame, or None where it covers fewer than 50 pixels."""
    h, w = frame_bgr.shape[:2]
    quad = joints2d[_TORSO]
    if not np.isfinite(quad).all():
        return None
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    x0, y0 = np.clip(np.floor(quad.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(quad.max(0)).astype(int) + 1, 0, [w, h])
    if (x1 - x0) * (y1 - y0) == 0 or mask[y0:y1, x0:x1].sum() < 50:
        return None
    hsv = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask[y0:y1, x0:x1], list(HIST_BINS), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float32)
    return hist / hist.sum()


def appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance of two normalised histograms (0 same, 1 disjoint); NaN if one is missing."""
    if a is None or b is None:
        return float("nan")
    return float(cv2.compareHist(a.astype(np.float32), b.astype(np.float32), cv2.HISTCMP_BHATTACHARYYA))


@dataclasses.dataclass(frozen=True)
class Person:
    """One MediaPipe detection, in full-frame pixels.

    Attributes:
      joints2d: [33, 2] pixels. joints3d: [33, 3] metres (MediaPipe world landmarks).
      visibility: [33] in [0, 1]. box: [4] `landmark_box`, pixels.
      appearance: `torso_histogram` or None.
    """

    joints2d: np.ndarray
    joints3d: np.ndarray
    visibility: np.ndarray
    box: np.ndarray
    appearance: np.ndarray | None = None


# ------------------------------------------------------------ the track's memory

@dataclasses.dataclass(frozen=True)
class TrackMemory:
    """What the track knows about its person from the last `MEMORY` accepted detections.

    Attributes:
      frames: [k] track frame numbers of those detections (increasing).
      centres: [k, 2] hip centres, pixels. torso_px: [k] torso lengths, pixels.
      boxes: [k, 4] boxes, pixels. bones_m: [k, len(BONES)] 3D bone lengths, metres.
      appearance: reference torso histogram (running mean) or None.
      others: torso histograms of the other people seen when the person was chosen.
      feet: [k, 2] the visible feet (`feet`) of the last accepted detection, pixels.
      shot_start: track frame where the current shot began (`after_cut`); while the last accepted
        detection is older, where the person was and how large says nothing about where they are.
    """

    frames: np.ndarray
    centres: np.ndarray
    torso_px: np.ndarray
    boxes: np.ndarray
    bones_m: np.ndarray
    appearance: np.ndarray | None
    others: tuple[np.ndarray, ...] = ()
    feet: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    shot_start: int = 0

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    @property
    def lost_to_cut(self) -> bool:
        """Whether the person has not been seen since the video cut to another shot."""
        return self.last_frame < self.shot_start


def after_cut(memory: TrackMemory, frame: int) -> TrackMemory:
    """The memory when the video cuts to another shot at track frame `frame` (`shots`): the person may be
    anywhere, at any size (the whole frame is searched, `search_window`), and only what a cut does not
    change tells them apart: clothes and 3D proportions (`check_identity`)."""
    return dataclasses.replace(memory, shot_start=int(frame))


def start_memory(person: Person, frame: int, others: list[Person] = ()) -> TrackMemory:
    """The memory of a track that starts with `person` at track frame `frame`; `others`: the other
    people seen then (their clothes tell them apart later)."""
    return TrackMemory(frames=np.array([frame]), centres=hip_centre(person.joints2d)[None],
                       torso_px=np.array([torso_length(person.joints2d)]), boxes=person.box[None],
                       bones_m=bone_lengths(person.joints3d)[None], appearance=person.appearance,
                       others=tuple(p.appearance for p in others if p.appearance is not None),
                       feet=feet(person.joints2d, person.visibility))


def remember(memory: TrackMemory, person: Person, frame: int) -> TrackMemory:
    """`memory` with an accepted detection at `frame` added (the oldest beyond `MEMORY` dropped). The first
    detection after a cut starts the positions and sizes afresh (they belong to the last shot); clothes and
    bone lengths carry over."""
    new = start_memory(person, frame)
    keep = lambda a, b: np.concatenate([a, b])[-MEMORY:]
    shot = (lambda a: a[:0]) if memory.lost_to_cut else (lambda a: a)  # the last shot's positions and sizes
    appearance = memory.appearance
    if person.appearance is not None:
        appearance = person.appearance if appearance is None else (
            (1 - APPEARANCE_RATE) * appearance + APPEARANCE_RATE * person.appearance)
    return TrackMemory(frames=keep(shot(memory.frames), new.frames), centres=keep(shot(memory.centres), new.centres),
                       torso_px=keep(shot(memory.torso_px), new.torso_px), boxes=keep(shot(memory.boxes), new.boxes),
                       bones_m=keep(memory.bones_m, new.bones_m), appearance=appearance, others=memory.others,
                       feet=new.feet, shot_start=memory.shot_start)


def predict_centre(memory: TrackMemory, frame: int) -> np.ndarray:
    """[2] hip centre expected at `frame`: the velocity of the last two accepted frames (if they are
    consecutive) held for at most 2 frames past the last one."""
    last = memory.centres[-1]
    if len(memory.frames) < 2 or memory.frames[-1] - memory.frames[-2] != 1:
        return last.copy()
    velocity = memory.centres[-1] - memory.centres[-2]
    return last + velocity * min(frame - memory.last_frame, 2)


def search_window(memory: TrackMemory, frame: int, width: int, height: int) -> np.ndarray:
    """[4] square window (pixels, may reach past the frame) to search at `frame`: centred on the
    predicted hip centre, `CROP_SCALE` times the last box's longer side, times `LOST_GROWTH` per missed
    frame, at least `CROP_MIN_SIDE` and at most what covers the whole frame from that centre. After a cut
    that the person has not been seen since (`after_cut`): the whole frame."""
    if memory.lost_to_cut:
        side = float(max(width, height))
        return np.array([width / 2 - side / 2, height / 2 - side / 2, width / 2 + side / 2, height / 2 + side / 2])
    centre = predict_centre(memory, frame)
    box = memory.boxes[-1]
    missed = max(0, frame - memory.last_frame - 1)
    side = CROP_SCALE * max(box[2] - box[0], box[3] - box[1]) * LOST_GROWTH ** missed
    cover = 2 * max(centre[0], width - centre[0], centre[1], height - centre[1])
    side = float(np.clip(side, CROP_MIN_SIDE, max(cover, CROP_MIN_SIDE)))
    return np.array([centre[0] - side / 2, centre[1] - side / 2, centre[0] + side / 2, centre[1] + side / 2])


# ------------------------------------------------------------ identity

@dataclasses.dataclass(frozen=True)
class IdentityCheck:
    """Whether a detection is the tracked person, and the measures that decided.

    Attributes:
      accepted: all checks passed.
      reasons: the failed checks, e.g. ("jump 3.2 torso lengths",).
      jump: hip-centre distance from the prediction, torso lengths.
      scale: torso length / recent median.
      bones: median |log| ratio of the 3D bone lengths to the track's.
      appearance: Bhattacharyya distance to the reference histogram (NaN when not measured).
      other: the smallest distance to another person's histogram (NaN when there is none).
      foot_speed: how fast the foot nearest to where a foot stood moved against the ground, torso
        lengths per second (NaN when no foot was visible in both frames).
    """

    accepted: bool
    reasons: tuple[str, ...]
    jump: float
    scale: float
    bones: float
    appearance: float
    other: float = float("nan")
    foot_speed: float = float("nan")


def foot_speed(previous_feet: np.ndarray, current_feet: np.ndarray, torso_px: float, seconds: float,
               background: np.ndarray | None = None) -> float:
    """Torso lengths per second that the foot nearest to a previous foot moved (NaN without feet).

    A foot that carries weight stays put on the ground, so one of a person's feet moves
    slowly between two frames, in any gait but a sprint; the other person's feet are
    elsewhere. `background` [3, 3] (the camera's homography between the two frames) maps the
    previous feet along with the ground, so a panning camera does not count as foot motion.
    """
    if len(previous_feet) == 0 or len(current_feet) == 0:
        return float("nan")
    before = np.asarray(previous_feet, np.float64)
    if background is not None and np.isfinite(background).all():
        p = np.concatenate([before, np.ones((len(before), 1))], 1) @ np.asarray(background).T
        before = p[:, :2] / p[:, 2:3]
    gaps = np.linalg.norm(current_feet[:, None] - before[None], axis=-1)
    return float(gaps.min() / max(torso_px, 1.0) / seconds)


def check_identity(person: Person, memory: TrackMemory, frame: int, *, frame_time: float,
                   background: np.ndarray | None = None) -> IdentityCheck:
    """Checks `person`, found at track frame `frame`, against the track (module docstring, step 3).

    Args:
      person: the detection. memory: the track. frame: track frame number.
      frame_time: seconds between two track frames.
      background: [3, 3] homography of the background from the previous track frame to this one
        (`camera_motion.background_step`), or None.
    """
    torso = float(np.median(memory.torso_px))
    missed = max(0, frame - memory.last_frame - 1)
    elapsed = frame_time * max(1, frame - memory.last_frame)
    feet_speed = foot_speed(memory.feet, feet(person.joints2d, person.visibility), torso, elapsed,
                            background if missed == 0 and frame > memory.last_frame else None)
    jump = float(np.linalg.norm(hip_centre(person.joints2d) - predict_centre(memory, frame)) / max(torso, 1.0))
    scale = float(torso_length(person.joints2d) / max(torso, 1.0))
    ratios = bone_lengths(person.joints3d) / np.median(memory.bones_m, axis=0)
    bones = float(np.median(np.abs(np.log(np.clip(ratios, 1e-3, None)))))
    appearance = appearance_distance(person.appearance, memory.appearance)
    other = min((appearance_distance(person.appearance, h) for h in memory.others), default=float("nan"))
    reasons = []
    nearby = missed * frame_time <= REACQUIRE_AFTER and not memory.lost_to_cut
    if nearby and jump > MAX_JUMP + MAX_JUMP_PER_MISS * missed:
        reasons.append(f"jump {jump:.1f} torso lengths")
    if nearby and not 1 / MAX_SCALE_CHANGE <= scale <= MAX_SCALE_CHANGE:
        reasons.append(f"size x{scale:.2f}")
    if nearby and feet_speed > MAX_FOOT_SPEED:
        reasons.append(f"feet moved {feet_speed:.0f} torso lengths/s")
    if bones > MAX_BONE_CHANGE:
        reasons.append(f"bone lengths off by {100 * (np.exp(bones) - 1):.0f}%")
    if appearance > MAX_APPEARANCE:
        reasons.append(f"clothes differ (distance {appearance:.2f})")
    if other + OTHER_MARGIN < appearance:
        reasons.append(f"clothes of another person (distance {other:.2f}, to the followed one {appearance:.2f})")
    return IdentityCheck(accepted=not reasons, reasons=tuple(reasons), jump=jump, scale=scale, bones=bones,
                         appearance=appearance, other=other, foot_speed=feet_speed)


def same_body(a: Person, b: Person) -> bool:
    """Whether two detections are the same body: their landmarks below the face lie within
    `SAME_BODY` torso lengths of each other (median)."""
    gap = np.median(np.linalg.norm(a.joints2d[_BODY] - b.joints2d[_BODY], axis=-1))
    return bool(gap < SAME_BODY * max(float(torso_length(a.joints2d)), float(torso_length(b.joints2d)), 1.0))


def holder(checks: list[IdentityCheck]) -> int:
    """Which of several tracks a body found by all of them belongs to: the one whose clothes it matches
    best (`IdentityCheck.appearance`), or, where clothes were not measured, the one it is nearest to
    (`IdentityCheck.jump`)."""
    if all(np.isfinite(c.appearance) for c in checks):
        return int(np.argmin([c.appearance for c in checks]))
    return int(np.argmin([c.jump for c in checks]))


def neighbours_of(people: list[Person], chosen: int) -> list[int]:
    """Indices of the other people to follow alongside `people[chosen]`: the `NEIGHBOURS` nearest,
    within `NEIGHBOUR_RANGE` torso lengths (hip centres)."""
    centre = hip_centre(people[chosen].joints2d)
    torso = max(float(torso_length(people[chosen].joints2d)), 1.0)
    gaps = {k: float(np.linalg.norm(hip_centre(p.joints2d) - centre)) / torso
            for k, p in enumerate(people) if k != chosen}
    return sorted((k for k, g in gaps.items() if g <= NEIGHBOUR_RANGE), key=gaps.get)[:NEIGHBOURS]


def choose_person(people: list[Person], width: int, height: int,
                  point: tuple[float, float] | None = None) -> int | None:
    """Index of the person to follow among `people` (found in one frame), or None.

    Without `point`: the largest `visible_size`. With `point` (pixels): among the people
    whose box contains it, the one whose hip centre is nearest; None when no box contains it.
    """
    if not people:
        return None
    if point is None:
        return int(np.argmax([visible_size(p.joints2d, p.visibility) for p in people]))
    x, y = point
    inside = [k for k, p in enumerate(people) if p.box[0] <= x <= p.box[2] and p.box[1] <= y <= p.box[3]]
    if not inside:
        return None
    return min(inside, key=lambda k: float(np.linalg.norm(hip_centre(people[k].joints2d) - np.array(point))))


# ------------------------------------------------------------ audit

def find_jumps(joints2d: np.ndarray, detected: np.ndarray, shot_starts: tuple[int, ...] = ()) -> list[int]:
    """Track frames where the person seems to change between two successive detected frames.

    A change: the hip centre moves more than `AUDIT_JUMP` torso lengths per frame between
    them, or the torso length changes by more than a factor `AUDIT_SCALE` (no person does
    either in one frame); detections more than `AUDIT_GAP` frames apart, or in different shots
    (a cut moves everything), are not compared.

    Args:
      joints2d: [T, 33, 2] pixels. detected: [T] bool. shot_starts: frames where a new shot begins.

    Returns:
      The later frame of each such pair.
    """
    frames = np.flatnonzero(detected)
    shot = np.searchsorted(np.asarray(shot_starts, np.int64), frames, side="right")
    out = []
    for a, b, same_shot in zip(frames[:-1], frames[1:], shot[:-1] == shot[1:]):
        if not same_shot:
            continue
        torso_a, torso_b = torso_length(joints2d[a]), torso_length(joints2d[b])
        short = max(min(torso_a, torso_b), 1.0)
        jump = np.linalg.norm(hip_centre(joints2d[b]) - hip_centre(joints2d[a])) / short / (b - a)
        if b - a <= AUDIT_GAP and (jump > AUDIT_JUMP or max(torso_a, torso_b) / short > AUDIT_SCALE):
            out.append(int(b))
    return out
