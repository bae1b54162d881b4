"""Camera motion from the background: static, panning (rotation recovered) or moving.

1. **Background motion between consecutive kept frames** (`background_step`):
   corners of the previous frame (`cv2.goodFeaturesToTrack`, spread over a grid
   so that plain regions such as a floor take part) outside the followed
   people's boxes (widened by `PERSON_MARGIN`), tracked into the frame
   with pyramidal Lucas-Kanade (`cv2.calcOpticalFlowPyrLK`; a point is kept
   when tracking it back lands within `FORWARD_BACKWARD_PX` of its start), and
   a homography H (pixels of the previous frame -> pixels of this one) fitted
   to them with RANSAC (`cv2.findHomography`); `parallax_fraction` is the
   share of grid cells that move off it (near ground and far wall moving
   differently: a camera that travels). Frames are analysed in grey,
   downscaled to `ANALYSIS_SIDE` pixels on the longer side; H is returned in
   full-resolution pixels. Needs no intrinsics, so it is measured once with
   the detections and cached with them (`mediapipe_pose.PoseTrack.homographies`).
2. **Rotation** (`rotation_from_homography`): a camera turning about its
   centre maps pixels through H = K R K^-1 (x_cam' = R x_cam). R is the
   rotation that best maps the viewing rays K^-1 p of a grid of points onto
   the rays of their images H p (orthogonal Procrustes / Kabsch, SVD); the
   residual (pixels, at `ANALYSIS_SIDE`) between H p and K R K^-1 p says how
   far the motion is from a pure rotation (translation with parallax, zoom,
   a cut, or a wrong focal length).
3. **Verdict** (`camera_motion`): "static" when the camera never turns more
   than `STATIC_MAX_DEG` from the first frame; "panning" when it turns more
   and every step is a rotation (residual within `PAN_MAX_RESIDUAL_PX`, median
   parallax within `PAN_MAX_PARALLAX`, nearly all steps measured): then the
   rotations are recovered and the world stays fixed; "moving" otherwise (the
   camera travels or zooms, or the background could not be followed): a static
   camera is assumed and the global trajectory is not reliable;
   "unknown" when the background has too little texture to measure in most
   frames (a static camera is then assumed, and said).
4. **Reference camera** (`to_reference_pixels`): with the rotations
   recovered, pixels of frame t map into the first frame's camera through
   K R_t^T K^-1, so the 2D keypoints of a panning video can be placed by a
   static camera (`placement.place`); drawing goes back through K R_t K^-1
   (`observations.CameraModel.video_pixels`).

Conventions: R_t maps the first frame's camera coordinates to frame t's
(x_t = R_t x_0); pan is positive to the right, tilt positive upwards (OpenCV
camera axes: x right, y down, z forward).
"""

from __future__ import annotations

import dataclasses

from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

if TYPE_CHECKING:
    from motionrecon.keypoints.shots import Shots
    from motionrecon.observations import CameraModel

ANALYSIS_SIDE = 640       # px: longer side of the grey frames the background is followed in
MAX_CORNERS = 384
GRID_ROWS, GRID_COLS = 4, 6  # corners are looked for in each cell of this grid
CORNER_QUALITY = 0.01
CORNER_SPACING = 8        # px at ANALYSIS_SIDE
PERSON_MARGIN = 0.15      # the person's box widened by this fraction of its size on each side
FORWARD_BACKWARD_PX = 1.0
PARALLAX_PX = 2.0         # px at ANALYSIS_SIDE: a grid cell this far off the homography (median) is off
RANSAC_PX = 1.0           # px at ANALYSIS_SIDE
MIN_INLIERS = 25          # a step is measured when RANSAC keeps at least this many points ...
MIN_INLIER_FRACTION = 0.3  # ... and this fraction of the tracked ones
STATIC_MAX_DEG = 1.0      # largest turn from the first frame that still counts as a static camera
PAN_MAX_RESIDUAL_PX = 2.0  # px at ANALYSIS_SIDE: 95th percentile of the steps' distance from a pure rotation
PAN_MIN_MEASURED = 0.9    # fraction of the steps that must be measured to recover a pan
PAN_MAX_PARALLAX = 0.1    # median `parallax_fraction` over the steps above which the camera travels
UNKNOWN_MAX_MEASURED = 0.5  # below this fraction of measured steps the motion is "unknown"
VERDICTS = ("static", "panning", "moving", "unknown")


