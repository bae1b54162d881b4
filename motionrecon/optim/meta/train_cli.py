"""`motionrecon train-optimus`: meta-train Optimus (or the Adafactor MLP) with PES; resumable.

Examples (the exact commands that produced the shipped weights are in their JSON cards):

    motionrecon train-optimus --task classic --dims 2 4 8 16 32 --batch 10 --minutes 30 --out runs/optimus_classic \
        --export weights/optimus_classic.npz
    motionrecon train-optimus --task diffphy --clips walk run --windows 8 --batch 2 --minutes 40 \
        --init-weights weights/optimus_classic.npz --out runs/optimus_diffphy --export weights/optimus_diffphy.npz

Re-running a command with the same --out resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from motionrecon.errors import InputError
from motionrecon.fileio import atomic_path, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="classic", help="meta-training task from the registry (default: classic)")
    parser.add_argument("--optimizer", default="optimus", choices=["optimus", "adafactor_mlp"])
    parser.add_argument("--variant", default=None, help="Optimus ablation: full | no_state | no_structure")
    parser.add_argument("--hidden", type=int, default=None, help="Adafactor MLP hidden size (default 4)")
    parser.add_argument("--layers", type=int, default=None, help="Adafactor MLP hidden layers (default 2)")
    parser.add_argument("--functions", nargs="+", default=None, help="classic task: training functions (default all 15)")
    parser.add_argument("--dims", nargs="+", type=int, default=None, help="classic task: problem sizes to train on")
    parser.add_argument("--clips", nargs="+", default=None,
                        help="diffphy task: DeepMimic clips of one frame rate (default: walk run)")
    parser.add_argument("--windows", type=int, default=None, help="diffphy task: training windows per clip (default 8)")
    parser.add_argument("--heldout-windows", type=int, default=None,
                        help="diffphy task: held-out validation windows per clip (default 2)")
    parser.add_argument("--noise", type=float, default=None, help="diffphy task: observation noise std, m (default 0.01)")
    parser.add_argument("--scale-range", type=float, default=None,
                        help="diffphy task: body size factor range, +- (default 0.1)")
    parser.add_argument("--window", type=float, default=None,
                        help="diffphy task: window length, s (default: the reconstruction's)")
    parser.add_argument("--step-scale", type=float, default=None,
                        help="multiplier of every step: Optimus's lambda_a (default 0.1), the Adafactor MLP's "
                             "step_mult (default 0.001); with --init-weights, default: the weights' own")
    parser.add_argument("--init-weights", default=None,
                        help="start from these meta-parameters (fine-tuning; skips the imitation warm start)")
    parser.add_argument("--train-only", nargs="+", default=None, metavar="PREFIX",
                        help="perturb (train) only the meta-parameters whose name starts with one of these, as "
                             "named in weight files without 'theta::' (e.g. net::step_head net::rank_one decays); "
                             "default: all")
    parser.add_argument("--batch", type=int, default=20, help="tasks per PES step (antithetic pairs); paper: 20")
    parser.add_argument("--unroll", type=int, default=50, help="inner steps before a problem resets; paper: 50")
    parser.add_argument("--truncation", type=int, default=5, help="inner steps per PES step; paper: 5")
    parser.add_argument("--sigma", type=float, default=0.01, help="PES perturbation std")
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate on the meta-gradient; paper: 5e-4")
    parser.add_argument("--clip", type=float, default=3.0, help="element-wise meta-gradient clip; paper: 3")
    parser.add_argument("--imitation-steps", type=int, default=300, help="warm-start regression steps (0: none)")
    parser.add_argument("--steps", type=int, default=100000, help="stop after this many meta-steps in total")
    parser.add_argument("--minutes", type=float, default=30.0, help="stop after this much wall time in this run")
    parser.add_argument("--checkpoint-minutes", type=float, default=3.0)
    parser.add_argument("--eval-every", type=int, default=200, help="validation meta-loss every N steps")
    parser.add_argument("--log-every", type=int, default=10, help="PES meta-loss row in metrics.jsonl every N steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder (checkpoint, metrics.jsonl, metrics.png, weights.npz)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--export", default=None, help="also copy the final weights to this .npz path")


_FLAGS = {"windows_per_clip": "--windows", "heldout_windows_per_clip": "--heldout-windows", "noise_m": "--noise",
          "scale_range": "--scale-range"}


def config_from_args(args):
    from motionrecon.optim.meta.train import TrainConfig

    optimizer_options = {}
    if args.optimizer == "optimus" and args.variant:
        optimizer_options["variant"] = args.variant
    if args.optimizer == "adafactor_mlp":
        if args.hidden:
            optimizer_options["hidden_size"] = args.hidden
        if args.layers:
            optimizer_options["hidden_layers"] = args.layers
    if args.step_scale is not None:
        if not args.step_scale > 0:
            raise InputError("--step-scale", f"must be positive, got {args.step_scale}")
        from motionrecon.optim.learned import build_optimizer

        optimizer_options[build_optimizer(args.optimizer).step_option] = args.step_scale
    task_options = {}
    classic_only = {"dims": args.dims, "functions": args.functions}
    diffphy_only = {"clips": args.clips, "windows_per_clip": args.windows,
                    "heldout_windows_per_clip": args.heldout_windows, "noise_m": args.noise,
                    "scale_range": args.scale_range, "window": args.window}
    chosen = classic_only if args.task == "classic" else diffphy_only if args.task == "diffphy" else {}
    for name, value in {**classic_only, **diffphy_only}.items():
        if value is not None and name not in chosen:
            raise InputError(_FLAGS.get(name, f"--{name}"), f"is not an option of the {args.task!r} task")
        if value is not None:
            task_options[name] = list(value) if isinstance(value, (list, tuple)) else value
    for name in ("batch", "unroll", "truncation"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name}", "must be at least 1")
    if args.sigma <= 0 or args.lr <= 0:
        raise InputError("--sigma/--lr", "must be positive")
    return TrainConfig(optimizer=args.optimizer, optimizer_options=optimizer_options, task=args.task,
                       task_options=task_options, num_tasks=args.batch, unroll_length=args.unroll,
                       truncation=args.truncation, sigma=args.sigma, learning_rate=args.lr, clip=args.clip,
                       imitation_steps=args.imitation_steps, max_steps=args.steps, max_minutes=args.minutes,
                       checkpoint_minutes=args.checkpoint_minutes, eval_every=args.eval_every,
                       log_every=args.log_every, seed=args.seed, init_weights=args.init_weights,
                       trainable=list(args.train_only) if args.train_only else None)


def run(args) -> int:
    from motionrecon.optim.meta import train as train_mod

    try:
        config = config_from_args(args)
        # fail early on bad names (task, functions, optimizer options)
        from motionrecon.optim.learned import build_optimizer
        from motionrecon.optim.meta.tasks import get_task

        optimizer = build_optimizer(config.optimizer, **config.optimizer_options)
        get_task(config.task, **config.task_options)
    except (ValueError, KeyError) as e:
        raise InputError("train-optimus", str(e).strip("'\"")) from None
    if config.trainable is not None:
        import jax

        try:
            train_mod.trainable_indices(optimizer.init_meta_params(jax.random.PRNGKey(0)), config.trainable)
        except ValueError as e:
            raise InputError("--train-only", str(e)) from None
    out = Path(args.out)
    t0 = time.time()
    try:
        summary = train_mod.train(config, out, resume=not args.fresh,
                                  log=lambda msg: print(msg, flush=True))
    except ValueError as e:
        raise InputError(str(out), str(e)) from None
    summary.update(command=" ".join(["motionrecon", "train-optimus"] + sys.argv[2:]) if sys.argv[1:2] == ["train-optimus"]
                   else None, this_run_wall_s=time.time() - t0, hardware=platform.processor() or platform.machine())
    write_json(out / "summary.json", summary)
    if args.export:
        dest = Path(args.export)
        with atomic_path(dest) as tmp:
            shutil.copyfile(out / "weights.npz", tmp)
        write_json(dest.with_suffix(".json"), weight_card(out, config, summary))
        print(f"weights written to {dest} (card: {dest.with_suffix('.json')})")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def weight_card(run_dir: Path, config, summary: dict) -> dict:
    """The JSON card shipped beside a weight file: architecture, training set-up and outcome."""
    import dataclasses

    from motionrecon.optim.learned import load_weights

    optimizer, theta = load_weights(run_dir / "weights.npz")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    val = [(r["step"], r["val_meta_loss"]) for r in rows if "val_meta_loss" in r]
    import jax
    import numpy as np

    method = "PES (antithetic, persistent perturbation sums) after an imitation warm start of the step head"
    if config.init_weights:
        method = f"PES (antithetic, persistent perturbation sums), fine-tuning {Path(config.init_weights).name}"
    card = {
        "kind": optimizer.kind,
        "architecture": optimizer.options(),
        "meta_parameters": int(sum(np.size(a) for a in jax.tree_util.tree_leaves(theta))),
        "training": {
            "method": method,
            "config": dataclasses.asdict(config),
            "meta_steps": summary["steps"],
            "wall_time_s_total": round(summary["wall_s"], 1),
            "hardware": f"{_cpu_name()}, {os.cpu_count()} cores shared with other jobs, no accelerator",
            "validation_meta_loss_first_last": [val[0], val[-1]] if val else None,
            "final_validation_meta_loss": summary["final_val_meta_loss"],
            "meta_loss_definition": "mean over inner steps of log10(clip((f - f*)/(f0 - f*), 1e-8, 1e2))",
            "command": summary.get("command"),
        },
    }
    from motionrecon.optim.meta.tasks import get_task

    task = get_task(config.task, **config.task_options)
    if hasattr(task, "describe"):
        card["training"]["task"] = task.describe()
        if hasattr(task, "validation_task"):
            card["training"]["validation_task"] = task.validation_task().describe()
    return card
