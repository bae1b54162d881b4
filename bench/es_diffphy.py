"""Full-episode antithetic ES on real DiffPhy windows for a few numbers of POP or Optimus (issue 19, part 3).

    python bench/es_diffphy.py [--optimizer pop|optimus] [--steps 20] [--minutes 12] [--pairs 4] [--problems 4] \
        [--episode 40] [--out bench/results/es_diffphy_pop.json]

The meta-parameters searched are the decays and the bias of the step head: POP's 8 numbers (its other 18 400
stay as trained on the prior; its first step is 0.01 rad, as in bench/optimus_vs_bfgs.py), or Optimus's 9
(`weights/optimus_diffphy.npz`; the other 456 000 stay). Each
ES estimate runs `pairs` antithetic pairs, each member a whole episode (`episode` evaluations, no
truncation) on the same `problems` windows of the "diffphy" task's training bank (common random
numbers), objective mean log10(f_T / f_0), rank fitness shaping, optax Adam. Validation: the same objective
on the held-out windows with a fixed key, before and after. One CPU core (see bench/train_pop.py).
The result file is rewritten after every step ("finished": false until the end); run the same command again
after an interruption and it carries on from the last step written (Adam's moments start afresh).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizer", choices=("pop", "optimus"), default="pop")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--episode", type=int, default=40)
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--pop-step", type=float, default=0.01, help="POP's first step (rad)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "es_diffphy_pop.json"))
    ap.add_argument("--weights-out", default=None,
                    help="the weights with the searched numbers as trained (default: --out with .npz); compare "
                         "them with bench/optimus_vs_bfgs.py --pop/--optimus before shipping them")
    ap.add_argument("--from-json", default=None, metavar="RESULT",
                    help="train nothing: write --weights-out from an earlier run's result file (its v_after)")
    args = ap.parse_args()

    from motionrecon import jaxsetup

    jaxsetup.configure_xla()
    jaxsetup.use_one_core()
    jaxsetup.enable_compilation_cache()
    import jax
    import jax.numpy as jnp

    from motionrecon.fileio import write_json
    from motionrecon.optim.learned import load_weights, save_weights
    from motionrecon.optim.meta import es
    from motionrecon.optim.meta.diffphy_task import DiffPhyTask

    t0 = time.time()
    if args.optimizer == "pop":
        learned, theta = load_weights(ROOT / "weights" / "pop_prior.npz", kind="pop")
        learned = learned.with_step_scale(args.pop_step)
        prefixes = ["decays", "net::log_step_head::b"]
    else:
        learned, theta = load_weights(ROOT / "weights" / "optimus_diffphy.npz", kind="optimus")
        prefixes = ["decays", "net::step_head::b"]
    v0, to_meta = es.subspace(theta, prefixes)
    weights_out = args.weights_out or str(Path(args.out).with_suffix(".npz"))
    if args.from_json:
        v = jnp.asarray(json.loads(Path(args.from_json).read_text())["v_after"], v0.dtype)
        save_weights(weights_out, learned, to_meta(v))
        print("wrote", weights_out)
        return 0
    task = DiffPhyTask(windows_per_clip=4)
    val_task = task.validation_task()
    dim = task.dims[0]
    objective = es.episode_log_ratio(learned, to_meta, task, dim, args.problems, args.episode)
    validate = jax.jit(es.episode_log_ratio(learned, to_meta, val_task, dim, 2 * val_task.num_windows, args.episode))
    val_key = jax.random.PRNGKey(99)
    before = float(validate(v0, val_key))
    print(f"validation log10(f_T/f_0) before {before:.4f} ({time.time() - t0:.0f} s)", flush=True)
    config = es.ESConfig(pairs=args.pairs, sigma=args.sigma, shaping="rank")
    same = ("optimizer", "pairs", "problems", "episode", "sigma", "lr", "pop_step")
    done, v_start = [], v0
    if Path(args.out).is_file():  # resume an unfinished run of the same configuration
        earlier = json.loads(Path(args.out).read_text())
        if not earlier.get("finished", True) and all(earlier["config"].get(k) == vars(args)[k] for k in same):
            done, v_start = earlier["steps"], jnp.asarray(earlier["v_after"], v0.dtype)
            print(f"resuming {args.out} after step {len(done)}", flush=True)

    def result(v, rows, after=None):
        return {"command": " ".join(["python", "bench/es_diffphy.py"] + sys.argv[1:]),
                "searched": prefixes, "dims": int(v0.shape[0]), "config": vars(args),
                "train_windows": task.num_windows, "validation_windows": val_task.num_windows,
                "validation_log10_fT_over_f0": {"before": before, "after": after},
                "v_before": [float(x) for x in v0], "v_after": [float(x) for x in v], "steps": done + rows,
                "finished": after is not None, "wall_s": round(time.time() - t0, 1), "weights": weights_out}

    v, rows = es.es_train(objective, v_start, config, args.steps, args.lr, jax.random.PRNGKey(0), args.minutes,
                          log=lambda m: print(m, flush=True), first_step=len(done) + 1,
                          on_step=lambda v, rows: write_json(args.out, result(v, rows)))
    after = float(validate(v, val_key))
    print(f"validation log10(f_T/f_0) after {after:.4f}", flush=True)
    save_weights(weights_out, learned, to_meta(v))
    write_json(args.out, result(v, rows, after))
    print("wrote", args.out, "and", weights_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
