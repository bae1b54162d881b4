"""Windows per second against batch size on whatever device JAX finds (a GPU when one is lent), in under 10 minutes.

    python bench/gpu_throughput.py [--sizes 1 16 256 1024 4096] [--budget-s 480] [--solver-chunk]
                                   [--out bench/results/gpu_throughput.json]

The problem is the demo's window (1 s of pybullet's walk at 30 fps, 308 control values), repeated with
different start frames and bodies scaled by up to +-10 % so that the batch is not one problem copied. For
each batch size: the compile time of the batched loss + gradient, then the best of a few timed calls, as
windows (loss + gradient evaluations) per second. With --solver-chunk also one chunk of the batched L-BFGS
loop (`window.solve`'s program, 10 evaluations) at the largest size that fitted. Sizes are tried in order
until the time budget is spent or the device runs out of memory (reported, not fatal). Prepared for the
day an accelerator is lent: everything it needs is in the repository; run it as one command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import motionrecon  # noqa: E402,F401  (XLA flags before JAX starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

from motionrecon.fileio import write_json  # noqa: E402


def build_problems(count: int = 16):
    """`count` distinct demo windows (start frames and body sizes varied) and their spec."""
    from motionrecon import window
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
    from motionrecon.reconstruct import ReconstructionConfig, kinematic_reference

    cfg = ReconstructionConfig()
    obs = load_deepmimic(clip_path("walk"), duration=4.0)
    F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                         cfg.sim_rate)
    problems, spec = [], None
    rng = np.random.default_rng(0)
    for i in range(count):
        scaled = dataclasses.replace(obs, joints3d=obs.joints3d * (1.0 + 0.1 * rng.uniform(-1, 1)))
        body, qkin = kinematic_reference(scaled, cfg, spf)
        spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
        s = int(rng.integers(0, obs.num_frames - F - 1))
        state = window.initial_state(body, qkin[s], qkin[s + 1], 1 / obs.fps)
        problems.append(window.WindowProblem(window.window_data(scaled, qkin, state, s, F), body.arrays))
    return cfg, spec, problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 256, 1024, 4096])
    p.add_argument("--budget-s", type=float, default=480.0, help="stop trying larger sizes after this many seconds")
    p.add_argument("--solver-chunk", action="store_true", help="also time one chunk of the batched L-BFGS loop")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_throughput.json")
    args = p.parse_args()
    from motionrecon import window
    from motionrecon.optim import batched

    t0 = time.perf_counter()
    device = jax.devices()[0]
    result = {"backend": jax.default_backend(), "device": str(device), "device_kind": device.device_kind,
              "jax": jax.__version__, "sizes": {}}
    cfg, spec, problems = build_problems()
    result["window"] = {"frames": spec.frames, "keyframes": spec.keyframes, "steps_per_frame": spec.steps_per_frame,
                        "params": spec.num_params}
    largest_ok = None
    for size in args.sizes:
        if time.perf_counter() - t0 > args.budget_s:
            result["sizes"][str(size)] = {"skipped": "time budget spent"}
            continue
        try:
            batch = window.stack([problems[i % len(problems)] for i in range(size)])
            x = 0.01 * jax.random.normal(jax.random.PRNGKey(size), (size, spec.num_params))
            fn = jax.jit(lambda x, b: window.batched_loss_and_grad(spec, x, b, cfg.contact, cfg.weights))
            t = time.perf_counter()
            compiled = fn.lower(x, batch).compile()
            compile_s = time.perf_counter() - t
            jax.block_until_ready(compiled(x, batch))
            times = []
            for _ in range(3):
                t = time.perf_counter()
                loss, grad = compiled(x, batch)
                jax.block_until_ready(grad)
                times.append(time.perf_counter() - t)
            best = min(times)
            result["sizes"][str(size)] = {"compile_s": compile_s, "call_s": best, "windows_per_s": size / best,
                                          "finite": bool(np.all(np.isfinite(np.asarray(loss))))}
            largest_ok = size
        except Exception as e:  # out of memory on the device, most likely: report and stop growing
            result["sizes"][str(size)] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            break
        print(size, json.dumps(result["sizes"][str(size)]), flush=True)
    if args.solver_chunk and largest_ok and time.perf_counter() - t0 < args.budget_s + 60:
        batch = window.stack([problems[i % len(problems)] for i in range(largest_ok)])
        x0 = np.zeros((largest_ok, spec.num_params), np.float32)
        t = time.perf_counter()
        out = window.solve(spec, batched.LBFGS(history=20), batch, x0, window.CHUNK, cfg.contact, cfg.weights,
                           trace_len=window.CHUNK)
        result["solver_chunk"] = {"size": largest_ok, "evaluations": window.CHUNK, "compile_s": out.compile_s,
                                  "solve_s": out.solve_s,
                                  "windows_evaluations_per_s": largest_ok * window.CHUNK / max(out.solve_s, 1e-9),
                                  "seconds_total": time.perf_counter() - t}
    result["total_s"] = time.perf_counter() - t0
    write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
