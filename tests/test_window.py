"""Window problems in batches: the batched loss equals the per-problem loss, the JAX L-BFGS against SciPy's on a
DiffPhy window, a diverging problem does not spoil the others."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon import diffphy, window
from motionrecon.body import build_body
from motionrecon.body.fit import inverse_kinematics, measure_shape
from motionrecon.optim import batched, classic

BUDGET = 32


@pytest.fixture(scope="module")
def windows(walk_1s, test_config):
    """Three window problems of the walk: two bodies (the measured one and one 10 % taller) and two start frames."""
    obs, cfg = walk_1s, test_config
    F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                         cfg.sim_rate)
    spec = None
    problems = []
    for scale, start in ((1.0, 0), (1.1, 0), (1.0, 10)):
        scaled = dataclasses.replace(obs, joints3d=obs.joints3d * scale)
        body = build_body(measure_shape(scaled), timestep=1.0 / (obs.fps * spf))
        qkin = inverse_kinematics(body.model, scaled)
        spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
        state = window.initial_state(body, qkin[start], qkin[start + 1], 1 / obs.fps)
        problems.append(window.WindowProblem(window.window_data(scaled, qkin, state, start, F), body.arrays))
    return spec, problems, cfg


def test_batched_loss_equals_the_loss_of_each_problem_alone(windows):
    spec, problems, cfg = windows
    assert not np.allclose(problems[0].body.body_pos, problems[1].body.body_pos)  # two bodies in one batch
    rng = np.random.default_rng(0)
    x = 0.03 * rng.standard_normal((len(problems), spec.num_params)).astype(np.float32)
    loss, grad = window.batched_loss_and_grad(spec, jnp.asarray(x), window.stack(problems), cfg.contact, cfg.weights)
    single = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    for i, p in enumerate(problems):
        (li, _), gi = single(jnp.asarray(x[i]), p)
        np.testing.assert_allclose(float(loss[i]), float(li), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(grad[i]), np.asarray(gi), rtol=1e-3, atol=1e-4 * np.abs(gi).max())
    assert len({round(float(v), 3) for v in loss}) == 3  # three different problems


def test_jax_lbfgs_reaches_scipy_lbfgs_on_a_diffphy_window(windows):
    """Same window, same budget: the batched JAX L-BFGS (optimistix) ends within 10 % of SciPy's L-BFGS-B (or
    lower), on each of the three windows solved together."""
    spec, problems, cfg = windows
    x0 = np.zeros((len(problems), spec.num_params), np.float32)
    out = window.solve(spec, batched.LBFGS(history=20), window.stack(problems), x0, BUDGET, cfg.contact, cfg.weights,
                       trace_len=BUDGET)
    single = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    for i, p in enumerate(problems):
        def fg(x, p=p):
            (loss, _), grad = single(jnp.asarray(x, jnp.float32), p)
            return float(loss), np.asarray(grad, np.float64)

        ref = classic.ScipySolver("lbfgs", "L-BFGS-B").minimize(fg, np.zeros(spec.num_params), max_evals=BUDGET)
        res = out.results[i]
        assert res.n_evals == len(res.trace) == BUDGET
        assert res.fun <= 1.1 * ref.fun, (i, res.fun, ref.fun)
        assert res.fun == min(res.trace) < res.trace[0]
        np.testing.assert_allclose(fg(res.x)[0], res.fun, rtol=1e-5)  # the best point is the one reported


def test_a_diverging_problem_does_not_spoil_the_others(windows):
    spec, problems, cfg = windows
    broken = dataclasses.replace(problems[1], data=dataclasses.replace(
        problems[1].data, observed=problems[1].data.observed.at[3, 2, 0].set(jnp.nan)))
    x0 = np.zeros((3, spec.num_params), np.float32)
    solver = batched.LBFGS(history=20)
    mixed = window.solve(spec, solver, window.stack([problems[0], broken, problems[2]]), x0, BUDGET, cfg.contact,
                         cfg.weights, size=4, trace_len=BUDGET)
    clean = window.solve(spec, solver, window.stack([problems[0], problems[1], problems[2]]), x0, BUDGET,
                         cfg.contact, cfg.weights, size=4, trace_len=BUDGET)
    assert not np.isfinite(mixed.results[1].fun) and all(np.isinf(mixed.results[1].trace))
    for i in (0, 2):
        assert mixed.results[i].trace == clean.results[i].trace
        np.testing.assert_array_equal(mixed.results[i].x, clean.results[i].x)
        assert np.all(np.isfinite(mixed.trajectory.qpos[i]))


def test_buckets_and_padding():
    assert [window.bucket(n) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 16]
    assert window.bucket(40, largest=16) == 16
    a = {"x": jnp.arange(6).reshape(2, 3)}
    padded = window.pad(a, 4)
    np.testing.assert_array_equal(padded["x"][2:], [[3, 4, 5], [3, 4, 5]])


def test_observed_segments_cut_long_unobserved_stretches_only():
    from motionrecon.window import observed_segments, segment_window_starts

    conf = np.ones((100, 3))
    assert observed_segments(conf, 10.0, 0.5) == [(0, 100)]
    conf[20:25] = 0.0  # 0.5 s: a gap
    conf[60:64] = 0.0  # 0.4 s: bridged
    conf[70, 0] = 0.0  # one joint unseen: observed
    assert observed_segments(conf, 10.0, 0.5) == [(0, 20), (25, 100)]
    assert observed_segments(conf, 10.0, 0.0) == [(0, 100)]  # never cut
    conf[:3] = 0.0
    conf[95:] = 0.0  # unobserved ends: cut when long enough
    assert observed_segments(conf, 10.0, 0.5) == [(0, 20), (25, 95)]  # the first 3 frames stay
    conf[26:] = 0.0  # a single observed frame is no stretch
    assert observed_segments(conf, 10.0, 0.5) == [(0, 20)]
    assert observed_segments(np.zeros((10, 3)), 10.0, 0.5) == [(0, 10)]  # nothing observed: as before
    # Windows (F 10 frames, overlap 2) lay over each stretch on its own.
    assert segment_window_starts([(0, 20), (25, 95)], 10, 2) == (
        [(s, 20) for s in (0, 8, 16)] + [(25 + s, 95) for s in range(0, 65, 8)])


def test_a_long_clip_is_cut_into_parts_that_share_their_seam_windows():
    from motionrecon.window import part_windows, segment_window_starts

    placed = segment_window_starts([(0, 400)], 10, 2)  # 50 windows, 8 frames apart
    assert part_windows(placed, 0, 16) == [list(range(50))]  # never cut
    assert part_windows(placed, 250, 16) == [list(range(50))]  # shorter than two parts
    parts = part_windows(placed, 100, 16)  # 4 parts, each sharing its first window with the part before
    assert [p[0] for p in parts] == [0, 12, 25, 38] and [p[-1] for p in parts] == [12, 25, 38, 49]
    assert sorted(set(w for p in parts for w in p)) == list(range(50))
    assert len(part_windows(placed, 10, 16)) == 16 and len(part_windows(placed, 10, 8)) == 8  # at most
    assert len(part_windows(placed, 60, 16)) == 4  # 6 parts' length: 4 parts fill a batch of 4, not 6 one of 8
    assert [len(p) for p in part_windows(placed[:7], 1, 16)] == [5, 3]  # parts of two windows at least
    # A cut on a stretch's first window: that window starts its part alone, as it starts from the reference.
    placed = segment_window_starts([(0, 100), (150, 250)], 10, 2)  # 13 + 13 windows
    parts = part_windows(placed, 100, 16)
    assert parts == [list(range(13)), list(range(13, 26))]


def test_handover_adds_the_step_out_of_the_initial_state_to_the_skate_term(windows, walk_1s):
    """`WindowData.handover` 1 adds the pair (initial state, frame 1) to the skate term, with the initial sphere
    centres from the state's pose (checked against MuJoCo's kinematics); 0 leaves the loss as it was."""
    import mujoco

    spec, problems, cfg = windows
    p = problems[2]  # the measured body from frame 10
    body = build_body(measure_shape(walk_1s), timestep=float(p.body.timestep))
    single = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    x = jnp.asarray(0.03 * np.random.default_rng(1).standard_normal(spec.num_params), jnp.float32)
    (loss0, (traj, parts0)), _ = single(x, p)
    seen = dataclasses.replace(p, data=dataclasses.replace(p.data, handover=jnp.asarray(1.0, jnp.float32)))
    (loss1, (_, parts1)), grad1 = single(x, seen)
    d = mujoco.MjData(body.model)
    d.qpos[:] = np.asarray(p.data.init.qpos, np.float64)
    mujoco.mj_kinematics(body.model, d)
    init = jnp.asarray(d.geom_xpos[list(body.layout.contact_geoms)], jnp.float32)
    skate0, _ = diffphy.handover_sliding(init, traj.contact_pos, p.body.contact_radius, p.data.stance0,
                                         p.data.stance, 1.0 / walk_1s.fps)
    added = float(parts1["skate"]) - float(parts0["skate"])
    assert added > 0
    np.testing.assert_allclose(added, 1e4 * float(skate0), rtol=1e-3)
    np.testing.assert_allclose(float(loss1) - float(loss0), cfg.weights.skate * added, rtol=1e-3)
    assert np.all(np.isfinite(np.asarray(grad1)))


def test_window_hessian_of_the_spectra_bench_is_the_gradient_s_derivative(windows):
    """bench/window_spectra.py's Hessian (forward-over-reverse, chunked): its columns equal reverse-over-reverse
    Hessian-vector products and central differences of the gradient, and it is symmetric to float32 rounding;
    its facts read a known spectrum back."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import window_spectra

    spec, problems, cfg = windows
    x = 0.05 * np.random.default_rng(1).standard_normal(spec.num_params).astype(np.float32)
    h = window_spectra.hessian(spec, problems[0], cfg.contact, cfg.weights, x, chunk=64)
    assert h.shape == (spec.num_params, spec.num_params) and np.all(np.isfinite(h))
    assert np.linalg.norm(h - h.T) < 1e-3 * np.linalg.norm(h)
    grad = jax.jit(lambda x: window.loss_and_grad(spec, x, problems[0], cfg.contact, cfg.weights)[1])
    reverse = jax.jit(jax.grad(lambda x, v: jnp.vdot(grad(x), v)))  # reverse over reverse: H v, another way
    for i in (0, 5, spec.num_params // 2):
        e = np.zeros(spec.num_params, np.float32)
        e[i] = 1.0
        column = np.asarray(reverse(jnp.asarray(x), jnp.asarray(e)), np.float64)
        np.testing.assert_allclose(h[:, i], column, atol=1e-3 * np.abs(column).max())
        # central differences agree at some step: the loss is smooth only piecewise (contact, limits), and
        # which of 0.1, 0.01, 0.001 rad stays within a piece depends on the coordinate
        errors = [np.linalg.norm((np.asarray(grad(jnp.asarray(x + d * e)), np.float64)
                                  - np.asarray(grad(jnp.asarray(x - d * e)))) / (2 * d) - column)
                  / np.linalg.norm(column) for d in (1e-1, 1e-2, 1e-3)]
        assert min(errors) < 0.02, (i, errors)

    rotation = np.linalg.qr(np.random.default_rng(2).standard_normal((6, 6)))[0]
    lam = np.array([-0.5, 1e-3, 1e-2, 0.1, 1.0, 10.0])
    facts = window_spectra.spectrum_facts(rotation @ np.diag(lam) @ rotation.T)
    np.testing.assert_allclose(facts["eigenvalues"], lam, rtol=1e-9, atol=1e-12)
    assert facts["largest"] == pytest.approx(10.0) and facts["negative_share"] == pytest.approx(1 / 6)
    assert facts["positive_condition"] == pytest.approx(1e4)
    assert facts["most_negative_over_largest"] == pytest.approx(-0.05)
    assert window_spectra.spectrum_facts(np.diag(lam))["off_diagonal_share"] == 0.0


def test_window_scaling_bench_leaves_each_window_out_of_its_own_scaling():
    """bench/window_scaling.py: window i's scales come from the other windows' log-diagonals only (10^(-p/2),
    p their median), normalised to a median of 1."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from window_scaling import leave_one_out_scales

    log_diag = np.array([[0.0, -2.0, -1.0], [0.0, -2.0, -1.0], [0.0, -2.0, -1.0], [-4.0, 0.0, -4.0]])
    scales = leave_one_out_scales(log_diag)
    np.testing.assert_allclose(np.median(scales, axis=1), 1.0)
    expected = 10.0 ** (-0.5 * np.array([0.0, -2.0, -1.0]))
    np.testing.assert_allclose(scales[0], expected / np.median(expected))  # the outlier row is outvoted
    np.testing.assert_allclose(scales[3], expected / np.median(expected))  # and its own row is left out
