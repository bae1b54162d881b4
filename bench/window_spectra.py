"""Hessian spectra of the windows the reconstruction really solves (issue 19, part 2); JSON out.

    python bench/window_spectra.py [--seconds 1] [--clips NAME ...] [--max-windows 16] [--chunk 16]
        [--cache FILE.pkl] [--out bench/results/window_spectra.json] [--plot-only]

The windows are captured as `bench/window_solvers.py` captures them (a default reconstruction of each clip's
first `--seconds`, every first solve kept as it was handed to the solver: its data, start and budget; slide
and fall retries are left out), at most `--max-windows`, spread over the clips. For each window the exact
Hessian of the DiffPhy window loss (float32, forward-over-reverse: one Hessian-vector product per unknown, in
vmapped chunks of `--chunk`) at two points: where the solver starts (`start`) and where L-BFGS ends after the
window's budget (`lbfgs_end`). Per Hessian (`spectrum_facts`): the eigenvalues (ascending), the largest, the
share of negative ones and their size, the condition number of the positive part, the spread of the diagonal
and how much of the matrix lies off it. Per window also the losses at both points and how far L-BFGS moved
the controls (norm, and the largest single change in rad).

What the numbers are for: `optim/meta/prior.py` draws its quadratic training problems from a spectrum; before
this measurement the spectrum was a guess (log-uniform over up to four decades).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_CLIPS = ("bandai_dataset-1_walk_normal", "bandai_dataset-2_run", "bandai_dataset-1_punch", "cmu_01_01",
                 "figure8", "pybullet_walk", "pybullet_kick", "pybullet_roll")
# Eigenvalues whose size is below this share of the largest count as flat (float32 Hessians resolve ~1e-6).
FLAT = 1e-6
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def spectrum_facts(hessian: np.ndarray) -> dict:
    """Facts of a symmetric(ised) Hessian H [N, N]: eigenvalues (ascending), largest, the share of negative
    eigenvalues (of those above FLAT x largest in size) and the most negative relative to the largest, the
    condition of the positive part (largest / smallest positive above FLAT), the quantiles QUANTILES of
    log10(positive eigenvalue / largest), the diagonal's spread (log10 of its 95th over 5th percentile of the
    positive entries) and the off-diagonal share of the Frobenius norm."""
    h = 0.5 * (hessian + hessian.T)
    lam = np.linalg.eigvalsh(h)
    top = float(np.max(np.abs(lam)))
    big = lam[np.abs(lam) > FLAT * top]
    pos = big[big > 0]
    diag = np.diag(h)
    dpos = diag[diag > FLAT * top]
    off = h - np.diag(diag)
    return {
        "n": int(len(lam)), "largest": top,
        "negative_share": float(np.mean(big < 0)) if len(big) else 0.0,
        "most_negative_over_largest": float(min(0.0, lam[0]) / top),
        "flat_share": float(1 - len(big) / len(lam)),
        "positive_condition": float(pos.max() / pos.min()) if len(pos) else float("nan"),
        "log10_positive_over_largest_quantiles": dict(zip(map(str, QUANTILES),
                                                          np.quantile(np.log10(pos / top), QUANTILES).tolist())),
        "diagonal_spread_decades": float(np.log10(np.percentile(dpos, 95) / np.percentile(dpos, 5)))
        if len(dpos) > 1 else float("nan"),
        "off_diagonal_share": float(np.linalg.norm(off) / np.linalg.norm(h)),
        "eigenvalues": lam.tolist(),
    }


@functools.lru_cache(maxsize=None)
def _hessian_vector_products(spec, params, weights):
    """hvp(x [N], V [c, N], problem) -> [c, N]: the window loss's Hessian times each row of V, compiled once per
    window shape and settings (not once per window)."""
    import jax

    from motionrecon import window

    def one(x, v, problem):
        grad = lambda x: window.loss_and_grad(spec, x, problem, params, weights)[1]
        return jax.jvp(grad, (x,), (v,))[1]

    return jax.jit(jax.vmap(one, in_axes=(None, 0, None)))


def hessian(spec, problem, params, weights, x: np.ndarray, chunk: int) -> np.ndarray:
    """[N, N] Hessian of the window loss at x [N] (columns in vmapped chunks of Hessian-vector products)."""
    import jax
    import jax.numpy as jnp

    hvp = _hessian_vector_products(spec, params, weights)
    problem = jax.tree_util.tree_map(jnp.asarray, problem)
    n = len(x)
    eye = np.eye(n, dtype=np.float32)
    cols = []
    for a in range(0, n, chunk):
        v = eye[a:a + chunk]
        if len(v) < chunk:  # one compiled shape
            v = np.concatenate([v, np.zeros((chunk - len(v), n), np.float32)])
        cols.append(np.asarray(hvp(jnp.asarray(x, jnp.float32), jnp.asarray(v), problem))[:min(chunk, n - a)])
    return np.concatenate(cols).astype(np.float64)


def pick(kept: list[dict], most: int) -> list[int]:
    """Indices of at most `most` first solves, spread over the clips in turn."""
    by_clip: dict = {}
    for i, w in enumerate(kept):
        if w["first"]:
            by_clip.setdefault(w["clip"], []).append(i)
    out, k = [], 0
    while len(out) < most and any(k < len(v) for v in by_clip.values()):
        out += [v[k] for v in by_clip.values() if k < len(v)][:most - len(out)]
        k += 1
    return sorted(out)


def summary(rows: list[dict]) -> dict:
    """Medians and ranges over the windows, per point."""
    out = {}
    for point in ("start", "lbfgs_end"):
        facts = [r[point] for r in rows if point in r]
        if not facts:
            continue
        keys = ("positive_condition", "negative_share", "most_negative_over_largest", "flat_share",
                "diagonal_spread_decades", "off_diagonal_share", "largest")
        out[point] = {k: {"median": float(np.median([f[k] for f in facts])),
                          "min": float(np.min([f[k] for f in facts])), "max": float(np.max([f[k] for f in facts]))}
                      for k in keys}
        out[point]["log10_positive_over_largest_quantiles_median"] = {
            q: float(np.median([f["log10_positive_over_largest_quantiles"][q] for f in facts]))
            for q in map(str, QUANTILES)}
    return out


def plot(result: dict, path: Path) -> None:
    """PNG: each window's eigenvalues, |lam| / largest on a log scale against their rank share, negative ones
    apart, at the start and at L-BFGS's end; the prior's first guess (log-uniform over 4 decades) for scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, point, title in zip(axes, ("start", "lbfgs_end"), ("where the solver starts", "where L-BFGS ends")):
        for w in result["windows"]:
            lam = np.asarray(w[point]["eigenvalues"])[::-1]
            top = np.abs(lam).max()
            share = np.arange(len(lam)) / (len(lam) - 1)
            pos = lam > 0
            ax.semilogy(share[pos], lam[pos] / top, color="tab:blue", alpha=0.35, lw=1)
            ax.semilogy(share[~pos], -lam[~pos] / top, ".", color="tab:red", alpha=0.35, ms=2)
        ax.semilogy([0, 1], [1, 1e-4], "k--", lw=1.5, label="the prior's first guess (condition 1e4)")
        ax.set_title(f"{title}: {len(result['windows'])} windows")
        ax.set_xlabel("eigenvalue rank / N (largest first)")
        ax.set_ylim(1e-7, 1.5)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("|eigenvalue| / largest (blue: positive, red: negative)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import mocap_corpus
    import window_solvers

    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="first seconds of each clip")
    ap.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS), help="clip names or prefixes")
    ap.add_argument("--max-windows", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=16, help="Hessian-vector products per compiled call")
    ap.add_argument("--cache", default=None, help="pickle of the captured windows (read when it exists)")
    ap.add_argument("--out", default=str(root / "bench" / "results" / "window_spectra.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG beside --out from its JSON")
    args = ap.parse_args(argv)
    if args.plot_only:
        plot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
        return 0

    from motionrecon import window
    from motionrecon.fileio import write_json
    from motionrecon.optim import batched_solver
    from motionrecon.reconstruct import ReconstructionConfig

    t0 = time.perf_counter()
    names = [n for c in args.clips for n in mocap_corpus.corpus() if n.startswith(c)]
    _, facts, kept = window_solvers.captured(names, args.seconds, ReconstructionConfig(), args.cache)
    kept = [{**w, "clip": f["clip"]} for w, f in zip(kept, facts)]
    chosen = pick(kept, args.max_windows)
    rows = []
    command = "python bench/window_spectra.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for done, i in enumerate(chosen, 1):
        w = kept[i]
        spec, problem, params, weights = w["spec"], w["problem"], w["params"], w["weights"]
        solved = window.solve(spec, batched_solver("lbfgs", w["budget"]), window.stack([problem]), w["x0"][None],
                              w["budget"], params, weights)
        end = np.asarray(solved.results[0].x, np.float32)
        row = {"window": f"{w['clip']}#{i}", "clip": w["clip"], "num_params": spec.num_params,
               "budget": w["budget"], "loss_start": w["trace"][0] if w["trace"] else None,
               "loss_lbfgs_end": float(solved.results[0].fun),
               "distance_to_lbfgs_end": float(np.linalg.norm(end - np.asarray(w["x0"], np.float32))),
               "largest_control_change_rad": float(np.max(np.abs(end - np.asarray(w["x0"], np.float32))))}
        for point, x in (("start", w["x0"]), ("lbfgs_end", end)):
            t = time.perf_counter()
            row[point] = spectrum_facts(hessian(spec, problem, params, weights, np.asarray(x, np.float32),
                                                args.chunk))
            row[point]["seconds"] = time.perf_counter() - t
        rows.append(row)
        s, e = row["start"], row["lbfgs_end"]
        print(f"[{done}/{len(chosen)}] {row['window']} N={row['num_params']}: condition {s['positive_condition']:.3g}"
              f" -> {e['positive_condition']:.3g}, negative {s['negative_share']:.2f} -> {e['negative_share']:.2f}, "
              f"diagonal spread {s['diagonal_spread_decades']:.1f} dec, off-diagonal {s['off_diagonal_share']:.2f}"
              f" ({s['seconds']:.0f} s)", flush=True)
        # written after every window, so a run that stops keeps what it measured
        write_json(Path(args.out), {"command": command, "seconds": args.seconds, "flat": FLAT,
                                    "summary": summary(rows), "windows": rows,
                                    "total_s": time.perf_counter() - t0})
    if rows:
        plot({"windows": rows}, Path(args.out).with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
