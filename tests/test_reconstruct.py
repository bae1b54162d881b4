"""End to end: reconstruction of real mocap, the `mocap`/`demo` commands and their output contract."""

import dataclasses
import importlib
import json
import os

import mujoco
import numpy as np
import pygltflib
import pytest

from motionrecon import metrics, optim, reconstruct
from motionrecon.cli import main
from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
from motionrecon.optim.fallback import FallbackRule
from motionrecon.skeleton import BODY_LANDMARKS
from conftest import TEST_EVALS, TEST_WINDOW

import export_checks

rebuild = importlib.import_module("motionrecon.reconstruct")  # the module; `reconstruct` is its function


def traced_evals(w: dict) -> int:
    """A run.json window's evaluations in its trace: its `n_evals` without a slide retry's (`slide_retry`)."""
    return w["n_evals"] - w.get("slide_retry", {}).get("n_evals", 0)


def test_reconstruction_beats_open_loop_replay(walk_1s, test_config):
    rec = reconstruct(walk_1s, test_config)
    replay = reconstruct(walk_1s, dataclasses.replace(test_config, max_evals=1))  # kinematic init, open loop
    m, m0 = rec.metrics, replay.metrics
    assert m["mpjpe_g_mm"] < 60, m
    assert m["mpjpe_g_mm"] < m0["mpjpe_g_mm"] / 3, (m["mpjpe_g_mm"], m0["mpjpe_g_mm"])
    assert m["pelvis_height_error_max_mm"] < 150  # never falls
    assert rec.joints3d.shape == walk_1s.joints3d.shape and np.all(np.isfinite(rec.joints3d))
    assert m["n_windows"] == len(rec.windows) >= 2
    for w in rec.windows:  # solvers report every evaluation, and improve on their start
        assert len(w["trace"]) == traced_evals(w) and min(w["trace"]) <= w["trace"][0]


def test_default_solver_is_optimus_with_fallback_facts_in_run_json(walk_1s, test_config, tmp_path):
    from motionrecon.export.contract import write_reconstruction
    from motionrecon.reconstruct import ReconstructionConfig

    assert ReconstructionConfig().solver == "optimus"
    cfg = dataclasses.replace(test_config, solver=ReconstructionConfig().solver)  # same compile as the others
    rec = reconstruct(walk_1s, cfg)
    assert np.all(np.isfinite(rec.joints3d)) and rec.metrics["solver"] == "optimus"
    assert rec.metrics["mpjpe_g_mm"] < 90, rec.metrics  # loose: L-BFGS reaches < 60 with these settings
    write_reconstruction(rec, tmp_path / "out")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert run["config"]["solver"] == "optimus" and len(run["windows"]) >= 2
    for w in run["windows"]:
        info = w["info"]
        fallback_evals = f"{optim.FALLBACK}_evals"  # the batched fallback's: BFGS
        for key in ("fallback", "fallback_reason", "fallback_at_eval", "optimus_evals", fallback_evals):
            assert key in info, key
        assert info["optimus_evals"] + info[fallback_evals] == traced_evals(w) == len(w["trace"]) <= TEST_EVALS
        assert info["fallback"] == bool(info["fallback_reason"]) == (info["fallback_at_eval"] >= 0)
        # Optimus itself descends (with the paper's step multiplier its first steps threw the body over),
        # and no stall is called before the rule's window has passed
        optimus_phase = w["trace"][:max(info["optimus_evals"], 1)]
        assert info["optimus_evals"] >= FallbackRule().window + 1, info
        assert min(optimus_phase) < 0.95 * optimus_phase[0], (optimus_phase, info)
    assert metrics["fallback_windows"] == sum(w["info"]["fallback"] for w in run["windows"])
    assert sum(metrics["fallback_kinds"].values()) == metrics["fallback_windows"]


def test_optimus_basinhopping_is_accepted_and_recorded(walk_1s, test_config, tmp_path):
    import argparse

    from motionrecon.commands.mocap import config_from_args
    from motionrecon.export.contract import write_reconstruction

    args = argparse.Namespace(solver="optimus+basinhopping", max_evals=6, window=TEST_WINDOW, start=0.0,
                              duration=None, solver_weights=None)
    cfg = config_from_args(args)  # the CLI's validation accepts it
    cfg = dataclasses.replace(test_config, solver=cfg.solver, max_evals=cfg.max_evals)
    rec = reconstruct(walk_1s, cfg)
    write_reconstruction(rec, tmp_path / "out")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert run["config"]["solver"] == metrics["solver"] == "optimus+basinhopping"
    for w in run["windows"]:
        assert w["info"]["hops"] >= 1 and "fallback" in w["info"], w["info"]
        assert w["info"]["optimus_evals"] + w["info"]["lbfgs_evals"] == traced_evals(w) <= 6
    assert "fallback_windows" in metrics and np.all(np.isfinite(rec.joints3d))


