"""When Optimus should hand over to L-BFGS: `motionrecon mocap` on pybullet's clips with several fallback rules.

    python bench/fallback_rule.py [--rules 10:0.05 3:0.2] [--clips walk:4 dance_a:3 dance_b:3 kick punch]
        [--out bench/results/fallback_rule.json]

A rule W:R is `FallbackRule(window=W, rel_tol=R)`: Optimus hands over when its
best loss fell by less than R (relative) over the last W evaluations. Every
(clip, rule) runs `motionrecon mocap CLIP [--duration S] --solver optimus` in
its own process on one CPU core (the command's default), and once with
`--solver lbfgs` for reference; per run: MPJPE-G, the windows' final losses and
where each window fell back. One core makes the runs repeatable to the last
digit. Writes JSON; run by hand, never as a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one_run(argv: list[str]) -> int:
    """In the child process: install the rule given as W:R (or "-" for the default) as the default, run the CLI."""
    rule, *cli = argv
    if rule != "-":
        from motionrecon.optim import fallback

        window, rel_tol = rule.split(":")
        fallback.FallbackRule = dataclasses.make_dataclass(
            "FallbackRule", [("window", int, int(window)), ("rel_tol", float, float(rel_tol))],
            bases=(fallback.FallbackRule,), frozen=True)
    from motionrecon.cli import console_main

    sys.argv = ["motionrecon", *cli]
    return console_main()


def run(clip: str, duration: str | None, rule: str, solver: str, out: Path) -> dict:
    from motionrecon.datasets.deepmimic import clip_path

    path = clip_path(clip)
    cli = ["mocap", str(path), "--solver", solver, "--out", str(out), "--no-progress"]
    cli += ["--duration", duration] if duration else []
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--one-run", rule, *cli], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{clip} {rule} {solver} failed:\n{proc.stderr[-2000:]}")
    folder = next(p for p in out.iterdir() if p.is_dir())
    metrics = json.loads((folder / "metrics.json").read_text())
    windows = json.loads((folder / "run.json").read_text())["windows"]
    return {"clip": clip, "duration_s": float(duration) if duration else None, "solver": solver,
            "rule": None if solver == "lbfgs" else rule, "mpjpe_g_mm": metrics["mpjpe_g_mm"],
            "n_evals": metrics["n_evals"], "process_wall_s": round(time.perf_counter() - t, 1),
            "window_losses": [w["loss"] for w in windows],
            "fallback_at_eval": [(w.get("info") or {}).get("fallback_at_eval") for w in windows]}


def main() -> int:
    if sys.argv[1:2] == ["--one-run"]:
        return one_run(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=["10:0.05", "3:0.2"])
    ap.add_argument("--clips", nargs="+", default=["walk:4", "dance_a:3", "dance_b:3", "kick", "punch"],
                    help="CLIP[:SECONDS] (default seconds: the whole clip)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fallback_rule.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fallback_rule.") as tmp:
        for spec in args.clips:
            clip, _, duration = spec.partition(":")
            for rule, solver in [("-", "lbfgs")] + [(r, "optimus") for r in args.rules]:
                row = run(clip, duration or None, rule, solver, Path(tmp) / f"{clip}_{solver}_{rule.replace(':', '_')}")
                rows.append(row)
                print(json.dumps(row), flush=True)
    from motionrecon.fileio import write_json

    means = {}
    for key in ["lbfgs"] + args.rules:
        values = [r["mpjpe_g_mm"] for r in rows if (r["solver"] == "lbfgs" if key == "lbfgs" else r["rule"] == key)]
        means[key] = sum(values) / len(values)
    write_json(args.out, {"rules": args.rules, "clips": args.clips, "mean_mpjpe_g_mm": means, "runs": rows})
    print(json.dumps(means))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
