"""Imitation training (with DAgger rounds) of the teacher-initialised Optimus (`optimus_lbfgs`) on the
synthetic prior; exports its weights and card when it beats its untrained start on validation.

    python bench/train_optimus_lbfgs.py --out /tmp/imit [--problems 16] [--rounds 3] [--steps 400] \
        [--export weights/optimus_lbfgs_classic.npz]

One CPU core (`jaxsetup.use_one_core`, as `bench/train_pop.py` says why). Not resumable (a run takes minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from train_pop import HARDWARE, SPECTRUM_WORDS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--problems", type=int, default=16, help="problems per size and round")
    ap.add_argument("--rounds", type=int, default=3, help="DAgger rounds after the teacher's labels")
    ap.add_argument("--steps", type=int, default=400, help="regression steps per round")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--spectrum", choices=tuple(SPECTRUM_WORDS), default="log_uniform",
                    help="the prior's quadratic spectra (optim/meta/prior.py; train_pop.py --spectrum)")
    ap.add_argument("--rotate", type=float, default=0.5,
                    help="share of the prior's quadratics that are rotated (dense); the windows' Hessians are dense")
    ap.add_argument("--export", default=None)
    args = ap.parse_args()

    from motionrecon import jaxsetup

    jaxsetup.configure_xla()
    jaxsetup.use_one_core()
    from motionrecon.optim.learned import export_weights
    from motionrecon.optim.meta.imitate import ImitationConfig, train_imitation

    config = ImitationConfig(problems=args.problems, dagger_rounds=args.rounds, steps_per_round=args.steps,
                             learning_rate=args.lr, task_options={"spectrum": args.spectrum, "rotate": args.rotate})
    t0 = time.time()
    summary = train_imitation(config, args.out, log=lambda m: print(m, flush=True))
    minutes = (time.time() - t0) / 60.0
    best = summary["rounds"][-1]["val_meta_loss"]
    print(f"done in {minutes:.1f} min: teacher {summary['val_meta_loss_teacher']:.4f}, trained {best:.4f}")
    if args.export and best < summary["val_meta_loss_teacher"]:
        export_weights(Path(args.out) / "weights.npz", args.export, "optimus_lbfgs", {"training": {
            "method": "imitation: start as the teacher (zero-initialised step and rank-one heads: L-BFGS, history 10, "
                      "unit steps, no line search), then Adam regression of the step onto labels: round 0 the "
                      "accepted steps of SciPy's L-BFGS-B (with its line search) on synthetic-prior problems, "
                      "rounds 1.. the student's own trajectories relabelled with the teacher's unit step (DAgger)",
            "data": f"optim/meta/prior.py (spectrum {args.spectrum!r}, rotate {args.rotate}), sizes 8, 16, 32",
            "config": summary["config"],
            "rounds": summary["rounds"],
            "validation_meta_loss_teacher": summary["val_meta_loss_teacher"],
            "validation": "16 fixed prior problems per size, 50 steps; mean log10 clip((f_t - f*) / (f_0 - f*))",
            "cpu_minutes": round(minutes, 1),
            "hardware": HARDWARE,
            "command": "python bench/train_optimus_lbfgs.py " + " ".join(sys.argv[1:])}})
        print("wrote", args.export, "and its card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