@pytest.fixture(scope="module")
def mocap_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mocap")
    bad = out / "broken.txt"
    bad.write_text('{"Loop": "wrap", "Frames": [[0.033, 1, 2')  # truncated JSON
    args = ["mocap", str(bad), str(clip_path("walk")), str(clip_path("run")), "--out", str(out / "res"),
            "--duration", "0.6",
            "--window", str(TEST_WINDOW), "--max-evals", "3", "--no-progress"]
    code = main(args)
    return out, args, code


def test_mocap_batch_writes_the_contract_and_reports_bad_inputs(mocap_run, capsys):
    out, _, code = mocap_run
    assert code == 1  # one input failed
    assert not (out / "res" / "broken").exists()
    folder = out / "res" / "humanoid3d_walk"
    with np.load(folder / "motion.npz") as z:
        for key in ("fps", "joint_names", "joints3d", "observed3d", "qpos", "body", "body_mjcf", "control"):
            assert key in z.files, key
        T = z["joints3d"].shape[0]
        assert z["joints3d"].shape == z["observed3d"].shape == (T, 18, 3) and T == 18
        body = json.loads(str(z["body"]))
        assert 50 < body["total_mass"] < 90
        model = mujoco.MjModel.from_xml_string(str(z["body_mjcf"]))
        assert z["qpos"].shape == (T, model.nq)
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "tv", "foot_skate_pct", "penetration_mm", "n_evals",
                "n_windows", "solver", "wall_s", "compile_s"):
        assert key in metrics, key
    run = json.loads((folder / "run.json").read_text())
    assert run["versions"]["mujoco"] and all(len(w["trace"]) == traced_evals(w) for w in run["windows"])
    assert run["config"]["solver"] == metrics["solver"] == "optimus"  # the default
    assert all("fallback" in w["info"] for w in run["windows"]) and "fallback_windows" in metrics
    assert not [p for p in (out / "res").iterdir() if p.name.startswith(".")]  # no leftovers


def test_mocap_inputs_share_a_batch_and_match_a_run_alone(mocap_run, tmp_path):
    """The walk and the run were reconstructed in one batch (the default --batch 4); the run alone gives the
    same motion (the batched loss equals the per-problem loss; float32 reductions may differ in order)."""
    out, args, _ = mocap_run
    together = out / "res" / "humanoid3d_run"
    assert (together / "motion.npz").is_file()
    alone = ["mocap", str(clip_path("run")), "--out", str(tmp_path)] + args[args.index("--duration"):]
    assert main(alone + ["--batch", "1"]) == 0
    with np.load(together / "motion.npz") as a, np.load(tmp_path / "humanoid3d_run" / "motion.npz") as b:
        assert a["joints3d"].shape == b["joints3d"].shape
        np.testing.assert_allclose(a["joints3d"], b["joints3d"], atol=5e-3)


def test_mocap_exports_open_elsewhere(mocap_run):
    out, _, _ = mocap_run
    folder = out / "res" / "humanoid3d_walk"
    for name in ("motion.bvh", "motion.glb", "report.html"):
        assert (folder / name).is_file(), name
    model, qpos, fps = export_checks.load_contract(folder)
    err, _ = export_checks.bvh_round_trip_error(folder / "motion.bvh", model, qpos)
    assert err < 1e-3
    export_checks.check_glb_structure(pygltflib.GLTF2().load(str(folder / "motion.glb")))