# ------------------------------------------------------------ 1. background motion

def analysis_image(frame_bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """(grey uint8 image with the longer side at most ANALYSIS_SIDE, scale = its pixels / the frame's)."""
    h, w = frame_bgr.shape[:2]
    scale = min(1.0, ANALYSIS_SIDE / max(h, w))
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return grey, scale


@dataclasses.dataclass(frozen=True)
class BackgroundStep:
    """The background's motion from one frame to the next.

    Attributes:
      H: [3, 3] homography, full-resolution pixels of the previous frame -> this frame; NaN when not measured.
      points: corners tracked both ways. inliers: of them, those RANSAC kept.
      parallax: `parallax_fraction` of the grid cells (NaN when not measured).
    """

    H: np.ndarray
    points: int
    inliers: int
    parallax: float = float("nan")

    @property
    def measured(self) -> bool:
        return bool(np.isfinite(self.H).all())


def background_corners(grey: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """[N, 1, 2] float32 corners (`cv2.goodFeaturesToTrack`) spread over a GRID_ROWS x GRID_COLS grid of
    cells, up to MAX_CORNERS / cells each, the quality threshold relative to each cell's best corner, so
    plain regions (a floor) contribute besides textured ones (a wall); None if there are none."""
    h, w = grey.shape
    per_cell = max(1, MAX_CORNERS // (GRID_ROWS * GRID_COLS))
    found = []
    for r in range(GRID_ROWS):
        for c in range(GRID_COLS):
            y0, y1, x0, x1 = r * h // GRID_ROWS, (r + 1) * h // GRID_ROWS, c * w // GRID_COLS, (c + 1) * w // GRID_COLS
            if not mask[y0:y1, x0:x1].any():
                continue
            pts = cv2.goodFeaturesToTrack(grey[y0:y1, x0:x1], per_cell, CORNER_QUALITY, CORNER_SPACING,
                                          mask=mask[y0:y1, x0:x1])
            if pts is not None:
                found.append(pts + np.array([x0, y0], np.float32))
    return np.concatenate(found) if found else None


def parallax_fraction(src: np.ndarray, dst: np.ndarray, H: np.ndarray, shape: tuple[int, int]) -> float:
    """Fraction of the grid cells (with at least 3 points) whose points move, in the median, more than
    PARALLAX_PX away from where the homography `H` puts them (analysis pixels).

    One homography moves a whole scene only when the camera turns without moving (or the scene is
    one plane). A camera that travels moves near things (the floor) faster than far ones (a wall), and
    RANSAC keeps the larger group: the other cells stay off.
    """
    h, w = shape
    p = np.concatenate([src, np.ones((len(src), 1))], 1) @ H.T
    off = np.linalg.norm(p[:, :2] / p[:, 2:3] - dst, axis=1)
    cell = (np.clip(src[:, 1] * GRID_ROWS // h, 0, GRID_ROWS - 1) * GRID_COLS
            + np.clip(src[:, 0] * GRID_COLS // w, 0, GRID_COLS - 1)).astype(int)
    medians = [np.median(off[cell == c]) for c in np.unique(cell) if np.sum(cell == c) >= 3]
    return float(np.mean(np.array(medians) > PARALLAX_PX)) if medians else float("nan")


def background_step(previous: np.ndarray, current: np.ndarray, scale: float,
                    exclude: list[np.ndarray] = ()) -> BackgroundStep:
    """Background homography between two `analysis_image`s (module docstring, step 1).

    Args:
      previous, current: grey images at the analysis scale.
      scale: analysis pixels per full-resolution pixel.
      exclude: boxes [4] (x0, y0, x1, y1, full-resolution pixels) of the previous frame whose
        corners are not used (the followed people), widened by PERSON_MARGIN.
    """
    nan = np.full((3, 3), np.nan)
    mask = np.full(previous.shape, 255, np.uint8)
    h, w = previous.shape
    for box in exclude:
        if box is None or not np.isfinite(box).all():
            continue
        pad = PERSON_MARGIN * np.array([box[2] - box[0], box[3] - box[1]])
        x0, y0 = np.clip(np.floor((box[:2] - pad) * scale).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil((box[2:] + pad) * scale).astype(int), 0, [w, h])
        mask[y0:y1, x0:x1] = 0
    corners = background_corners(previous, mask)
    if corners is None or len(corners) < MIN_INLIERS:
        return BackgroundStep(nan, 0 if corners is None else len(corners), 0)
    lk = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    ahead, ok1, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, **lk)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(current, previous, ahead, None, **lk)
    good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (np.linalg.norm(back - corners, axis=-1).ravel()
                                                     < FORWARD_BACKWARD_PX)
    src, dst = corners.reshape(-1, 2)[good], ahead.reshape(-1, 2)[good]
    if len(src) < MIN_INLIERS:
        return BackgroundStep(nan, int(len(src)), 0)
    H, inlier = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_PX, maxIters=2000, confidence=0.995)
    n_in = 0 if inlier is None else int(inlier.sum())
    if H is None or n_in < max(MIN_INLIERS, MIN_INLIER_FRACTION * len(src)):
        return BackgroundStep(nan, int(len(src)), n_in)
    S = np.diag([scale, scale, 1.0])
    return BackgroundStep(np.linalg.inv(S) @ H @ S, int(len(src)), n_in, parallax_fraction(src, dst, H, (h, w)))


# ------------------------------------------------------------ 2. rotation

def _grid(width: int, height: int, n: int = 7) -> np.ndarray:
    """[n*n, 2] pixels spread over the frame (10 % in from the edges)."""
    xs = np.linspace(0.1 * width, 0.9 * width, n)
    ys = np.linspace(0.1 * height, 0.9 * height, n)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


def _apply(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.concatenate([points, np.ones((*points.shape[:-1], 1))], -1) @ H.T
    return p[..., :2] / p[..., 2:3]


def _rays(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    r = np.concatenate([points, np.ones((*points.shape[:-1], 1))], -1) @ np.linalg.inv(K).T
    return r / np.linalg.norm(r, axis=-1, keepdims=True)


def rotation_from_homography(H: np.ndarray, K: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """The camera rotation R (x' = R x) that best explains a homography, and how well.

    Args:
      H: [3, 3] pixels of one frame -> the next. K: [3, 3] intrinsics. width, height: frame size, pixels.

    Returns:
      (R [3, 3], residual): residual is the RMS distance, in pixels at ANALYSIS_SIDE, between
      H p and K R K^-1 p over a grid of points p.
    """
    p = _grid(width, height)
    q = _apply(H, p)
    a, b = _rays(p, K), _rays(q, K)
    U, _, Vt = np.linalg.svd(b.T @ a)  # Kabsch: R = argmin sum |b - R a|^2
    R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
    predicted = _apply(K @ R @ np.linalg.inv(K), p)
    scale = min(1.0, ANALYSIS_SIDE / max(width, height))
    return R, float(np.sqrt(np.mean(np.sum((predicted - q) ** 2, -1))) * scale)


# ------------------------------------------------------------ 3. verdict

@dataclasses.dataclass(frozen=True)
class CameraMotion:
    """How the camera moved over a clip, judged from the background.

    Attributes:
      verdict: "static", "panning", "moving" or "unknown" (module docstring, step 3).
      rotations: [T, 3, 3] x_t = R_t x_0, the first frame's camera coordinates to frame t's; recovered
        for "panning", identity otherwise (the camera is then taken as static).
      measured: [T] bool, steps (frame t-1 -> t) with a background fit; frame 0 False.
      step_deg: [T] angle the camera turned in each step, degrees (NaN where not measured).
      pan_deg, tilt_deg, roll_deg: [T] the camera's estimated turn from the first frame, degrees
        (pan right, tilt up; chained over the measured steps, a missing step counted as the mean of its
        neighbours), for every verdict.
      shift_px: [T] how far the image centre moved in each step, full-resolution pixels.
      residual_px: [T] distance of each step from a pure rotation, pixels at ANALYSIS_SIDE.
      parallax: [T] `parallax_fraction` of each step.
      note: one sentence for people: what the camera did and what was assumed.
    """

    verdict: str
    rotations: np.ndarray
    measured: np.ndarray
    step_deg: np.ndarray
    pan_deg: np.ndarray
    tilt_deg: np.ndarray
    roll_deg: np.ndarray
    shift_px: np.ndarray
    residual_px: np.ndarray
    parallax: np.ndarray
    note: str

    @property
    def rotation_recovered(self) -> bool:
        return self.verdict == "panning"

    @property
    def trajectory_reliable(self) -> bool | None:
        """Whether the world trajectory can be trusted: True for a static camera or a pan that was undone,
        False for a camera that moved otherwise, None when its motion could not be measured."""
        return None if self.verdict == "unknown" else self.verdict in ("static", "panning")

    def camera_model(self, K: np.ndarray) -> "CameraModel":
        """The `observations.CameraModel` the placement assumes with this motion (K: [3, 3] intrinsics)."""
        from motionrecon.observations import CameraModel

        if self.rotation_recovered:
            to_video = K[None] @ self.rotations @ np.linalg.inv(K)[None]
            return CameraModel("rotating", rotations=self.rotations, to_video=to_video, trajectory_reliable=True,
                               note=self.note)
        return CameraModel("static", trajectory_reliable=self.trajectory_reliable, note=self.note)

    def describe(self) -> dict:
        """JSON-ready summary (metrics.json "camera_motion")."""
        finite = lambda a: a[np.isfinite(a)]
        span = lambda a: [float(finite(a).min()), float(finite(a).max())] if finite(a).size else [0.0, 0.0]
        steps = max(1, len(self.measured) - 1)
        return {
            "verdict": self.verdict,
            "camera_model": "rotating" if self.rotation_recovered else "static",
            "trajectory_reliable": self.trajectory_reliable,
            "note": self.note,
            "pan_deg_range": span(self.pan_deg),
            "tilt_deg_range": span(self.tilt_deg),
            "roll_deg_range": span(self.roll_deg),
            "step_deg_median": float(np.median(finite(self.step_deg))) if finite(self.step_deg).size else None,
            "shift_px_median": float(np.median(finite(self.shift_px))) if finite(self.shift_px).size else None,
            "residual_px_p95": (float(np.percentile(finite(self.residual_px), 95))
                                if finite(self.residual_px).size else None),
            "measured_steps_fraction": float(self.measured[1:].sum() / steps),
            "parallax_median": (float(np.nanmedian(self.parallax[self.measured]))
                                if np.isfinite(self.parallax[self.measured]).any() else None),
        }


def _chain(steps: np.ndarray, measured: np.ndarray, breaks: tuple[int, ...] = ()) -> np.ndarray:
    """[T, 3, 3] cumulative rotations from [T, 3, 3] step rotations; missing steps get the rotation
    vector interpolated from their measured neighbours (zero when none is measured), except the steps
    into the frames in `breaks` (cuts to another shot: no rotation relates the shots), which are none."""
    T = len(steps)
    vecs = np.zeros((T, 3))
    good = np.flatnonzero(measured)
    if good.size:
        vecs[good] = Rotation.from_matrix(steps[good]).as_rotvec()
        for k in range(3):
            vecs[1:, k] = np.interp(np.arange(1, T), good, vecs[good, k])
    vecs[[k for k in breaks if 0 < k < T]] = 0.0
    out = np.zeros((T, 3, 3))
    out[0] = np.eye(3)
    for t in range(1, T):
        out[t] = Rotation.from_rotvec(vecs[t]).as_matrix() @ out[t - 1]
    return out


def camera_motion(homographies: np.ndarray, parallax: np.ndarray, K: np.ndarray, width: int,
                  height: int, cuts: "Shots | None" = None) -> CameraMotion:
    """Verdict and rotations from the background homographies of a clip (module docstring, steps 2-3).

    Args:
      homographies: [T, 3, 3] pixels of frame t-1 -> frame t (row 0 unused; NaN where not measured).
      parallax: [T] `parallax_fraction` of each step (NaN where not measured).
      K: [3, 3] intrinsics, pixels. width, height: frame size, pixels.
      cuts: the video's cuts between shots (`shots.find_shots`): the steps into a transition's frames
        and into a new shot are not camera motion and are left out (the rotation chain starts again).
    """
    T = len(homographies)
    measured = np.isfinite(homographies).all(axis=(1, 2))
    measured[0] = False
    breaks: tuple[int, ...] = ()
    if cuts is not None:
        measured &= ~cuts.transition
        measured[[k for k in cuts.starts if k < T]] = False
        breaks = cuts.starts
    steps = np.repeat(np.eye(3)[None], T, axis=0)
    residual = np.full(T, np.nan)
    shift = np.full(T, np.nan)
    centre = np.array([[width / 2, height / 2]])
    for t in np.flatnonzero(measured):
        steps[t], residual[t] = rotation_from_homography(homographies[t], K, width, height)
        shift[t] = float(np.linalg.norm(_apply(homographies[t], centre) - centre))
    step_deg = np.where(measured, np.degrees(np.linalg.norm(Rotation.from_matrix(steps).as_rotvec(), axis=1)),
                        np.nan)
    turned = _chain(steps, measured, breaks)
    # The camera's own attitude in the first camera's frame is R_t^T; YXZ: pan about y, tilt about x, roll about z.
    euler = np.degrees(Rotation.from_matrix(np.transpose(turned, (0, 2, 1))).as_euler("YXZ"))
    pan, tilt, roll = euler[:, 0], -euler[:, 1], euler[:, 2]
    total = np.degrees(np.linalg.norm(Rotation.from_matrix(turned).as_rotvec(), axis=1))
    fraction = measured[1:].mean() if T > 1 else 1.0
    res95 = float(np.percentile(residual[measured], 95)) if measured.any() else np.inf
    travel = float(np.nanmedian(parallax[measured])) if np.isfinite(parallax[measured]).any() else 0.0
    largest = float(total.max())
    if T < 2 or fraction < UNKNOWN_MAX_MEASURED:
        verdict = "unknown"
        note = (f"the background could be followed in only {100 * fraction:.0f}% of the frames (too little texture, "
                "or cuts): camera motion unknown, a static camera is assumed")
    elif largest <= STATIC_MAX_DEG:
        verdict = "static"
        note = f"static camera (turns at most {largest:.1f} degrees)"
    elif fraction >= PAN_MIN_MEASURED and res95 <= PAN_MAX_RESIDUAL_PX and travel <= PAN_MAX_PARALLAX:
        verdict = "panning"
        note = (f"the camera turns about its centre (pan {pan.min():.0f} to {pan.max():.0f} degrees, tilt "
                f"{tilt.min():.0f} to {tilt.max():.0f}); its rotation per frame is undone, so the world stays fixed")
    else:
        if fraction < PAN_MIN_MEASURED:
            why = f"the background was followed in only {100 * fraction:.0f}% of the frames"
        elif travel > PAN_MAX_PARALLAX:
            why = (f"near and far background move differently in {100 * travel:.0f}% of the image (median): it "
                   "travels")
        else:
            why = (f"its image motion is not a pure rotation ({res95:.1f} px from one, 95th percentile): it travels "
                   "or zooms")
        verdict = "moving"
        note = (f"the camera moves ({largest:.0f} degrees of turn; {why}); a static camera is assumed, so the "
                "global trajectory is not reliable")
    rotations = turned if verdict == "panning" else np.repeat(np.eye(3)[None], T, axis=0)
    return CameraMotion(verdict=verdict, rotations=rotations, measured=measured, step_deg=step_deg, pan_deg=pan,
                        tilt_deg=tilt, roll_deg=roll, shift_px=shift, residual_px=residual,
                        parallax=np.asarray(parallax, np.float64), note=note)


# ------------------------------------------------------------ 4. reference camera

def to_reference_pixels(points: np.ndarray, rotations: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[T, J, 2] video pixels of frame t -> pixels of the first frame's camera (K R_t^T K^-1), as if it had
    not turned. Points may land outside the image; NaN stays NaN. (`CameraModel.video_pixels` maps back.)"""
    H = K[None] @ np.transpose(rotations, (0, 2, 1)) @ np.linalg.inv(K)[None]
    p = np.concatenate([points, np.ones((*points.shape[:-1], 1))], -1)
    q = np.einsum("tij,tkj->tki", H, np.asarray(p, np.float64))
    return q[..., :2] / q[..., 2:3]
