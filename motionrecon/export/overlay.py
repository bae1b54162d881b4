"""The input video with a skeleton drawn over it (OpenCV drawing; headless).

    write_overlay("clip.mp4", joints2d, MEDIAPIPE33.parents, "out/overlay.mp4",
                  confidence=conf, joint_names=MEDIAPIPE33.joints)

The output has the input's frame rate and size and covers the video frames
the skeleton was computed for: from the first to the last of `frame_indices`
(the whole video when they are not given), so a reconstruction of a part of a
video (`--start`/`--duration`) shows only that part. When the skeleton was
computed on every k-th frame only (a subsampled high-frame-rate video),
frames in between get positions interpolated linearly. Frames marked
`undetected` get a plain banner: the pose drawn there was not seen, only
simulated. Written atomically; a PNG strip when no video writer opens (see
`motionrecon.export.video_writer`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from motionrecon.export.video_writer import write_video
from motionrecon.video import iter_frames, probe_video

LEFT = (255, 160, 40)     # BGR: blue-ish for the person's left side
RIGHT = (40, 80, 255)     # red-ish for the right side
CENTRE = (60, 220, 60)    # green for the midline
BANNER = (0, 0, 200)      # background of the "not detected" banner
UNDETECTED_TEXT = "person not detected here: pose not seen"


def joint_colors(joint_names: Sequence[str] | None, num_joints: int) -> list[tuple[int, int, int]]:
    """A BGR colour per joint from its side (name starting with "left"/"right"), else the midline colour."""
    if joint_names is None:
        return [CENTRE] * num_joints
    return [LEFT if n.startswith("left") else RIGHT if n.startswith("right") else CENTRE for n in joint_names]


def cross_bones(joint_names: Sequence[str] | None) -> list[tuple[int, int]]:
    """Extra lines across the body, drawn besides the tree: left-right shoulders and hips."""
    if joint_names is None:
        return []
    names = list(joint_names)
    return [(names.index(f"left_{part}"), names.index(f"right_{part}")) for part in ("shoulder", "hip")
            if f"left_{part}" in names and f"right_{part}" in names]


def draw_skeleton(image: np.ndarray, points: np.ndarray, parents: Sequence[int], *,
                  confidence: np.ndarray | None = None, colors: Sequence[tuple[int, int, int]] | None = None,
                  min_confidence: float = 0.3, thickness: int | None = None,
                  extra_bones: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Draws bones and joints of one frame onto `image` (in place) and returns it.

    Args:
      image: BGR uint8 [H, W, 3].
      points: [J, 2] pixels; non-finite points are skipped.
      parents: parent index of each joint (-1 for the root).
      confidence: [J]; joints below `min_confidence` (and their bones) are skipped.
      colors: BGR per joint (a bone takes its child's colour).
      thickness: line width in pixels (default: from the image size).
      extra_bones: (a, b) index pairs drawn as lines too (midline colour), e.g. `cross_bones`.
    """
    h, w = image.shape[:2]
    if thickness is None:
        thickness = max(2, round(min(h, w) / 270))
    J = len(parents)
    ok = np.isfinite(points).all(1)
    if confidence is not None:
        ok &= np.asarray(confidence) >= min_confidence
    colors = list(colors) if colors is not None else [CENTRE] * J
    pts = np.where(ok[:, None], points, 0).round().astype(int)
    for a, b in extra_bones:
        if ok[a] and ok[b]:
            cv2.line(image, tuple(pts[a]), tuple(pts[b]), CENTRE, thickness, cv2.LINE_AA)
    for child, parent in enumerate(parents):
        if parent >= 0 and ok[child] and ok[parent]:
            cv2.line(image, tuple(pts[parent]), tuple(pts[child]), colors[child], thickness, cv2.LINE_AA)
    for j in range(J):
        if ok[j]:
            cv2.circle(image, tuple(pts[j]), thickness + 1, colors[j], -1, cv2.LINE_AA)
    return image