def test_mocap_skips_complete_folders(mocap_run, capsys):
    out, args, _ = mocap_run
    motion = out / "res" / "humanoid3d_walk" / "motion.npz"
    before = os.stat(motion).st_mtime_ns
    good_only = [a for a in args if not a.endswith("broken.txt")]
    assert main(good_only) == 0
    assert os.stat(motion).st_mtime_ns == before
    assert "skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["mocap", "missing.txt", "--out", "OUT"], "no such file"),
    (["mocap", "KICK", "--out", "OUT", "--start", "100", "--duration", "1"], "fewer than 2 frames"),
    (["mocap", "WALK", "--out", "OUT", "--solver", "nonsense"], "unknown solver"),
    (["mocap", "WALK", "--out", "OUT", "--optimus-weights", "OUT/missing.npz"], "weight file not found"),
    (["mocap", "WALK", "--out", "OUT", "--solver", "lbfgs", "--optimus-weights", "W"], "has no weights"),
    (["mocap", "NAN", "--out", "OUT"], "NaN"),
    (["mocap", "ONEFRAME", "--out", "OUT"], "frame"),
    (["mocap", "WALK", "--out", "OUT", "--config", "BADCFG"], "unknown setting 'nonsense'"),
    (["mocap", "WALK", "--out", "OUT", "--config", "NOTJSON"], "not JSON"),
])
def test_bad_inputs_fail_with_one_line_and_no_output(tmp_path, capsys, argv, message):
    nan = tmp_path / "nan.txt"
    frame = [0.0333] + [0.0] * 43
    frames = [list(frame) for _ in range(3)]
    frames[1][2] = float("nan")
    nan.write_text(json.dumps({"Loop": "none", "Frames": frames}))
    one = tmp_path / "one.txt"
    one.write_text(json.dumps({"Loop": "none", "Frames": [frame]}))
    subst = {"OUT": str(tmp_path / "out"), "KICK": str(clip_path("kick")), "WALK": str(clip_path("walk")),
             "NAN": str(nan), "ONEFRAME": str(one)}
    subst["OUT/missing.npz"] = str(tmp_path / "missing.npz")
    subst["W"] = str(tmp_path / "w.npz")
    (tmp_path / "bad.json").write_text('{"nonsense": 1}')
    (tmp_path / "not.json").write_text("max_evals = 3")
    subst["BADCFG"], subst["NOTJSON"] = str(tmp_path / "bad.json"), str(tmp_path / "not.json")
    code = main([subst.get(a, a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err and message.lower() in err[0].lower(), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_motion_is_one_continuous_simulation(walk_1s, test_config):
    """Each window starts from the state the previous one reached at its first frame: the joins report no
    jump, and the motion replayed window by window from the kept controls and the first state is the output."""
    import jax.numpy as jnp

    from motionrecon import window

    rec = reconstruct(walk_1s, test_config)
    m = rec.metrics
    assert m["join_position_jump_m"] == 0.0 and m["join_velocity_jump_mps"] == 0.0
    assert len(rec.windows) >= 2 and m["compute_s_per_motion_s"] > 0
    obs, cfg = walk_1s, test_config
    F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                         cfg.sim_rate)
    spec = window.WindowSpec(rec.body.layout, obs.skeleton.num_joints, F, K, spf)
    import jax

    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    state = window.initial_state(rec.body, rec.qpos_kinematic[0], rec.qpos_kinematic[1], 1 / obs.fps)
    for w, wd in enumerate(rec.windows):
        s = wd["start_frame"]
        problem = window.WindowProblem(window.window_data(obs, rec.qpos_kinematic, state, s, F), rec.body.arrays)
        (_, (traj, _)), _ = evaluate(jnp.asarray(rec.control[w].reshape(-1), jnp.float32), problem)
        keep = wd["kept_frames"]
        np.testing.assert_allclose(np.asarray(traj.qpos[:keep]), rec.qpos[s + 1:s + 1 + keep], atol=1e-5)
        state = traj.state(keep - 1)


def test_a_killed_reconstruction_resumes_where_it_stopped(walk_1s, test_config, tmp_path):
    resume = tmp_path / "walk.resume"
    seen = []

    def killed_after_one_window(stage, done, total):
        seen.append((stage, done))
        if stage == "continuity" and done > TEST_EVALS:  # during the second window
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reconstruct(walk_1s, test_config, progress=killed_after_one_window, resume=resume)
    assert resume.is_file()
    again = []
    rec = reconstruct(walk_1s, test_config, progress=lambda s, d, t: again.append((s, d)), resume=resume)
    first_continuity = min(d for s, d in again if s == "continuity")
    assert first_continuity >= TEST_EVALS  # the first window was not solved again
    assert not resume.exists()  # done: the file is gone
    whole = reconstruct(walk_1s, test_config)
    np.testing.assert_array_equal(rec.joints3d, whole.joints3d)  # the same motion as without the interruption
    assert rec.metrics["n_evals"] == whole.metrics["n_evals"]


@pytest.fixture(scope="module")
def walk_in_parts(test_config):
    """4 s of walk cut into 4 parts of 1 s: (observations, settings, reconstruction)."""
    walk = load_deepmimic(clip_path("walk"), duration=4.0)
    cfg = dataclasses.replace(test_config, part_seconds=1.0)
    return walk, cfg, reconstruct(walk, cfg)


def _assert_each_part_s_simulation_cross_faded(walk, cfg, rec, parts: int = 4):
    """Outside the cross-fades `rec`'s motion is each part's simulation (replayed here from the reference state at
    the part's first frame and the kept controls); over a cross-fade the root goes from the earlier part's
    simulation to the later's."""
    import jax
    import jax.numpy as jnp

    from motionrecon import window

    F, ov, K, spf = window.window_frames(walk.fps, walk.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                         cfg.sim_rate)
    step = F - ov
    seams = rec.metrics["part_seams"]
    assert len(seams) == parts - 1 and all(s["frames_blended"] == step for s in seams)
    blended = {s["frame"] + t: t / step for s in seams for t in range(1, step + 1)}
    spec = window.WindowSpec(rec.body.layout, walk.skeleton.num_joints, F, K, spf)
    evaluate = jax.jit(lambda x, p: window.loss_and_grad(spec, x, p, cfg.contact, cfg.weights))
    windows_of = [[w for w, wd in enumerate(rec.windows) if wd["part"] == p] for p in range(parts)]
    ends = {}  # per seam frame: the root positions of the earlier part's seam window and the later's first
    for p, windows in enumerate(windows_of):
        first = rec.windows[windows[0]]["start_frame"]
        stop = rec.windows[windows_of[p + 1][0]]["start_frame"] if p < parts - 1 else walk.num_frames
        assert p == 0 or first == rec.windows[windows_of[p - 1][-1]]["start_frame"]  # the seam window, in both
        state = window.initial_state(rec.body, rec.qpos_kinematic[first], rec.qpos_kinematic[first + 1],
                                     1 / walk.fps)
        for w in windows:
            s, keep = rec.windows[w]["start_frame"], rec.windows[w]["kept_frames"]
            problem = window.WindowProblem(window.window_data(walk, rec.qpos_kinematic, state, s, F),
                                           rec.body.arrays)
            (_, (traj, _)), _ = evaluate(jnp.asarray(rec.control[w].reshape(-1), jnp.float32), problem)
            own = np.array([f for f in range(s + 1, min(s + 1 + keep, stop + 1)) if f not in blended], int)
            np.testing.assert_allclose(np.asarray(traj.qpos)[own - s - 1], rec.qpos[own], atol=1e-5)
            if s in ends or s == stop:
                ends.setdefault(s, []).append(np.asarray(traj.qpos)[:step, :3])
            state = traj.state(keep - 1)
    for s, (earlier, later) in ends.items():
        weight = np.array([blended[s + t] for t in range(1, step + 1)])[:, None]
        np.testing.assert_allclose(rec.qpos[s + 1:s + 1 + step, :3], (1 - weight) * earlier + weight * later,
                                   atol=1e-5)


def test_a_long_clip_cut_into_parts_is_each_part_s_simulation_cross_faded_at_the_seams(walk_in_parts, tmp_path):
    """With `part_seconds` a clip is cut into parts whose windows are solved side by side in one batch, each part
    from the reference state at its first frame: outside the cross-fades the motion is each part's simulation, over
    a cross-fade the root goes from the earlier part's simulation to the later's, the seams are in the metrics, and
    a killed run resumes to the same motion."""
    walk, cfg, whole = walk_in_parts
    resume = tmp_path / "walk.resume"

    def killed_after_one_step(stage, done, total):
        if stage == "continuity" and done > TEST_EVALS:  # each part's second window
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reconstruct(walk, cfg, progress=killed_after_one_step, resume=resume)
    rec = reconstruct(walk, cfg, resume=resume)
    np.testing.assert_array_equal(rec.joints3d, whole.joints3d)
    m = rec.metrics
    assert m["parts"] == 4 and m["batch_bucket"] == 4 and m["mpjpe_g_mm"] < 60, m
    assert all(0 < s["landmark_gap_max_m"] < 0.3 for s in m["part_seams"]), m["part_seams"]
    _assert_each_part_s_simulation_cross_faded(walk, cfg, rec)


def test_a_long_clip_s_parts_spread_over_worker_processes_give_the_same_motion(walk_in_parts, tmp_path):
    """`workers=2`: the 4 parts in two processes, two each (a batch of 2 there, of 4 in one process): the motion is
    again each part's simulation cross-faded at the seams, with about the same error as in one process; each
    worker's resume file is gone once the work is taken in. Not the same bits: a worker runs XLA on one thread
    (`jaxsetup.use_one_core`) at another batch size, and on some CPUs (this AVX2 one) the batched loss then rounds
    differently, which the solves carry on (a few mm here, and a slide retry in one and not the other: 375
    evaluations against 325)."""
    walk, cfg, whole = walk_in_parts
    stages = []
    rec = reconstruct(walk, cfg, workers=2, resume=tmp_path / "walk.resume",
                      progress=lambda stage, done, total: stages.append((stage, done, total)))
    assert rec.metrics["batch_bucket"] == 2 and whole.metrics["batch_bucket"] == 4
    assert rec.metrics["parts"] == 4
    assert [s["frame"] for s in rec.metrics["part_seams"]] == [s["frame"] for s in whole.metrics["part_seams"]]
    assert abs(rec.metrics["mpjpe_g_mm"] - whole.metrics["mpjpe_g_mm"]) < 0.1 * whole.metrics["mpjpe_g_mm"]
    _assert_each_part_s_simulation_cross_faded(walk, cfg, rec)
    assert stages[0] == ("parts", 0, 2) and stages[-1] == ("parts", 2, 2)
    assert list(tmp_path.iterdir()) == []


def test_all_windows_shot_together_then_joined(walk_1s, test_config):
    """With shooting (the default on an accelerator) every window is first solved from the reference state in
    one batch; the continuity pass then joins them into one simulation."""
    rec = reconstruct(walk_1s, dataclasses.replace(test_config, shooting=True, continuity_evals=TEST_EVALS))
    m = rec.metrics
    assert m["batch_bucket"] >= len(rec.windows) >= 2
    assert m["join_position_jump_m"] == 0.0 and m["mpjpe_g_mm"] < 60, m
    for w in rec.windows:
        assert w["shooting"]["n_evals"] == TEST_EVALS
        assert traced_evals(w) == len(w["trace"])
        if w["start_frame"] > 0:
            assert w["continuity"]["warm_start"] in ("shooting", "previous window")


def test_settings_file_over_the_defaults_and_options_over_both(mocap_run, tmp_path):
    """`--config FILE` changes settings the options do not name; an option given on the line wins."""
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"max_evals": 50, "weights": {"smooth": 5.0}, "continuity_evals": 7}))
    out = tmp_path / "res"
    assert main(["mocap", str(clip_path("walk")), "--out", str(out), "--duration", "0.6", "--window", str(TEST_WINDOW),
                 "--max-evals", "3", "--config", str(settings), "--no-progress"]) == 0
    run = json.loads((out / "humanoid3d_walk" / "run.json").read_text())
    assert run["config"]["max_evals"] == 3  # the option wins over the file
    assert run["config"]["weights"]["smooth"] == 5.0 and run["config"]["continuity_evals"] == 7
    assert run["config"]["weights"]["marker3d"] == 1.0  # untouched fields keep their defaults


