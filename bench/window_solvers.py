"""Solvers on the windows the reconstruction really solves; JSON out.

    python bench/window_solvers.py [--seconds 2] [--clips NAME ...] [--solvers lbfgs bfgs optimus ...]
        [--config FILE.json] [--cache FILE.pkl] [--out bench/results/window_solvers.json]

Each clip (default: the real BVH clips of ../shared/data/mocap and pybullet's walk, run, jump, kick, roll,
backflip) is reconstructed over its first `--seconds` with the default settings (and `--config` over them),
and every window problem the reconstruction hands its solver is kept as it was handed (`window.solve`
recorded): the window's data, its starting controls, budget and loss weights. First solves and slide
retries both count; a first solve is marked "first" (a retry sees the step out of the handed-over state:
`WindowData.handover` 1). Then every solver of `--solvers` solves every kept
window again, from the same start and with the same budget, in batches of the windows that share a
compiled program (shape, loss weights, budget).

So the windows are the ones a user's run meets (their initial states are those the default solver's
earlier windows handed over), not synthetic ones; `bench/optimus_vs_bfgs.py` keeps the meta-training
task's 1 s windows. Reported per solver: each window's best loss, the evaluations it needs to reach
L-BFGS's final loss (`optimus_vs_bfgs.issue19_target`: issue 19's first target), and the window's
MPJPE-G (mean distance of the simulated landmarks to the observed joints at the best point, mm); these
need "lbfgs" among the solvers. The JSON is written again after each solver.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_SOLVERS = ("lbfgs", "bfgs", "optimus", "optimus-nofallback", "optimus_lbfgs", "adam")
PYBULLET_CLIPS = ("pybullet_walk", "pybullet_run", "pybullet_jump", "pybullet_kick", "pybullet_roll",
                  "pybullet_backflip")


def window_mpjpe_g_mm(markers: np.ndarray, data) -> float:
    """Mean distance (mm) of simulated landmarks markers [F, L, 3] to the window's observed joints where
    their confidence is positive (np.nan where none is)."""
    observed = np.asarray(data.observed)
    sim = np.asarray(markers)[:, np.asarray(data.landmarks)]
    seen = np.asarray(data.confidence) > 0
    if not seen.any():
        return float("nan")
    return 1000 * float(np.linalg.norm(sim - observed, axis=-1)[seen].mean())


def capture(obs, cfg) -> list[dict]:
    """Reconstructs obs with cfg; every window problem handed to `window.solve`:
    [{spec, problem, x0 [K*U], budget, params, weights, first, trace (the reconstruction's solve's losses)}]."""
    from motionrecon import window
    from motionrecon.reconstruct import reconstruct

    kept, original = [], window.solve

    def recording(spec, solver, problems, x0, budget, params, weights, **kw):
        solved = original(spec, solver, problems, x0, budget, params, weights, **kw)
        for i in range(int(np.shape(x0)[0])):
            kept.append({"spec": spec, "problem": window.take(problems, i), "x0": np.asarray(x0[i]),
                         "budget": int(budget), "params": params, "weights": weights,
                         "first": float(np.asarray(problems.data.handover)[i]) == 0.0,
                         "trace": [float(v) for v in solved.results[i].trace]})
        return solved

    window.solve = recording
    try:
        reconstruct(obs, cfg)
    finally:
        window.solve = original
    return kept


def captured(names: list[str], seconds: float, cfg, cache: str | None = None) -> tuple[list, list, list]:
    """(clip names, per window {window, clip, first, budget, num_params}, the kept windows as `capture` keeps
    them) of the corpus clips `names` reconstructed over their first `seconds` with `cfg`; read from the pickle
    `cache` where it exists (the capturing runs are skipped), else written there when given."""
    import mocap_corpus

    if cache and Path(cache).exists():
        return pickle.loads(Path(cache).read_bytes())
    corpus = mocap_corpus.corpus()
    kept, windows = [], []
    for clip in names:
        mine = capture(mocap_corpus.load(corpus[clip], seconds), cfg)
        print(f"{clip}: {len(mine)} windows kept ({sum(w['first'] for w in mine)} first solves)", flush=True)
        windows += [{"window": f"{clip}#{k}", "clip": clip, "first": w["first"], "budget": w["budget"],
                     "num_params": w["spec"].num_params} for k, w in enumerate(mine)]
        kept += mine
    if cache:
        import jax

        host = jax.tree_util.tree_map(np.asarray, [w["problem"] for w in kept])
        kept = [{**w, "problem": p} for w, p in zip(kept, host)]
        Path(cache).write_bytes(pickle.dumps((names, windows, kept), protocol=5))
    return names, windows, kept


def solve_all(kept: list[dict], name: str, **options) -> list[dict]:
    """Every kept window solved by solver `name` (batched; options as `batched_solver`'s), grouped by what a
    program shares; per window {trace, mpjpe_g_mm, seconds (the group's solve time over its windows)}."""
    from motionrecon import window
    from motionrecon.optim import batched_solver

    out: list[dict | None] = [None] * len(kept)
    groups: dict = {}
    for i, w in enumerate(kept):
        groups.setdefault((w["spec"], w["weights"], w["params"], w["budget"]), []).append(i)
    for (spec, weights, params, budget), idx in groups.items():
        solver = batched_solver(name, budget, **options)
        problems = window.stack([kept[i]["problem"] for i in idx])
        x0 = np.stack([kept[i]["x0"] for i in idx])
        solved = window.solve(spec, solver, problems, x0, budget, params, weights)
        for j, i in enumerate(idx):
            markers = solved.trajectory.markers[j]
            out[i] = {"trace": [float(v) for v in solved.results[j].trace],
                      "mpjpe_g_mm": window_mpjpe_g_mm(markers, kept[i]["problem"].data),
                      "seconds": (solved.solve_s + solved.compile_s) / len(idx)}
    return out


def _result(runs: list[dict], windows: list[dict], solvers: list[str], optimus_vs_bfgs) -> tuple[dict, dict, dict]:
    """(summary per solver, issue 19's first target per solver against L-BFGS, the JSON's measured part)."""
    budget = max(w["budget"] for w in windows)
    summary = optimus_vs_bfgs.summarize(runs, budget, reference="lbfgs") if "lbfgs" in solvers else {}
    targets = {s: optimus_vs_bfgs.issue19_target(runs, s, "lbfgs") for s in solvers if s != "lbfgs" and summary}
    result = {"solvers": solvers, "windows": windows,
              "summary": {s: {k: v for k, v in d.items() if not k.startswith("curve")} for s, d in summary.items()},
              "issue19_target_vs_lbfgs": targets, "runs": runs}
    return summary, targets, result


def main(argv: list[str] | None = None) -> int:
    import mocap_corpus
    import optimus_vs_bfgs

    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="first seconds of each clip")
    ap.add_argument("--clips", nargs="+", default=None,
                    help="clip names or prefixes (default: the real BVH clips and " + ", ".join(PYBULLET_CLIPS) + ")")
    ap.add_argument("--solvers", nargs="+", default=list(DEFAULT_SOLVERS))
    ap.add_argument("--config", default=None, help="JSON settings over the defaults (the capturing runs')")
    ap.add_argument("--optimus-weights", default=None, metavar="NPZ",
                    help="Optimus's weights for the solvers optimus and optimus-nofallback when they solve the kept "
                         "windows again (default: the shipped ones; the capturing runs use the defaults)")
    ap.add_argument("--cache", default=None,
                    help="pickle of the kept windows: read when it exists (the capturing runs are skipped), else "
                         "written (keep it outside the repository: it holds the clips' observations)")
    ap.add_argument("--out", default=str(root / "bench" / "results" / "window_solvers.json"))
    args = ap.parse_args(argv)

    from motionrecon.fileio import write_json
    from motionrecon.reconstruct import ReconstructionConfig

    corpus = mocap_corpus.corpus()
    names = [n for n in corpus if not n.startswith("pybullet_")] + list(PYBULLET_CLIPS)
    if args.clips:
        names = [n for n in corpus if any(n.startswith(c) for c in args.clips)]
    cfg = ReconstructionConfig()
    if args.config:
        cfg = cfg.with_overrides(json.loads(Path(args.config).read_text()), args.config)
    t0 = time.perf_counter()
    names, windows, kept = captured(names, args.seconds, cfg, args.cache)
    if args.clips:  # a cache holds every clip it was made with
        chosen = [i for i, w in enumerate(windows) if any(w["clip"].startswith(c) for c in args.clips)]
        windows, kept = [windows[i] for i in chosen], [kept[i] for i in chosen]
        names = [n for n in names if any(n.startswith(c) for c in args.clips)]
    command = "python bench/window_solvers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    runs = []
    for done, name in enumerate(args.solvers, 1):
        mine = args.optimus_weights and name in ("optimus", "optimus-nofallback")
        options = {"weights": args.optimus_weights} if mine else {}
        solved = solve_all(kept, name, **options)
        runs += [{"solver": name, "window": w["window"], **r} for w, r in zip(windows, solved)]
        print(f"{name}: mean best loss {np.mean([min(r['trace']) for r in solved]):.4g}, "
              f"MPJPE-G {np.nanmean([r['mpjpe_g_mm'] for r in solved]):.1f} mm", flush=True)
        # written after every solver, so a run that stops keeps what it measured
        summary, targets, result = _result(runs, windows, args.solvers[:done], optimus_vs_bfgs)
        write_json(Path(args.out), {"command": command, "seconds": args.seconds, "clips": names,
                                    "config": args.config, "optimus_weights": args.optimus_weights, **result,
                                    "total_s": time.perf_counter() - t0})
    for s in summary:
        d = summary[s]
        line = f"{s:16s} best loss {d['final_loss_mean']:.4g}  MPJPE-G {d['mpjpe_g_mm_mean']:.1f} mm"
        if s in targets:
            t = targets[s]
            line += f"  reaches L-BFGS {t['reached']}, median evals {t['median_evals_over_reference']}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
