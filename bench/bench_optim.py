"""Speed of the learned optimizers: one jit-compiled update, and a whole driver iteration, per problem size.

    python bench/bench_optim.py [--sizes 2 100 300 700 1000] [--repeats 20] [--out bench/results/optim_speed.json]

Run by hand (never as a timed test). Reports compile time, median and min wall
time of one `update` call (blocked until ready) with the shipped weights, and the
per-iteration time of `get_solver(name).minimize` on a cheap quadratic (driver
overhead included: float64 <-> float32 conversion, stopping rule, bookkeeping).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from motionrecon.fileio import write_json  # noqa: E402
from motionrecon.optim import get_solver  # noqa: E402
from motionrecon.optim.learned import jitted  # noqa: E402


def time_update(solver, n: int, repeats: int) -> dict:
    _, update = jitted(solver.optimizer)
    rng = np.random.default_rng(n)
    state = solver.optimizer.init(solver.meta_params, jnp.asarray(rng.normal(size=n), jnp.float32))
    grad = jnp.asarray(rng.normal(size=n), jnp.float32)
    t0 = time.perf_counter()
    state = jax.block_until_ready(update(solver.meta_params, state, grad, jnp.float32(1.0)))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state = jax.block_until_ready(update(solver.meta_params, state, grad, jnp.float32(1.0)))
        times.append(time.perf_counter() - t0)
    scales = np.linspace(0.5, 2.0, n)
    x0 = rng.uniform(-1, 1, n)
    def fun_and_grad(x):
        return 0.5 * float(np.sum(scales * x * x)), scales * x

    solver.minimize(fun_and_grad, x0, max_evals=2)  # compiles init for this N
    t0 = time.perf_counter()
    res = solver.minimize(fun_and_grad, x0, max_evals=repeats)
    per_iter = (time.perf_counter() - t0) / max(res.n_evals, 1)
    return {"n": n, "compile_s": round(compile_s, 3), "update_ms_median": round(1e3 * float(np.median(times)), 3),
            "update_ms_min": round(1e3 * float(np.min(times)), 3), "driver_ms_per_iteration": round(1e3 * per_iter, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2, 100, 300, 700, 1000])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--solvers", nargs="+", default=["optimus", "adafactor_mlp"])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "optim_speed.json"))
    args = parser.parse_args()
    report = {"machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "load_average_1min": os.getloadavg()[0], "jax": jax.__version__,
                          "backend": jax.default_backend()},
              "repeats": args.repeats, "results": {}}
    for name in args.solvers:
        solver = get_solver(name, stop_rule=None, fallback=False)
        report["results"][name] = []
        for n in args.sizes:
            row = time_update(solver, n, args.repeats)
            report["results"][name].append(row)
            print(name, row, flush=True)
    report["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
