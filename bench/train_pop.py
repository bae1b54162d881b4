"""Meta-train POP on the synthetic prior by backpropagation through unrolls, export its weights and card.

    python bench/train_pop.py --out /tmp/pop_run [--steps 6000] [--minutes 15] [--export weights/pop_prior.npz]

Resumable: the same --out continues from its last checkpoint (`meta.bptt.train_bptt`). `--export` copies
the weights of the best validation meta-loss (best_weights.npz), not the last ones. Runs on one CPU core
(`jaxsetup.use_one_core`, as the `motionrecon` command): with XLA's CPU thread pool on this 2-core
machine the unrolled programs stalled with every thread asleep; on one core a meta-step of 16 problems
takes 0.04-0.2 s. The card (weights/pop_prior.json) records the recipe, the steps and minutes, and the
validation meta-loss; `bench/card_benchmark.py --cards pop` adds the classical benchmark to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The prior's spectra (`optim/meta/prior.SPECTRA`), as the cards describe them.
SPECTRUM_WORDS = {"log_uniform": "log-uniform spectra up to condition 1e4",
                  "windows": "the eigenvalue distribution measured on real DiffPhy windows' Hessians "
                             "(bench/results/session31/window_spectra.json) under a largest eigenvalue up to 1e4"}
HARDWARE = f"{platform.machine()}, one core of {os.cpu_count()} shared with other jobs, no accelerator"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (checkpoints, metrics)")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--dims", nargs="+", type=int, default=[8, 16, 32, 64])
    ap.add_argument("--curriculum", nargs="+", type=int, default=[10, 20, 40, 60])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--spectrum", choices=tuple(SPECTRUM_WORDS), default="log_uniform",
                    help="the prior's quadratic spectra: the first guess, or as measured on real DiffPhy windows "
                         "(optim/meta/prior.py)")
    ap.add_argument("--export", default=None, help="copy the weights here and write the card beside them")
    args = ap.parse_args()

    from motionrecon import jaxsetup

    jaxsetup.configure_xla()
    jaxsetup.use_one_core()
    from motionrecon.optim.learned import export_weights
    from motionrecon.optim.meta.bptt import BPTTConfig, train_bptt

    config = BPTTConfig(task_options={"dims": args.dims, "spectrum": args.spectrum}, batch=args.batch,
                        curriculum=tuple(args.curriculum),
                        learning_rate=args.lr, max_steps=args.steps, max_minutes=args.minutes, eval_every=500)
    t0 = time.time()
    summary = train_bptt(config, args.out, log=lambda m: print(m, flush=True))
    print(f"done in {time.time() - t0:.0f} s: {summary}")
    if args.export:
        rows = [json.loads(line) for line in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
        val = [(r["step"], r["val_meta_loss"]) for r in rows if "val_meta_loss" in r]
        export_weights(Path(args.out) / "best_weights.npz", args.export, "pop", {"training": {
            "method": "backpropagation through unrolls of the learned optimizer on fresh problems of the synthetic "
                      f"prior (optim/meta/prior.py: quadratics with {SPECTRUM_WORDS[args.spectrum]}, "
                      "half rotated; Gauss-Newton-like least squares with a tanh term; Rosenbrock, Rastrigin, "
                      "Ackley, Levy, Griewank, Styblinski-Tang with random offsets; random per-coordinate "
                      "scaling over +-1 decade), curriculum on the unroll length, Adam with global-norm clip 1",
            "meta_loss": "mean over the unroll of log10 clip((f_t - f*) / (f_0 - f*), 1e-8, 1e2), mean over 16 problems",
            "config": json.loads(json.dumps(config.__dict__)),
            "meta_steps": summary["steps"],
            "cpu_minutes": round(summary["wall_s"] / 60.0, 1),
            "hardware": HARDWARE,
            "validation_meta_loss_first_last": [val[0], val[-1]],
            "exported": f"the weights of the best validation, step {summary['best_step']} "
                        f"({summary['best_val_meta_loss']:.3f})",
            "validation": "32 fixed prior problems per size, 50 steps; the untrained POP (step 0) is Adam, lr 0.1",
            "command": "python bench/train_pop.py " + " ".join(sys.argv[1:])}})
        print("wrote", args.export, "and its card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
