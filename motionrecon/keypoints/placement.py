"""Global placement: per-frame 3D keypoints in the camera, then a gravity-aligned world frame.

Input: per frame, 2D landmarks in pixels, metric 3D landmarks relative to the
hips (MediaPipe "world" landmarks, in MediaPipe's own, roughly camera-aligned
orientation) and the camera intrinsics.

1. Camera-frame pose per frame (`fit_frame`): the rigid transform (R_t, t_t)
   that best projects the 3D landmarks onto the 2D ones, found by OpenCV's
   `cv2.solvePnP` (Levenberg-Marquardt on the reprojection error) on the
   landmarks with visibility >= 0.5. Its start is temporally consistent: the
   previous frame's rotation, with the translation solved in closed form for
   that rotation (linear least squares in t; `translation_for_rotation`). The
   3D pose itself keeps MediaPipe's shape; only where it stands in the camera
   and how it is turned are fitted.
2. Ground plane and gravity (`fit_ground`): the foot landmarks (heels and toe
   tips) over the whole clip. Starting from "up" = the mean ankle-to-shoulder
   direction, the points within 5 cm of the lowest envelope are taken as
   contacts, and a plane is fitted to them by robust least squares
   (`scipy.optimize.least_squares`, soft-L1 loss with a 2 cm scale) with a
   weak prior towards the body's mean up direction (it decides only when the
   contacts span too little area, e.g. a person standing still); repeated
   until the contact set stops changing. The heels are first lowered to the
   sole (`heels_onto_sole`): MediaPipe puts its heel point on the back of the
   heel, centimetres above the ground. Gravity is the plane's normal,
   pointing from the feet to the head.
3. World frame: z = up (the plane's normal), ground at z = 0; x = the
   camera's x axis (image right) laid onto the ground; y = z x x (away from
   the camera); origin = the point on the ground below the hips in the first
   frame with a detection. The camera becomes `Camera(K, R, t)` with
   x_cam = R x_world + t.

Frames without a detection get positions interpolated linearly in time from
their detected neighbours (held at the ends) and confidence 0, so every array
is finite. Nothing is smoothed: the result is the raw per-frame estimate placed
in the world (the baseline the physics improves on).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation, Slerp
from scipy.stats import theilslopes

from motionrecon.camera import make_camera, undistort_pixels
from motionrecon.errors import InputError
from motionrecon.observations import Observations, shot_spans
from motionrecon.skeleton import MEDIAPIPE33

VISIBLE = 0.5  # landmarks at least this visible take part in the per-frame fit
MIN_POINTS = 6  # fewest landmarks for a fit (the most visible ones if fewer are VISIBLE)
CONTACT_TOLERANCE = 0.05  # metres above the ground that still count as foot contact
GROUND_SCALE = 0.02  # metres: soft-L1 scale of the plane fit
UP_PRIOR_DEG = 10.0
GROUND_MEDIAN_FRAMES = 5  # running median of the translations for the ground fit  # one prior "residual" of GROUND_SCALE per this many degrees from the body's up

_I = MEDIAPIPE33.index
FOOT_POINTS = (_I("left_heel"), _I("left_foot_index"), _I("right_heel"), _I("right_foot_index"))
HEEL_TOE_SLOTS = ((0, 1), (2, 3))  # (heel, toe tip) of each foot within FOOT_POINTS
HIPS = (_I("left_hip"), _I("right_hip"))
SHOULDERS = (_I("left_shoulder"), _I("right_shoulder"))
ANKLES = (_I("left_ankle"), _I("right_ankle"))


@dataclasses.dataclass(frozen=True)
class Placement:
    """The placed keypoints and what was estimated on the way.

    Attributes:
      observations: joint_set "mediapipe33"; joints3d [T, 33, 3] world (z-up,
        ground z = 0), joints2d [T, 33, 2] pixels, confidence [T, 33], camera.
      joints_cam: [T, 33, 3] the same joints in the camera frame, metres.
      root_cam: [T, 3] midpoint of the hips in the camera frame, metres.
      rotations: [T, 3, 3] rotation from the 3D landmarks' own axes to the camera's.
      reprojection_px: [T] RMS reprojection error of the per-frame fit over the
        landmarks used (NaN where not detected).
      detected: [T] frames that had a detection.
      up_cam: [3] unit "up" (against gravity) in the camera frame.
      ground_offset: d of the ground plane {x: up_cam . x + d = 0} in the camera frame.
      contacts: [T, 4] foot points (L heel, L toe, R heel, R toe) used as ground contacts.
      heel_rise: [2] metres each heel point was lowered to the sole for the ground fit (L, R;
        `heels_onto_sole`).
      camera_height: metres of the camera centre above the ground.
      camera_pitch_deg: angle of the optical axis below the horizon (positive = looking down).
      camera_roll_deg: rotation of the image's x axis out of the horizontal.
    """

    observations: Observations
    joints_cam: np.ndarray
    root_cam: np.ndarray
    rotations: np.ndarray
    reprojection_px: np.ndarray
    detected: np.ndarray
    up_cam: np.ndarray
    ground_offset: float
    contacts: np.ndarray
    camera_height: float
    camera_pitch_deg: float
    camera_roll_deg: float
    heel_rise: np.ndarray

    def describe(self) -> dict:
        """JSON-ready summary."""
        return {
            "camera_height_m": self.camera_height,
            "camera_pitch_deg": self.camera_pitch_deg,
            "camera_roll_deg": self.camera_roll_deg,
            "up_in_camera": self.up_cam.tolist(),
            "ground_contact_points": int(self.contacts.sum()),
            "heel_rise_m": [float(v) for v in self.heel_rise],
            "reprojection_px_median": float(np.nanmedian(self.reprojection_px)),
            "detected_frames": int(self.detected.sum()),
        }


# ------------------------------------------------------------ per frame

def normalised_coordinates(pixels: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None) -> np.ndarray:
    """[..., 2] pixels -> [..., 2] (x/z, y/z) of the ideal pinhole camera."""
    px = undistort_pixels(pixels, K, dist)
    return (px - K[:2, 2]) / np.array([K[0, 0], K[1, 1]])


def translation_for_rotation(points3d: np.ndarray, normalised: np.ndarray, weights: np.ndarray,
                             R: np.ndarray) -> np.ndarray:
    """Translation t [3] that best projects R @ points3d + t onto `normalised` image coordinates.

    Each landmark j with rotated position p = R X_j and image coordinates
    (a, b) gives two equations linear in t (the projection's cross-multiplied form):
        t_x - a t_z = a p_z - p_x,    t_y - b t_z = b p_z - p_y,
    solved by weighted least squares.
    """
    p = points3d @ R.T
    a, b = normalised[:, 0], normalised[:, 1]
    one, zero = np.ones_like(a), np.zeros_like(a)
    A = np.concatenate([np.stack([one, zero, -a], 1), np.stack([zero, one, -b], 1)])
    y = np.concatenate([a * p[:, 2] - p[:, 0], b * p[:, 2] - p[:, 1]])
    w = np.sqrt(np.concatenate([weights, weights]))
    t, *_ = np.linalg.lstsq(A * w[:, None], y * w, rcond=None)
    return t


def fit_frame(points2d: np.ndarray, points3d: np.ndarray, visibility: np.ndarray, K: np.ndarray,
              dist: np.ndarray | None = None, R_guess: np.ndarray | None = None):
    """Rigid transform of one frame's 3D landmarks into the camera.

    Args:
      points2d: [J, 2] pixels.
      points3d: [J, 3] metric landmarks in their own frame (e.g. hip-centred).
      visibility: [J] in [0, 1].
      K, dist: the camera.
      R_guess: [3, 3] starting rotation (the previous frame's); identity if None.

    Returns:
      (R [3, 3], t [3], rms_px): x_cam = R x + t, and the RMS reprojection error
      over the landmarks used.
    """
    finite = np.isfinite(points2d).all(1) & np.isfinite(points3d).all(1)
    use = finite & (visibility >= VISIBLE)
    if use.sum() < MIN_POINTS:
        order = np.argsort(-np.where(finite, visibility, -1.0))
        use = np.zeros_like(use)
        use[order[:MIN_POINTS]] = True
        use &= finite
    if use.sum() < 4:
        raise ValueError("fewer than 4 usable landmarks")
    X = points3d[use].astype(np.float64)
    uv = points2d[use].astype(np.float64)
    R0 = np.eye(3) if R_guess is None else R_guess
    t0 = translation_for_rotation(X, normalised_coordinates(uv, K, dist), np.ones(len(X)), R0)
    if t0[2] <= 0:  # the closed form put the body behind the camera: start from a frontal guess
        t0 = np.array([0.0, 0.0, 3.0])
    rvec0, _ = cv2.Rodrigues(R0)
    dist_cv = np.zeros(4) if dist is None else np.asarray(dist, np.float64)
    ok, rvec, tvec = cv2.solvePnP(X, uv, K.astype(np.float64), dist_cv, rvec0.copy(), t0.reshape(3, 1).copy(),
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    R, t = (cv2.Rodrigues(rvec)[0], tvec.ravel()) if ok else (R0, t0)
    if t[2] <= 0 or not np.all(np.isfinite(t)):
        R, t = R0, t0
    proj, _ = cv2.projectPoints(X, cv2.Rodrigues(R)[0], t, K.astype(np.float64), dist_cv)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - uv) ** 2, axis=1))))
    return R, t, rms


def place_in_camera(joints2d: np.ndarray, joints3d: np.ndarray, visibility: np.ndarray, detected: np.ndarray,
                    K: np.ndarray, dist: np.ndarray | None = None):
    """`fit_frame` over a clip, each frame starting from the previous fitted frame's rotation.

    Returns:
      joints_cam [T, J, 3], rotations [T, 3, 3], translations [T, 3], rms_px [T], fitted [T] bool;
      frames not detected (or with too few usable landmarks) are NaN and not `fitted`.
    """
    T, J, _ = joints3d.shape
    joints_cam = np.full((T, J, 3), np.nan)
    rotations = np.full((T, 3, 3), np.nan)
    translations = np.full((T, 3), np.nan)
    rms = np.full(T, np.nan)
    fitted = np.zeros(T, bool)
    R_prev = None
    for i in np.flatnonzero(detected):
        try:
            R, t, err = fit_frame(joints2d[i], joints3d[i], visibility[i], K, dist, R_prev)
        except ValueError:
            continue
        joints_cam[i] = joints3d[i] @ R.T + t
        rotations[i], translations[i], rms[i], fitted[i] = R, t, err, True
        R_prev = R
    return joints_cam, rotations, translations, rms, fitted


def fill_gaps(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[T, ...] values with invalid frames linearly interpolated in time (held at the ends)."""
    out = np.array(values, np.float64, copy=True)
    if valid.all():
        return out
    good = np.flatnonzero(valid)
    if good.size == 0:
        raise ValueError("no valid frame to interpolate from")
    flat = out.reshape(len(out), -1)
    frames = np.arange(len(out))
    for k in range(flat.shape[1]):
        flat[:, k] = np.interp(frames, good, flat[good, k])
    return flat.reshape(out.shape)


def running_median(values: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """[T, D] per-frame median over the valid frames within +-window//2 frames (NaN where not valid)."""
    out = np.full(values.shape, np.nan)
    half = window // 2
    for i in np.flatnonzero(valid):
        lo, hi = max(0, i - half), min(len(values), i + half + 1)
        out[i] = np.median(values[lo:hi][valid[lo:hi]], axis=0)
    return out


def fill_within_shots(fill, values: np.ndarray, valid: np.ndarray, shot_starts: tuple[int, ...] = ()) -> np.ndarray:
    """`fill(values, valid)` (`fill_gaps`, `fill_rotation_gaps`) within each shot on its own, shots beginning at
    the frames of `shot_starts` (an edited video's cuts): nothing is interpolated across a cut, and a shot's
    frames before its first valid one hold that one. A shot without a valid frame takes the whole clip's fill."""
    spans = shot_spans(shot_starts, len(valid))
    whole = fill(values, valid) if any(not valid[a:b].any() for a, b in spans) else None
    return np.concatenate([fill(values[a:b], valid[a:b]) if valid[a:b].any() else whole[a:b] for a, b in spans])


def fill_rotation_gaps(rotations: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[T, 3, 3] rotations with invalid frames slerped between valid neighbours (held at the ends)."""
    if valid.all():
        return np.array(rotations, np.float64)
    good = np.flatnonzero(valid)
    frames = np.clip(np.arange(len(rotations)), good[0], good[-1])
    if len(good) == 1:
        return np.repeat(rotations[good], len(rotations), axis=0)
    return Slerp(good, Rotation.from_matrix(rotations[good]))(frames).as_matrix()


# ------------------------------------------------------------ ground

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _tangent_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _unit(np.cross(n, helper))
    return e1, np.cross(n, e1)


def body_up(joints_cam: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean unit direction from the ankles' to the shoulders' midpoint over valid frames (camera frame)."""
    up = joints_cam[valid][:, SHOULDERS].mean(1) - joints_cam[valid][:, ANKLES].mean(1)
    up = up / np.linalg.norm(up, axis=1, keepdims=True)
    return _unit(up.mean(0))


def heels_onto_sole(foot_points: np.ndarray, valid: np.ndarray, up: np.ndarray):
    """Foot points with each heel moved down along `up` to the level of the sole.

    MediaPipe's heel point sits on the back of the heel, well above the sole when
    the foot is flat (dribble clip: 6 cm above the toe tip), while its toe tip
    is on the sole. A ground plane through both would lie between them, above
    the soles, and a body standing on it could not reach the detected feet.
    Each heel is lowered by its median height above the same foot's toe tip
    over the valid frames (the feet are mostly flat over a clip; a negative
    median counts as 0).

    Args:
      foot_points: [T, 4, 3] (L heel, L toe tip, R heel, R toe tip), camera frame.
      valid: [T] frames with a fitted pose.
      up: [3] unit up direction.

    Returns:
      (points [T, 4, 3], heel_rise [2] metres, left and right).
    """
    out = np.array(foot_points, np.float64, copy=True)
    rise = np.zeros(len(HEEL_TOE_SLOTS))
    for k, (heel, toe) in enumerate(HEEL_TOE_SLOTS):
        rise[k] = max(0.0, float(np.median((out[valid, heel] - out[valid, toe]) @ up)))
        out[:, heel] -= rise[k] * up
    return out, rise


def fit_ground(foot_points: np.ndarray, valid: np.ndarray, up_prior: np.ndarray, *,
               contact_tolerance: float = CONTACT_TOLERANCE, max_rounds: int = 10):
    """Ground plane through the foot contacts, by robust least squares with a prior on its normal.

    Rounds of: take the foot points less than a tolerance above the current
    plane as contacts; fit the plane to them (`scipy.optimize.least_squares`,
    soft-L1 loss) with a prior residual pulling the normal towards `up_prior`.
    The noise scale sigma of the contacts' heights (robust, from their median
    absolute deviation) sets the tolerance (2.5 sigma, between 1.5 cm and
    `contact_tolerance`), the loss scale, and the prior's weight: a deviation
    of UP_PRIOR_DEG from `up_prior` costs as much as one frame's foot points
    (4, sharing that frame's depth error) each off by sigma.

    Args:
      foot_points: [T, P, 3] foot landmarks (heels, toe tips) in the camera frame.
      valid: [T] frames with a fitted pose.
      up_prior: [3] unit rough up direction (the body's mean up).

    Returns:
      (up [3], d, contacts [T, P]): the plane {x: up . x + d = 0} with `up` on the
      side of `up_prior`, and the points used as contacts.
    """
    points_per_frame = foot_points.shape[1]
    pts = foot_points[valid].reshape(-1, 3)
    owner = np.repeat(np.flatnonzero(valid), points_per_frame)
    slot = np.tile(np.arange(points_per_frame), int(valid.sum()))
    n0 = _unit(np.asarray(up_prior, np.float64))
    e1, e2 = _tangent_basis(n0)

    def normal(ab):
        return _unit(n0 + ab[0] * e1 + ab[1] * e2)

    ab, n = np.zeros(2), n0
    d = -np.percentile(pts @ n, 10)
    sigma = GROUND_SCALE
    chosen = None
    for _ in range(max_rounds):
        height = pts @ n + d
        tolerance = float(np.clip(2.5 * sigma, 0.015, contact_tolerance))
        contact = height < tolerance
        if contact.sum() < 3:
            contact = height <= np.sort(height)[min(2, len(height) - 1)]
        if chosen is not None and np.array_equal(contact, chosen):
            break
        chosen = contact
        P = pts[contact]
        scale = max(sigma, 0.005)
        prior_weight = scale * np.sqrt(points_per_frame) / np.radians(UP_PRIOR_DEG)

        def residuals(params):
            return np.concatenate([P @ normal(params[:2]) + params[2], prior_weight * params[:2]])

        sol = least_squares(residuals, np.array([ab[0], ab[1], d]), loss="soft_l1", f_scale=scale)
        ab, d = sol.x[:2], float(sol.x[2])
        n = normal(ab)
        sigma = float(np.clip(1.4826 * np.median(np.abs(P @ n + d)), 0.005, contact_tolerance))
    contacts = np.zeros(foot_points.shape[:2], bool)
    contacts[owner[chosen], slot[chosen]] = True
    return n, d, contacts


# ------------------------------------------------------------ world frame

def world_from_ground(up_cam: np.ndarray, d: float, origin_above: np.ndarray):
    """World-to-camera (R, t) for z = up, ground z = 0, x = camera x on the ground.

    `origin_above` [3] (camera frame) is dropped onto the ground to give the origin.
    """
    z = _unit(up_cam)
    x = np.array([1.0, 0.0, 0.0]) - z[0] * z
    if np.linalg.norm(x) < 1e-6:  # camera x axis vertical (video shot rolled 90 degrees): use its y axis
        x = np.array([0.0, 1.0, 0.0]) - z[1] * z
    x = _unit(x)
    y = np.cross(z, x)
    origin = origin_above - (origin_above @ z + d) * z
    R = np.stack([x, y, z], axis=1)  # columns: world axes in camera coordinates
    return R, origin


def place(joints2d: np.ndarray, joints3d: np.ndarray, visibility: np.ndarray, detected: np.ndarray,
          K: np.ndarray, width: int, height: int, fps: float, *, dist: np.ndarray | None = None,
          source: str = "", shot_starts: tuple[int, ...] = ()) -> Placement:
    """Per-frame camera-frame fit, ground plane, world frame (see module docstring).

    Args:
      joints2d: [T, 33, 2] pixels (NaN allowed where not detected).
      joints3d: [T, 33, 3] metric landmarks relative to the hips, in their own orientation.
      visibility: [T, 33] in [0, 1].
      detected: [T] bool.
      K: [3, 3] intrinsics; dist: OpenCV distortion or None.
      width, height: image size in pixels; fps: frame rate.
      source: recorded in the Observations.
      shot_starts: frames where an edited video cuts to another shot: undetected frames are filled within
        their shot (`fill_within_shots`), never across a cut.
    """
    joints_cam, rotations, translations, rms, fitted = place_in_camera(joints2d, joints3d, visibility, detected,
                                                                        K, dist)
    if fitted.sum() < 2:
        raise InputError(source, f"the pose could be placed in only {int(fitted.sum())} frames")
    up0 = body_up(joints_cam, fitted)
    # The ground is fitted to feet placed with a running median of the translations: per-frame
    # depth noise (from the body's apparent size) would otherwise tilt the plane along the rays.
    steady = running_median(translations, fitted, GROUND_MEDIAN_FRAMES)
    feet_steady = joints_cam[:, FOOT_POINTS] - translations[:, None] + steady[:, None]
    feet_sole, heel_rise = heels_onto_sole(feet_steady, fitted, up0)
    up, d, contacts = fit_ground(feet_sole, fitted, up0)
    if up @ up0 < 0:
        up, d = -up, -d
    joints_cam = fill_within_shots(fill_gaps, joints_cam, fitted, shot_starts)
    rotations = fill_within_shots(fill_rotation_gaps, rotations, fitted, shot_starts)
    root_cam = joints_cam[:, HIPS].mean(1)
    first = int(np.flatnonzero(fitted)[0])
    R, origin = world_from_ground(up, d, root_cam[first])
    joints_world = (joints_cam - origin) @ R
    camera = make_camera(K, R, origin, width, height, dist)
    confidence = np.where(fitted[:, None], visibility, 0.0).astype(np.float32)
    j2 = fill_within_shots(fill_gaps, np.where(np.isfinite(joints2d), joints2d, 0.0), fitted, shot_starts)
    obs = Observations(fps=float(fps), joint_set="mediapipe33", joints3d=joints_world.astype(np.float32),
                       joints2d=j2.astype(np.float32), confidence=confidence, camera=camera, source=str(source))
    # Camera attitude relative to the ground.
    optical_axis = np.array([0.0, 0.0, 1.0])
    pitch = float(np.degrees(np.arcsin(np.clip(-(optical_axis @ up), -1, 1))))
    roll = float(np.degrees(np.arcsin(np.clip(np.array([1.0, 0.0, 0.0]) @ up, -1, 1))))
    return Placement(observations=obs, joints_cam=joints_cam, root_cam=root_cam, rotations=rotations,
                     reprojection_px=rms, detected=fitted, up_cam=up, ground_offset=float(d), contacts=contacts,
                     heel_rise=heel_rise,
                     camera_height=float(d), camera_pitch_deg=pitch, camera_roll_deg=roll)


# ------------------------------------------------------------ a camera that moved

GROUND_WINDOW_S = 1.0  # seconds: the ground under a moving camera is re-found over windows this long
# The ground at a frame: the lowest foot point of each detected frame within the window around it, less the
# window's trend (Theil-Sen slope: a camera that tilts carries the whole body up or down while the window lasts),
# at this percentile. A running or jumping person has both feet up in some frames (so not the median), and the
# detections' feet jitter by +-10 cm under a moving camera (so not the lowest). The lowest over the window without
# the trend, as before, is its earliest or latest frame, half a window behind: on the soccer clip, whose placed
# feet rose 0.86 m in 0.9 s, it left them floating 16 cm (median over its detected frames; 34 cm at the 90th
# percentile), and the simulated body dropped from there and landed 29 mm into the floor (docs/video.md "Session
# 26").
GROUND_PERCENTILE = 25.0


def keep_on_ground(observations: Observations, detected: np.ndarray, window_s: float = GROUND_WINDOW_S,
                   shot_starts: tuple[int, ...] = ()) -> tuple[Observations, np.ndarray, np.ndarray]:
    """Observations placed by a static camera that in fact moved, kept standing on the ground.

    A camera that travels, tilts or zooms while a static one is assumed carries the body
    off the fitted ground in parts of the clip (on soccer_broadcast.mp4 the lowest foot was
    0.65 m above it for a whole second). Here, at each frame, the ground is taken as the
    GROUND_PERCENTILE-th percentile of the lowest foot point (heels and toe tips) of the detected
    frames within `window_s` around it, less the trend over those frames (Theil-Sen), smoothed over
    the same window, and the whole body is moved vertically onto it; a jump shorter than about
    three quarters of the window keeps its flight. The 2D keypoints are moved with it, by the pixels the hips' shift
    projects to, so that 2D and 3D still agree under the one static camera.

    Args:
      observations: from `place` (joint_set "mediapipe33", with a camera).
      detected: [T] frames with a detection.
      window_s: seconds.
      shot_starts: frames where the video cuts to another shot; the windows stay within a shot.

    Returns:
      (observations, lowered_m [T] metres each frame was lowered (negative: raised),
       shift_px [T, 2] pixels its 2D keypoints moved: video pixel = observed pixel - shift).
    """
    j3 = np.asarray(observations.joints3d, np.float64)
    T = len(j3)
    feet = j3[:, list(FOOT_POINTS), 2].min(1)
    half = max(1, int(round(window_s * observations.fps / 2)))
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    lowered, placed = np.zeros(T), np.zeros(T, bool)
    for first, stop in shot_spans(shot_starts, T):
        good = first + np.flatnonzero(detected[first:stop])
        if good.size == 0:
            continue  # a shot without the person: as its neighbours
        placed[first:stop] = True
        lowest = np.full(stop - first, np.nan)
        for i in good:
            near = good[(good >= i - half) & (good <= i + half)]
            slope = theilslopes(feet[near], near)[0] if near.size > 1 else 0.0
            lowest[i - first] = np.percentile(feet[near] - slope * (near - i), GROUND_PERCENTILE)
        lowest = fill_gaps(lowest[:, None], detected[first:stop])[:, 0]
        lowered[first:stop] = np.convolve(np.pad(lowest, half, mode="edge"), kernel, mode="valid")
    lowered = fill_gaps(lowered[:, None], placed)[:, 0] if placed.any() else lowered
    moved = j3.copy()
    moved[..., 2] -= lowered[:, None]
    cam = observations.camera
    hips = j3[:, list(HIPS)].mean(1)
    shift = cam.project(hips - lowered[:, None] * np.array([0.0, 0.0, 1.0])) - cam.project(hips)
    obs = dataclasses.replace(observations, joints3d=moved.astype(np.float32),
                              joints2d=(observations.joints2d + shift[:, None]).astype(np.float32))
    return obs, lowered, shift
