"""Per-parameter input features of the Adafactor-MLP learned optimizer (Metz et al. 2022).

The same features feed Optimus (Gärtner et al. 2023). For a parameter vector
x [N] with gradient g [N] the features of parameter n are, in this order:

    g, x, m (3 decays), v (1 decay), m * rsqrt(v) (3), rsqrt(v) (1),
    fac_g (3), f (3), rsqrt(f) (3), m * rsqrt(f) (3)             -> 22 channels,

each channel normalised by its root-mean-square across the N parameters, then
11 unnormalised time features tanh(t / tau - 1), tau in 1, 3, 10, ..., 1e5 -> 33.

m are momenta (EMAs of g) at decays 0.9/0.99/0.999, v the EMA of g^2 at 0.999,
f the Adafactor-style accumulators (EMA of g^2 + 1e-30) at decays 0.9/0.99/0.999
and fac_g = g * rsqrt(f). For a matrix-shaped parameter Adafactor factors f into
row and column accumulators; our parameters are one flat vector, for which the
learned_optimization library keeps the full (diagonal) accumulator, so f is
per element and the library's duplicated row/column channels appear once here.

The decays are meta-learned: decay = 1 - (1 - decay_init) * exp(10 * theta)
with theta initialised to 0 (the library's parameterisation).

Everything is elementwise or a mean over the parameter axis, so the features
are equivariant to permutations of the parameters and defined for any N.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

MOMENTUM_DECAYS = (0.9, 0.99, 0.999)
RMS_DECAYS = (0.999,)
ADAFACTOR_DECAYS = (0.9, 0.99, 0.999)
TIMESCALES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 1e5)

NUM_NORMALISED = 2 + 2 * len(MOMENTUM_DECAYS) + 2 * len(RMS_DECAYS) + 4 * len(ADAFACTOR_DECAYS)
NUM_FEATURES = NUM_NORMALISED + len(TIMESCALES)

# Column of m * rsqrt(v) at momentum decay 0.9: an Adam-like direction (used for imitation warm-starts).
ADAM_DIRECTION_CHANNEL = 2 + len(MOMENTUM_DECAYS) + len(RMS_DECAYS)

# Gradients are clamped here so that g^2 stays finite in float32 (Zakharov at d = 1000 has |g| ~ 1e20).
# After the per-channel RMS normalisation the features do not depend on a constant gradient scale.
GRAD_LIMIT = 1e15


class FeatureState(NamedTuple):
    """Accumulators for N parameters.

    m: [N, 3] momenta; v: [N, 1] second moment; f: [N, 3] Adafactor accumulators;
    step: int32 scalar, the number of updates so far.
    """

    m: jax.Array
    v: jax.Array
    f: jax.Array
    step: jax.Array


def init_decay_params() -> dict:
    """Meta-parameters of the decays (zeros = the initial decays above)."""
    return {
        "momentum": jnp.zeros(len(MOMENTUM_DECAYS)),
        "rms": jnp.zeros(len(RMS_DECAYS)),
        "adafactor": jnp.zeros(len(ADAFACTOR_DECAYS)),
    }


def _decay(initial, theta):
    return jnp.clip(1.0 - (1.0 - jnp.asarray(initial, jnp.float32)) * jnp.exp(10.0 * theta), 0.0, 1.0)


def decays(decay_params: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(momentum [3], rms [1], adafactor [3]) decays from their meta-parameters."""
    return (_decay(MOMENTUM_DECAYS, decay_params["momentum"]), _decay(RMS_DECAYS, decay_params["rms"]),
            _decay(ADAFACTOR_DECAYS, decay_params["adafactor"]))


def init(num_params: int) -> FeatureState:
    n = num_params
    return FeatureState(m=jnp.zeros((n, len(MOMENTUM_DECAYS))), v=jnp.zeros((n, len(RMS_DECAYS))),
                        f=jnp.zeros((n, len(ADAFACTOR_DECAYS))), step=jnp.zeros((), jnp.int32))


def sanitise_gradient(g: jax.Array) -> jax.Array:
    """NaN -> 0, +-inf and huge values -> +-GRAD_LIMIT."""
    g = jnp.nan_to_num(g, nan=0.0, posinf=GRAD_LIMIT, neginf=-GRAD_LIMIT)
    return jnp.clip(g, -GRAD_LIMIT, GRAD_LIMIT)


def rms(v: jax.Array) -> jax.Array:
    """Root mean square of v [N], computed in units of max |v| (no float32 overflow for |v| > 1e19)."""
    big = jnp.maximum(jnp.max(jnp.abs(v)), 1e-20)
    return big * jnp.sqrt(jnp.mean((v / big) ** 2) + 1e-12)


def rms_normalise(z: jax.Array, axis: int = 0, eps: float = 1e-5) -> jax.Array:
    """z * rsqrt(eps + mean(z^2)) over the parameter axis (per channel)."""
    return z * jax.lax.rsqrt(eps + jnp.mean(z * z, axis=axis, keepdims=True))


def time_features(step) -> jax.Array:
    """[11] tanh(step / tau - 1)."""
    return jnp.tanh(jnp.asarray(step, jnp.float32) / jnp.asarray(TIMESCALES, jnp.float32) - 1.0)


def update(decay_params: dict, state: FeatureState, x: jax.Array, g: jax.Array) -> tuple[FeatureState, jax.Array]:
    """Accumulate gradient g [N] at parameters x [N]; returns (new state, features [N, NUM_FEATURES])."""
    mom_decay, rms_decay, fac_decay = decays(decay_params)
    g = sanitise_gradient(g)
    x = jnp.nan_to_num(x)
    gc = g[:, None]
    g2 = gc * gc
    m = mom_decay * state.m + (1.0 - mom_decay) * gc
    v = rms_decay * state.v + (1.0 - rms_decay) * g2
    f = fac_decay * state.f + (1.0 - fac_decay) * (g2 + 1e-30)
    rsqrt_v = jax.lax.rsqrt(v + 1e-6)
    rsqrt_f = jax.lax.rsqrt(jnp.maximum(f, 1e-9) + 1e-9)
    fac_g = gc * rsqrt_f
    channels = jnp.concatenate(
        [gc, x[:, None], m, v, m * rsqrt_v, rsqrt_v, fac_g, f, rsqrt_f, m * jax.lax.rsqrt(f + 1e-6)], axis=1)
    z = rms_normalise(channels, axis=0)
    t = jnp.broadcast_to(time_features(state.step), (x.shape[0], len(TIMESCALES)))
    new_state = FeatureState(m=m, v=v, f=f, step=state.step + 1)
    return new_state, jnp.concatenate([z, t], axis=1)