def test_contact_parts_by_default_where_the_motion_comes_near_the_floor(walk_1s):
    """By default (contact_parts None) a walk gets the feet's spheres alone (cheaper), a crawl every part's;
    a batch of both is split into one program per body layout and both come out."""
    from motionrecon.body.template import CONTACT_PARTS, FEET_ONLY
    from motionrecon.reconstruct import ReconstructionConfig, kinematic_reference, reconstruct_many

    crawl = load_deepmimic(clip_path("crawl"), duration=0.6)
    walk_body, _ = kinematic_reference(walk_1s, ReconstructionConfig(), 4)
    crawl_body, _ = kinematic_reference(crawl, ReconstructionConfig(), 4)
    assert walk_body.spheres_of(FEET_ONLY).all() and len(walk_body.layout.contact_geoms) == 8
    assert len(crawl_body.layout.contact_geoms) == len(crawl_body.spheres_of(CONTACT_PARTS)) > 8
    cfg = ReconstructionConfig(solver="lbfgs", max_evals=2, window=TEST_WINDOW, overlap=0.1)
    walk_rec, crawl_rec = reconstruct_many([walk_1s.slice_frames(0, 18), crawl], cfg)
    assert walk_rec.contact_pos.shape[1] == 8 and crawl_rec.contact_pos.shape[1] > 8


