"""Full-episode antithetic ES on real DiffPhy windows for a few meta-parameters of POP (issue 19, part 3).

    python bench/es_diffphy.py [--steps 20] [--minutes 12] [--pairs 4] [--problems 4] [--episode 40] \
        [--out bench/results/es_diffphy_pop.json]

The meta-parameters searched are POP's decays and the bias of its log-step head (8 numbers; the other
18 400 stay as trained on the prior); POP's first step is 0.01 rad, as in bench/optimus_vs_bfgs.py. Each
ES estimate runs `pairs` antithetic pairs, each member a whole episode (`episode` evaluations, no
truncation) on the same `problems` windows of the "diffphy" task's training bank (common random
numbers), objective mean log10(f_T / f_0), rank fitness shaping, optax Adam. Validation: the same objective
on the held-out windows with a fixed key, before and after. One CPU core (see bench/train_pop.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--episode", type=int, default=40)
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--pop-step", type=float, default=0.01)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "es_diffphy_pop.json"))
    args = ap.parse_args()

    from motionrecon import jaxsetup

    jaxsetup.configure_xla()
    jaxsetup.use_one_core()
    jaxsetup.enable_compilation_cache()
    import jax

    from motionrecon.fileio import write_json
    from motionrecon.optim.learned import load_weights
    from motionrecon.optim.meta import es
    from motionrecon.optim.meta.diffphy_task import DiffPhyTask

    t0 = time.time()
    pop, theta = load_weights(ROOT / "weights" / "pop_prior.npz", kind="pop")
    pop = pop.with_step_scale(args.pop_step)
    prefixes = ["decays", "net::log_step_head::b"]
    v0, to_meta = es.subspace(theta, prefixes)
    task = DiffPhyTask(windows_per_clip=4)
    val_task = task.validation_task()
    dim = task.dims[0]
    objective = es.episode_log_ratio(pop, to_meta, task, dim, args.problems, args.episode)
    validate = jax.jit(es.episode_log_ratio(pop, to_meta, val_task, dim, 2 * val_task.num_windows, args.episode))
    val_key = jax.random.PRNGKey(99)
    before = float(validate(v0, val_key))
    print(f"validation log10(f_T/f_0) before {before:.4f} ({time.time() - t0:.0f} s)", flush=True)
    config = es.ESConfig(pairs=args.pairs, sigma=args.sigma, shaping="rank")
    v, rows = es.es_train(objective, v0, config, args.steps, args.lr, jax.random.PRNGKey(0), args.minutes,
                          log=lambda m: print(m, flush=True))
    after = float(validate(v, val_key))
    print(f"validation log10(f_T/f_0) after {after:.4f}", flush=True)
    write_json(args.out, {
        "command": " ".join(["python", "bench/es_diffphy.py"] + sys.argv[1:]),
        "searched": prefixes, "dims": int(v0.shape[0]), "config": vars(args),
        "train_windows": task.num_windows, "validation_windows": val_task.num_windows,
        "validation_log10_fT_over_f0": {"before": before, "after": after},
        "v_before": [float(x) for x in v0], "v_after": [float(x) for x in v], "steps": rows,
        "wall_s": round(time.time() - t0, 1)})
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
