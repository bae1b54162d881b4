"""Optimus: the Transformer-based learned optimizer of Gärtner et al. (CVPR 2023), in JAX + dm-haiku.

One update for parameters x [N] with gradient g [N]:

    z = features(x, g)                      [N, 33]  Adafactor-MLP features (`features.py`)
    (alpha, d) = MLP(z)                     per parameter: 4 hidden layers of 128 units, ReLU
    s = lambda_a * exp(lambda_b * alpha) * d,   lambda_a = lambda_b = 0.1
    h_0 = Linear_D(z);  h_l = E_l(h_{l-1});  u_l = M_l(h_l) [N]     l = 1..3, D = 128
    B~ = B + sum_l u_l u_l^T;  B = sqrt(N) * B~ / ||B~||_F          (B_0 = I)
    x <- x - B s

E_l are pre-LayerNorm Transformer encoder layers without positional encoding
(so they, like everything else here, are equivariant to permutations of the
parameters), M_l per-token linear maps to one number. All layers act per
parameter token, so one set of meta-parameters serves every N.

Normalisation: the paper writes B = B~/||B~||. With the Frobenius norm taken
literally, B_1 ~ I/sqrt(N), which would shrink every step by sqrt(N) and tie the
step size to the problem size; we scale to ||B||_F = sqrt(N) instead, so B_0 = I
is a fixed point of the normalisation and an isotropic B acts like the identity
at every N. (Which norm the paper used is not stated in the text we had.)

Ablations (`variant`): "full" (above); "no_state": B~ = I + sum_l u_l u_l^T,
B not carried across iterations; "no_structure": no preconditioner, the
Transformer's last tokens predict (alpha, d) and x <- x - s directly.

Cost: B is N x N float32 (4 MB at N = 1000); one update is O(N^2 D) for the
attention and O(N^2) for B.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.optim import features
from motionrecon.optim.learned import LearnedOptimizer, LearnedSolver, StopRule

VARIANTS = ("full", "no_state", "no_structure")


class OptimusState(NamedTuple):
    """x: [N] iterate; feat: feature accumulators; B: [N, N] preconditioner ([0, 0] for "no_structure")."""

    x: jax.Array
    feat: features.FeatureState
    B: jax.Array


def encoder_layer(h, num_heads: int, ffn_dim: int, w_scale: float):
    """Pre-LayerNorm Transformer encoder layer over tokens h [N, D] (no positional encoding)."""
    dim = h.shape[-1]
    init = hk.initializers.VarianceScaling(w_scale)
    a = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
    h = h + hk.MultiHeadAttention(num_heads=num_heads, key_size=dim // num_heads, model_size=dim, w_init=init)(a, a, a)
    a = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
    a = jax.nn.gelu(hk.Linear(ffn_dim, w_init=init)(a))
    return h + hk.Linear(dim, w_init=init)(a)


@dataclasses.dataclass(frozen=True)
class Optimus(LearnedOptimizer):
    """Architecture options (all hashable; see module docstring)."""

    variant: str = "full"
    mlp_hidden: int = 128
    mlp_layers: int = 4
    model_dim: int = 128
    num_encoders: int = 3
    num_heads: int = 4
    ffn_dim: int = 256
    step_scale: float = 0.1  # lambda_a
    step_exp: float = 0.1  # lambda_b

    kind = "optimus"
    step_option = "step_scale"
    imitation_scale = 1.0  # d that makes s an Adam-like step of step_scale in normalised units

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown Optimus variant {self.variant!r}; choose from {', '.join(VARIANTS)}")

    # -- network -----------------------------------------------------------------------------------------
    def _net(self, z):
        """z [N, F] -> (alpha [N], d [N], u [L, N]); u is empty for "no_structure"."""
        out_init = hk.initializers.TruncatedNormal(stddev=0.01)
        if self.variant == "no_structure":
            h = hk.Linear(self.model_dim, name="embed")(z)
            for _ in range(self.num_encoders):
                h = encoder_layer(h, self.num_heads, self.ffn_dim, 1.0 / self.num_encoders)
            out = hk.Linear(2, w_init=out_init, name="step_head")(h)
            return out[:, 0], out[:, 1], jnp.zeros((0, z.shape[0]), z.dtype)
        h = z
        for i in range(self.mlp_layers):
            h = jax.nn.relu(hk.Linear(self.mlp_hidden, name=f"mlp_{i}")(h))
        out = hk.Linear(2, w_init=out_init, name="step_head")(h)
        e = hk.Linear(self.model_dim, name="embed")(z)
        us = []
        for layer in range(self.num_encoders):
            e = encoder_layer(e, self.num_heads, self.ffn_dim, 1.0 / self.num_encoders)
            us.append(hk.Linear(1, w_init=jnp.zeros, name=f"rank_one_{layer}")(e)[:, 0])
        return out[:, 0], out[:, 1], jnp.stack(us)

    @functools.cached_property
    def _transformed(self):
        return hk.without_apply_rng(hk.transform(self._net))

    def apply_net(self, net_params, z):
        """(alpha [N], d [N], u [L, N]) for features z [N, F]."""
        return self._transformed.apply(net_params, z)

    # -- LearnedOptimizer ---------------------------------------------------------------------------------
    def init_meta_params(self, key):
        net = self._transformed.init(key, jnp.zeros((3, features.NUM_FEATURES), jnp.float32))
        return {"net": hk.data_structures.to_mutable_dict(net), "decays": features.init_decay_params()}

    def init(self, meta_params, x0) -> OptimusState:
        x0 = jnp.asarray(x0, jnp.float32)
        n = x0.shape[0]
        B = jnp.zeros((0, 0), jnp.float32) if self.variant == "no_structure" else jnp.eye(n, dtype=jnp.float32)
        return OptimusState(x=x0, feat=features.init(n), B=B)

    def step_sizes(self, alpha, d):
        """s = lambda_a * exp(lambda_b * alpha) * d (exponent clipped at +-30 for safety)."""
        return self.step_scale * jnp.exp(jnp.clip(self.step_exp * alpha, -30.0, 30.0)) * d

    def update(self, meta_params, state: OptimusState, grad, loss=None) -> OptimusState:
        feat, z = features.update(meta_params["decays"], state.feat, state.x, grad)
        alpha, d, u = self.apply_net(meta_params["net"], z)
        s = self.step_sizes(alpha, d)
        if self.variant == "no_structure":
            return OptimusState(x=state.x - s, feat=feat, B=state.B)
        base = state.B if self.variant == "full" else jnp.eye(state.x.shape[0], dtype=state.B.dtype)
        B = normalise_preconditioner(base + u.T @ u)
        return OptimusState(x=state.x - B @ s, feat=feat, B=B)

    def per_parameter_outputs(self, meta_params, z):
        """(alpha, d) for features z [N, F] (used to warm-start the step head by imitation)."""
        alpha, d, _ = self.apply_net(meta_params["net"], z)
        return alpha, d


def normalise_preconditioner(B):
    """sqrt(N) * B / ||B||_F for B [N, N]: identity-preserving Frobenius normalisation."""
    n = B.shape[0]
    return B * (jnp.sqrt(jnp.float32(n)) / jnp.maximum(jnp.linalg.norm(B), 1e-30))


CLASSIC_WEIGHTS = "optimus_classic.npz"   # meta-trained on the classical test functions (the benchmark's)
DIFFPHY_WEIGHTS = "optimus_diffphy.npz"   # meta-trained on DiffPhy reconstruction windows (the app's)
DEFAULT_WEIGHTS = DIFFPHY_WEIGHTS


class OptimusSolver(LearnedSolver):
    """`get_solver("optimus", weights=..., default_weights=..., stop_rule=...)`.

    weights: a weight file (see `learned.save_weights`); None loads `default_weights`
    from the bundled weights/ folder ("optimus_diffphy.npz" unless told otherwise; the
    classical benchmark uses CLASSIC_WEIGHTS).
    """

    def __init__(self, weights: Optional[str] = None, default_weights: str = DEFAULT_WEIGHTS,
                 stop_rule: Optional[StopRule] = StopRule()):
        super().__init__(name="optimus", weights=weights, default_weights=default_weights, stop_rule=stop_rule)


def count_meta_params(meta_params) -> int:
    return int(sum(np.size(a) for a in jax.tree_util.tree_leaves(meta_params)))
