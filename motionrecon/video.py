"""Reading videos with OpenCV: size, frame rate, frame count, and the frames themselves.

Every failure on a user's file is an `InputError` naming the file and what is
wrong with it (missing, empty, not a video, truncated, no frames).

Large frames and high frame rates:
  * Frames are streamed one at a time, never held all in memory (a 10 s 4K
    clip is 7 GB of raw frames).
  * `iter_frames(..., max_side=N)` hands out frames downscaled so that their
    longer side is at most N pixels (area interpolation), for detection; the
    detector's normalised landmarks are then mapped back to full-resolution
    pixels (`motionrecon.keypoints.mediapipe_pose`). MediaPipe Pose works on
    a 256x256 crop internally, so detecting on a 1920-pixel copy of a 4K frame
    loses nothing.
  * High frame rates are subsampled: `frame_stride(fps, max_fps)` keeps every
    k-th frame, k = ceil(fps / max_fps), so a 240 fps clip is read at 60 fps
    (k = 4) and a 120 fps clip at 60 fps (k = 2); anything at or below
    `max_fps` keeps every frame.

Paths: OpenCV's FFmpeg backend takes UTF-8 paths, so folders and names with
spaces or non-ASCII characters work on Linux and macOS.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import struct
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from motionrecon.errors import InputError

# Frames decoded below this fraction of the count the container declares mean
# the file was cut short. (Declared counts of some containers are estimates, so
# small shortfalls are tolerated.)
TRUNCATION_TOLERANCE = 0.9


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video file holds.

    Attributes:
      path: the file.
      width, height: frame size in pixels, as decoded (after any rotation tag
        OpenCV applies), taken from the first frame.
      fps: frames per second the container declares.
      frame_count: frames the container declares (may be an estimate for some
        containers; `iter_frames` checks it while decoding), or the number of
        frames that decode when the container declares none.
      fourcc: the codec tag, e.g. "avc1", or "" if unknown.
    """

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    fourcc: str = ""

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frame_count / self.fps


def _open(path: Path) -> cv2.VideoCapture:
    """Opens `path` for reading or raises InputError saying why it cannot be."""
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise InputError(path, _why_unreadable(path))
    return cap


def _why_unreadable(path: Path) -> str:
    """A one-line reason why OpenCV cannot open `path`."""
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if head[4:8] == b"ftyp":  # ISO base media (mp4, mov, m4v, 3gp)
        boxes = _top_level_boxes(path)
        ends = [end for _, end in boxes]
        kinds = [kind for kind, _ in boxes]
        if ends and ends[-1] > size:
            return f"is truncated: the MP4/MOV box {kinds[-1]!r} runs past the end of the file ({size} bytes)"
        if b"moov" not in kinds:
            return "is truncated or unfinished: the MP4/MOV file has no 'moov' index (recording interrupted or file cut short)"
        if all(end - start <= 16 for start, end in _mdat_spans(path, boxes)):
            return "contains no video frames (the MP4/MOV media data is empty)"
        return "is an MP4/MOV file OpenCV cannot decode (unsupported codec or damaged index)"
    if path.suffix.lower() in MOTION_SUFFIXES:
        import shlex

        return (f"is motion capture, not a video: run `motionrecon mocap {shlex.quote(str(path))} --out DIR` (the "
                "mocap command)")
    return "is not a video OpenCV can read (unknown format, damaged file, or unsupported codec)"


# Motion-capture files (`motionrecon.datasets.load_motion`): given to the video command, they get a pointer to mocap.
MOTION_SUFFIXES = (".bvh", ".cdf", ".pkl")


def _top_level_boxes(path: Path) -> list[tuple[bytes, int]]:
    """(type, end offset) of the top-level boxes of an ISO base media file."""
    boxes = []
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            if box_size == 1:
                (box_size,) = struct.unpack(">Q", f.read(8))
            elif box_size == 0:  # runs to the end of the file
                box_size = size - pos
            if box_size < 8:
                boxes.append((kind, size + 1))  # corrupt size: treat as running past the end
                break
            boxes.append((kind, pos + box_size))
            pos += box_size
    return boxes


