"""Issue-16 benchmark: the cost of a loss evaluation, of the demo and of the dribble video, cold and warm.

    python bench/speed.py [--sections evaluation threads demo video] [--baseline REV]
                          [--out bench/results/speed.json]

Every measurement runs in a fresh Python process on one CPU core (`taskset`-like affinity set before JAX starts,
as the `motionrecon` command does), so sections do not share compiled code or caches unless said:

  evaluation  loss + gradient of the demo's first 1 s window (walk, 30 fps, 11 keyframes of 28 controls) for a
              batch of 1 and a batch of 8 windows (one compiled call), the forward pass alone, and the compile
              time of each; the minimum over repeats. The batch-1 path is the window-at-a-time one, so every
              batched number is also a ratio measured in the same run.
  threads     the same evaluation in a process left on every core (XLA's thread pool), against one core.
  demo        `reconstruct` of the 4 s demo walk with the default solver: from an empty compile cache (cold:
              time to the first optimisation step, wall time) and again with that cache (warm); the default
              window-at-a-time continuity pass, and with all windows shot together first (`shooting`).
  video       `motionrecon VIDEO` on the real dribble clip (../shared/data/video): cold (empty compile
              cache and keypoint cache) end to end, then warm (both caches).
  --baseline REV  also times the evaluation of the code at git revision REV (a temporary worktree; the
              revision's own API), e.g. the MJX physics before this benchmark existed.

Targets (issue 16) are checked and written with the measured values. The machine is shared and noisy:
compare within one run (the ratios), and read the load averages written beside each section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import write_json  # noqa: E402

DRIBBLE = ROOT.parent / "shared" / "data" / "video" / "single_person_dribble.mp4"
TARGETS = {
    "evaluation_batch8_per_problem_s": ("<=", 0.06),
    "evaluation_single_s": ("<=", 0.15),
    "demo_compute_per_motion_second_s": ("<=", 6.0),
    "demo_mpjpe_g_mm": ("<=", 15.0),
    "cold_start_to_first_step_s": ("<=", 30.0),
    "warm_start_to_first_step_s": ("<=", 5.0),
    "video_compute_per_video_second_s": ("<=", 20.0),
    "video_cold_end_to_end_s": ("<=", 120.0),
    "video_mpjpe_2d_px": ("<=", 24.1),
    "video_foot_skate_pct": ("<=", 9.9),
    "video_tv_over_raw_tv": ("<=", 0.49),
}

# Runs in a child process: times loss+gradient of the demo's first window at batch sizes given in argv.
EVALUATION = r'''
import json, sys, time
import numpy as np
import jax, jax.numpy as jnp
from motionrecon import diffphy, window
from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
from motionrecon.reconstruct import ReconstructionConfig, kinematic_reference
cfg = ReconstructionConfig()
obs = load_deepmimic(clip_path("walk"), duration=4.0)
F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing, cfg.sim_rate)
body, qkin = kinematic_reference(obs, cfg, spf)
spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
starts = window.window_starts(obs.num_frames, F, ov)
problems = [window.WindowProblem(window.window_data(obs, qkin, window.initial_state(body, qkin[s], qkin[s + 1], 1 / obs.fps), s, F), body.arrays) for s in starts]
out = {"window_frames": F, "keyframes": K, "steps_per_frame": spf, "params": spec.num_params}
def timed(fn, args, repeats=7):
    t = time.perf_counter(); c = jax.jit(fn).lower(*args).compile(); compile_s = time.perf_counter() - t
    jax.block_until_ready(c(*args))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); jax.block_until_ready(c(*args)); ts.append(time.perf_counter() - t)
    return min(ts), compile_s
for b in map(int, sys.argv[1:]):
    batch = window.stack([problems[i % len(problems)] for i in range(b)])
    x = 0.01 * jax.random.normal(jax.random.PRNGKey(0), (b, spec.num_params))
    grad_s, grad_compile = timed(lambda x, p: window.batched_loss_and_grad(spec, x, p, cfg.contact, cfg.weights), (x, batch))
    one = lambda x, p: diffphy.window_loss(x, p.data, p.body, cfg.contact, cfg.weights, layout=spec.layout, spf=spec.steps_per_frame, num_keyframes=spec.keyframes)[0]
    fwd = lambda x, p: jax.vmap(one)(x, p)
    fwd_s, fwd_compile = timed(fwd, (x, batch))
    out[f"batch{b}"] = {"loss_and_grad_s": grad_s, "per_problem_s": grad_s / b, "compile_s": grad_compile,
                        "forward_s": fwd_s, "forward_compile_s": fwd_compile}
print("RESULT" + json.dumps(out))
'''

# Runs in a child process: the demo reconstruction; prints its metrics.
DEMO = r'''
import json, sys, time, dataclasses
from motionrecon import reconstruct, ReconstructionConfig
from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
changes = json.loads(sys.argv[1])
cfg = dataclasses.replace(ReconstructionConfig(), **changes)
t = time.perf_counter()
obs = load_deepmimic(clip_path("walk"), duration=4.0)
rec = reconstruct(obs, cfg)
m = rec.metrics
keep = ("mpjpe_g_mm", "mpjpe_mm", "pa_mpjpe_mm", "foot_skate_pct", "foot_skate_stance_pct", "tv", "penetration_mm",
        "pelvis_height_error_max_mm", "join_position_jump_m", "join_velocity_jump_mps", "n_evals", "problem_evals",
        "batch_bucket", "wall_s", "compile_s", "ready_s", "fallback_windows")
print("RESULT" + json.dumps({k: m[k] for k in keep if k in m} | {"duration_s": obs.duration}))
'''


def child(code: str, args: list[str], *, one_core: bool = True, cache: str | None = None,
          cwd: Path = ROOT) -> tuple[dict, float]:
    """Runs `code` in a fresh interpreter (on one core unless told), returns (its RESULT json, process wall s)."""
    env = dict(os.environ)
    if cache is not None:
        env["MOTIONRECON_CACHE"] = cache
    prefix = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); " if one_core else ""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", prefix + code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT"):]), wall


def section_evaluation(one_core: bool = True) -> dict:
    result, _ = child(EVALUATION, ["1", "8"], one_core=one_core, cache=tempfile.mkdtemp(prefix="mr-speed-cache-"))
    result["batch8_speedup_per_problem"] = result["batch1"]["per_problem_s"] / result["batch8"]["per_problem_s"]
    result["backward_over_forward_batch1"] = result["batch1"]["loss_and_grad_s"] / result["batch1"]["forward_s"]
    return result


def section_baseline(rev: str) -> dict:
    """Loss + gradient of the demo's first window with the code at `rev` (its reconstruct.WindowProblem API)."""
    tree = Path(tempfile.mkdtemp(prefix="mr-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True, capture_output=True)
    code = r'''
import json, time
import numpy as np
from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
import importlib
R = importlib.import_module("motionrecon.reconstruct")  # the package re-exports the function under this name
cfg = R.ReconstructionConfig()
obs = load_deepmimic(clip_path("walk"), duration=4.0)
F, ov, K, spf = R._frames_per_window(cfg, obs.fps, obs.num_frames)
body, qkin = R.kinematic_reference(obs, cfg, spf)
t = time.perf_counter(); problem = R.WindowProblem(body, obs.skeleton.num_joints, F, K, spf, cfg); compile_s = time.perf_counter() - t
data = R.window_data(obs, qkin, R._initial_state(body, qkin[0], qkin[1], 1 / obs.fps), 0, F)
f = problem.fun_and_grad(data)
x = np.zeros(K * body.layout.num_controls); f(x)
ts = []
for _ in range(7):
    t = time.perf_counter(); f(x); ts.append(time.perf_counter() - t)
print("RESULT" + json.dumps({"loss_and_grad_s": min(ts), "compile_s": compile_s, "steps_per_frame": spf}))
'''
    try:
        env_path = f"import sys; sys.path.insert(0, {str(tree)!r}); "
        result, _ = child(env_path + code, [], cache=tempfile.mkdtemp(prefix="mr-speed-cache-"), cwd=tree)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return {"revision": rev, **result}


def section_demo() -> dict:
    cache = tempfile.mkdtemp(prefix="mr-speed-cache-")
    out = {}
    for name, changes in (("window_at_a_time", {}), ("shooting", {"shooting": True})):
        runs = {}
        for phase in ("cold", "warm"):
            result, wall = child(DEMO, [json.dumps(changes)], cache=cache)
            result["process_wall_s"] = wall
            result["compute_per_motion_second_s"] = result["wall_s"] / result["duration_s"]
            runs[phase] = result
        out[name] = runs
    return out


def section_video(video: Path) -> dict:
    if not video.is_file():
        return {"skipped": f"{video} not found"}
    cache = tempfile.mkdtemp(prefix="mr-speed-cache-")
    folder = Path(tempfile.mkdtemp(prefix="mr-speed-video-"))
    runs = {}
    for phase in ("cold", "warm"):
        env = dict(os.environ, MOTIONRECON_CACHE=cache)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "motionrecon.cli", str(video), "--out", str(folder),
                               "--no-progress", "--force"], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"video run failed:\n{proc.stderr[-4000:]}")
        m = json.loads((folder / video.stem / "metrics.json").read_text())
        seconds = (m["frames"] - 1) / m["fps"]
        runs[phase] = {"process_wall_s": wall, "wall_s": m["wall_s"], "ready_s": m["ready_s"],
                       "compile_s": m["compile_s"], "detection_s": m.get("detection_s"),
                       "video_seconds": seconds, "compute_per_video_second_s": m["wall_s"] / seconds,
                       **{k: m[k] for k in ("mpjpe_2d_px", "raw_mpjpe_2d_px", "foot_skate_pct", "raw_foot_skate_pct",
                                            "tv", "raw_tv", "n_evals", "fallback_windows") if k in m},
                       "tv_over_raw_tv": m["tv"] / m["raw_tv"]}
    return runs


