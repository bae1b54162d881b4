"""Would a fixed per-coordinate scaling of the window controls, measured on real windows, help the solvers?
(issue 19: what the Hessians of real windows say; `bench/window_spectra.py`); JSON out.

    python bench/window_scaling.py --cache FILE.pkl [--solvers lbfgs bfgs optimus] [--max-windows 16]
        [--out bench/results/window_scaling.json]

The windows are those of `bench/window_spectra.py`'s cache (first solves of default reconstructions, as handed
to the solver). Per window the Hessian's diagonal at the solver's start (`window_spectra.hessian`). The scaling
of window i is leave-one-out: s_i = 10^(-p/2), p the median over the other windows of log10(diag / max diag)
(entries under `--floor` of the largest, or negative, counted as that share), normalised to a median s of 1 (so that a unit step moves a median coordinate as before): the solver then works on
z = x / s, where the Hessian's diagonal is about flat (a Jacobi preconditioner that does not look at the window
it solves). Each solver solves every window in x and in z with the window's own budget, from its own start;
reported: the final losses, their ratio (scaled / plain) per window, and how consistent the diagonal's profile
is across windows (the correlation of each window's log-diagonal with the others' median).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def leave_one_out_scales(log_diagonals: np.ndarray) -> np.ndarray:
    """[W, N] per-coordinate scales s_i from log10(diag / max diag) [W, N] of W windows: for window i, 10^(-p/2)
    with p the median of the other windows' rows, normalised to a median of 1."""
    out = []
    for i in range(len(log_diagonals)):
        p = np.median(np.delete(log_diagonals, i, axis=0), axis=0)
        s = 10.0 ** (-0.5 * p)
        out.append(s / np.median(s))
    return np.asarray(out)


def solve(spec, solver_name: str, problems, x0: np.ndarray, scales: np.ndarray, budget: int, params, weights):
    """Final losses [W] and traces of solver `solver_name` on the stacked windows from x0 [W, N], working on
    z = x / scales [W, N] (all ones: the plain problem)."""
    import jax
    import jax.numpy as jnp

    from motionrecon import window
    from motionrecon.optim import batched, batched_solver

    solver = batched_solver(solver_name, budget)

    def one(z, problem, s):
        (loss, _), g = window.loss_and_grad(spec, z * s, problem, params, weights)
        return loss, g * s

    s = jnp.asarray(scales, jnp.float32)
    evaluate = lambda z: jax.vmap(one)(z, problems, s)
    z0 = jnp.asarray(x0 / scales, jnp.float32)
    carry = jax.jit(lambda z0: batched.minimize(solver, evaluate, z0, budget))(z0)
    res = batched.results(solver, carry.record, np.asarray(z0))
    return np.array([r.fun for r in res]), [r.trace for r in res]


def main(argv: list[str] | None = None) -> int:
    import window_spectra
    from window_solvers import captured

    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="bench/window_spectra.py's pickle of captured windows")
    ap.add_argument("--solvers", nargs="+", default=["lbfgs", "bfgs", "optimus"])
    ap.add_argument("--max-windows", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--floor", type=float, default=1e-3,
                    help="diagonal entries under this share of the largest (or negative: the start is non-convex) "
                         "count as this share, so that no coordinate is scaled by more than 1/sqrt(floor)")
    ap.add_argument("--diagonals", default=None, metavar="JSON",
                    help="an earlier run's JSON: its log10_diagonal_over_max, instead of computing the Hessians")
    ap.add_argument("--out", default=str(root / "bench" / "results" / "window_scaling.json"))
    args = ap.parse_args(argv)

    from motionrecon import window
    from motionrecon.fileio import write_json

    t0 = time.perf_counter()
    if not Path(args.cache).exists():
        raise SystemExit(f"{args.cache}: no such file (make it with bench/window_spectra.py --cache)")
    _, facts, kept = captured([], 0.0, None, args.cache)  # read from the cache: nothing is reconstructed
    kept = [{**w, "clip": f["clip"]} for w, f in zip(kept, facts)]
    chosen = window_spectra.pick(kept, args.max_windows)
    ws = [kept[i] for i in chosen]
    if args.diagonals:
        log_diag = np.asarray(json.loads(Path(args.diagonals).read_text())["log10_diagonal_over_max"])
    else:
        log_diag = []
        for k, w in enumerate(ws, 1):
            h = window_spectra.hessian(w["spec"], w["problem"], w["params"], w["weights"],
                                       np.asarray(w["x0"], np.float32), args.chunk)
            d = np.maximum(np.diag(h), 1e-12 * np.abs(np.diag(h)).max())
            log_diag.append(np.log10(d / d.max()))
            print(f"[{k}/{len(ws)}] diagonal of {w['clip']}", flush=True)
        log_diag = np.asarray(log_diag)  # stored as measured (floored at 1e-12 of the largest)
    floored = np.maximum(log_diag, np.log10(args.floor))
    scales = leave_one_out_scales(floored)
    consistency = [float(np.corrcoef(floored[i], np.median(np.delete(floored, i, 0), 0))[0, 1])
                   for i in range(len(ws))]
    groups: dict = {}  # windows that share a compiled program (a clip's frame rate sets its window's shape)
    for i, w in enumerate(ws):
        groups.setdefault((w["spec"], w["params"], w["weights"], w["budget"]), []).append(i)
    rows = {"windows": [f"{w['clip']}#{i}" for w, i in zip(ws, chosen)], "budgets": [w["budget"] for w in ws],
            "log10_diagonal_over_max": log_diag.tolist(), "floor": args.floor, "profile_correlation": consistency,
            "scale_spread_decades": float(np.median(np.log10(scales.max(1) / scales.min(1)))), "solvers": {}}
    command = "python bench/window_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in args.solvers:
        plain, scaled = np.zeros(len(ws)), np.zeros(len(ws))
        for (spec, params, weights, budget), idx in groups.items():
            problems = window.stack([ws[i]["problem"] for i in idx])
            x0 = np.stack([np.asarray(ws[i]["x0"], np.float64) for i in idx])
            plain[idx] = solve(spec, name, problems, x0, np.ones_like(scales[idx]), budget, params, weights)[0]
            scaled[idx] = solve(spec, name, problems, x0, scales[idx], budget, params, weights)[0]
        ratio = scaled / plain
        rows["solvers"][name] = {"plain": plain.tolist(), "scaled": scaled.tolist(), "ratio": ratio.tolist(),
                                 "geometric_mean_ratio": float(np.exp(np.mean(np.log(ratio)))),
                                 "scaled_lower": int(np.sum(scaled < plain))}
        print(f"{name}: final loss plain {np.mean(plain):.3g}, scaled {np.mean(scaled):.3g}, geometric mean ratio "
              f"{rows['solvers'][name]['geometric_mean_ratio']:.3f}, scaled lower on "
              f"{rows['solvers'][name]['scaled_lower']}/{len(ws)}", flush=True)
        write_json(Path(args.out), {"command": command, **rows, "total_s": time.perf_counter() - t0})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
