"""Outer loop of meta-training: PES meta-gradients, Adam with element-wise clipping, checkpoints, metrics.

    train(TrainConfig(...), out_dir)  # resumes from out_dir/checkpoint.npz when present

Writes into out_dir:
  config.json       the configuration (a resumed run must use the same one)
  checkpoint.npz    meta-parameters, Adam state, step, PRNG key, elapsed time (atomic, every few minutes)
  metrics.jsonl     one line per logged step: step, wall time, PES meta-loss, validation meta-loss
  metrics.png       meta-loss curves
  weights.npz       the latest meta-parameters as a weight file (`learned.load_weights`)

One persistent PES group of B tasks per training dimension; meta-steps cycle
through the groups, so `pes_step` compiles once per dimension. After a resume
the inner problems start afresh (their perturbation sums are not checkpointed).

Warm start ("imitation"): before PES, the per-parameter step head is fitted by
regression so that d equals the RMS-normalised Adam direction feature m*rsqrt(v)
(scaled by the optimizer's `imitation_scale`) and alpha = 0: the untrained
optimizer then behaves like a normalised Adam with step 0.1, and PES starts from
a working optimizer rather than a random one (cheap here; compute for PES is scarce).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from motionrecon.fileio import atomic_path, write_json, write_npz
from motionrecon.optim import features
from motionrecon.optim.learned import build_optimizer, load_weights, save_weights, unroll
from motionrecon.optim.meta import pes, tasks


@dataclasses.dataclass
class TrainConfig:
    optimizer: str = "optimus"
    optimizer_options: dict = dataclasses.field(default_factory=dict)
    task: str = "classic"
    task_options: dict = dataclasses.field(default_factory=dict)
    num_tasks: int = 20
    unroll_length: int = 50
    truncation: int = 5
    sigma: float = 0.01
    learning_rate: float = 5e-4
    clip: float = 3.0
    imitation_steps: int = 300
    max_steps: int = 1000
    max_minutes: float = 60.0
    checkpoint_minutes: float = 3.0
    log_every: int = 10
    eval_every: int = 100
    eval_problems: int = 32
    seed: int = 0
    init_weights: Optional[str] = None  # start from these meta-parameters (fine-tuning; no imitation)
    trainable: Optional[list] = None  # name prefixes of the meta-parameters PES perturbs (None: all)


def _adam(config: TrainConfig):
    return optax.chain(optax.clip(config.clip), optax.adam(config.learning_rate))


# ----------------------------------------------------------------------------------------- imitation warm start

def _adam_like_features(task, dim: int, num_problems: int, steps: int, key):
    """Features z [problems * steps, dim, F] along trajectories of a normalised-Adam step (0.1 per unit)."""
    decay_params = features.init_decay_params()

    def run(k):
        problem, x0 = task.sample(k, dim)

        def step(carry, _):
            x, fs = carry
            g = jax.grad(task.loss, argnums=1)(problem, x)
            fs, z = features.update(decay_params, fs, x, g)
            return (x - 0.1 * z[:, features.ADAM_DIRECTION_CHANNEL], fs), z

        return jax.lax.scan(step, (x0, features.init(dim)), None, length=steps)[1]

    z = jax.vmap(run)(jax.random.split(key, num_problems))
    return z.reshape((-1,) + z.shape[2:])


def imitation_warm_start(optimizer, task, theta, steps: int, key, log=print):
    """Fit the step head to (alpha, d) = (0, imitation_scale * Adam direction feature); returns new theta."""
    if steps <= 0:
        return theta
    zs = [_adam_like_features(task, dim, 16, 50, jax.random.fold_in(key, dim)) for dim in task.dims]
    tx = optax.adam(1e-3)

    def loss_fn(th, z):
        alpha, d = jax.vmap(lambda zz: optimizer.per_parameter_outputs(th, zz))(z)
        target = optimizer.imitation_scale * z[..., features.ADAM_DIRECTION_CHANNEL]
        return jnp.mean((d - target) ** 2) / optimizer.imitation_scale**2 + jnp.mean(alpha**2)

    @jax.jit
    def step(th, opt_state, z):
        loss, g = jax.value_and_grad(loss_fn)(th, z)
        upd, opt_state = tx.update(g, opt_state, th)
        return optax.apply_updates(th, upd), opt_state, loss

    opt_state = tx.init(theta)
    rng = np.random.default_rng(0)
    for i in range(steps):
        z = zs[i % len(zs)]
        batch = z[rng.integers(0, z.shape[0], size=64)]
        theta, opt_state, loss = step(theta, opt_state, batch)
        if i % 100 == 0 or i == steps - 1:
            log(f"imitation step {i}: loss {float(loss):.4g}")
    return theta


# ------------------------------------------------------------------------------------- trainable subset

def parameter_names(theta) -> list[str]:
    """Each leaf's name as in weight files without "theta::" (e.g. "net::step_head::w"), in tree order."""
    paths = jax.tree_util.tree_flatten_with_path(theta)[0]
    return ["::".join(str(getattr(k, "key", k)) for k in path) for path, _ in paths]


