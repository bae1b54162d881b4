"""Meta-training on DiffPhy windows: the shipped weights, the "diffphy" task, PES on it, the benchmark's summaries."""

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motionrecon.optim.learned import LearnedOptimizer, load_weights
from motionrecon.optim.meta import pes, tasks
from conftest import TEST_WINDOW

ROOT = Path(__file__).resolve().parents[1]
RECONSTRUCTION_SIZE = 11 * 28  # K * U of a 1 s window with keyframes every 0.1 s (the reconstruction's default)


def _bench(name="optimus_vs_bfgs"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_scale_sweep_score():
    score = _bench("learned_step_scale").geometric_mean_ratio
    assert score([[10.0, 5.0, 1.0], [100.0, 200.0, 10.0]]) == pytest.approx(0.1)  # best / first, geometric mean
    assert score([[10.0, np.inf, np.nan]]) == pytest.approx(1.0)  # never improved: non-finite values do not count
    assert score([[4.0, 1.0]]) < score([[4.0, 2.0]])


def test_shipped_diffphy_weights_run_at_the_reconstruction_size():
    name, kind = "optimus_diffphy.npz", "optimus"
    optimizer, theta = load_weights(ROOT / "weights" / name, kind=kind)
    classic_optimizer, classic_theta = load_weights(ROOT / "weights" / name.replace("diffphy", "classic"))
    # fine-tuned from the classic weights: same architecture, with the step multiplier chosen for DiffPhy
    assert optimizer.architecture() == classic_optimizer.architecture()
    card = json.loads((ROOT / "weights" / name).with_suffix(".json").read_text())
    selection = card["step_scale_selection"]
    assert optimizer.step_scale_value == selection["chosen"] == card["architecture"]["step_scale"]
    assert optimizer.step_scale_value < classic_optimizer.step_scale_value
    differs = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), theta, classic_theta)
    assert any(jax.tree_util.tree_leaves(differs))  # ... and actually trained
    x0 = jnp.zeros(RECONSTRUCTION_SIZE, jnp.float32)
    grad = jnp.linspace(-1.0, 1.0, RECONSTRUCTION_SIZE, dtype=jnp.float32)
    state = optimizer.update(theta, optimizer.init(theta, x0), grad, jnp.float32(10.0))
    assert state.x.shape == (RECONSTRUCTION_SIZE,) and np.all(np.isfinite(state.x))
    assert float(jnp.dot(state.x, grad)) < 0  # a descent step on a linear function


@pytest.fixture(scope="module")
def tiny_task():
    # one window of the tests' reconstruction size, unperturbed, so it can be compared with `reconstruct`
    return tasks.get_task("diffphy", clips=["walk"], windows_per_clip=2, scale_range=0.0, noise_m=0.0,
                          window=TEST_WINDOW)


def test_diffphy_task_is_the_reconstructions_first_window(tiny_task, test_config):
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic, read_clip
    from motionrecon.reconstruct import reconstruct

    (dim,) = tiny_task.dims
    problem, x0 = tiny_task.sample(jax.random.PRNGKey(3), dim)
    assert x0.shape == (dim,) and dim == 6 * 28 and not np.any(np.asarray(x0))
    problems, _ = tiny_task.all_problems(dim)
    assert np.all(np.isfinite(np.asarray(problems.f_init))) and np.all(np.asarray(problems.f_init) > 0)
    clip, start, scale = tiny_task.bank.windows[0]
    assert clip == "walk" and scale == 1.0 and start < 19  # training half of the 38-frame cycle

    fps = read_clip(clip_path("walk")).fps
    obs = load_deepmimic(clip_path("walk"), start=start / fps, duration=16 / fps)  # frames start .. start + 15
    rec = reconstruct(obs, dataclasses.replace(test_config, max_evals=1))
    assert len(rec.windows) == 1
    expected = rec.windows[0]["trace"][0]
    assert float(problems.f_init[0]) == pytest.approx(expected, rel=1e-4)


class SGDState(NamedTuple):
    x: jax.Array


@dataclasses.dataclass(frozen=True)
class LogStepSGD(LearnedOptimizer):
    """Normalised gradient descent x <- x - exp(log_step) g / |g|: one meta-parameter, cheap to compile."""

    kind = "test_log_step"

    def init_meta_params(self, key):
        return {"log_step": jnp.array([-6.0])}

    def init(self, meta_params, x0):
        return SGDState(x=jnp.asarray(x0, jnp.float32))

    def update(self, meta_params, state, grad, loss=None):
        g = grad / (jnp.linalg.norm(grad) + 1e-12)
        return SGDState(x=state.x - jnp.exp(meta_params["log_step"][0]) * g)