def _mdat_spans(path: Path, boxes: list[tuple[bytes, int]]) -> list[tuple[int, int]]:
    spans, start = [], 0
    for kind, end in boxes:
        if kind == b"mdat":
            spans.append((start, end))
        start = end
    return spans


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Reads the size, frame rate and frame count of a video; decodes its first frame.

    Raises InputError if the file is missing, not a video, truncated, or has no frames.
    """
    path = Path(path)
    cap = _open(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        declared = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise InputError(path, "contains no video frames")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(path, f"declares no valid frame rate ({fps}); re-encode it with a constant frame rate")
    fourcc = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") if code > 0 else ""
    height, width = frame.shape[:2]
    if declared <= 0:  # the container does not say (some streamed WebM/MKV files): count by decoding
        declared = count_frames(path)
    return VideoInfo(path=path, width=int(width), height=int(height), fps=fps, frame_count=declared,
                     fourcc=fourcc)


def frame_stride(fps: float, max_fps: float | None) -> int:
    """Keep every k-th frame so the kept rate is at most `max_fps`: k = ceil(fps / max_fps)."""
    if max_fps is None or fps <= max_fps:
        return 1
    return int(math.ceil(fps / max_fps - 1e-9))


def downscale_factor(width: int, height: int, max_side: int | None) -> float:
    """Scale in (0, 1] that brings the longer side to at most `max_side` pixels."""
    if max_side is None or max(width, height) <= max_side:
        return 1.0
    return max_side / max(width, height)


def iter_frames(path: str | os.PathLike, *, stride: int = 1, max_side: int | None = None,
                check_complete: bool = True, start: int = 0,
                stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yields (frame index, frame) for every `stride`-th frame of a video.

    Args:
      path: the video file.
      stride: keep frames start, start + stride, ... (the skipped ones are only
        grabbed, not decoded into images).
      max_side: if given, frames whose longer side exceeds it are downscaled
        (aspect kept) so that it is at most `max_side` pixels.
      check_complete: after the last frame, raise InputError if far fewer
        frames were decoded than the container declares (a truncated file).
        Not checked when reading stops at `stop`.
      start, stop: only frames with start <= index < stop (stop None: to the
        end). Frames before `start` are grabbed (exact, no seeking).

    Yields:
      (index in the full-rate video, BGR uint8 frame [H, W, 3]).
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    path = Path(path)
    cap = _open(path)
    try:
        declared = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        index = 0
        while stop is None or index < stop:
            if index >= start and (index - start) % stride == 0:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                if max_side is not None:
                    frame = _downscale(frame, max_side)
                yield index, frame
            else:
                if not cap.grab():
                    break
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise InputError(path, "contains no video frames")
    stopped_early = stop is not None and index >= stop
    if check_complete and not stopped_early and declared > 0 and index < TRUNCATION_TOLERANCE * declared:
        raise InputError(path, f"is truncated: decoded {index} of the {declared} frames its container declares")


def _downscale(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = downscale_factor(w, h, max_side)
    if s >= 1.0:
        return frame
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames that actually decode (grabs every frame; no image conversion)."""
    n = 0
    for n, _ in enumerate(_grab_all(Path(path)), start=1):
        pass
    return n


def _grab_all(path: Path) -> Iterator[None]:
    cap = _open(path)
    try:
        while cap.grab():
            yield None
    finally:
        cap.release()


def fingerprint(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    """Identity of a file's content, cheap on large files.

    SHA-256 over the file size, the first and the last `chunk_bytes` bytes.
    A copy of the same file has the same fingerprint (no mtime involved);
    re-encoding or trimming a video changes it.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(chunk_bytes))
        if size > chunk_bytes:
            f.seek(max(chunk_bytes, size - chunk_bytes))
            h.update(f.read(chunk_bytes))
    return f"sha256-head-tail:{h.hexdigest()}"