def test_contact_parts_setting_chooses_the_body_parts_with_spheres(walk_1s):
    """`contact_parts` in a settings file: the body gets the spheres of those parts only; an unknown part or a
    value that is not a list of names is an error naming the file."""
    from motionrecon.body.template import CONTACT_PARTS
    from motionrecon.errors import InputError
    from motionrecon.reconstruct import ReconstructionConfig, kinematic_reference

    cfg = ReconstructionConfig().with_overrides({"contact_parts": ["feet", "hands"]}, "settings.json")
    assert cfg.contact_parts == ("feet", "hands")
    body, _ = kinematic_reference(walk_1s, cfg, 4)
    assert len(body.layout.contact_geoms) == 10
    every = ReconstructionConfig(contact_parts=CONTACT_PARTS)
    body, _ = kinematic_reference(walk_1s, every, 4)
    assert body.spheres_of(("knees", "back", "head")).sum() == 7
    assert ReconstructionConfig().with_overrides({"contact_parts": None}, "s.json").contact_parts is None
    for bad in (["tail"], "feet", []):
        with pytest.raises(InputError, match="settings.json.*contact_parts"):
            ReconstructionConfig().with_overrides({"contact_parts": bad}, "settings.json")


def test_a_long_unobserved_gap_is_not_simulated_and_the_body_restarts_after_it(test_config, tmp_path):
    """A person out of view for 0.6 s: the frames of the gap hold the kinematic reference (interpolated between the
    detections either side), the body restarts from the reference state at the gap's end, and what comes after is
    one continuous simulation again. Out of view for the last 0.6 s as well: those frames are not simulated and
    show the last detected frame's reference pose held (the reference itself drifts there)."""
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
    from motionrecon.export.contract import write_reconstruction

    obs = load_deepmimic(clip_path("walk"), duration=2.5)
    conf = obs.confidence.copy()
    conf[20:38] = 0.0  # 0.6 s at 30 fps
    T = obs.num_frames
    conf[T - 18:] = 0.0  # and the last 0.6 s
    obs = dataclasses.replace(obs, confidence=conf)
    rec = reconstruct(obs, test_config)
    assert rec.metrics["simulated_stretches"] == [[0, 19], [38, T - 19]]
    assert rec.metrics["simulated_frames"] == T - 36
    expected = np.ones(T, bool)
    expected[20:38] = expected[T - 18:] = False
    np.testing.assert_array_equal(rec.simulated, expected)
    np.testing.assert_allclose(rec.qpos[20:38], rec.qpos_kinematic[20:38])
    np.testing.assert_allclose(rec.qpos[T - 18:], np.repeat(rec.qpos_kinematic[T - 19:T - 18], 18, axis=0))
    assert np.abs(rec.qpos_kinematic[-1] - rec.qpos_kinematic[T - 19]).max() > 0.01  # what it would show
    starts = [wd["start_frame"] for wd in rec.windows]
    assert 38 in starts and not any(20 <= s < 38 for s in starts)
    assert all(s + wd["kept_frames"] <= 19 for s, wd in zip(starts, rec.windows) if s < 20)
    # The restart is the reference state (pose lifted out of the floor): pelvis height within 2 cm, and the motion
    # after it continuous (no join jump inside the stretch: the jump metric covers joins only).
    assert abs(rec.qpos[38, 2] - rec.qpos_kinematic[38, 2]) < 0.02
    assert rec.metrics["join_position_jump_m"] == 0.0
    from motionrecon import metrics

    assert rec.metrics["tv"] == pytest.approx(metrics.over_stretches(metrics.tv, [(0, 20), (38, T - 18)],
                                                                     rec.joints3d))
    folder = write_reconstruction(rec, tmp_path / "gap")
    with np.load(folder / "motion.npz") as z:
        np.testing.assert_array_equal(z["simulated"], expected)


