"""Seconds per loss-and-gradient evaluation, and compile seconds, on one CPU core against all of them.

    python bench/cpu_threads.py [--out bench/results/cpu_threads.json]

For each mode a fresh process (with an empty compilation cache) builds the
window problem of pybullet's walk (mocap settings, 1 s window) and, when the
shared dribble video is present, of the video's first window (video settings),
compiles it, and times 10 evaluations after one warm-up. "one core" calls
`jaxsetup.use_one_core()` first, as the `motionrecon` command does; "all cores"
sets MOTIONRECON_ONE_CORE=0. "one core, cached" is a second one-core process
with the first one's cache: it loads the compiled code instead of compiling
(its compile_s is the load), as every run after the first does. See
motionrecon/jaxsetup.py for why it matters.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from motionrecon.fileio import write_json  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video" / "single_person_dribble.mp4"

CHILD = r"""
import json, os, sys, tempfile, time
from motionrecon.jaxsetup import use_one_core
core = use_one_core()
import numpy as np
from pathlib import Path
import importlib
R = importlib.import_module("motionrecon.reconstruct")
from motionrecon.datasets.deepmimic import clip_path, load_deepmimic

def measure(obs, cfg):
    F, ov, K, spf = R._frames_per_window(cfg, obs.fps, obs.num_frames)
    body, qkin = R.kinematic_reference(obs, cfg, spf)
    problem = R.WindowProblem(body, obs.skeleton.num_joints, F, K, spf, cfg)
    data = R.window_data(obs, qkin, R._initial_state(body, qkin[0], qkin[1], 1 / obs.fps), 0, F)
    f = problem.fun_and_grad(data)
    x = np.zeros(K * body.layout.num_controls)
    f(x)
    t, c = time.perf_counter(), time.process_time()
    for i in range(10):
        f(x + 1e-3 * i)
    return {"compile_s": problem.compile_s, "eval_s": (time.perf_counter() - t) / 10,
            "cpu_s_per_eval": (time.process_time() - c) / 10, "frames": F, "steps_per_frame": spf}

R.enable_compilation_cache()
out = {"core": core, "cores_used": len(os.sched_getaffinity(0))}
out["mocap_walk"] = measure(load_deepmimic(clip_path("walk"), duration=1.2), R.ReconstructionConfig())
video = Path(sys.argv[1])
if video.exists():
    from motionrecon.commands.video import video_config
    from motionrecon.keypoints import observations_from_video
    with tempfile.TemporaryDirectory() as d:
        vo = observations_from_video(video, cache_path=None, write_cache_to=Path(d) / "k.npz", focal=None,
                                     fov_deg=None, progress=False)
    out["video_dribble"] = measure(vo.observations, video_config(R.ReconstructionConfig()))
print("RESULT " + json.dumps(out))
"""


def run_mode(one_core: bool, video: Path, cache: str | None = None) -> dict:
    """One measuring process; `cache`: its compilation cache folder (default: a new, empty one)."""
    env = dict(os.environ, MOTIONRECON_CACHE=cache or tempfile.mkdtemp(prefix="mr-threads-cache-"),
               MOTIONRECON_ONE_CORE="1" if one_core else "0")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(video)], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"measurement failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu_threads.json"))
    p.add_argument("--video", default=str(VIDEO))
    args = p.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="mr-threads-cache-")
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "one_core": run_mode(True, Path(args.video), cache), "all_cores": run_mode(False, Path(args.video)),
              "one_core_cached": run_mode(True, Path(args.video), cache)}
    for name in ("mocap_walk", "video_dribble"):
        if name in result["one_core"]:
            a, b, c = result["one_core"][name], result["all_cores"][name], result["one_core_cached"][name]
            result[f"{name}_eval_speedup_one_core"] = b["eval_s"] / a["eval_s"]
            print(f"{name}: one core {a['eval_s']:.3f} s/eval (compile {a['compile_s']:.0f} s), "
                  f"all cores {b['eval_s']:.3f} s/eval (compile {b['compile_s']:.0f} s), "
                  f"one core from the cache {c['eval_s']:.3f} s/eval (load {c['compile_s']:.0f} s)")
    write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
