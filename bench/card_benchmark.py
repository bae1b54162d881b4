"""Add the benchmark summary measured with the shipped weights to their JSON cards.

    python bench/card_benchmark.py bench/results/classic bench/results/classic_large
    python bench/card_benchmark.py bench/results/classic_hard_pop --cards pop optimus_lbfgs

Reads each folder's results.json (written by `motionrecon bench-optim`) and
writes a "benchmark" section into the cards of `--cards` (default: weights/optimus_classic.json and
weights/adafactor_mlp_classic.json; also pop, optimus_lbfgs): the grids, per-solver wins and performance
profile values, Optimus's relative iterations (Figure 4 numbers), and the
paper's hard cases (Rosenbrock, Rastrigin, Levy, Ackley at d >= 20) side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motionrecon.fileio import write_json  # noqa: E402

HARD = ("rosenbrock", "rastrigin", "levy", "ackley")
CARDS = {"optimus": ROOT / "weights" / "optimus_classic.json",
         "adafactor_mlp": ROOT / "weights" / "adafactor_mlp_classic.json",
         "pop": ROOT / "weights" / "pop_prior.json",
         "optimus_lbfgs": ROOT / "weights" / "optimus_lbfgs_classic.json"}
DEFAULT_CARDS = ("optimus", "adafactor_mlp")


def hard_cases(cells, solver):
    by = {}
    for c in cells:
        if c["function"] in HARD and c["dim"] >= 20:
            by.setdefault((c["function"], c["dim"]), {})[c["solver"]] = c["mean_final"]
    rows, beats_both = [], 0
    for (f, d), m in sorted(by.items()):
        mine = m.get(solver)
        others = {s: m.get(s) for s in ("bfgs", "adam")}
        ok = mine is not None and all(v is None or mine < v for v in others.values())
        beats_both += ok
        rows.append({"function": f, "dim": d, solver: mine, **others, "beats_bfgs_and_adam": ok})
    return {"cells": rows, "beats_bfgs_and_adam": f"{beats_both}/{len(rows)}"}


def verdict(solver, runs) -> str:
    """One honest sentence per headline target, computed from the numbers above."""
    won = sum(int(r["hard_cases"]["beats_bfgs_and_adam"].split("/")[0]) for r in runs)
    total = sum(int(r["hard_cases"]["beats_bfgs_and_adam"].split("/")[1]) for r in runs)
    text = [f"Lower mean final objective than both BFGS and Adam on {won}/{total} of the paper's hard cells "
            "(Rosenbrock, Rastrigin, Levy, Ackley at d >= 20)."]
    wins = [f"{r['wins_per_solver'].get(solver, 0)}/{r['cells']} cells in {r['output']}" for r in runs]
    leaders = [max(r["wins_per_solver"], key=r["wins_per_solver"].get) for r in runs]
    text.append(f"Best solver (ties included) on {', '.join(wins)}; most wins: {', '.join(leaders)}.")
    if solver == "optimus":
        fr = [r["relative_iterations_vs"]["adam"]["fraction_5x_fewer"] for r in runs if "adam" in r["relative_iterations_vs"]]
        text.append("Needs >= 5x fewer iterations than Adam to reach Adam's 100-iteration value on "
                    + ", ".join(f"{100 * f:.0f}%" for f in fr) + " of the cells (target: half): target not met.")
    return " ".join(text)


def main(argv) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--cards", nargs="+", default=list(DEFAULT_CARDS), choices=list(CARDS))
    args = ap.parse_args(argv)
    folders = args.folders
    runs = []
    for folder in folders:
        doc = json.loads((Path(folder) / "results.json").read_text())
        runs.append((Path(folder).resolve(), doc))
    for solver in args.cards:
        card_path = CARDS[solver]
        card = json.loads(card_path.read_text())
        section = {"weights_measured": card_path.with_suffix(".npz").name, "runs": []}
        for folder, doc in runs:
            s = doc["summary"]
            entry = {"output": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder),
                     "grid": {k: doc["grid"][k] for k in ("functions", "dims", "solvers", "inits", "budget", "lr_grid")},
                     "cells": s["cells"], "wins_per_solver": s["wins"],
                     "performance_profile_rho": s["performance_profile"].get(solver),
                     "hard_cases": hard_cases(doc["cells"], solver)}
            if solver == "optimus":
                entry["relative_iterations_vs"] = s["optimus_relative_iterations"]
            section["runs"].append(entry)
        section["verdict"] = verdict(solver, section["runs"])
        card["benchmark"] = section
        write_json(card_path, card)
        print(f"updated {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
