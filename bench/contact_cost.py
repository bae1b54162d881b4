"""Issue-17 part-5 benchmark: what contact beyond the feet costs per loss + gradient evaluation.

    python bench/contact_cost.py [--batches 1 8] [--repeats 9] [--out bench/results/contact_cost.json]

The demo's first 1 s window (pybullet's walk, 30 fps, default settings) is evaluated (loss and gradient, one
compiled call per batch size) with the default body (`body.template.CONTACT_PARTS`: contact spheres on the
feet, hands, knees, elbows, shoulders, pelvis, back and head) and with a body whose only spheres are the feet's
(`FEET_ONLY`), same shape, same controls. Both run in this one process on one CPU core (set before JAX starts,
as the `motionrecon` command does), their repeats interleaved so that the machine's load falls on both alike;
the minimum over repeats is kept and the ratio is the result. Writes JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def problems(parts: tuple[str, ...], batch: int):
    """(spec, batch of `batch` window problems, controls [batch, K*U]) of the demo walk with contact spheres on
    `parts`; the windows are the clip's, repeated to fill the batch."""
    import jax

    from motionrecon import window
    from motionrecon.body import Gains, build_body
    from motionrecon.body.fit import inverse_kinematics, measure_shape
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
    from motionrecon.reconstruct import ReconstructionConfig

    cfg = ReconstructionConfig()
    obs = load_deepmimic(clip_path("walk"), duration=4.0)
    F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                         cfg.sim_rate)
    body = build_body(measure_shape(obs), Gains().scaled(cfg.gain_scale), 1.0 / (obs.fps * spf), parts)
    qkin = inverse_kinematics(body.model, obs)
    spec = window.WindowSpec(body.layout, obs.skeleton.num_joints, F, K, spf)
    starts = window.window_starts(obs.num_frames, F, ov)
    chosen = [starts[i % len(starts)] for i in range(batch)]
    stacked = window.stack([window.WindowProblem(
        window.window_data(obs, qkin, window.initial_state(body, qkin[s], qkin[s + 1], 1 / obs.fps), s, F),
        body.arrays) for s in chosen])
    x = 0.01 * jax.random.normal(jax.random.PRNGKey(0), (batch, spec.num_params))
    return cfg, spec, stacked, x


def compiled(parts: tuple[str, ...], batch: int):
    """(a no-argument call of the compiled batched loss + gradient, compile seconds, number of spheres)."""
    import jax

    from motionrecon import window

    cfg, spec, stacked, x = problems(parts, batch)
    fn = lambda x, p: window.batched_loss_and_grad(spec, x, p, cfg.contact, cfg.weights)
    t = time.perf_counter()
    call = jax.jit(fn).lower(x, stacked).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(call(x, stacked))
    return (lambda: jax.block_until_ready(call(x, stacked))), compile_s, len(spec.layout.contact_geoms)


def measure(batch: int, repeats: int) -> dict:
    """Loss + gradient seconds (minimum over interleaved repeats) of both bodies at one batch size, and the ratio."""
    from motionrecon.body.template import CONTACT_PARTS, FEET_ONLY

    bodies = {"all_parts": CONTACT_PARTS, "feet_only": FEET_ONLY}
    calls = {name: compiled(parts, batch) for name, parts in bodies.items()}
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(repeats):
        for name, (call, _, _) in calls.items():
            t = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t)
    out = {name: {"spheres": calls[name][2], "loss_and_grad_s": min(ts), "per_window_s": min(ts) / batch,
                  "compile_s": calls[name][1], "all_repeats_s": ts} for name, ts in times.items()}
    out["ratio_all_over_feet"] = out["all_parts"]["loss_and_grad_s"] / out["feet_only"]["loss_and_grad_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "contact_cost.json"))
    args = ap.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, before JAX starts
    from motionrecon.body.template import CONTACT_PARTS
    from motionrecon.fileio import write_json

    result = {"contact_parts": list(CONTACT_PARTS), "window": "demo walk, first 1 s window, default settings",
              **{f"batch{b}": measure(b, args.repeats) for b in args.batches},
              "machine": {"platform": platform.platform(), "load_average": os.getloadavg()}}
    for b in args.batches:
        r = result[f"batch{b}"]
        print(f"batch {b}: {r['all_parts']['spheres']} spheres {r['all_parts']['loss_and_grad_s']:.4f} s, "
              f"{r['feet_only']['spheres']} spheres {r['feet_only']['loss_and_grad_s']:.4f} s, "
              f"ratio {r['ratio_all_over_feet']:.2f}")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
