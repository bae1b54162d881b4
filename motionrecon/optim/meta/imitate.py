"""Imitation training of a teacher-initialised learned optimizer (`optimus_lbfgs.OptimusLBFGS`), with
DAgger-style relabelling (issue 19, part 1).

    train_imitation(ImitationConfig(...), out_dir)   # writes out_dir/weights.npz and summary.json

Round 0: SciPy's L-BFGS-B (float64, line search) records trajectories on problems of a task; the labels
are the features and teacher direction at each accepted iterate and the step L-BFGS-B took from there
(`imitation.trajectory_labels`): the student learns the step lengths the line search found, so that one
evaluation per step can do what a line search did with several. Rounds 1..R: the student runs on fresh
problems, and its own trajectories are relabelled with the teacher's unit step from where it went
(`imitation.relabel_with_teacher`), added to the data set, and the regression continues (DAgger).
The validation number is the task's meta-loss (`train.validation_meta_loss`) before and after.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.fileio import write_json
from motionrecon.optim import imitation
from motionrecon.optim.learned import build_optimizer, save_weights
from motionrecon.optim.meta import tasks
from motionrecon.optim.meta.train import validation_meta_loss


@dataclasses.dataclass
class ImitationConfig:
    optimizer_options: dict = dataclasses.field(default_factory=dict)
    task: str = "prior"
    task_options: dict = dataclasses.field(default_factory=dict)
    problems: int = 12          # per problem size and round
    teacher_evals: int = 60     # SciPy L-BFGS-B's budget per recorded problem
    student_steps: int = 40     # the student's steps per relabelled problem
    dagger_rounds: int = 1
    steps_per_round: int = 300
    batch: int = 32
    learning_rate: float = 3e-4
    eval_problems: int = 16
    eval_steps: int = 50
    seed: int = 0


def _problems(task, dim: int, count: int, key):
    return jax.vmap(lambda k: task.sample(k, dim))(jax.random.split(key, count))


def teacher_labels(task, optimizer, dim: int, count: int, evals: int, key) -> imitation.Labels:
    """Labels of SciPy L-BFGS-B trajectories on `count` problems of size `dim`."""
    problems, x0s = _problems(task, dim, count, key)
    with jax.enable_x64(True):
        fg = jax.jit(jax.value_and_grad(lambda p, x: task.loss(p, x), argnums=1))
        sets = []
        for i in range(count):
            p = jax.tree_util.tree_map(lambda a: jnp.asarray(a[i]), problems)

            def fun_and_grad(x, p=p):
                f, g = fg(p, jnp.asarray(x, jnp.float32))
                return float(f), np.asarray(g, np.float64)

            traj = imitation.record_scipy_lbfgs(fun_and_grad, np.asarray(x0s[i], np.float64), evals,
                                                history=optimizer.history)
            if len(traj.xs) >= 2 and np.all(np.isfinite(traj.gs)):
                sets.append(imitation.trajectory_labels(traj.xs, traj.gs, optimizer.history, optimizer.first_step))
    return imitation.concatenate(sets)


def student_labels(task, optimizer, theta, dim: int, count: int, steps: int, key):
    """The student's own trajectories on `count` fresh problems, relabelled with the teacher (DAgger); None
    when none has two finite evaluations."""
    problems, x0s = _problems(task, dim, count, key)
    run = jax.jit(jax.vmap(lambda p, x: imitation.student_trajectory(optimizer, theta, lambda y: task.loss(p, y), x,
                                                                     steps)[:2]))
    xs, gs = run(problems, x0s)
    sets = []
    for i in range(count):
        ok = np.all(np.isfinite(np.asarray(xs[i])), axis=1) & np.all(np.isfinite(np.asarray(gs[i])), axis=1)
        k = int(np.argmin(ok)) if not ok.all() else len(ok)  # up to the first non-finite evaluation
        if k >= 2:
            sets.append(imitation.relabel_with_teacher(imitation.trajectory_labels(
                xs[i, :k], gs[i, :k], optimizer.history, optimizer.first_step)))
    return imitation.concatenate(sets) if sets else None


def train_imitation(config: ImitationConfig, out_dir, log=print) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    optimizer = build_optimizer("optimus_lbfgs", **config.optimizer_options)
    task = tasks.get_task(config.task, **config.task_options)
    key = jax.random.PRNGKey(config.seed)
    theta = optimizer.init_meta_params(key)

    def validate(th):
        return validation_meta_loss(optimizer, task, th, task.dims, config.eval_problems, config.eval_steps)

    summary = {"config": dataclasses.asdict(config), "val_meta_loss_teacher": validate(theta), "rounds": []}
    log(f"teacher (untrained) validation meta-loss {summary['val_meta_loss_teacher']:.4f}")
    data = {dim: teacher_labels(task, optimizer, dim, config.problems, config.teacher_evals,
                                jax.random.fold_in(key, dim)) for dim in task.dims}
    for r in range(config.dagger_rounds + 1):
        if r > 0:
            for dim in task.dims:
                fresh = student_labels(task, optimizer, theta, dim, config.problems, config.student_steps,
                                       jax.random.fold_in(key, 1000 * r + dim))
                data[dim] = imitation.concatenate([data[dim]] + ([fresh] if fresh is not None else []))
        theta, losses = imitation.fit(optimizer, theta, list(data.values()), config.steps_per_round,
                                      config.learning_rate, config.batch, seed=config.seed + r, log=log)
        val = validate(theta)
        summary["rounds"].append({"round": r, "labels": {str(d): int(v.has_step.shape[0]) for d, v in data.items()},
                                  "imitation_loss": losses, "val_meta_loss": val, "wall_s": round(time.time() - t0, 1)})
        log(f"round {r}: imitation loss {np.round(losses, 4).tolist()}, validation meta-loss {val:.4f}")
    save_weights(out_dir / "weights.npz", optimizer, theta)
    summary["wall_s"] = round(time.time() - t0, 1)
    write_json(out_dir / "summary.json", json.loads(json.dumps(summary)))
    return summary