def test_a_fallen_body_restarts_from_the_reference_at_the_next_window(walk_1s, test_config, tmp_path, capsys):
    """Gains too weak to stand: the body falls in the first window, which is solved again with the upright term
    (`fall_retry`: kept where its pelvis stays higher, never lower; its evaluations counted; said in the
    terminal); the next window starts from the reference state (listed in fall_restarts and said in the
    terminal), where with the restart off the body stays down."""
    from motionrecon.commands.mocap import print_metrics
    from motionrecon.export.contract import write_reconstruction

    weak = dataclasses.replace(test_config, gain_scale=0.02, max_evals=2)
    down = reconstruct(walk_1s, dataclasses.replace(weak, restart_after_fall=0.0, fall_retry=0.0))
    assert down.metrics["fall_restarts"] == [] and down.metrics["fall_retries"] == {"windows": 0, "kept": 0}
    assert down.qpos[-1, 2] < 0.5 * down.qpos_kinematic[-1, 2]  # it fell and stayed down
    rec = reconstruct(walk_1s, weak)
    restarts = rec.metrics["fall_restarts"]
    assert restarts and restarts[0] == rec.windows[1]["start_frame"]
    for f in restarts:  # the reference state there: the pelvis at the reference's height (lifted out of the floor)
        assert rec.qpos[f, 2] >= rec.qpos_kinematic[f, 2] - 1e-6
    retried = [w for w in rec.windows if "fall_retry" in w]
    assert retried and retried[0] is rec.windows[0]
    assert rec.metrics["fall_retries"] == {"windows": len(retried), "kept": sum(w["fall_retry"]["kept"]
                                                                                 for w in retried)}
    for w in retried:
        fall = w["fall_retry"]
        assert fall["lowest_pelvis_ratio"] < weak.fall_retry_below
        assert fall["lowest_pelvis_ratio_after"] >= fall["lowest_pelvis_ratio"]
        assert fall["kept"] == (fall["from"] is not None) and fall["n_evals"] == 2 * weak.max_evals
        assert w["n_evals"] == len(w["trace"]) + fall["n_evals"] + w.get("slide_retry", {}).get("n_evals", 0)
    write_reconstruction(rec, tmp_path / "fell")
    print_metrics(tmp_path / "fell")
    out = capsys.readouterr().out
    assert "warning: the body fell and was restarted from the reference at" in out
    assert "solved again where the body fell" in out


