"""The body seen from the side (and from the front) against the ground line, drawn with OpenCV.

Each frame has two orthographic panels of the world (z up, ground z = 0):
"side", looking along world x (horizontal axis = world y, which for video
reconstructions is the depth away from the camera: where monocular errors
show), and "front", looking along world y (horizontal = world x). The scale
and the window are fixed over the clip, so sliding feet show as feet that
move along a still ground line with ticks every 0.5 m. Joints less than
`contact_height` above the ground are ringed in red: a glance shows whether
the feet touch the ground and stay put.

Works headless (no display, no GPU). Written atomically as MP4, or as a PNG
strip when no video writer opens (`motionrecon.export.video_writer`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from motionrecon.export.overlay import cross_bones, draw_skeleton, joint_colors
from motionrecon.export.video_writer import write_video

BACKGROUND = (245, 245, 245)
GROUND = (90, 90, 90)
CONTACT = (0, 0, 230)
SEAT = (170, 190, 210)  # BGR: what the body sits on (`body.seats`)
TEXT = (40, 40, 40)


@dataclasses.dataclass(frozen=True)
class View:
    """An orthographic panel: world axis `horizontal` to the right, z up, fixed over the clip.

    Attributes:
      name: panel title.
      horizontal: index of the world axis drawn to the right (0 = x, 1 = y).
      lo: [2] world (horizontal, z) at the panel's lower-left corner, metres.
      pixels_per_metre: scale.
      size: (width, height) of the panel in pixels.
    """

    name: str
    horizontal: int
    lo: np.ndarray
    pixels_per_metre: float
    size: tuple[int, int]

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """[..., 3] world points -> [..., 2] panel pixels."""
        h = (points[..., self.horizontal] - self.lo[0]) * self.pixels_per_metre
        v = self.size[1] - (points[..., 2] - self.lo[1]) * self.pixels_per_metre
        return np.stack([h, v], axis=-1)


def fit_views(joints3d: np.ndarray, panel_size: tuple[int, int], margin: float = 0.25) -> list[View]:
    """Side and front panels sharing one scale that keeps the whole clip (and the ground) in view."""
    pts = joints3d[np.isfinite(joints3d).all(-1)]
    width, height = panel_size
    spans = []
    for axis in (1, 0):
        lo = np.array([pts[:, axis].min() - margin, min(pts[:, 2].min(), 0.0) - margin])
        hi = np.array([pts[:, axis].max() + margin, max(pts[:, 2].max(), 0.0) + margin])
        spans.append((lo, hi))
    title_px = 28
    ppm = min(min(width / (hi[0] - lo[0]), (height - title_px) / (hi[1] - lo[1])) for lo, hi in spans)
    views = []
    for name, axis, (lo, hi) in (("side view (world y: depth)", 1, spans[0]), ("front view (world x)", 0, spans[1])):
        # Centre the content in the panel.
        extra = np.array([width / ppm - (hi[0] - lo[0]), (height - title_px) / ppm - (hi[1] - lo[1])])
        views.append(View(name, axis, lo - extra / 2, ppm, panel_size))
    return views


def render_panel(view: View, joints: np.ndarray, parents: Sequence[int], colors, *,
                 confidence: np.ndarray | None = None, contact_height: float = 0.03,
                 extra_bones: Sequence[tuple[int, int]] = (), seats: Sequence[dict] = ()) -> np.ndarray:
    """One panel [H, W, 3] BGR of one frame's joints [J, 3], with the `seats` (metrics "seats": "x_m", "y_m",
    "height_m") drawn as boxes from the ground up."""
    w, h = view.size
    img = np.full((h, w, 3), BACKGROUND, np.uint8)
    for seat in seats:
        across = seat["y_m"] if view.horizontal == 1 else seat["x_m"]
        corners = view.to_pixels(np.array([[across[0], across[0], 0.0], [across[1], across[1], seat["height_m"]]]))
        cv2.rectangle(img, tuple(corners[0].round().astype(int)), tuple(corners[1].round().astype(int)), SEAT, -1)
    ground_v = int(round(view.to_pixels(np.zeros(3))[1]))
    cv2.line(img, (0, ground_v), (w - 1, ground_v), GROUND, 2, cv2.LINE_AA)
    first = np.ceil(view.lo[0] / 0.5) * 0.5
    for metre in np.arange(first, view.lo[0] + w / view.pixels_per_metre, 0.5):
        u = int(round((metre - view.lo[0]) * view.pixels_per_metre))
        cv2.line(img, (u, ground_v), (u, ground_v + 8), GROUND, 1, cv2.LINE_AA)
    pts = view.to_pixels(joints)
    thickness = max(2, round(min(w, h) / 200))
    draw_skeleton(img, pts, parents, confidence=confidence, colors=colors, thickness=thickness,
                  min_confidence=0.0 if confidence is None else 1e-6, extra_bones=extra_bones)
    touching = np.isfinite(joints).all(1) & (joints[:, 2] < contact_height)
    for j in np.flatnonzero(touching):
        cv2.circle(img, tuple(pts[j].round().astype(int)), thickness + 5, CONTACT, 2, cv2.LINE_AA)
    cv2.putText(img, view.name, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, TEXT, 1, cv2.LINE_AA)
    return img


def render_frame(views: Sequence[View], joints: np.ndarray, parents, colors, label: str, *,
                 confidence: np.ndarray | None = None, contact_height: float = 0.03,
                 extra_bones: Sequence[tuple[int, int]] = (), seats: Sequence[dict] = ()) -> np.ndarray:
    """Panels side by side with a time label, [H, W, 3] BGR."""
    panels = [render_panel(v, joints, parents, colors, confidence=confidence, contact_height=contact_height,
                           extra_bones=extra_bones, seats=seats) for v in views]
    sep = np.full((panels[0].shape[0], 4, 3), GROUND, np.uint8)
    image = np.concatenate([panels[0]] + [x for p in panels[1:] for x in (sep, p)], axis=1)
    cv2.putText(image, label, (image.shape[1] - 130, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, TEXT, 1, cv2.LINE_AA)
    return image


def write_side_view(joints3d: np.ndarray, parents: Sequence[int], fps: float, out_path: str | os.PathLike, *,
                    confidence: np.ndarray | None = None, joint_names: Sequence[str] | None = None,
                    panel_size: tuple[int, int] = (480, 540), contact_height: float = 0.03,
                    start_time: float = 0.0, undetected: np.ndarray | None = None,
                    allow_video: bool = True, seats: Sequence[dict] = ()) -> Path:
    """Renders [T, J, 3] world joints (z-up, ground z = 0) as a side/front view video.

    Args:
      joints3d: [T, J, 3] metres.
      parents: [J] parent indices.
      fps: frame rate of the output.
      out_path: the .mp4 to write.
      confidence: [T, J] optional; joints with 0 are not drawn.
      joint_names: colour left/right sides when given.
      panel_size: (width, height) of each of the two panels, pixels (even numbers).
      contact_height: joints below this height (metres) are marked as touching the ground.
      start_time: seconds into the video of the first frame (the time label shows video time).
      undetected: [T] bool, frames without a detection: labelled "not detected" in red.
      allow_video: False forces the PNG strip.
      seats: what the body sits on (metrics "seats"), drawn as boxes from the ground up.

    Returns:
      The path written (`out_path`, or its ".png" strip).
    """
    joints3d = np.asarray(joints3d, np.float64)
    if joints3d.ndim != 3 or joints3d.shape[2] != 3 or joints3d.shape[1] != len(parents):
        raise ValueError(f"joints3d must be [T, {len(parents)}, 3], got {joints3d.shape}")
    if not np.isfinite(joints3d).any():
        raise ValueError("joints3d has no finite positions")
    views = fit_views(joints3d, panel_size)
    colors = joint_colors(joint_names, len(parents))
    extra = cross_bones(joint_names)
    T = joints3d.shape[0]
    undetected = np.zeros(T, bool) if undetected is None else np.asarray(undetected, bool)
    if undetected.shape != (T,):
        raise ValueError("undetected must hold one flag per frame")

    def frames():
        for i in range(T):
            image = render_frame(views, joints3d[i], parents, colors, f"t = {start_time + i / fps:5.2f} s",
                                 confidence=None if confidence is None else confidence[i],
                                 contact_height=contact_height, extra_bones=extra, seats=seats)
            if undetected[i]:
                cv2.putText(image, "not detected", (image.shape[1] - 130, 42), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                            CONTACT, 1, cv2.LINE_AA)
            yield image

    return write_video(out_path, frames, fps, T, allow_video=allow_video)