def trainable_indices(theta, prefixes):
    """Positions in `ravel_pytree(theta)[0]` of the leaves whose name starts with one of `prefixes`
    (int32 array), or None when `prefixes` is None (train everything). ValueError if a prefix matches
    nothing."""
    if prefixes is None:
        return None
    names = parameter_names(theta)
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            raise ValueError(f"no meta-parameter is named {prefix!r}...; names start with "
                             f"{sorted({n.rsplit('::', 1)[0] for n in names})}")
    # ravel_pytree concatenates the leaves in tree order, the order of `names`
    mask = np.concatenate([np.full(np.size(leaf), any(name.startswith(p) for p in prefixes))
                           for name, leaf in zip(names, jax.tree_util.tree_leaves(theta))])
    return jnp.asarray(np.flatnonzero(mask), jnp.int32)


# --------------------------------------------------------------------------------------------- validation

def validation_meta_loss(optimizer, task, theta, dims, num_problems: int, steps: int, seed: int = 1234):
    """Mean meta-loss of the unperturbed optimizer over fixed problems (`steps` inner steps each).

    A task with `all_problems(dim)` (a finite set, e.g. held-out DiffPhy windows) is
    evaluated on every one of them; otherwise on `num_problems` sampled with fixed keys per dim.
    """
    values = []
    for dim in dims:
        if hasattr(task, "all_problems"):
            problems, x0 = task.all_problems(dim)
        else:
            keys = jax.random.split(jax.random.PRNGKey(seed + dim), num_problems)
            problems, x0 = _sample_many(task, keys, dim)
        values.append(float(_validate(optimizer, task, theta, problems, x0, steps)))
    return float(np.mean(values))


def _validate_impl(optimizer, task, theta, problems, x0, steps):
    def one(problem, x):
        state = optimizer.init(theta, x)
        _, losses = unroll(optimizer, theta, lambda y: task.loss(problem, y), state, steps)
        return task.meta_loss(problem, losses)

    return jnp.mean(jax.vmap(one)(problems, x0))


_sample_many = jax.jit(lambda task, keys, dim: jax.vmap(lambda k: task.sample(k, dim))(keys), static_argnums=(0, 2))
_validate = jax.jit(_validate_impl, static_argnums=(0, 1, 5))
# module level, so a resumed run in the same process reuses the compiled programs
_pes_step = jax.jit(pes.pes_step, static_argnums=(0, 1, 2))
_pes_init = jax.jit(pes.pes_init, static_argnums=(0, 1, 2, 4))


# --------------------------------------------------------------------------------------------- checkpoints

def _save_checkpoint(path: Path, theta, opt_state, step: int, key, elapsed: float):
    flat, _ = ravel_pytree(theta)
    leaves = jax.tree_util.tree_leaves(opt_state)
    write_npz(path, theta=np.asarray(flat), step=np.int64(step), key=np.asarray(key),
              elapsed=np.float64(elapsed), **{f"opt_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)})


def _load_checkpoint(path: Path, theta_template, opt_state_template):
    with np.load(path) as data:
        _, unravel = ravel_pytree(theta_template)
        theta = unravel(jnp.asarray(data["theta"]))
        treedef = jax.tree_util.tree_structure(opt_state_template)
        n = treedef.num_leaves
        opt_state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(data[f"opt_{i}"]) for i in range(n)])
        key = jnp.asarray(data["key"], jnp.uint32)  # raw key, as jax.random.PRNGKey makes
        return theta, opt_state, int(data["step"]), key, float(data["elapsed"])