def test_after_a_fall_the_solve_that_stays_up_with_the_lowest_loss_is_kept():
    """`after_fall_choice` over (lowest pelvis ratio, loss) of the first solve and its two retries."""
    assert rebuild.after_fall_choice([(0.3, 10.0), (0.6, 50.0), (0.8, 20.0)], 0.5) == 2  # both up: the lower loss
    assert rebuild.after_fall_choice([(0.3, 10.0), (0.6, 50.0), (0.4, 20.0)], 0.5) == 1  # the one up, at any loss
    assert rebuild.after_fall_choice([(0.3, 10.0), (0.2, 5.0), (0.45, 20.0)], 0.5) == 2  # all down: the highest
    assert rebuild.after_fall_choice([(0.45, 10.0), (0.2, 5.0), (0.3, 1.0)], 0.5) == 0  # the first solve stays


def test_slides_counts_the_pairs_the_stance_metric_counts_within_the_new_frames():
    """`reconstruct.slides`: a point standing 1 s at its floor level that moves 3 cm between frames 12 and 13 slides
    once, as metrics.foot_skate_stance_pct counts it; only pairs touching frames (first, last] count; lifted 3 cm
    it stands only against its own level; at 50 fps the pair is read at the metric's 25 fps."""
    points = np.zeros((25, 1, 3))
    points[13:, 0, 0] = 0.03
    assert metrics.foot_skate_stance_pct(points, 25.0, [0]) == pytest.approx(100 / 24)
    assert rebuild.slides(points, 25.0, 0, 24, np.zeros(1)) == 1
    assert rebuild.slides(points, 25.0, 12, 24, np.zeros(1)) == 1  # the step out of frame `first` counts
    assert rebuild.slides(points, 25.0, 13, 24, np.zeros(1)) == 0
    assert rebuild.slides(points, 25.0, 0, 12, np.zeros(1)) == 0
    assert rebuild.slides(points + [0.0, 0.0, 0.03], 25.0, 0, 24, np.zeros(1)) == 0
    assert rebuild.slides(points + [0.0, 0.0, 0.03], 25.0, 0, 24, np.full(1, 0.03)) == 1
    fine = np.zeros((49, 1, 3))
    fine[25:, 0, 0] = 0.03
    assert rebuild.slides(fine, 50.0, 0, 48, np.zeros(1)) == 1


