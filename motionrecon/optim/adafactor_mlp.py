"""Adafactor MLP learned optimizer (Metz et al. 2022; learned_optimization's `AdafacMLPLOpt`), for one flat vector.

Per parameter: features z (`features.py`, 33 channels) -> MLP (default 2 hidden
layers of 4 units, ReLU) -> (d, mu); step = d * exp(exp_mult * mu) * step_mult with
exp_mult = step_mult = 0.001 (the library's defaults); x <- x - step. The
momentum/RMS/Adafactor decays are meta-learned (`features.decays`). The paper's
comparison also used 128x4 and 512x4 MLPs: `AdafactorMLP(hidden_size=128, hidden_layers=4)`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional

import haiku as hk
import jax
import jax.numpy as jnp

from motionrecon.optim import features
from motionrecon.optim.learned import LearnedOptimizer, LearnedSolver, StopRule


class AdafactorMLPState(NamedTuple):
    x: jax.Array
    feat: features.FeatureState


@dataclasses.dataclass(frozen=True)
class AdafactorMLP(LearnedOptimizer):
    hidden_size: int = 4
    hidden_layers: int = 2
    exp_mult: float = 0.001
    step_mult: float = 0.001

    kind = "adafactor_mlp"
    step_option = "step_mult"

    @property
    def imitation_scale(self) -> float:
        """d that makes the step an Adam-like 0.1 in normalised units (as Optimus's warm start)."""
        return 0.1 / self.step_mult

    def _net(self, z):
        h = z
        for i in range(self.hidden_layers):
            h = jax.nn.relu(hk.Linear(self.hidden_size, name=f"mlp_{i}",
                                      w_init=hk.initializers.TruncatedNormal(1.0 / z.shape[-1] ** 0.5))(h))
        out = hk.Linear(2, name="step_head")(h)
        return out[:, 0], out[:, 1]  # direction d, log-magnitude mu

    @functools.cached_property
    def _transformed(self):
        return hk.without_apply_rng(hk.transform(self._net))

    def init_meta_params(self, key):
        net = self._transformed.init(key, jnp.zeros((3, features.NUM_FEATURES), jnp.float32))
        return {"net": hk.data_structures.to_mutable_dict(net), "decays": features.init_decay_params()}

    def init(self, meta_params, x0) -> AdafactorMLPState:
        x0 = jnp.asarray(x0, jnp.float32)
        return AdafactorMLPState(x=x0, feat=features.init(x0.shape[0]))

    def update(self, meta_params, state: AdafactorMLPState, grad, loss=None) -> AdafactorMLPState:
        feat, z = features.update(meta_params["decays"], state.feat, state.x, grad)
        d, mu = self._transformed.apply(meta_params["net"], z)
        step = d * jnp.exp(jnp.clip(mu * self.exp_mult, -30.0, 30.0)) * self.step_mult
        return AdafactorMLPState(x=state.x - step, feat=feat)

    def per_parameter_outputs(self, meta_params, z):
        """(mu, d): the log-magnitude and direction outputs (imitation warm starts target mu = 0)."""
        d, mu = self._transformed.apply(meta_params["net"], z)
        return mu, d


CLASSIC_WEIGHTS = "adafactor_mlp_classic.npz"  # meta-trained on the classical test functions (the benchmark's)
DIFFPHY_WEIGHTS = "adafactor_mlp_diffphy.npz"  # the same meta-parameters, step multiplier chosen on DiffPhy windows
DEFAULT_WEIGHTS = DIFFPHY_WEIGHTS


class AdafactorMLPSolver(LearnedSolver):
    """`get_solver("adafactor_mlp", weights=..., default_weights=..., stop_rule=...)`."""

    def __init__(self, weights: Optional[str] = None, default_weights: str = DEFAULT_WEIGHTS,
                 stop_rule: Optional[StopRule] = StopRule()):
        super().__init__(name="adafactor_mlp", weights=weights, default_weights=default_weights,
                         stop_rule=stop_rule)
