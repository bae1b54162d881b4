"""Full-episode antithetic evolution strategies over a small meta-parameter vector (issue 19, part 3).

For meta-parameters theta [P] and an episode objective F(theta, key) (e.g. log(f_T / f_0) of a learned
optimizer's whole run on a batch of problems drawn with `key`), N antithetic pairs give

    eps_i ~ N(0, sigma^2 I),   F_i^+ = F(theta + eps_i, k_i),   F_i^- = F(theta - eps_i, k_i)
    plain:   g = 1 / (2 N sigma^2) * sum_i eps_i (F_i^+ - F_i^-)

an unbiased estimate of the gradient of the Gaussian-smoothed objective E_eps,k[F(theta + eps, k)]. The
two members of a pair share k (common random numbers: the same problems, the same inner randomness), so
whatever of F does not depend on theta cancels within the pair. With rank fitness shaping the 2N values
are replaced by their centred ranks in [-1/2, 1/2] before the same sum (Salimans et al. 2017): biased,
but invariant to any monotone transform of F and robust to outliers (one diverging episode).
No truncation: every evaluation of F is a whole episode, so nothing is biased by truncation either.

`es_gradient` is pure and jittable with `objective` and the config static. `episode_log_ratio` builds
the issue's objective for a learned optimizer; `subspace` maps a small vector onto chosen leaves of the
meta-parameters (e.g. the step head's bias, the decays), so only those are searched.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from motionrecon.optim.learned import unroll


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """pairs: N antithetic pairs per estimate; sigma: perturbation std; shaping: "none" | "rank"."""

    pairs: int = 8
    sigma: float = 0.05
    shaping: str = "none"

    def __post_init__(self):
        if self.shaping not in ("none", "rank"):
            raise ValueError(f"unknown fitness shaping {self.shaping!r}; choose none or rank")


def centred_ranks(values):
    """values [M] -> ranks scaled to [-1/2, 1/2] (ties broken by order)."""
    ranks = jnp.argsort(jnp.argsort(values)).astype(jnp.float32)
    return ranks / jnp.maximum(values.shape[0] - 1, 1) - 0.5


def es_gradient(objective: Callable, config: ESConfig, theta, key):
    """(gradient estimate [P], metrics) for objective(theta [P], key) -> scalar (to minimise)."""
    k_eps, k_common = jax.random.split(key)
    eps = config.sigma * jax.random.normal(k_eps, (config.pairs, theta.shape[0]))
    keys = jax.random.split(k_common, config.pairs)
    f_pos = jax.vmap(lambda e, k: objective(theta + e, k))(eps, keys)
    f_neg = jax.vmap(lambda e, k: objective(theta - e, k))(eps, keys)
    if config.shaping == "rank":
        r = centred_ranks(jnp.concatenate([f_pos, f_neg]))
        diff = r[: config.pairs] - r[config.pairs:]
    else:
        diff = f_pos - f_neg
    grad = jnp.sum(eps * diff[:, None], axis=0) / (2.0 * config.pairs * config.sigma**2)
    return grad, {"objective": jnp.mean(0.5 * (f_pos + f_neg)), "pair_diff_abs": jnp.mean(jnp.abs(f_pos - f_neg))}


def subspace(meta_params, prefixes):
    """(v0 [P], to_meta: v [P] -> meta-parameters) for the leaves whose name ("net::step_head::b", as in
    weight files) starts with one of `prefixes`; the others stay as in `meta_params`."""
    from motionrecon.optim.meta.train import trainable_indices

    flat, unravel = ravel_pytree(meta_params)
    idx = trainable_indices(meta_params, list(prefixes))
    return flat[idx], lambda v: unravel(flat.at[idx].set(v))


def episode_log_ratio(optimizer, to_meta: Callable, task, dim: int, problems: int, steps: int,
                      floor: float = 1e-8, ceiling: float = 1e2) -> Callable:
    """objective(v, key): mean over `problems` problems of size `dim` drawn with `key` of
    log10(f_T - f*) / (f_0 - f*) after a whole episode of `steps` updates (clipped to [floor, ceiling]; a
    non-finite loss counts as the ceiling)."""

    def one(meta, k):
        problem, x0 = task.sample(k, dim)
        state, _ = unroll(optimizer, meta, lambda x: task.loss(problem, x), optimizer.init(meta, x0), steps)
        gap = (task.loss(problem, state.x) - problem.f_star) / jnp.maximum(problem.f_init - problem.f_star, 1e-30)
        return jnp.log10(jnp.clip(jnp.where(jnp.isfinite(gap), gap, ceiling), floor, ceiling))

    def objective(v, key):
        meta = to_meta(v)
        return jnp.mean(jax.vmap(lambda k: one(meta, k))(jax.random.split(key, problems)))

    return objective


def es_train(objective: Callable, v0, config: ESConfig, steps: int, learning_rate: float, key,
             max_minutes: float = float("inf"), log: Callable = print, on_step: Callable | None = None,
             first_step: int = 1):
    """optax Adam on ES estimates of objective(v, key) from v0 [P], for `steps` steps or `max_minutes`.
    on_step(v, rows) after each step (a checkpoint); first_step numbers the rows of a resumed run (its keys
    follow from `key` and the step number, so a resumed run draws what an uninterrupted one would; Adam's
    moments start afresh). Returns (v, rows: one dict per step with the pairs' mean objective and the
    estimate's norm)."""
    import time

    import optax

    tx = optax.adam(learning_rate)

    @jax.jit
    def step(v, opt_state, k):
        grad, metrics = es_gradient(objective, config, v, k)
        updates, opt_state = tx.update(grad, opt_state, v)
        return optax.apply_updates(v, updates), opt_state, {**metrics, "grad_norm": jnp.linalg.norm(grad)}

    v, opt_state, rows, start = v0, tx.init(v0), [], time.time()
    for i in range(first_step, steps + 1):
        if time.time() - start > 60.0 * max_minutes:
            break
        v, opt_state, metrics = step(v, opt_state, jax.random.fold_in(key, i))
        rows.append({"step": i, "wall_s": round(time.time() - start, 1), **{m: float(x) for m, x in metrics.items()}})
        log(" ".join(f"{m}={x:.4g}" if isinstance(x, float) else f"{m}={x}" for m, x in rows[-1].items()))
        if on_step is not None:
            on_step(v, rows)
    return v, rows