def test_a_window_whose_feet_slide_is_solved_again_and_the_retry_is_kept_only_where_it_slides_less(
        walk_1s, test_config, monkeypatch):
    """`slide_retry`: every window made to read as sliding once (`slides` 1 for the first solve, 0 for both
    retries) is solved twice more with the same budget and the step out of its first state in the loss
    (`handover` 1), once with the clip's stance and once with the sliding feet held where they bear weight (every
    point made to slide: more spheres held); the check reads each trajectory twice, over the window's frames and
    over its kept ones; the retries are recorded in run.json's windows and the metrics, their evaluations counted,
    and the kept controls are the motion written (replayed). Settings without a stance term (video's) retry with it
    at RETRY_STANCE."""
    calls, problems, levels_read, stance_weights = [], [], [], []
    window_data, solve = rebuild.window.window_data, rebuild.window.solve

    def one_slide_then_none(points, fps, first, last, levels):
        if points.shape[1] == 1:  # one point at a time: which feet the retry holds (`_held_stance`)
            return 1
        calls.append((len(points), first, last))
        levels_read.append(levels)
        return 1 if len(calls) % 6 in (1, 2) else 0  # per window: the first solve's two counts, then the retries'

    def recorded(*args, **kwargs):
        data = window_data(*args, **kwargs)
        problems.append((float(data.handover), float(np.sum(data.stance))))
        return data

    def solve_recorded(spec, solver, batch, x0, budget, params, weights, **kwargs):
        stance_weights.append((float(np.max(np.asarray(batch.data.handover))), weights.stance))
        return solve(spec, solver, batch, x0, budget, params, weights, **kwargs)

    monkeypatch.setattr(rebuild, "slides", one_slide_then_none)
    monkeypatch.setattr(rebuild.window, "window_data", recorded)
    monkeypatch.setattr(rebuild.window, "solve", solve_recorded)
    no_stance = dataclasses.replace(test_config, weights=dataclasses.replace(test_config.weights, stance=0.0))
    rec = reconstruct(walk_1s, no_stance)
    assert {w for h, w in stance_weights if h == 0.0} == {0.0}
    assert {w for h, w in stance_weights if h == 1.0} == {rebuild.RETRY_STANCE}
    retried = [p for p in problems if p[0] == 1.0]
    assert len(retried) == 2 * len(rec.windows) and {p[0] for p in problems} == {0.0, 1.0}
    assert all(held >= plain for (_, plain), (_, held) in zip(retried[::2], retried[1::2]))
    assert any(held > plain for (_, plain), (_, held) in zip(retried[::2], retried[1::2]))
    retries = [w["slide_retry"] for w in rec.windows]
    assert len(calls) == 6 * len(rec.windows)
    assert rec.metrics["slide_retries"] == {"windows": len(rec.windows), "kept": sum(r["kept"] for r in retries)}
    for k, w in enumerate(rec.windows):  # over the window within the clip, then over its kept frames
        (n, first, whole), (_, _, kept) = calls[6 * k:6 * k + 2]
        assert whole - first == min(w["frames"], walk_1s.num_frames - 1 - w["start_frame"])
        assert kept - first == w["kept_frames"] and n == first + 1 + w["frames"]
        assert kept < whole or k == len(rec.windows) - 1
    # under a second simulated, the floor levels are the reference's, raised by the margin
    sites = rebuild.landmark_sites(rec.body.model, rec.qpos_kinematic)[:, [BODY_LANDMARKS.index(n) for n in
                                                                           rebuild.SLIDE_POINTS], 2]
    np.testing.assert_allclose(levels_read[0], metrics.floor_levels(sites) + rebuild.SLIDE_LEVEL_MARGIN, atol=1e-9)
    for w, r in zip(rec.windows, retries):
        assert r["slides"] == 1 and r["slides_after"] == 0 and r["slides_in_kept_frames"] == [1, 0]
        assert r["n_evals"] == 2 * TEST_EVALS
        assert r["kept"] == (r["fit_after"] <= rebuild.RETRY_FIT_TOLERANCE * r["fit"])
        assert w["n_evals"] == len(w["trace"]) + 2 * TEST_EVALS
    assert rec.metrics["n_evals"] == 3 * len(rec.windows) * TEST_EVALS
    off = reconstruct(walk_1s, dataclasses.replace(test_config, slide_retry=False))
    assert "slide_retry" not in off.windows[0] and off.metrics["slide_retries"]["windows"] == 0


def test_the_terminal_says_how_many_windows_were_solved_again_for_sliding_feet(tmp_path, capsys):
    from motionrecon.commands.mocap import print_metrics

    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "metrics.json").write_text(json.dumps({"n_evals": 1700,
                                                                "slide_retries": {"windows": 1, "kept": 1}}))
    print_metrics(tmp_path / "clip")
    assert "slide retry           1 window solved again where the feet slid, 1 kept" in capsys.readouterr().out
    (tmp_path / "clip" / "metrics.json").write_text(json.dumps({"slide_retries": {"windows": 0, "kept": 0}}))
    print_metrics(tmp_path / "clip")
    assert "slide retry" not in capsys.readouterr().out
