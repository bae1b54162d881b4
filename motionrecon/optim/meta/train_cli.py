"""`motionrecon train-optimus`: meta-train Optimus (or the Adafactor MLP) with PES; resumable.

Example (what produced weights/optimus_classic.npz is in its JSON card):

    motionrecon train-optimus --task classic --dims 2 4 8 16 32 --batch 10 --minutes 30 --out runs/optimus_classic \
        --export weights/optimus_classic.npz
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
    parser.add_argument("--dims", nargs="+", type=int, default=None, help="problem sizes to train on (task default)")
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder (checkpoint, metrics.jsonl, metrics.png, weights.npz)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--export", default=None, help="also copy the final weights to this .npz path")


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
    task_options = {}
    if args.dims:
        task_options["dims"] = list(args.dims)
    if args.functions:
        task_options["functions"] = list(args.functions)
    for name in ("batch", "unroll", "truncation"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name}", "must be at least 1")
    if args.sigma <= 0 or args.lr <= 0:
        raise InputError("--sigma/--lr", "must be positive")
    return TrainConfig(optimizer=args.optimizer, optimizer_options=optimizer_options, task=args.task,
                       task_options=task_options, num_tasks=args.batch, unroll_length=args.unroll,
                       truncation=args.truncation, sigma=args.sigma, learning_rate=args.lr, clip=args.clip,
                       imitation_steps=args.imitation_steps, max_steps=args.steps, max_minutes=args.minutes,
                       checkpoint_minutes=args.checkpoint_minutes, eval_every=args.eval_every, seed=args.seed)


def run(args) -> int:
    from motionrecon.optim.meta import train as train_mod

    try:
        config = config_from_args(args)
        # fail early on bad names (task, functions, optimizer options)
        from motionrecon.optim.learned import build_optimizer
        from motionrecon.optim.meta.tasks import get_task

        build_optimizer(config.optimizer, **config.optimizer_options)
        get_task(config.task, **config.task_options)
    except (ValueError, KeyError) as e:
        raise InputError("train-optimus", str(e).strip("'\"")) from None
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

    return {
        "kind": optimizer.kind,
        "architecture": optimizer.options(),
        "meta_parameters": int(sum(np.size(a) for a in jax.tree_util.tree_leaves(theta))),
        "training": {
            "method": "PES (antithetic, persistent perturbation sums) after an imitation warm start of the step head",
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