def plot_metrics(metrics_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows if "meta_loss" in r]
    ax.plot(steps, [r["meta_loss"] for r in rows if "meta_loss" in r], lw=0.8, alpha=0.6, label="PES meta-loss (train)")
    val = [(r["step"], r["val_meta_loss"]) for r in rows if "val_meta_loss" in r]
    if val:
        ax.plot(*zip(*val), "o-", color="C3", label="validation meta-loss (unperturbed)")
    ax.set_xlabel("meta-step")
    ax.set_ylabel("mean log10 normalised inner loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ training

def train(config: TrainConfig, out_dir, *, resume: bool = True, log=print) -> dict:
    """Meta-train until max_steps or max_minutes (this run's wall time); returns a summary dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path, ckpt_path = out_dir / "config.json", out_dir / "checkpoint.npz"
    metrics_path = out_dir / "metrics.jsonl"
    config_dict = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists, as stored
    optimizer = build_optimizer(config.optimizer, **config.optimizer_options)
    task = tasks.get_task(config.task, **config.task_options)
    pes_config = pes.PESConfig(config.num_tasks, config.unroll_length, config.truncation, config.sigma)
    tx = _adam(config)

    theta = optimizer.init_meta_params(jax.random.PRNGKey(config.seed))
    if config.init_weights:
        loaded, theta = load_weights(config.init_weights, kind=config.optimizer)
        if loaded.architecture() != optimizer.architecture():
            raise ValueError(f"{config.init_weights}: architecture {loaded.architecture()} differs from "
                             f"{optimizer.architecture()}; pass the same optimizer options")
        if optimizer.step_option not in config.optimizer_options:  # keep the fine-tuned weights' step scale
            optimizer = loaded
    val_task = task.validation_task() if hasattr(task, "validation_task") else task
    indices = trainable_indices(theta, config.trainable)
    if indices is not None:
        log(f"PES perturbs {indices.shape[0]} of {ravel_pytree(theta)[0].shape[0]} meta-parameters "
            f"({', '.join(config.trainable)})")
    opt_state = tx.init(theta)
    step, key, elapsed_before = 0, jax.random.PRNGKey(config.seed + 1), 0.0
    if resume and ckpt_path.exists():
        saved = json.loads(config_path.read_text()) if config_path.exists() else None
        keys_that_matter = ("optimizer", "optimizer_options", "task", "task_options", "num_tasks", "sigma",
                             "init_weights", "trainable")
        if saved is not None and any(saved.get(k) != config_dict.get(k) for k in keys_that_matter):
            raise ValueError(f"{out_dir}: checkpoint was made with another configuration; use a new folder")
        theta, opt_state, step, key, elapsed_before = _load_checkpoint(ckpt_path, theta, opt_state)
        log(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained before)")
    elif not config.init_weights and not getattr(optimizer, "starts_as_teacher", False):
        theta = imitation_warm_start(optimizer, task, theta, config.imitation_steps,
                                     jax.random.PRNGKey(config.seed + 2), log)
    if not (resume and ckpt_path.exists()):
        metrics_path.unlink(missing_ok=True)
    write_json(config_path, config_dict)

    pes_step = _pes_step
    groups: dict[int, pes.PESState] = {}
    window: list[dict] = []
    start = time.time()
    last_ckpt = start

    def elapsed():
        return elapsed_before + time.time() - start

    def checkpoint(wall_s=None):
        _save_checkpoint(ckpt_path, theta, opt_state, step, key, elapsed() if wall_s is None else wall_s)
        save_weights(out_dir / "weights.npz", optimizer, theta)
        plot_metrics(metrics_path, out_dir / "metrics.png")

    @jax.jit
    def apply(theta, opt_state, grad):
        upd, opt_state = tx.update(grad, opt_state, theta)
        return optax.apply_updates(theta, upd), opt_state

    with open(metrics_path, "a") as metrics_file:
        def write_metrics(row):
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()

        if step == 0:
            val = validation_meta_loss(optimizer, val_task, theta, val_task.dims, config.eval_problems,
                                       config.unroll_length)
            write_metrics({"step": 0, "wall_s": elapsed(), "val_meta_loss": val})
            log(f"step 0: validation meta-loss {val:.4f}")
        while step < config.max_steps and time.time() - start < 60.0 * config.max_minutes:
            dim = task.dims[step % len(task.dims)]
            key, k_init, k_step = jax.random.split(key, 3)
            if dim not in groups:
                groups[dim] = _pes_init(optimizer, task, pes_config, theta, dim, k_init, indices)
            grad, groups[dim], m = pes_step(optimizer, task, pes_config, theta, groups[dim], k_step, indices)
            theta, opt_state = apply(theta, opt_state, grad)
            step += 1
            window.append(m)
            row = None
            if step % config.log_every == 0:  # means over the steps since the last row (all dims)
                row = {"step": step, "wall_s": round(elapsed(), 2),
                       **{k: float(np.mean([float(w[k]) for w in window])) for k in m}}
                window.clear()
            if step % config.eval_every == 0:
                row = row or {"step": step, "wall_s": round(elapsed(), 2)}
                row["val_meta_loss"] = validation_meta_loss(optimizer, val_task, theta, val_task.dims,
                                                            config.eval_problems, config.unroll_length)
            if row is not None:
                if not np.isfinite(row.get("meta_loss", 0.0)):
                    raise FloatingPointError(f"meta-loss became non-finite at step {step}")
                write_metrics(row)
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if time.time() - last_ckpt > 60.0 * config.checkpoint_minutes:
                checkpoint()
                last_ckpt = time.time()
        final_val = validation_meta_loss(optimizer, val_task, theta, val_task.dims, config.eval_problems,
                                         config.unroll_length)
        total_s = elapsed()  # the checkpoint and the summary agree, so a resumed run's total never goes back
        write_metrics({"step": step, "wall_s": round(total_s, 2), "val_meta_loss": final_val})
        checkpoint(total_s)
    summary = {"steps": step, "wall_s": total_s, "final_val_meta_loss": final_val}
    log(f"done: {summary}")
    return summary