def resample_to_frames(values: np.ndarray, frame_indices: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """[T, ...] values at `frame_indices` -> [len(frames), ...] at `frames`, linearly interpolated
    (held at the ends; non-finite entries are skipped)."""
    values = np.asarray(values, np.float64)
    flat = values.reshape(len(values), -1)
    out = np.full((len(frames), flat.shape[1]), np.nan)
    for k in range(flat.shape[1]):
        good = np.isfinite(flat[:, k])
        if good.any():
            out[:, k] = np.interp(frames, frame_indices[good], flat[good, k])
    return out.reshape((len(frames),) + values.shape[1:])


def draw_banner(image: np.ndarray, text: str) -> np.ndarray:
    """Draws `text` in white on a red band across the top of `image` (in place) and returns it."""
    h, w = image.shape[:2]
    scale = max(0.6, min(h, w) / 900)
    thickness = max(1, round(2 * scale))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = th + base + round(16 * scale)
    cv2.rectangle(image, (0, 0), (w - 1, band), BANNER, -1)
    cv2.putText(image, text, (round(10 * scale), band - base - round(8 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def write_overlay(video_path: str | os.PathLike, joints2d: np.ndarray, parents: Sequence[int],
                  out_path: str | os.PathLike, *, confidence: np.ndarray | None = None,
                  frame_indices: np.ndarray | None = None, joint_names: Sequence[str] | None = None,
                  undetected: np.ndarray | None = None, min_confidence: float = 0.3,
                  allow_video: bool = True) -> Path:
    """Writes the frames of `video_path` the skeleton `joints2d` covers, with it drawn on them.

    Args:
      video_path: the input video.
      joints2d: [T, J, 2] pixels in the input's full resolution.
      parents: [J] parent indices.
      out_path: the .mp4 to write.
      confidence: [T, J] optional; low-confidence joints are not drawn.
      frame_indices: [T] video frame of each row of `joints2d`, increasing (default 0..T-1, which must
        then match the video's frame count). The output holds video frames frame_indices[0] to
        frame_indices[-1].
      joint_names: colour left/right sides when given.
      undetected: [T] bool, rows without a detection: their frames (and the frames nearest to them) carry
        the banner `UNDETECTED_TEXT`.
      allow_video: False forces the PNG strip.

    Returns:
      The path written (`out_path`, or its ".png" strip).
    """
    info = probe_video(video_path)
    joints2d = np.asarray(joints2d, np.float64)
    T = joints2d.shape[0]
    if frame_indices is None:
        frame_indices = np.arange(T)
    frame_indices = np.asarray(frame_indices)
    if len(frame_indices) != T or np.any(np.diff(frame_indices) <= 0):
        raise ValueError("frame_indices must be increasing, one per row of joints2d")
    colors = joint_colors(joint_names, len(parents))
    extra = cross_bones(joint_names)
    confidence = None if confidence is None else np.asarray(confidence, np.float64)
    first, last = int(frame_indices[0]), int(frame_indices[-1])
    undetected = np.zeros(T, bool) if undetected is None else np.asarray(undetected, bool)
    if undetected.shape != (T,):
        raise ValueError("undetected must hold one flag per row of joints2d")

    def frames():
        for i, frame in iter_frames(info.path, start=first, stop=last + 1):
            at = np.array([i])
            pts = resample_to_frames(joints2d, frame_indices, at)[0]
            conf = None if confidence is None else resample_to_frames(confidence, frame_indices, at)[0]
            draw_skeleton(frame, pts, parents, confidence=conf, colors=colors, min_confidence=min_confidence,
                          extra_bones=extra)
            if undetected[int(np.argmin(np.abs(frame_indices - i)))]:
                draw_banner(frame, UNDETECTED_TEXT)
            yield frame

    return write_video(out_path, frames, info.fps, last - first + 1, allow_video=allow_video)