def check_targets(results: dict) -> dict:
    ev = results.get("evaluation", {})
    demo = results.get("demo", {}).get("window_at_a_time", {})
    video = results.get("video", {})
    measured = {
        "evaluation_batch8_per_problem_s": ev.get("batch8", {}).get("per_problem_s"),
        "evaluation_single_s": ev.get("batch1", {}).get("loss_and_grad_s"),
        "demo_compute_per_motion_second_s": demo.get("warm", {}).get("compute_per_motion_second_s"),
        "demo_mpjpe_g_mm": demo.get("warm", {}).get("mpjpe_g_mm"),
        "cold_start_to_first_step_s": demo.get("cold", {}).get("ready_s"),
        "warm_start_to_first_step_s": demo.get("warm", {}).get("ready_s"),
        "video_compute_per_video_second_s": video.get("warm", {}).get("compute_per_video_second_s"),
        "video_cold_end_to_end_s": video.get("cold", {}).get("process_wall_s"),
        "video_mpjpe_2d_px": video.get("warm", {}).get("mpjpe_2d_px"),
        "video_foot_skate_pct": video.get("warm", {}).get("foot_skate_pct"),
        "video_tv_over_raw_tv": video.get("warm", {}).get("tv_over_raw_tv"),
    }
    out = {}
    for key, (op, limit) in TARGETS.items():
        value = measured.get(key)
        out[key] = {"target": f"{op} {limit}", "measured": value,
                    "met": None if value is None else (value <= limit if op == "<=" else value >= limit)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", nargs="+", default=["evaluation", "threads", "demo", "video"],
                   choices=["evaluation", "threads", "demo", "video"])
    p.add_argument("--baseline", default=None, metavar="REV", help="also time the evaluation at this git revision")
    p.add_argument("--video", type=Path, default=DRIBBLE)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speed.json")
    args = p.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "sections": {}}
    for name in args.sections:
        load = os.getloadavg()[0]
        t = time.perf_counter()
        if name == "evaluation":
            value = section_evaluation()
        elif name == "threads":
            value = {"all_cores": section_evaluation(one_core=False)}
            one = results.get("evaluation") or section_evaluation()
            value["one_core_over_all_cores_batch1"] = one["batch1"]["loss_and_grad_s"] / \
                value["all_cores"]["batch1"]["loss_and_grad_s"]
        elif name == "demo":
            value = section_demo()
        else:
            value = section_video(args.video)
        results[name] = value
        results["sections"][name] = {"seconds": round(time.perf_counter() - t, 1), "load_before": load,
                                     "load_after": os.getloadavg()[0]}
        print(f"{name}: {json.dumps(value)[:600]}", flush=True)
        write_json(args.out, results)  # after every section: a failure later keeps what was measured
    if args.baseline:
        results["baseline"] = section_baseline(args.baseline)
        if "evaluation" in results:
            results["baseline"]["speedup_batch1"] = results["baseline"]["loss_and_grad_s"] / \
                results["evaluation"]["batch1"]["loss_and_grad_s"]
            results["baseline"]["speedup_batch8_per_problem"] = results["baseline"]["loss_and_grad_s"] / \
                results["evaluation"]["batch8"]["per_problem_s"]
        print(f"baseline: {results['baseline']}", flush=True)
    results["targets"] = check_targets(results)
    write_json(args.out, results)
    print(json.dumps(results["targets"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
