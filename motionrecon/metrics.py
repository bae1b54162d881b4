"""Evaluation metrics for reconstructed motion: joint errors, smoothness, foot contact.

Pure NumPy functions over explicit arrays. Positions go in as metres in the
world frame (z-up, ground plane z = 0); errors come out in millimetres
(or pixels, or percent). Arrays are time first: [T, J, 3] for 3D joints,
[T, J, 2] for 2D joints, [T, J] for per-joint weights.

Joint-error metrics take optional per-joint weights (e.g. detector
confidence): the mean becomes a weighted mean, and a joint with weight 0 is
ignored entirely (its positions may then be NaN). Every function raises
`ValueError` with a one-line message on bad shapes, empty arrays, non-finite
values where they count, or negative weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from motionrecon.skeleton import JointSet, get_joint_set

# Foot skate settings (both rules): a foot point is low below CONTACT_HEIGHT_M and slides when it moves more
# than SLIDE_THRESHOLD_M horizontally between frames at SKATE_RATE_FPS; the stance rule also needs the point
# within STANCE_BAND_M of its floor level (its FLOOR_LEVEL_PERCENTILE-th percentile height), a stance of
# MIN_STANCE_S, and drops its first and last TRANSITION_S.
CONTACT_HEIGHT_M = 0.05
SLIDE_THRESHOLD_M = 0.02
SKATE_RATE_FPS = 25.0
MIN_STANCE_S = 0.2
TRANSITION_S = 0.04
STANCE_BAND_M = 0.015
FLOOR_LEVEL_PERCENTILE = 5.0

# A joint counts as beyond its range (`beyond_range_pct`) when it lies more than RANGE_SLACK_DEG past it: the
# simulation's limits are soft springs, so a few degrees past them is how they hold.
RANGE_SLACK_DEG = 10.0

# Body landmarks that count as foot points for skate and penetration.
FOOT_LANDMARKS: tuple[str, ...] = (
    "left_ankle", "left_heel", "left_toe", "right_ankle", "right_heel", "right_toe",
)


# ---------------------------------------------------------------------------
# Input checks


def _points(name: str, a, dim: int) -> np.ndarray:
    """`a` as float64 [T, J, dim] with T, J >= 1."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != dim:
        raise ValueError(f"{name} must have shape [T, J, {dim}], got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    return a


def _pair(pred, gt, dim: int) -> tuple[np.ndarray, np.ndarray]:
    pred = _points("pred", pred, dim)
    gt = _points("gt", gt, dim)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt differ in shape: {pred.shape} vs {gt.shape}")
    return pred, gt


def _weights(weights, shape: tuple[int, int], name: str = "weights") -> np.ndarray:
    """[T, J] non-negative finite weights with a positive sum (ones if None)."""
    if weights is None:
        return np.ones(shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if not w.sum() > 0:
        raise ValueError(f"{name} are all zero: nothing to evaluate")
    return w


def _masked(name: str, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Zeroes the positions of zero-weight joints; rejects non-finite weighted ones."""
    used = w > 0
    if not np.all(np.isfinite(a[used])):
        raise ValueError(f"{name} contains NaN or infinite values at joints with non-zero weight")
    return np.where(used[..., None], a, 0.0)


def _weighted_mean(err: np.ndarray, w: np.ndarray) -> float:
    return float((err * w).sum() / w.sum())


# ---------------------------------------------------------------------------
# Joint errors


def mpjpe_g(pred, gt, weights=None) -> float:
    """Global mean per-joint position error, no alignment, in millimetres.

    MPJPE-G = 1000 · Σ_{t,j} w_tj ‖pred_tj − gt_tj‖₂ / Σ_{t,j} w_tj

    Args:
      pred, gt: [T, J, 3] positions in metres, same frame.
      weights: optional [T, J] non-negative weights (default all ones); a joint
        with weight 0 is ignored.
    """
    pred, gt = _pair(pred, gt, 3)
    w = _weights(weights, pred.shape[:2])
    pred, gt = _masked("pred", pred, w), _masked("gt", gt, w)
    return 1000.0 * _weighted_mean(np.linalg.norm(pred - gt, axis=-1), w)


def _root_point(a: np.ndarray, root: int | Sequence[int]) -> np.ndarray:
    """[T, 1, 3] root position: joint `root`, or the mean of joints `root`."""
    idx = np.atleast_1d(np.asarray(root))
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"root must be a joint index or a non-empty sequence of them, got {root!r}")
    if np.any(idx < 0) or np.any(idx >= a.shape[1]):
        raise ValueError(f"root index {root!r} out of range for {a.shape[1]} joints")
    return a[:, idx].mean(axis=1, keepdims=True)


def mpjpe(pred, gt, root: int | Sequence[int] = 0, weights=None) -> float:
    """Root-aligned mean per-joint position error, in millimetres.

    Each frame of `pred` and of `gt` is translated so that its root sits at the
    origin (root = joint `root`, or the mean of the joints listed in `root`,
    e.g. both hips), then MPJPE = 1000 · Σ w_tj ‖p̂_tj − ĝ_tj‖₂ / Σ w_tj.
    The root joint itself (error 0 after alignment) is included in the mean,
    as in the Human3.6M protocol.

    Args:
      pred, gt: [T, J, 3] positions in metres.
      root: index (or indices) of the root joint(s); their weights are not
        consulted, so the root must be finite in every frame.
      weights: optional [T, J] non-negative weights; 0 ignores a joint.
    """
    pred, gt = _pair(pred, gt, 3)
    w = _weights(weights, pred.shape[:2])
    pred_root, gt_root = _root_point(pred, root), _root_point(gt, root)
    if not (np.all(np.isfinite(pred_root)) and np.all(np.isfinite(gt_root))):
        raise ValueError("root joint contains NaN or infinite values")
    pred = _masked("pred", pred, w) - pred_root
    gt = _masked("gt", gt, w) - gt_root
    return 1000.0 * _weighted_mean(np.linalg.norm(pred - gt, axis=-1), w)


def procrustes_align(pred: np.ndarray, gt: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-frame similarity transform of `pred` onto `gt` (weighted Umeyama).

    For each frame t finds the scale s > 0, rotation R (det R = +1, no
    reflection) and translation c minimising Σ_j w_tj ‖s R p_tj + c − g_tj‖²,
    and returns s R p_tj + c. Frames whose weights are all zero, or whose
    weighted `pred` points all coincide, are returned as the weighted centroid
    of `gt` (scale 0).

    Args:
      pred, gt: [T, J, 3] finite positions.
      weights: [T, J] non-negative weights.
    Returns:
      [T, J, 3] aligned `pred`.
    """
    wsum = weights.sum(axis=1)  # [T]
    safe = np.where(wsum > 0, wsum, 1.0)
    wn = weights / safe[:, None]  # rows sum to 1 (or are all zero)
    mu_p = np.einsum("tj,tjk->tk", wn, pred)
    mu_g = np.einsum("tj,tjk->tk", wn, gt)
    p0 = pred - mu_p[:, None]
    g0 = gt - mu_g[:, None]
    cov = np.einsum("tj,tjk,tjl->tkl", wn, g0, p0)  # Σ w g pᵀ, [T, 3, 3]
    var_p = np.einsum("tj,tjk,tjk->t", wn, p0, p0)
    u, sig, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    signs = np.stack([np.ones_like(d), np.ones_like(d), d], axis=-1)  # [T, 3]
    rot = u @ (signs[..., None] * vt)  # U diag(1, 1, d) Vᵀ
    scale = np.where(var_p > 0, (sig * signs).sum(-1) / np.where(var_p > 0, var_p, 1.0), 0.0)
    return scale[:, None, None] * np.einsum("tkl,tjl->tjk", rot, p0) + mu_g[:, None]


def pa_mpjpe(pred, gt, weights=None) -> float:
    """Procrustes-aligned mean per-joint position error, in millimetres.

    Each frame of `pred` is aligned to the same frame of `gt` by the
    similarity transform (rotation without reflection, translation and uniform
    scale) minimising the weighted squared error (`procrustes_align`); then
    PA-MPJPE = 1000 · Σ w_tj ‖aligned_tj − gt_tj‖₂ / Σ w_tj. Zero-weight
    joints take no part in the alignment nor in the mean.

    Args:
      pred, gt: [T, J, 3] positions in metres.
      weights: optional [T, J] non-negative weights; 0 ignores a joint.
    """
    pred, gt = _pair(pred, gt, 3)
    w = _weights(weights, pred.shape[:2])
    pred, gt = _masked("pred", pred, w), _masked("gt", gt, w)
    aligned = procrustes_align(pred, gt, w)
    return 1000.0 * _weighted_mean(np.linalg.norm(aligned - gt, axis=-1), w)


def mpjpe_2d(pred2d, gt2d, confidence=None) -> float:
    """Mean 2D keypoint error in pixels, confidence-weighted.

    MPJPE-2d = Σ c_tj ‖pred_tj − gt_tj‖₂ / Σ c_tj

    Args:
      pred2d, gt2d: [T, J, 2] image positions in pixels.
      confidence: optional [T, J] non-negative weights (e.g. the ground
        truth's visibility); 0 ignores a joint.
    """
    pred, gt = _pair(pred2d, gt2d, 2)
    w = _weights(confidence, pred.shape[:2], "confidence")
    pred, gt = _masked("pred2d", pred, w), _masked("gt2d", gt, w)
    return _weighted_mean(np.linalg.norm(pred - gt, axis=-1), w)


# ---------------------------------------------------------------------------
# Smoothness


def tv(joints) -> float:
    """Mean total variation of 3D joint acceleration, in mm / frame².

    With accelerations as second finite differences of positions per frame,
    a_t^k = x_{t+1}^k − 2 x_t^k + x_{t−1}^k (t = 1 … T−2),

        TV = 1000 · (1 / (T − 3)) · Σ_{t=1}^{T−3} Σ_k ‖a_{t+1}^k − a_t^k‖₂,

    i.e. the Euclidean norm of the change of acceleration between consecutive
    frames, summed over the J joints and averaged over the T − 3 available
    terms. Time is counted in frames, not seconds, so the value depends on the
    frame rate (a motion sampled at twice the rate has about 1/8 the TV):
    compare only sequences at the same frame rate.

    Args:
      joints: [T, J, 3] positions in metres, T >= 4, all finite.
    """
    x = _points("joints", joints, 3)
    if x.shape[0] < 4:
        raise ValueError(f"tv needs at least 4 frames, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("joints contains NaN or infinite values")
    acc = x[2:] - 2.0 * x[1:-1] + x[:-2]  # [T-2, J, 3]
    jerk = np.linalg.norm(acc[1:] - acc[:-1], axis=-1)  # [T-3, J]
    return 1000.0 * float(jerk.sum(axis=1).mean())


# ---------------------------------------------------------------------------
# Feet


def foot_indices(joint_set: JointSet | str) -> tuple[int, ...]:
    """Indices of the foot points (ankles, heels, toes / foot index) of a joint set.

    A joint is a foot point when its body landmark (`JointSet.landmarks`) is
    one of `FOOT_LANDMARKS`; e.g. DeepMimic → both ankles and toes, H36M-17 and
    COCO-17 → both ankles, MediaPipe-33 → ankles, heels and foot indices.
    """
    js = get_joint_set(joint_set) if isinstance(joint_set, str) else joint_set
    return tuple(i for i, lm in enumerate(js.landmarks) if lm in FOOT_LANDMARKS)


def skate_landmarks(joint_set: JointSet | str) -> tuple[str, ...]:
    """The body landmarks on which a reconstruction's foot skate and penetration are measured (the simulated
    body's sites there): the joint set's foot points (`foot_indices`), and where those are ankles alone
    (H36M-17, COCO-17) the toes as well. Ankles stay 7-9 cm above the floor, above the rules' 5 cm, so on
    ankles alone both skate rules read 0 % whatever the feet do; the toes are where a foot slides. The
    observations of such a set have no toes, so their own skate ("raw") can only be read on the ankles.
    E.g. DeepMimic -> ankles and toes, H36M-17 -> ankles and toes, MediaPipe-33 -> ankles, heels, toes."""
    js = get_joint_set(joint_set) if isinstance(joint_set, str) else joint_set
    feet = tuple(js.landmarks[i] for i in foot_indices(js))
    if set(feet) <= {"left_ankle", "right_ankle"}:
        feet = feet + ("left_toe", "right_toe")
    return feet


def _foot_points(joints, foot_joint_indices) -> np.ndarray:
    x = _points("joints", joints, 3)
    idx = np.asarray(foot_joint_indices)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"foot_joint_indices must be a non-empty sequence of joint indices, got {foot_joint_indices!r}")
    if np.any(idx < 0) or np.any(idx >= x.shape[1]):
        raise ValueError(f"foot_joint_indices {list(idx)} out of range for {x.shape[1]} joints")
    feet = x[:, idx]
    if not np.all(np.isfinite(feet)):
        raise ValueError("foot points contain NaN or infinite values")
    return feet


def resample(points: np.ndarray, fps: float, rate: float) -> np.ndarray:
    """Linear interpolation of [T, ...] samples at `fps` onto times k / `rate`.

    Frame t of the input is at time t / fps; the output holds the samples at
    k / rate for k = 0, 1, … while k / rate ≤ (T − 1) / fps (a tolerance of
    1e-9 s keeps the last frame when the durations match exactly).
    """
    T = points.shape[0]
    duration = (T - 1) / fps
    n = int(np.floor(duration * rate + 1e-9)) + 1
    t_out = np.arange(n) / rate
    t_in = np.arange(T) / fps
    flat = points.reshape(T, -1)
    out = np.stack([np.interp(t_out, t_in, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return out.reshape((n,) + points.shape[1:])


def _feet_at_rate(joints, fps: float, foot_joint_indices, rate: float, what: str) -> np.ndarray:
    """[K, F, 3] the foot points resampled to `rate` frames per second (as they are when fps == rate)."""
    feet = _foot_points(joints, foot_joint_indices)
    if not (np.isfinite(fps) and fps > 0 and np.isfinite(rate) and rate > 0):
        raise ValueError(f"fps and rate must be positive, got fps={fps}, rate={rate}")
    if fps != rate:
        feet = resample(feet, fps, rate)
    if feet.shape[0] < 2:
        raise ValueError(f"{what} needs at least two frames at {rate} fps; the motion is too short")
    return feet


def foot_skate_pct(joints, fps: float, foot_joint_indices, *, contact_height: float = CONTACT_HEIGHT_M,
                   slide_threshold: float = SLIDE_THRESHOLD_M, rate: float = SKATE_RATE_FPS) -> float:
    """Percentage of frame pairs in which a grounded foot point slides, at 25 fps.

    Rule: the foot points are resampled to `rate` (25) frames per second by
    linear interpolation in time (skipped when `fps` equals `rate`). A pair of
    consecutive resampled frames (k, k+1) counts as skating when, for at least
    one foot point, its height z is below `contact_height` (5 cm) in both
    frames and its horizontal (x, y) displacement between the two frames
    exceeds `slide_threshold` (2 cm). World z-up, ground plane z = 0.

        foot_skate_pct = 100 · (pairs counted) / (all pairs)

    Any low point that moves fast counts, including a foot landing or taking
    off (a toe below 5 cm moving forward) and a toe skimming the floor in
    mid-swing: the real walk of pybullet's DeepMimic clips measures 16 % on its
    own. `foot_skate_stance_pct` counts only feet that bear weight.

    Args:
      joints: [T, J, 3] positions in metres.
      fps: frame rate of `joints`.
      foot_joint_indices: indices of the foot points in J (see `foot_indices`).
      contact_height, slide_threshold: metres.
      rate: the frame rate the rule is applied at, frames per second.
    Returns:
      Percentage in [0, 100].
    """
    feet = _feet_at_rate(joints, fps, foot_joint_indices, rate, "foot_skate_pct")
    z = feet[..., 2]
    grounded = (z[1:] < contact_height) & (z[:-1] < contact_height)  # [K-1, F]
    slide = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) > slide_threshold
    skating = np.any(grounded & slide, axis=1)
    return 100.0 * float(skating.mean())


def floor_levels(z: np.ndarray) -> np.ndarray:
    """[F] m: each foot point's floor level, the `FLOOR_LEVEL_PERCENTILE`-th percentile of its heights z [K, F]."""
    return np.percentile(z, FLOOR_LEVEL_PERCENTILE, axis=0)


def weight_bearing(z: np.ndarray, contact_height: float, min_frames: int, transition_frames: int,
                   band: float | None = None, levels: np.ndarray | None = None) -> np.ndarray:
    """[K, F] bool: the frames in which each foot point bears weight, from its heights z [K, F].

    A point is down where z < `contact_height` and, with a `band` (m), also within `band` of its floor level:
    `levels` [F] (m) where given, otherwise its `floor_levels` over the K frames (where it stands, whatever the
    rig puts at the point and however deep a simulated foot sinks). A stance is a maximal run of consecutive
    down frames lasting at least `min_frames`; its frames bear weight except the first and last
    `transition_frames` (landing and toe-off).
    """
    low = z < contact_height
    if band is not None and len(z):
        low &= z < (floor_levels(z) if levels is None else np.asarray(levels)) + band
    from motionrecon.observations import frame_runs

    out = np.zeros_like(low)
    for f in range(low.shape[1]):
        for start, stop in frame_runs(low[:, f]):
            if stop - start >= min_frames:
                out[start + transition_frames: stop - transition_frames, f] = True
    return out


def weight_bearing_at(z: np.ndarray, fps: float, *, contact_height: float = CONTACT_HEIGHT_M,
                      min_stance: float = MIN_STANCE_S, transition: float = TRANSITION_S,
                      band: float | None = STANCE_BAND_M, levels: np.ndarray | None = None) -> np.ndarray:
    """[T, F] bool: `weight_bearing` of heights z [T, F] sampled at `fps`, its durations given in seconds (the
    stance rule frame by frame at the points' own rate, as plots and the loss's stance term use it)."""
    return weight_bearing(np.asarray(z), contact_height, int(np.ceil(min_stance * fps - 1e-9)),
                          int(round(transition * fps)), band, levels)


def horizontal_speed(points: np.ndarray, fps: float) -> np.ndarray:
    """[T, F] m/s: horizontal (x, y) speed of points [T, F, 3] sampled at `fps` (central differences; zeros for a
    single frame)."""
    p = np.asarray(points, dtype=float)
    if p.shape[0] < 2:
        return np.zeros(p.shape[:2])
    return np.linalg.norm(np.gradient(p[..., :2], axis=0), axis=-1) * fps


# The speed the stance rule calls sliding: SLIDE_THRESHOLD_M per 1 / SKATE_RATE_FPS s (0.5 m/s).
SLIDE_SPEED = SLIDE_THRESHOLD_M * SKATE_RATE_FPS


def foot_skate_stance_pct(joints, fps: float, foot_joint_indices, *, contact_height: float = CONTACT_HEIGHT_M,
                          slide_threshold: float = SLIDE_THRESHOLD_M, rate: float = SKATE_RATE_FPS,
                          min_stance: float = MIN_STANCE_S, transition: float = TRANSITION_S,
                          band: float | None = STANCE_BAND_M) -> float:
    """Percentage of frame pairs in which a foot point that bears weight slides, at 25 fps.

    Rule: as `foot_skate_pct`, the foot points are resampled to `rate` (25)
    frames per second. A point is down when its height z is below
    `contact_height` (5 cm) and within `band` (1.5 cm) of its floor level, the
    5th percentile of its heights over the motion (a toe joint that rests 5 mm
    up in one rig and 2 cm in another, a simulated toe that sinks 6 mm into the
    floor: each is measured from where it stands). A foot point bears weight in
    a stance: a run of consecutive down frames lasting at least `min_stance`
    (0.2 s, 5 frames at 25 fps), without its first and last `transition` (0.04
    s, 1 frame at 25 fps),
    where the foot lands and takes off (`weight_bearing`). With S_f the frames
    in which foot point f bears weight, a pair of frames (k, k+1) counts as
    skating when, for at least one foot point f, k and k+1 are both in S_f and
    the point's horizontal (x, y) displacement between them exceeds
    `slide_threshold` (2 cm, i.e. 0.5 m/s at 25 fps):

        foot_skate_stance_pct = 100 · (pairs counted) / (all pairs)

    So a planted foot that slides counts; a foot landing or taking off, and a
    toe skimming the floor in mid-swing (pybullet's walk: 0.16 s below 5 cm at
    3 m/s), count not; a foot in the air never counts. Why 0.2 s: a walking
    stance lasts about 0.6 s and a running one about 0.2-0.25 s, while the
    toe of pybullet's walk skims below 5 cm for 0.16 s. Why the band: a
    shuffling swing stays below 5 cm for longer than that (the toes of Bandai
    Namco's "old" walk skim 2-4 cm up at 2-3 m/s), and without the band real
    walks read 28 % and 13 % (bench/foot_skate_inputs.py); with it every real
    walk, run and hop reads 0 %. A foot dragged or pivoting on the floor still
    counts (pybullet's spin and dance, the toes of Bandai Namco's punch).

    Args:
      joints, fps, foot_joint_indices, contact_height, slide_threshold, rate: as `foot_skate_pct`.
      min_stance, transition: seconds (rounded to whole frames at `rate`).
      band: metres above the floor level (None: no band, the rule of versions before it).
    Returns:
      Percentage in [0, 100].
    """
    feet = _feet_at_rate(joints, fps, foot_joint_indices, rate, "foot_skate_stance_pct")
    if not (min_stance >= 0 and transition >= 0):
        raise ValueError(f"min_stance and transition must be >= 0 s, got {min_stance}, {transition}")
    return 100.0 * float(stance_slides(feet, rate, contact_height=contact_height, slide_threshold=slide_threshold,
                                       min_stance=min_stance, transition=transition, band=band).mean())


def stance_slides(feet: np.ndarray, rate: float, *, contact_height: float = CONTACT_HEIGHT_M,
                  slide_threshold: float = SLIDE_THRESHOLD_M, min_stance: float = MIN_STANCE_S,
                  transition: float = TRANSITION_S, band: float | None = STANCE_BAND_M,
                  levels: np.ndarray | None = None) -> np.ndarray:
    """[K-1] bool: the pairs of frames (k, k+1) that `foot_skate_stance_pct` counts, for foot points feet
    [K, F, 3] (m) already at `rate` frames per second; `levels` [F] (m) the floor levels where known beforehand
    (otherwise `floor_levels` of these frames)."""
    bearing = weight_bearing(feet[..., 2], contact_height, int(np.ceil(min_stance * rate - 1e-9)),
                             int(round(transition * rate)), band, levels)
    both = bearing[1:] & bearing[:-1]  # [K-1, F]
    slide = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) > slide_threshold
    return np.any(both & slide, axis=1)


def penetration_mm(points, *, ground_height: float = 0.0) -> float:
    """Deepest point below the ground plane, in millimetres (0 if none is below).

    penetration = 1000 · max(0, max_i (ground_height − z_i))

    Args:
      points: [..., 3] positions in metres, z-up (e.g. [T, F, 3] foot points,
        or the bottoms of the simulated contact spheres); at least one point.
      ground_height: z of the ground plane, metres.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] != 3:
        raise ValueError(f"points must have shape [..., 3], got {p.shape}")
    if p.size == 0:
        raise ValueError("points is empty")
    if not np.all(np.isfinite(p)):
        raise ValueError("points contain NaN or infinite values")
    return 1000.0 * max(0.0, float(np.max(ground_height - p[..., 2])))


# ---------------------------------------------------------------------------
# All at once


def beyond_range_pct(excess, slack_deg: float = RANGE_SLACK_DEG) -> float:
    """Percent of frames in which some joint lies more than `slack_deg` past its range: excess [T, J] radians
    past each joint's range, 0 within it (`body.fit.joint_range_excess`). A knee bent backwards, a foot rolled
    onto its side, an elbow bent the wrong way: poses the joint-error metrics do not see where the joint
    centres still lie near the observed ones."""
    excess = np.asarray(excess, float)
    if excess.ndim != 2 or excess.shape[0] == 0:
        raise ValueError(f"excess must be [T, J] with T > 0, got shape {excess.shape}")
    if not np.isfinite(excess).all() or (excess < 0).any():
        raise ValueError("excess must be finite and non-negative (radians past the range)")
    return float(100.0 * np.mean(np.degrees(excess).max(axis=1) > slack_deg)) if excess.shape[1] else 0.0


def default_root(joint_set: JointSet) -> int | tuple[int, ...]:
    """The joint on the pelvis landmark, else the two hips (their midpoint)."""
    if "pelvis" in joint_set.landmarks:
        return joint_set.landmarks.index("pelvis")
    return joint_set.landmarks.index("left_hip"), joint_set.landmarks.index("right_hip")


def over_stretches(metric, stretches, *arrays, shortest: int = 4, combine: str = "mean", **kwargs) -> float:
    """`metric(*arrays, **kwargs)` on each stretch of frames of a clip that is not one continuous motion (a
    reconstruction restarted after a gap: `Reconstruction.simulated`), then combined: "mean" weighted by the
    stretches' frame counts, or "max".

    Args:
      stretches: [(first, stop), ...] frame ranges; None: the whole clip (the metric itself).
      arrays: [T, ...] arrays, sliced to each stretch.
      shortest: stretches of fewer frames are left out (TV needs 4).
    """
    if stretches is None:
        return metric(*arrays, **kwargs)
    values, counts = [], []
    for first, stop in stretches:
        if stop - first >= shortest:
            values.append(metric(*(a[first:stop] for a in arrays), **kwargs))
            counts.append(stop - first)
    if not values:
        return float("nan")
    return float(max(values)) if combine == "max" else float(np.average(values, weights=counts))


def summarize(pred, gt, fps: float, joint_set: JointSet | str, *, weights=None,
              root: int | Sequence[int] | None = None, feet=None, stretches=None) -> dict[str, float]:
    """All 3D metrics of a reconstruction against ground truth.

    Args:
      pred, gt: [T, J, 3] positions in metres, world z-up, ground z = 0.
      fps: frame rate of both.
      joint_set: the layout of J (a `JointSet` or its name).
      weights: optional [T, J] weights for the joint-error metrics.
      root: root joint(s) for MPJPE; default the pelvis joint, or the midpoint
        of the hips for layouts without one (COCO-17).
      feet: optional [T, P, 3] foot points of the reconstruction for both
        skates and penetration (a simulation passes its body's sites at
        `skate_landmarks`); default `pred`'s foot points (`foot_indices`).
      stretches: optional [(first, stop), ...] continuous stretches of `pred`
        (`over_stretches`): TV, skates and penetration within them only.
    Returns:
      {"mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "tv", "foot_skate_pct",
       "foot_skate_stance_pct", "penetration_mm"}; tv (mm/frame²), both foot
      skates and penetration are computed on `pred` alone, the last three on
      the foot points (`foot_indices`).
    """
    js = get_joint_set(joint_set) if isinstance(joint_set, str) else joint_set
    pred, gt = _pair(pred, gt, 3)
    if pred.shape[1] != js.num_joints:
        raise ValueError(f"joint set {js.name} has {js.num_joints} joints, arrays have {pred.shape[1]}")
    feet = pred[:, list(foot_indices(js))] if feet is None else np.asarray(feet, dtype=np.float64)
    every = list(range(feet.shape[1]))
    return {
        "mpjpe_g_mm": mpjpe_g(pred, gt, weights),
        "mpjpe_mm": mpjpe(pred, gt, default_root(js) if root is None else root, weights),
        "pa_mpjpe_mm": pa_mpjpe(pred, gt, weights),
        "tv": over_stretches(tv, stretches, pred),
        "foot_skate_pct": over_stretches(foot_skate_pct, stretches, feet, fps=fps, foot_joint_indices=every),
        "foot_skate_stance_pct": over_stretches(foot_skate_stance_pct, stretches, feet, fps=fps,
                                                foot_joint_indices=every),
        "penetration_mm": over_stretches(penetration_mm, stretches, feet, shortest=1, combine="max"),
    }
