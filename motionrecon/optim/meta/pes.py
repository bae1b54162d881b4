"""Persistent Evolution Strategies (Vicol, Metz & Sohl-Dickstein 2021) for meta-gradients of unrolled optimization.

Each of B tasks runs two particles, the meta-parameters perturbed by +eps_b and
-eps_b (antithetic, eps_b ~ N(0, sigma^2 I) fresh per truncation). A truncation
unrolls K inner steps of each particle from where it stopped; the perturbations
are summed per task, xi_b = sum of eps_b over the truncations since its inner
problem last reset, and the estimate is

    g = 1 / (2 B sigma^2) * sum_b xi_b * (L_b(+) - L_b(-))

where L is the task's meta-loss over the truncation. This is unbiased for the
gradient of the Gaussian-smoothed meta-loss of the whole unroll (truncation by
truncation), unlike truncated ES/backprop. An inner problem resets (new problem,
new optimizer state, xi = 0) after `unroll_length` inner steps; the tasks start
at staggered points so resets do not happen all at once.

Perturbing a subset of the meta-parameters (`indices`, positions in the flat
vector of `ravel_pytree(theta)`): the others stay fixed and get a zero
gradient. With P meta-parameters the estimate's alignment with the true
gradient grows like sqrt(B / P), so on a small budget (a handful of tasks per
step) training a few hundred output-side parameters of a 456 000-parameter
Optimus gives a far stronger signal than perturbing all of them (on the
DiffPhy task, 4 tasks per step on a CPU were still too few for either;
docs/learned-optimizers.md, session 7).

Everything is a pure function of explicit data: `pes_init` and `pes_step` take
the optimizer, task and config as static (hashable) arguments, so
`jax.jit(pes_step, static_argnums=(0, 1, 2))` compiles once per problem size.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from motionrecon.optim.learned import unroll


@dataclasses.dataclass(frozen=True)
class PESConfig:
    """num_tasks: B (particles = 2B); unroll_length: inner steps before a problem resets;
    truncation: K inner steps per PES step; sigma: perturbation standard deviation."""

    num_tasks: int = 20
    unroll_length: int = 50
    truncation: int = 5
    sigma: float = 0.01


class PESState(NamedTuple):
    """Per task b: problems [B, ...], optimizer states of the + and - particles, accumulated
    perturbations xi [B, P] (P = number of perturbed meta-parameters), inner step counters [B]."""

    problems: Any
    pos: Any
    neg: Any
    xi: jax.Array
    step: jax.Array


def _where(mask, a, b):
    """Per-task select over pytrees whose leaves have a leading axis B."""
    return jax.tree_util.tree_map(lambda u, v: jnp.where(mask.reshape((-1,) + (1,) * (u.ndim - 1)), u, v), a, b)


def _fresh(optimizer, task, theta, dim, keys):
    problems, x0 = jax.vmap(lambda k: task.sample(k, dim))(keys)
    states = jax.vmap(lambda x: optimizer.init(theta, x))(x0)
    return problems, states


def pes_init(optimizer, task, config: PESConfig, theta, dim: int, key, indices=None) -> PESState:
    """Fresh problems of size `dim` for B tasks, with staggered inner step counters.

    indices: int array [P] of the perturbed positions in the flat meta-parameters (None: all)."""
    k_prob, k_stagger = jax.random.split(key)
    problems, states = _fresh(optimizer, task, theta, dim, jax.random.split(k_prob, config.num_tasks))
    n_trunc = max(config.unroll_length // config.truncation, 1)
    step = config.truncation * jax.random.randint(k_stagger, (config.num_tasks,), 0, n_trunc)
    num_meta = ravel_pytree(theta)[0].shape[0] if indices is None else indices.shape[0]
    return PESState(problems=problems, pos=states, neg=states, xi=jnp.zeros((config.num_tasks, num_meta)),
                    step=step)


def _truncation_loss(optimizer, task, truncation, theta, problem, state):
    loss_fn = functools.partial(task.loss, problem)
    state, losses = unroll(optimizer, theta, loss_fn, state, truncation)
    return task.meta_loss(problem, losses), state


def pes_step(optimizer, task, config: PESConfig, theta, pes_state: PESState, key, indices=None):
    """One PES estimate. Returns (meta-gradient, same pytree as theta; new PESState; metrics dict).

    indices: as in `pes_init` (the same array for every step of a group); the meta-gradient is zero
    outside them."""
    flat, unravel = ravel_pytree(theta)
    dim = pes_state.pos.x.shape[-1]
    k_reset, k_eps = jax.random.split(key)

    # Reset tasks whose inner problem has run its course.
    reset = pes_state.step >= config.unroll_length
    new_problems, new_states = _fresh(optimizer, task, theta, dim, jax.random.split(k_reset, config.num_tasks))
    problems = _where(reset, new_problems, pes_state.problems)
    pos = _where(reset, new_states, pes_state.pos)
    neg = _where(reset, new_states, pes_state.neg)
    step = jnp.where(reset, 0, pes_state.step)

    eps = config.sigma * jax.random.normal(k_eps, (config.num_tasks, pes_state.xi.shape[1]))
    xi = jnp.where(reset[:, None], 0.0, pes_state.xi) + eps

    def perturbed(e):
        return unravel(flat + e if indices is None else flat.at[indices].add(e))

    run = jax.vmap(lambda e, p, s: _truncation_loss(optimizer, task, config.truncation, perturbed(e), p, s))
    loss_pos, pos = run(eps, problems, pos)
    loss_neg, neg = run(-eps, problems, neg)

    grad_sub = jnp.sum(xi * (loss_pos - loss_neg)[:, None], axis=0) / (2.0 * config.num_tasks * config.sigma**2)
    grad_flat = grad_sub if indices is None else jnp.zeros_like(flat).at[indices].set(grad_sub)
    new_state = PESState(problems=problems, pos=pos, neg=neg, xi=xi, step=step + config.truncation)
    metrics = {"meta_loss": jnp.mean(0.5 * (loss_pos + loss_neg)), "resets": jnp.sum(reset),
               "loss_diff_abs": jnp.mean(jnp.abs(loss_pos - loss_neg))}
    return unravel(grad_flat), new_state, metrics
