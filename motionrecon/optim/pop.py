"""POP, a Prior-fitted Optimizer Policy (issue 19, part 5), in JAX + dm-haiku.

POP is published so far as an abstract: a transformer policy that predicts per-coordinate step sizes from
the optimisation trajectory, trained on synthetic problems from a prior. This is our reading of it.

Tokens. One token per coordinate i of x [N] after evaluation t (all scale-free):

    z_i                  the Adafactor-MLP features (`features.py`, 33 channels, RMS-normalised)
    g_i g'_i / (rms g rms g')   agreement of this gradient with the previous one (g')
    u'_i                 the previous direction
    l_i - mean(l)        this coordinate's log step size relative to the others
    tanh((f - f') / |f'|), tanh((f - f_best) / |f_best|), tanh(log10 |f / f_0| / 4)   (shared by all tokens)

Policy. tokens [N, 40] -> Linear(D) -> `num_layers` pre-LayerNorm Transformer encoder layers without
positional encoding (attention across coordinates, `optimus.encoder_layer`) -> Linear(1) = o [N], and

    l_i <- l_i + max_log_change * tanh(o_i)       per-coordinate log step sizes (l_i = log(init_step) at t = 0)
    u   = m_hat / (sqrt(v_hat) + 1e-8)            the bias-corrected Adam direction (decays meta-learned)
    x   <- x - exp(l) * u

Everything acts per coordinate or through attention over the coordinate set (or a mean over it), so POP is
permutation-equivariant over coordinates and one set of meta-parameters serves every N. The output layer
is zero-initialised: untrained, POP is Adam with learning rate `init_step`. Cost per step O(N^2 D).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp

from motionrecon.optim import features
from motionrecon.optim.learned import LearnedOptimizer
from motionrecon.optim.optimus import encoder_layer

NUM_TOKEN_FEATURES = features.NUM_FEATURES + 3 + 3


class POPState(NamedTuple):
    """x, log_lr, g_prev, u_prev: [N]; feat: feature accumulators; f0, f_prev, f_best: scalars
    (f0 = nan before the first update)."""

    x: jax.Array
    feat: features.FeatureState
    log_lr: jax.Array
    g_prev: jax.Array
    u_prev: jax.Array
    f0: jax.Array
    f_prev: jax.Array
    f_best: jax.Array


def _rel(a, b):
    return jnp.tanh((a - b) / (jnp.abs(b) + 1e-12))


@dataclasses.dataclass(frozen=True)
class POP(LearnedOptimizer):
    model_dim: int = 32
    num_layers: int = 2
    num_heads: int = 4
    ffn_dim: int = 64
    init_step: float = 0.1
    max_log_change: float = 0.5

    kind = "pop"
    step_option = "init_step"

    def _net(self, tokens):
        """tokens [N, F] -> o [N]."""
        h = hk.Linear(self.model_dim, name="embed")(tokens)
        for _ in range(self.num_layers):
            h = encoder_layer(h, self.num_heads, self.ffn_dim, 1.0 / self.num_layers)
        return hk.Linear(1, w_init=jnp.zeros, name="log_step_head")(h)[:, 0]

    @functools.cached_property
    def _transformed(self):
        return hk.without_apply_rng(hk.transform(self._net))

    def init_meta_params(self, key):
        net = self._transformed.init(key, jnp.zeros((3, NUM_TOKEN_FEATURES), jnp.float32))
        return {"net": hk.data_structures.to_mutable_dict(net), "decays": features.init_decay_params()}

    def init(self, meta_params, x0) -> POPState:
        x0 = jnp.asarray(x0, jnp.float32)
        n = x0.shape[0]
        zero, nan = jnp.zeros_like(x0), jnp.asarray(jnp.nan, jnp.float32)
        return POPState(x=x0, feat=features.init(n), log_lr=jnp.full((n,), jnp.log(self.init_step), jnp.float32),
                        g_prev=zero, u_prev=zero, f0=nan, f_prev=nan, f_best=nan)

    def tokens(self, state: POPState, z, g, f):
        """Per-coordinate tokens [N, NUM_TOKEN_FEATURES] (module docstring)."""
        n = g.shape[0]
        first = jnp.isnan(state.f0)
        f0 = jnp.where(first, f, state.f0)
        f_prev = jnp.where(first, f, state.f_prev)
        f_best = jnp.where(first, f, state.f_best)
        agree = g * state.g_prev / (features.rms(g) * features.rms(state.g_prev))
        per_coord = jnp.stack([agree, state.u_prev, state.log_lr - jnp.mean(state.log_lr)], axis=1)
        ratio = jnp.abs(f / jnp.where(f0 == 0, 1.0, f0))
        shared = jnp.stack([_rel(f, f_prev), _rel(f, f_best), jnp.tanh(jnp.log10(ratio + 1e-30) / 4.0)])
        return jnp.concatenate([z, per_coord, jnp.broadcast_to(shared, (n, 3))], axis=1)

    def adam_direction(self, meta_params, feat: features.FeatureState):
        """The bias-corrected Adam direction m_hat / (sqrt(v_hat) + 1e-8) [N] from the accumulators (first
        momentum and the second moment, their meta-learned decays)."""
        mom, rms, _ = features.decays(meta_params["decays"])
        t = feat.step.astype(jnp.float32)
        m_hat = feat.m[:, 0] / jnp.maximum(1.0 - mom[0] ** t, 1e-12)
        v_hat = feat.v[:, 0] / jnp.maximum(1.0 - rms[0] ** t, 1e-12)
        return m_hat / (jnp.sqrt(v_hat) + 1e-8)

    def log_step_sizes(self, meta_params, state: POPState, grad, loss):
        """(new feature state, per-coordinate log step sizes [N]) after an evaluation (loss, grad)."""
        g = features.sanitise_gradient(grad)
        f = jnp.where(jnp.isfinite(loss), jnp.asarray(loss, jnp.float32), 1e30)
        feat, z = features.update(meta_params["decays"], state.feat, state.x, g)
        o = self._transformed.apply(meta_params["net"], self.tokens(state, z, g, f))
        return feat, state.log_lr + self.max_log_change * jnp.tanh(o)

    def update(self, meta_params, state: POPState, grad, loss=None) -> POPState:
        loss = jnp.asarray(0.0 if loss is None else loss, jnp.float32)
        feat, log_lr = self.log_step_sizes(meta_params, state, grad, loss)
        u = self.adam_direction(meta_params, feat)
        f = jnp.where(jnp.isfinite(loss), loss, 1e30)
        first = jnp.isnan(state.f0)
        return POPState(x=state.x - jnp.exp(log_lr) * u, feat=feat, log_lr=log_lr,
                        g_prev=features.sanitise_gradient(grad), u_prev=u, f0=jnp.where(first, f, state.f0),
                        f_prev=f, f_best=jnp.where(first, f, jnp.minimum(f, state.f_best)))


CLASSIC_WEIGHTS = "pop_prior.npz"  # as trained on the synthetic prior, init_step 0.1 (the classical benchmark's)
DIFFPHY_WEIGHTS = "pop_diffphy.npz"  # the same meta-parameters, init_step 0.01 rad for DiffPhy windows
WEIGHTS = DIFFPHY_WEIGHTS  # `get_solver("pop")`

