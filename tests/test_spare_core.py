"""The second solver on a spare CPU core: same loss in the worker, the lower result kept, failures survived."""

import dataclasses
import json
import os

import numpy as np
import pytest

from motionrecon import reconstruct, spare_core
from motionrecon.commands.video import second_solver_for
from motionrecon.optim.base import SolveResult


def _result(x, fun):
    return SolveResult(x=np.asarray(x, float), fun=fun, n_evals=3, n_iters=3, trace=[fun], message="m")


def test_pick_keeps_the_lower_loss_and_records_the_second():
    from motionrecon.reconstruct import _pick

    x, rec = _pick(_result([1.0], 5.0), _result([2.0], 4.0), "lbfgs")
    assert x.tolist() == [2.0] and rec == {"solver": "lbfgs", "loss": 4.0, "n_evals": 3, "message": "m", "kept": True}
    x, rec = _pick(_result([1.0], 5.0), _result([2.0], 6.0), "lbfgs")
    assert x.tolist() == [1.0] and rec["kept"] is False
    x, rec = _pick(_result([1.0], 5.0), None, "lbfgs")
    assert x.tolist() == [1.0] and rec is None


def test_second_solver_choice():
    assert second_solver_for("optimus") == "lbfgs" and second_solver_for("lbfgs") is None
    assert second_solver_for("optimus", "none") is None and second_solver_for("lbfgs", "bfgs") == "bfgs"


def test_no_spare_core_unless_this_process_is_on_one():
    if len(os.sched_getaffinity(0)) != 1:
        assert spare_core.spare_core() is None  # pytest is not pinned: a worker would compete with it


@pytest.fixture(scope="module")
def a_core():
    return sorted(os.sched_getaffinity(0))[-1]


def test_reconstruction_with_a_second_solver_keeps_the_lower_loss_per_window(walk_1s, test_config, a_core,
                                                                           monkeypatch, tmp_path):
    """Adam with few evaluations against L-BFGS in the worker: the worker computes the same loss (its
    reported loss reproduces here to float precision) and wins where it is lower."""
    from motionrecon.export.contract import write_reconstruction

    monkeypatch.setattr(spare_core, "spare_core", lambda: a_core)
    cfg = dataclasses.replace(test_config, solver="adam", second_solver="lbfgs")
    rec = reconstruct(walk_1s, cfg)
    windows = rec.windows
    assert len(windows) >= 2 and all("second_solver" in w for w in windows)
    for w in windows:
        second, own = w["second_solver"], min(w["trace"])
        assert second["solver"] == "lbfgs" and 1 <= second["n_evals"] <= cfg.max_evals
        assert second["kept"] == (second["loss"] < own)
        assert w["loss"] == pytest.approx(min(own, second["loss"]), rel=1e-4)
    assert rec.metrics["second_solver"] == "lbfgs" and "second_solver_note" not in rec.metrics
    assert rec.metrics["second_solver_kept_windows"] == sum(w["second_solver"]["kept"] for w in windows) >= 1
    write_reconstruction(rec, tmp_path / "out")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["config"]["second_solver"] == "lbfgs" and run["windows"][0]["second_solver"]["solver"] == "lbfgs"


def test_without_a_spare_core_the_reconstruction_says_so(walk_1s, test_config, monkeypatch):
    monkeypatch.setattr(spare_core, "spare_core", lambda: None)
    rec = reconstruct(walk_1s, dataclasses.replace(test_config, second_solver="lbfgs"))
    assert "no spare CPU core" in rec.metrics["second_solver_note"]
    assert rec.metrics["second_solver_kept_windows"] == 0 and all("second_solver" not in w for w in rec.windows)


def test_a_failing_worker_is_reported_not_fatal(walk_1s, test_config, a_core):
    from motionrecon.body import build_body

    body = build_body()
    bad = spare_core.Worker("no-such-solver", a_core)  # the worker fails on the problem message
    try:
        bad.set_problem(body, walk_1s.skeleton.num_joints, 15, 6, 16, test_config)
        assert bad.result() is None and "no-such-solver" in bad.failure
    finally:
        bad.close()
    dead = spare_core.Worker("lbfgs", a_core)
    try:
        dead._process.kill()
        dead._process.join()
        dead.submit(None, np.zeros(3), 5)
        assert dead.result() is None and dead.failure  # unreachable, or ended
    finally:
        dead.close()


def test_compile_helper_compiles_into_the_persistent_cache(walk_1s, test_config, tmp_path, monkeypatch):
    """The helper process (on every core) compiles the window problem into the cache folder it is given."""
    from motionrecon.body import build_body
    from motionrecon.reconstruct import _frames_per_window

    monkeypatch.setenv("MOTIONRECON_CACHE", str(tmp_path))  # read by the helper when it starts
    F, _, K, spf = _frames_per_window(test_config, walk_1s.fps, walk_1s.num_frames)
    helper = spare_core.compile_helper(build_body(), walk_1s.skeleton.num_joints, F, K, spf, test_config)
    try:
        assert helper.wait_ready() and helper.failure is None and helper.compile_s > 1.0
    finally:
        helper.close()
    assert helper._process.exitcode == 0
    assert any(p.is_file() and p.stat().st_size > 10_000 for p in (tmp_path / "jax").iterdir())