@pytest.mark.slow  # ~5 min on 2 loaded CPU cores: compiling a vmapped simulation gradient
def test_pes_on_two_tiny_windows_moves_the_step_size_up():
    task = tasks.get_task("diffphy", clips=["walk"], windows_per_clip=2, window=0.2)
    opt = LogStepSGD()
    config = pes.PESConfig(num_tasks=2, unroll_length=4, truncation=2, sigma=0.5)
    theta = opt.init_meta_params(None)
    step = jax.jit(pes.pes_step, static_argnums=(0, 1, 2))
    (dim,) = task.dims
    state = pes.pes_init(opt, task, config, theta, dim, jax.random.PRNGKey(0))
    losses = []
    for i in range(6):
        grad, state, metrics = step(opt, task, config, theta, state, jax.random.PRNGKey(i))
        theta = jax.tree_util.tree_map(lambda t, g: t - 1.0 * jnp.clip(g, -1, 1), theta, grad)
        losses.append(float(metrics["meta_loss"]))
    assert np.all(np.isfinite(losses))
    # PES asks for larger steps than the far too small start. (The per-step PES meta-loss itself is too noisy
    # over 6 staggered truncations to assert a decrease: it went -0.0066 -> -0.0045 on a measured run.)
    assert float(theta["log_step"][0]) > -6.0


def test_benchmark_summaries_on_synthetic_traces():
    bench = _bench()
    np.testing.assert_array_equal(bench.best_so_far([5.0, 3.0, np.nan, 4.0, 1.0], 7), [5, 3, 3, 3, 1, 1, 1])
    assert bench.evals_to_reach([5.0, 3.0, 2.0, 1.0], 2.0) == 3
    assert bench.evals_to_reach([5.0, 3.0], 2.0) is None
    rng = np.random.default_rng(0)
    curves = 1.0 + 0.1 * rng.standard_normal((400, 3))
    mean, lo, hi = bench.mean_ci(curves)
    assert np.all(lo < mean) and np.all(mean < hi) and np.all(hi - lo < 0.05)
    assert np.all(np.abs(mean - 1.0) < hi - lo)
    runs = []
    for w in range(3):  # BFGS ends at 1.0; Optimus reaches it at evaluation 4 on window 0 only
        runs.append({"solver": "bfgs", "window": w, "trace": [10.0, 5.0, 2.0, 1.0], "mpjpe_g_mm": 20.0})
        trace = [10.0, 6.0, 3.0, 0.5, 0.4] if w == 0 else [10.0, 8.0, 7.0, 6.0, 5.0]
        runs.append({"solver": "optimus", "window": w, "trace": trace, "mpjpe_g_mm": 30.0 + w})
    s = bench.summarize(runs, budget=5)
    assert list(s) == ["optimus", "bfgs"]
    assert s["optimus"]["evals_to_bfgs_final"] == [4, None, None] and s["optimus"]["reached_bfgs_final"] == "1/3"
    assert s["bfgs"]["evals_to_bfgs_final"] == [4, 4, 4]
    assert s["optimus"]["final_loss_mean"] == pytest.approx((0.4 + 5 + 5) / 3)
    assert s["optimus"]["mpjpe_g_mm_mean"] == pytest.approx(31.0)
    assert len(s["bfgs"]["curve_relative_mean"]) == 5 and s["bfgs"]["curve_relative_mean"][-1] == pytest.approx(0.1)


def test_window_solvers_bench_solves_again_the_windows_the_reconstruction_solved(walk_1s, test_config):
    """bench/window_solvers.py keeps every window problem a reconstruction hands its solver; solved again by that
    solver from the kept start, a window alone gives the reconstruction's own losses, and in a batch the same
    first loss (the batch's program rounds differently, so later losses drift apart: chaos)."""
    bench = _bench("window_solvers")
    kept = bench.capture(walk_1s, test_config)
    assert len(kept) >= 2 and all(w["budget"] == test_config.max_evals for w in kept)
    assert kept[0]["first"] and not np.any(kept[0]["x0"])  # the first window starts from zero offsets
    alone = bench.solve_all(kept[1:2], test_config.solver)[0]
    assert alone["trace"] == kept[1]["trace"]
    again = bench.solve_all(kept, test_config.solver)
    for w, r in zip(kept, again):
        np.testing.assert_allclose(r["trace"][0], w["trace"][0], rtol=1e-5)
        assert np.isfinite(r["mpjpe_g_mm"]) and 0 < r["mpjpe_g_mm"] < 200
