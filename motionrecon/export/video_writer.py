"""Writing rendered frames as an MP4 with OpenCV, atomically, or as a PNG strip when no writer opens.

Codec: OpenCV's pip wheels (opencv-python-headless 5.0.0.93 here) carry
FFmpeg without an H.264 encoder: "avc1" fails to open and "mp4v" (MPEG-4
Part 2 in an .mp4 container) works. MPEG-4 Part 2 plays in VLC, mpv,
QuickTime and most desktop players, but not in web browsers. We try "mp4v"
first, then "avc1" (for OpenCV builds with an H.264 encoder).

If neither opens, or the written file does not read back with the expected
number of frames, a PNG strip of up to `STRIP_FRAMES` evenly spaced frames is
written instead, beside the requested path with the suffix ".png".
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from motionrecon.fileio import atomic_path

FOURCCS = ("mp4v", "avc1")
STRIP_FRAMES = 8
STRIP_HEIGHT = 480  # pixels: each strip frame is scaled to at most this height


def _try_writer(path: Path, fps: float, size: tuple[int, int]):
    for code in FOURCCS:
        writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*code), float(fps), size)
        if writer.isOpened():
            return writer, code
        writer.release()
    return None, None


def _frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
    finally:
        cap.release()


def write_video(out_path: str | os.PathLike, make_frames: Callable[[], Iterable[np.ndarray]], fps: float,
                num_frames: int, *, allow_video: bool = True) -> Path:
    """Writes the frames of `make_frames()` (BGR uint8, all the same size) to `out_path` as MP4.

    Args:
      out_path: the .mp4 to write; it appears complete or not at all.
      make_frames: returns a fresh iterator over the frames (called again for the fallback).
      fps: frame rate of the video.
      num_frames: how many frames `make_frames()` should yield (spacing of the strip's frames).
      allow_video: False skips the video writer (forces the PNG strip).

    Returns:
      The path written: `out_path`, or `out_path` with suffix ".png" for the strip.
    """
    out_path = Path(out_path)
    if allow_video:
        written = _write_mp4(out_path, make_frames, fps, num_frames)
        if written is not None:
            return written
    return write_strip(out_path.with_suffix(".png"), make_frames(), num_frames)


def _write_mp4(out_path: Path, make_frames, fps: float, num_frames: int) -> Path | None:
    class _NoWriter(Exception):
        pass

    try:
        with atomic_path(out_path) as tmp:
            writer, n = None, 0
            try:
                for frame in make_frames():
                    if writer is None:
                        writer, _ = _try_writer(tmp, fps, (frame.shape[1], frame.shape[0]))
                        if writer is None:
                            raise _NoWriter
                    writer.write(np.ascontiguousarray(frame))
                    n += 1
            finally:
                if writer is not None:
                    writer.release()
            if n == 0:
                raise ValueError("no frames to write")
            if _frame_count(tmp) != n:  # the writer opened but did not produce a readable file
                raise _NoWriter
    except _NoWriter:
        return None
    return out_path


def _grid(tiles: list[np.ndarray], aspect: float = 16 / 9) -> np.ndarray:
    """Tiles (same-size after padding) in rows and columns, the whole closest to `aspect`."""
    h = max(t.shape[0] for t in tiles) + 4
    w = max(t.shape[1] for t in tiles) + 4
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, w - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
             for t in tiles]
    n = len(tiles)
    cols = min(range(1, n + 1), key=lambda c: abs(math.log(c * w / (math.ceil(n / c) * h) / aspect)))
    rows = math.ceil(n / cols)
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (rows * cols - n)
    return np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], axis=1) for r in range(rows)], axis=0)


def write_strip(out_path: str | os.PathLike, frames: Iterable[np.ndarray], num_frames: int,
                max_frames: int = STRIP_FRAMES) -> Path:
    """Writes up to `max_frames` evenly spaced frames as a grid into one PNG, atomically."""
    out_path = Path(out_path)
    keep = set(np.unique(np.linspace(0, max(num_frames - 1, 0), min(max_frames, max(num_frames, 1))).round()
                         .astype(int)).tolist())
    tiles = []
    for i, frame in enumerate(frames):
        if i in keep:
            h, w = frame.shape[:2]
            s = min(1.0, STRIP_HEIGHT / h)
            tiles.append(cv2.resize(frame, (max(1, math.floor(w * s)), max(1, math.floor(h * s))),
                                    interpolation=cv2.INTER_AREA) if s < 1 else frame)
    if not tiles:
        raise ValueError("no frames to write")
    strip = _grid(tiles)
    with atomic_path(out_path) as tmp:
        if not cv2.imwrite(str(tmp), strip):
            raise OSError(f"could not write {out_path}")
    return out_path
