"""Metrics on small hand-built cases whose answers are known in closed form."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from motionrecon import metrics, skeleton


def _random_pose(rng, T=3, J=5):
    return rng.normal(size=(T, J, 3))


# --- MPJPE family -----------------------------------------------------------


def test_constant_offset_is_global_error_and_vanishes_after_root_alignment():
    rng = np.random.default_rng(0)
    gt = _random_pose(rng)
    offset = np.array([0.03, -0.04, 0.0])  # 5 cm
    pred = gt + offset
    assert metrics.mpjpe_g(pred, gt) == pytest.approx(50.0)
    assert metrics.mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-6)


def test_mpjpe_g_hand_computed_and_weighted():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[0.003, 0.004, 0.0], [0.0, 0.0, 0.010]]])  # errors 5 mm and 10 mm
    assert metrics.mpjpe_g(pred, gt) == pytest.approx(7.5)
    assert metrics.mpjpe_g(pred, gt, weights=[[3.0, 1.0]]) == pytest.approx((3 * 5 + 10) / 4)
    # Zero weight ignores a joint, even a NaN one.
    pred_nan = pred.copy()
    pred_nan[0, 1] = np.nan
    assert metrics.mpjpe_g(pred_nan, gt, weights=[[1.0, 0.0]]) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="NaN"):
        metrics.mpjpe_g(pred_nan, gt)


def test_mpjpe_root_alignment_per_frame_hand_computed():
    # Two joints: root and one child; pred's child is 6 mm further along x, and
    # the whole pred is shifted differently in each frame.
    gt = np.array([[[0, 0, 1.0], [0.1, 0, 1.0]], [[1, 1, 1.0], [1.1, 1, 1.0]]])
    pred = gt.copy()
    pred[:, 1, 0] += 0.006
    pred[0] += [0.5, 0, 0]
    pred[1] += [0, -2.0, 0.3]
    # Errors after alignment: root 0, child 6 mm, in both frames.
    assert metrics.mpjpe(pred, gt, root=0) == pytest.approx(3.0)
    # Root as the mean of both joints: each joint 3 mm off.
    assert metrics.mpjpe(pred, gt, root=[0, 1]) == pytest.approx(3.0)
    # Root = joint 1 gives the same by symmetry.
    assert metrics.mpjpe(pred, gt, root=1) == pytest.approx(3.0)


def test_pa_mpjpe_removes_rotation_translation_and_scale():
    rng = np.random.default_rng(1)
    gt = _random_pose(rng, T=4, J=6)
    rots = Rotation.random(4, random_state=2).as_matrix()
    scales = np.array([0.5, 1.0, 1.7, 3.0])
    pred = scales[:, None, None] * np.einsum("tkl,tjl->tjk", rots, gt) + rng.normal(size=(4, 1, 3))
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-6)
    assert metrics.mpjpe(pred, gt) > 100.0  # the alignment was needed


def test_pa_mpjpe_does_not_use_reflections():
    # A mirror image cannot be undone by a proper rotation.
    rng = np.random.default_rng(3)
    gt = _random_pose(rng, T=2, J=8)
    pred = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.pa_mpjpe(pred, gt) > 100.0


def test_pa_mpjpe_hand_computed_residual():
    # gt: ±e_x, ±e_y. pred lifts the x pair by d and lowers the y pair by d.
    # The cross-covariance Σ g pᵀ is diag(1/2, 1/2, 0) (the lift is uncorrelated
    # with g), so R = I, the centroids are 0, and s = tr(D)/var(p) = 1/(1 + d²).
    # Residual at each point: s(g + δ) − g, of norm d / sqrt(1 + d²).
    gt = np.array([[[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]], float)
    d = 0.01
    pred = gt + d * np.array([[[0, 0, 1], [0, 0, 1], [0, 0, -1], [0, 0, -1]]])
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(1000 * d / np.sqrt(1 + d**2), rel=1e-9)


def test_pa_mpjpe_weights_ignore_outlier_joint():
    rng = np.random.default_rng(4)
    gt = _random_pose(rng, T=2, J=6)
    rot = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    pred = 1.3 * gt @ rot.T + 0.2
    pred[:, 5] += 10.0  # an outlier
    w = np.ones((2, 6))
    w[:, 5] = 0
    assert metrics.pa_mpjpe(pred, gt, weights=w) == pytest.approx(0.0, abs=1e-6)
    assert metrics.pa_mpjpe(pred, gt) > 100.0


def test_mpjpe_2d_confidence_weighted_pixels():
    gt = np.zeros((2, 2, 2))
    pred = np.array([[[3, 4], [0, 0]], [[0, 0], [6, 8]]], float)  # 5 px, 0, 0, 10 px
    assert metrics.mpjpe_2d(pred, gt) == pytest.approx(15 / 4)
    conf = np.array([[1.0, 0.0], [0.0, 0.5]])
    assert metrics.mpjpe_2d(pred, gt, conf) == pytest.approx((5 + 0.5 * 10) / 1.5)


# --- TV ---------------------------------------------------------------------


def test_tv_zero_for_constant_acceleration_and_hand_computed_for_a_jerk():
    t = np.arange(10, dtype=float)
    ballistic = np.zeros((10, 2, 3))
    ballistic[:, :, 2] = (0.5 * -0.01 * t**2)[:, None]  # constant acceleration
    ballistic[:, 1, 0] = 0.02 * t  # plus constant velocity
    assert metrics.tv(ballistic) == pytest.approx(0.0, abs=1e-9)

    # One joint, one coordinate: x = (0, 0, 0, 0.001, 0, 0) m.
    x = np.zeros((6, 1, 3))
    x[3, 0, 0] = 0.001
    # a_t (t=1..4) = x[t+1] − 2x[t] + x[t−1] = (0, 1, −2, 1) mm; |Δa| = (1, 3, 3);
    # sum 7 mm over T − 3 = 3 terms.
    assert metrics.tv(x) == pytest.approx(7.0 / 3.0)
    # Sums over joints: two identical joints double it.
    assert metrics.tv(np.concatenate([x, x], axis=1)) == pytest.approx(14.0 / 3.0)


def test_tv_needs_four_frames():
    with pytest.raises(ValueError, match="at least 4 frames"):
        metrics.tv(np.zeros((3, 2, 3)))


# --- Feet -------------------------------------------------------------------


def test_foot_skate_hand_built_trajectory_at_25fps():
    # One foot point, 11 frames at 25 fps -> 10 pairs.
    T = 11
    foot = np.zeros((T, 1, 3))
    foot[:, 0, 2] = 0.01  # on the ground
    x = np.zeros(T)
    x[3] = 0.03  # pair (2,3): slides 3 cm -> counts; pair (3,4): 3 cm back -> counts
    x[6:] = np.cumsum(np.full(5, 0.015))  # 1.5 cm per frame: below the threshold
    foot[:, 0, 0] = x
    # Pair (5,6): 1.5 cm, no. Lift the foot at frame 9 (take-off in pair (8,9),
    # landing in (9,10)) and make both pairs slide (4.5 and 6.5 cm): the foot
    # is not grounded in both frames of either pair, so neither counts.
    foot[9, 0, 2] = 0.2
    foot[9:, 0, 0] += 0.03
    foot[10:, 0, 0] += 0.05
    assert metrics.foot_skate_pct(foot, 25.0, [0]) == pytest.approx(100.0 * 2 / 10)


def test_foot_skate_any_foot_counts_once_per_pair_and_thresholds_are_kwargs():
    T = 5
    feet = np.zeros((T, 2, 3))
    feet[:, :, 0] = np.arange(T)[:, None] * 0.03  # both feet slide 3 cm every pair
    assert metrics.foot_skate_pct(feet, 25.0, [0, 1]) == pytest.approx(100.0)
    assert metrics.foot_skate_pct(feet, 25.0, [0, 1], slide_threshold=0.04) == pytest.approx(0.0)
    feet[:, :, 2] = 0.07
    assert metrics.foot_skate_pct(feet, 25.0, [0, 1]) == pytest.approx(0.0)
    assert metrics.foot_skate_pct(feet, 25.0, [0, 1], contact_height=0.08) == pytest.approx(100.0)


def test_foot_skate_resamples_to_25fps():
    # 100 fps, 1 cm per frame = 1 m/s = 4 cm per 25-fps frame: all skating.
    # At the native rate no pair would exceed 2 cm.
    T = 101
    foot = np.zeros((T, 1, 3))
    foot[:, 0, 0] = 0.01 * np.arange(T)
    assert metrics.foot_skate_pct(foot, 100.0, [0]) == pytest.approx(100.0)
    assert metrics.foot_skate_pct(foot, 100.0, [0], rate=100.0) == pytest.approx(0.0)
    # 0.6 m/s = 2.4 cm per 25-fps frame for the first half second, then still.
    foot[:, 0, 0] = np.minimum(np.arange(T) / 100.0, 0.5) * 0.6
    # 1 s at 25 fps: 26 frames, 25 pairs; the first 12.5 pairs move: 12 fully,
    # pair 12 -> 13 (0.48 s -> 0.52 s) moves 1.2 cm: no.
    assert metrics.foot_skate_pct(foot, 100.0, [0]) == pytest.approx(100.0 * 12 / 25)


def _walking_foot(num_frames: int = 40) -> np.ndarray:
    """[T, 1, 3] a toe point at 25 fps: planted 10 frames, swings 10 frames (1 m/s, up to 12 cm), planted again...

    Each landing and toe-off crosses 5 cm within a frame while moving 4 cm, and the swing skims the floor
    for 3 frames (0.12 s, 3 cm up, 3 m/s) half way, like the toe of pybullet's walk.
    """
    foot = np.zeros((num_frames, 1, 3))
    x, z = 0.0, []
    xs = []
    for k in range(num_frames):
        phase = k % 20
        if phase < 10:
            height = 0.01  # planted
        else:
            s = phase - 10  # swing frames 0..9
            height = {0: 0.04, 1: 0.08, 2: 0.12, 3: 0.03, 4: 0.03, 5: 0.03, 6: 0.12, 7: 0.08, 8: 0.04, 9: 0.03}[s]
            x += 0.04 if s in (0, 9) else 0.12 if s in (3, 4, 5) else 0.08
        xs.append(x)
        z.append(height)
    foot[:, 0, 0] = xs
    foot[:, 0, 2] = z
    return foot


def test_stance_skate_ignores_landing_toe_off_and_swing_skims_that_the_old_rule_counts():
    foot = _walking_foot()
    old = metrics.foot_skate_pct(foot, 25.0, [0])
    assert old > 10.0  # landing, toe-off and the mid-swing skim all count under the old rule
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0]) == 0.0
    # With a 0.1 s minimum stance, no transition frames and no band, the 0.12 s skims would be stances sliding
    # 12 cm per frame (pairs 13-14, 14-15, 33-34, 34-35) and take-offs and landings would slide 4 cm (9-10, 18-19,
    # 29-30).
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0], min_stance=0.1, transition=0.0, band=None) == (
        pytest.approx(100.0 * 7 / 39))
    # With the band neither the skims nor the first and last swing frames (2-3 cm above where the toe stands) are
    # down.
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0], min_stance=0.1, transition=0.0) == 0.0


def test_stance_skate_ignores_a_long_shuffling_skim_but_not_a_slide_at_the_floor_level():
    """A toe skimming 3 cm up for 0.32 s at 2 m/s (Bandai Namco's "old" walk) lasts longer than a stance, but it is
    above its floor level + 1.5 cm: no stance. A toe joint that rests 2.5 cm up (a rig's toe at the ball of the
    foot) and slides there is down: it counts."""
    foot = np.zeros((40, 1, 3))
    foot[:, 0, 2] = 0.005
    foot[10:18, 0, 2] = 0.03
    foot[10:18, 0, 0] = 0.08 * np.arange(1, 9)
    foot[18:, 0, 0] = 0.64
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0], band=None) > 10.0  # the rule without the band counts it
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0]) == 0.0
    raised = foot.copy()
    raised[:, 0, 2] = 0.025  # the same foot, its point resting higher, now slides at its floor level
    assert metrics.foot_skate_stance_pct(raised, 25.0, [0]) > 10.0


def test_stance_skate_counts_a_planted_foot_that_slides():
    foot = _walking_foot()
    # The second stance runs over frames 20-29 (at 1 cm; frames 19 and 30, 3 cm up, are not within 1.5 cm of that
    # floor level), landing at 20 and taking off at 29: it bears weight in 21-28. Frames 23-29 slide 3 cm each:
    # pairs 22-23 ... 27-28 count.
    foot[23:30, 0, 0] += 0.03 * np.arange(1, 8)
    foot[30:, 0, 0] += 0.03 * 7
    moving = np.linalg.norm(np.diff(foot[:, 0, :2], axis=0), axis=-1) > 0.02
    bearing = metrics.weight_bearing(foot[:, :, 2], 0.05, 5, 1, metrics.STANCE_BAND_M)[:, 0]
    expected = 100.0 * np.sum(moving & bearing[1:] & bearing[:-1]) / 39
    assert np.sum(moving & bearing[1:] & bearing[:-1]) == 6
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0]) == pytest.approx(expected)
    # The same slide at 100 fps (resampled to 25 fps first) counts the same.
    t = np.arange(157) / 100.0
    fine = np.stack([np.interp(t, np.arange(40) / 25.0, foot[:, 0, c]) for c in range(3)], axis=-1)[:, None]
    assert metrics.foot_skate_stance_pct(fine, 100.0, [0]) == pytest.approx(expected)


def test_stance_skate_never_counts_a_foot_in_the_air():
    foot = np.zeros((30, 2, 3))
    foot[:, :, 2] = 0.3  # both feet 30 cm up, sliding fast
    foot[:, :, 0] = 0.1 * np.arange(30)[:, None]
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0, 1]) == 0.0
    foot[:, 1, 2] = 0.01  # the second foot planted and sliding the whole time: every pair but the ends
    assert metrics.foot_skate_stance_pct(foot, 25.0, [0, 1]) == pytest.approx(100.0 * 27 / 29)


def test_weight_bearing_frames():
    z = np.array([0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.1, 0.01, 0.01, 0.1])[:, None]
    np.testing.assert_array_equal(metrics.weight_bearing(z, 0.05, 5, 1)[:, 0],
                                  [0, 0, 1, 1, 1, 0, 0, 0, 0, 0])  # the 2-frame run is no stance
    np.testing.assert_array_equal(metrics.weight_bearing(z, 0.05, 2, 0)[:, 0], (z[:, 0] < 0.05).astype(int))


def test_weight_bearing_at_a_frame_rate_and_horizontal_speed():
    z = np.array([0.1] + [0.01] * 8 + [0.1])[:, None]  # 8 frames down: 0.2 s at 40 fps, 0.08 s at 100 fps
    np.testing.assert_array_equal(metrics.weight_bearing_at(z, 40.0, band=None)[:, 0],
                                  metrics.weight_bearing(z, 0.05, 8, 2, None)[:, 0])
    assert metrics.weight_bearing_at(z, 40.0).sum() == 4 and not metrics.weight_bearing_at(z, 100.0).any()
    t = np.arange(5) / 50.0
    points = np.stack([t, 2 * t, np.ones(5)], axis=1)[:, None]  # [5, 1, 3] at 50 fps: sqrt(5) m/s horizontally
    np.testing.assert_allclose(metrics.horizontal_speed(points, 50.0), np.sqrt(5.0))
    np.testing.assert_array_equal(metrics.horizontal_speed(points[:1], 50.0), np.zeros((1, 1)))


def test_resample_keeps_endpoints_and_interpolates_linearly():
    x = np.arange(7, dtype=float)[:, None] * 2.0  # 7 frames at 30 fps = 0.2 s
    out = metrics.resample(x, 30.0, 25.0)
    np.testing.assert_allclose(out[:, 0], 2.0 * 30.0 * np.arange(6) / 25.0)


def test_penetration_mm():
    pts = np.zeros((3, 2, 3))
    pts[..., 2] = [[0.1, 0.02], [0.0, -0.004], [-0.0125, 0.3]]
    assert metrics.penetration_mm(pts) == pytest.approx(12.5)
    assert metrics.penetration_mm(np.abs(pts)) == 0.0
    assert metrics.penetration_mm(pts, ground_height=0.05) == pytest.approx(62.5)
    assert metrics.penetration_mm([0.0, 0.0, -0.001]) == pytest.approx(1.0)


def test_foot_indices_of_each_joint_set():
    dm = skeleton.DEEPMIMIC
    names = [dm.joints[i] for i in metrics.foot_indices(dm)]
    assert sorted(names) == ["left_ankle", "left_toe", "right_ankle", "right_toe"]
    assert metrics.foot_indices("deepmimic") == metrics.foot_indices(dm)
    h36 = [skeleton.H36M17.joints[i] for i in metrics.foot_indices(skeleton.H36M17)]
    assert sorted(h36) == ["left_ankle", "right_ankle"]
    mp = [skeleton.MEDIAPIPE33.joints[i] for i in metrics.foot_indices(skeleton.MEDIAPIPE33)]
    assert sorted(mp) == ["left_ankle", "left_foot_index", "left_heel",
                          "right_ankle", "right_foot_index", "right_heel"]


# --- summarize --------------------------------------------------------------


def test_summarize_keys_and_values():
    js = skeleton.DEEPMIMIC
    rng = np.random.default_rng(5)
    T = 30
    gt = rng.normal(scale=0.3, size=(T, js.num_joints, 3))
    gt[..., 2] += 1.0
    feet = list(metrics.foot_indices(js))
    gt[:, feet, 2] = 0.02
    pred = gt + [0.0, 0.0, -0.03]  # 3 cm low: feet 1 cm into the floor
    out = metrics.summarize(pred, gt, 25.0, js)
    assert set(out) == {"mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "tv", "foot_skate_pct", "foot_skate_stance_pct",
                        "penetration_mm"}
    assert out["mpjpe_g_mm"] == pytest.approx(30.0)
    assert out["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)
    assert out["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert out["penetration_mm"] == pytest.approx(10.0)
    assert out["tv"] == pytest.approx(metrics.tv(gt))
    assert out["foot_skate_pct"] == pytest.approx(metrics.foot_skate_pct(gt, 25.0, feet))
    assert out["foot_skate_stance_pct"] == pytest.approx(metrics.foot_skate_stance_pct(gt, 25.0, feet))
    assert out["foot_skate_pct"] > out["foot_skate_stance_pct"] > 0  # feet at 2 cm jumping about: planted, sliding
    # COCO-17 has no pelvis joint: root = the hips' midpoint.
    g = rng.normal(size=(5, 17, 3))
    assert metrics.summarize(g + 1.0, g, 25.0, "coco17")["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9)



def test_skate_landmarks_add_toes_to_sets_whose_feet_are_ankles_alone():
    assert metrics.skate_landmarks("deepmimic") == ("right_ankle", "right_toe", "left_ankle", "left_toe")
    h36m = metrics.skate_landmarks("h36m17")
    assert set(h36m) == {"left_ankle", "right_ankle", "left_toe", "right_toe"}
    assert set(metrics.skate_landmarks("coco17")) == set(h36m)
    assert set(metrics.skate_landmarks("mediapipe33")) == set(metrics.FOOT_LANDMARKS)


def test_summarize_measures_skate_and_penetration_on_the_given_feet():
    """Ankles 8 cm up read no skate and no penetration; the feet given (toes sliding 1 cm into the floor)
    read both."""
    T = 25
    gt = np.zeros((T, 17, 3))
    gt[..., 2] = 0.5
    gt[:, list(metrics.foot_indices("h36m17")), 2] = 0.08
    toes = np.zeros((T, 2, 3))
    toes[:, :, 0] = 0.05 * np.arange(T)[:, None]  # 5 cm per frame
    toes[:, :, 2] = -0.01
    ankles_only = metrics.summarize(gt, gt, 25.0, "h36m17")
    assert ankles_only["foot_skate_pct"] == 0.0 and ankles_only["penetration_mm"] == 0.0
    with_toes = metrics.summarize(gt, gt, 25.0, "h36m17", feet=toes)
    assert with_toes["foot_skate_pct"] == pytest.approx(100.0)
    assert with_toes["penetration_mm"] == pytest.approx(10.0)
    assert with_toes["mpjpe_g_mm"] == ankles_only["mpjpe_g_mm"] == 0.0



def test_metrics_over_stretches_leave_the_joins_out():
    """Two smooth stretches joined by a 1 m jump: per stretch TV is that of the stretches, not of the jump."""
    t = np.arange(20, dtype=float)
    x = np.zeros((20, 2, 3))
    x[..., 0] = 0.01 * t[:, None] ** 2  # constant acceleration: TV 0
    x[10:, :, 1] += 1.0
    assert metrics.tv(x) > 100.0
    stretches = [(0, 10), (10, 20)]
    assert metrics.over_stretches(metrics.tv, stretches, x) == pytest.approx(0.0, abs=1e-9)
    assert metrics.over_stretches(metrics.tv, None, x) == metrics.tv(x)
    assert metrics.over_stretches(len, [(0, 3), (3, 20)], x) == 17.0  # the 3-frame stretch is left out
    assert metrics.over_stretches(len, [(0, 5), (5, 20)], x, shortest=1) == pytest.approx((25 + 225) / 20)
    assert metrics.over_stretches(len, [(0, 5), (5, 20)], x, shortest=1, combine="max") == 15
    x17 = np.repeat(x[:, :1], 17, axis=1) + [0.0, 0.0, 0.5]
    assert metrics.summarize(x17, x17, 25.0, "h36m17")["tv"] > 100.0
    assert metrics.summarize(x17, x17, 25.0, "h36m17", stretches=stretches)["tv"] == pytest.approx(0.0, abs=1e-9)


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.mpjpe_g(np.zeros((2, 3, 3)), np.zeros((2, 4, 3))), "differ in shape"),
    (lambda: metrics.mpjpe_g(np.zeros((2, 3)), np.zeros((2, 3))), r"\[T, J, 3\]"),
    (lambda: metrics.mpjpe(np.zeros((0, 3, 3)), np.zeros((0, 3, 3))), "empty"),
    (lambda: metrics.pa_mpjpe(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), np.ones((2, 2))), "weights must have shape"),
    (lambda: metrics.pa_mpjpe(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), np.zeros((2, 3))), "all zero"),
    (lambda: metrics.mpjpe_g(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), -np.ones((2, 3))), "non-negative"),
    (lambda: metrics.mpjpe(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), root=5), "out of range"),
    (lambda: metrics.mpjpe_2d(np.zeros((2, 3, 3)), np.zeros((2, 3, 3))), r"\[T, J, 2\]"),
    (lambda: metrics.foot_skate_pct(np.zeros((5, 3, 3)), 25.0, [7]), "out of range"),
    (lambda: metrics.foot_skate_pct(np.zeros((5, 3, 3)), 25.0, []), "non-empty"),
    (lambda: metrics.foot_skate_pct(np.zeros((5, 3, 3)), 0.0, [0]), "positive"),
    (lambda: metrics.foot_skate_pct(np.zeros((2, 3, 3)), 100.0, [0]), "too short"),
    (lambda: metrics.foot_skate_stance_pct(np.zeros((2, 3, 3)), 100.0, [0]), "too short"),
    (lambda: metrics.foot_skate_stance_pct(np.zeros((5, 3, 3)), 25.0, [0], min_stance=-1.0), ">= 0 s"),
    (lambda: metrics.penetration_mm(np.zeros((0, 3))), "empty"),
    (lambda: metrics.penetration_mm(np.zeros((4, 2))), r"\[\.\.\., 3\]"),
    (lambda: metrics.summarize(np.zeros((5, 3, 3)), np.zeros((5, 3, 3)), 25.0, "deepmimic"), "18 joints"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_beyond_range_counts_frames_with_a_joint_past_its_slack():
    excess = np.zeros((4, 3))
    excess[1, 2] = np.radians(9.0)  # within the 10 degree slack
    excess[2, 0] = np.radians(11.0)
    excess[3] = np.radians(40.0)
    assert metrics.beyond_range_pct(excess) == pytest.approx(50.0)
    assert metrics.beyond_range_pct(excess, slack_deg=5.0) == pytest.approx(75.0)
    with pytest.raises(ValueError, match="non-negative"):
        metrics.beyond_range_pct(-excess - 1.0)
    with pytest.raises(ValueError, match=r"\[T, J\]"):
        metrics.beyond_range_pct(np.zeros(3))
