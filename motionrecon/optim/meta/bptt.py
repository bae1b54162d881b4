"""Meta-training by backpropagation through short unrolls (issue 19, part 2), with a curriculum on the unroll
length; resumable, in the pattern of `train.py`.

    train_bptt(BPTTConfig(...), out_dir)   # resumes from out_dir/checkpoint.npz when present

Each meta-step draws `batch` problems of one size (the sizes in turn) from the task, unrolls the learned
optimizer `unroll` steps from fresh states under `lax.scan`, and differentiates the mean task meta-loss
(for the prior: mean over steps of log10 (f_t - f*) / (f_0 - f*), clipped) with respect to the
meta-parameters; optax Adam with global-norm clipping. The unroll length steps through `curriculum` as
training proceeds (equal shares of max_steps). Writes config.json, checkpoint.npz (every
`checkpoint_minutes` and at the end), metrics.jsonl, metrics.png and weights.npz (the last meta-parameters)
into out_dir, and best_weights.npz: the meta-parameters at the lowest validation meta-loss so far (the
validation curve is not monotone: a longer unroll of the curriculum can undo what a shorter one learned,
so the last weights are not always the best; early stopping on the validation set).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from motionrecon.fileio import write_json
from motionrecon.optim.learned import build_optimizer, save_weights, unroll
from motionrecon.optim.meta import tasks
from motionrecon.optim.meta.train import _load_checkpoint, _save_checkpoint, plot_metrics


@dataclasses.dataclass
class BPTTConfig:
    """What to train on what (optimizer, task and their options), the meta-batch, the curriculum of unroll
    lengths, Adam's rate and global-norm clip, the run's length, and validation (eval_problems per size,
    eval_steps inner steps, fixed keys)."""

    optimizer: str = "pop"
    optimizer_options: dict = dataclasses.field(default_factory=dict)
    task: str = "prior"
    task_options: dict = dataclasses.field(default_factory=dict)
    batch: int = 16
    curriculum: tuple = (10, 20, 40)
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    max_steps: int = 3000
    max_minutes: float = 15.0
    checkpoint_minutes: float = 2.0
    log_every: int = 20
    eval_every: int = 200
    eval_problems: int = 32
    eval_steps: int = 50
    seed: int = 0


RUN_LENGTH = ("max_steps", "max_minutes", "checkpoint_minutes", "log_every", "eval_every")  # may change on resume


def unroll_length(config: BPTTConfig, step: int) -> int:
    """The curriculum's unroll length at meta-step `step`."""
    stage = min(step * len(config.curriculum) // max(config.max_steps, 1), len(config.curriculum) - 1)
    return int(config.curriculum[stage])


def batch_meta_loss(optimizer, task, theta, key, dim: int, batch: int, steps: int):
    """Mean task meta-loss of `steps`-step unrolls on `batch` fresh problems of size `dim`."""

    def one(k):
        problem, x0 = task.sample(k, dim)
        _, losses = unroll(optimizer, theta, lambda x: task.loss(problem, x), optimizer.init(theta, x0), steps)
        return task.meta_loss(problem, losses)

    return jnp.mean(jax.vmap(one)(jax.random.split(key, batch)))


def train_bptt(config: BPTTConfig, out_dir, *, resume: bool = True, log=print) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path, ckpt_path, metrics_path = out_dir / "config.json", out_dir / "checkpoint.npz", out_dir / "metrics.jsonl"
    config_dict = json.loads(json.dumps(dataclasses.asdict(config)))
    optimizer = build_optimizer(config.optimizer, **config.optimizer_options)
    task = tasks.get_task(config.task, **config.task_options)
    tx = optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(config.learning_rate))
    theta = optimizer.init_meta_params(jax.random.PRNGKey(config.seed))
    opt_state = tx.init(theta)
    step, key, elapsed_before = 0, jax.random.PRNGKey(config.seed + 1), 0.0
    resuming = resume and ckpt_path.exists()
    if resuming:
        saved = json.loads(config_path.read_text()) if config_path.exists() else None
        if saved is not None and any(saved.get(k) != v for k, v in config_dict.items() if k not in RUN_LENGTH):
            raise ValueError(f"{out_dir}: checkpoint was made with another configuration; use a new folder")
        theta, opt_state, step, key, elapsed_before = _load_checkpoint(ckpt_path, theta, opt_state)
        log(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained before)")
    else:
        metrics_path.unlink(missing_ok=True)
    write_json(config_path, config_dict)

    @jax.jit
    def validate(theta):
        return jnp.stack([batch_meta_loss(optimizer, task, theta, jax.random.PRNGKey(1234 + d), d,
                                          config.eval_problems, config.eval_steps) for d in task.dims]).mean()

    @functools.partial(jax.jit, static_argnums=(3, 4))
    def meta_step(theta, opt_state, key, dim, steps):
        loss, grad = jax.value_and_grad(lambda th: batch_meta_loss(optimizer, task, th, key, dim, config.batch,
                                                                   steps))(theta)
        grad = jax.tree_util.tree_map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
        updates, opt_state = tx.update(grad, opt_state, theta)
        return optax.apply_updates(theta, updates), opt_state, loss

    start = last_ckpt = time.time()

    def elapsed():
        return elapsed_before + time.time() - start

    def checkpoint():
        _save_checkpoint(ckpt_path, theta, opt_state, step, key, elapsed())
        save_weights(out_dir / "weights.npz", optimizer, theta)
        plot_metrics(metrics_path, out_dir / "metrics.png")

    window = []
    with open(metrics_path, "a") as metrics_file:
        def write(row):
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

        best_path = out_dir / "best_weights.npz"
        best = {"step": None, "val_meta_loss": np.inf}
        if resuming and best_path.exists():  # the best so far, from the metrics written before
            rows = [json.loads(line) for line in metrics_path.read_text().splitlines()] if metrics_path.exists() else []
            vals = [r for r in rows if "val_meta_loss" in r and r.get("best")]
            if vals:
                best = {"step": vals[-1]["step"], "val_meta_loss": vals[-1]["val_meta_loss"]}

        def validated(row):
            """Adds the validation meta-loss to `row`; keeps the weights where it is the lowest so far."""
            value = float(validate(theta))
            row["val_meta_loss"] = value
            if value < best["val_meta_loss"]:
                best.update(step=step, val_meta_loss=value)
                save_weights(best_path, optimizer, theta)
                row["best"] = True
            return row

        if step == 0:
            write(validated({"step": 0, "wall_s": 0.0}))
        while step < config.max_steps and time.time() - start < 60.0 * config.max_minutes:
            dim = task.dims[step % len(task.dims)]
            key, k = jax.random.split(key)
            theta, opt_state, loss = meta_step(theta, opt_state, k, dim, unroll_length(config, step))
            step += 1
            window.append(float(loss))
            row = {}
            if step % config.log_every == 0:
                row = {"meta_loss": float(np.mean(window)), "unroll": unroll_length(config, step - 1)}
                window.clear()
            if row or step % config.eval_every == 0:
                row = {"step": step, "wall_s": round(elapsed(), 1), **row}
                write(validated(row) if step % config.eval_every == 0 else row)
            if time.time() - last_ckpt > 60.0 * config.checkpoint_minutes:
                checkpoint()
                last_ckpt = time.time()
        last = validated({"step": step, "wall_s": round(elapsed(), 1)})
        write(last)
        final = last["val_meta_loss"]
        checkpoint()
    return {"steps": step, "wall_s": elapsed(), "final_val_meta_loss": final,
            "best_step": best["step"], "best_val_meta_loss": best["val_meta_loss"]}
