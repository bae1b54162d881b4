"""Optimus as a learned correction of L-BFGS: imitation-initialised, so that it starts as its teacher.

One update for parameters x [N] with gradient g [N] (one evaluation per step, no line search):

    history <- push(history, x - x_prev, g - g_prev)            the last m pairs (`imitation.push`)
    d = lbfgs_direction(history, g)                              the teacher's unit step (`imitation.py`)
    z = [features(x, g), d / rms(d)]                             [N, 34]
    (alpha, c, u) = Optimus network(z)                           `optimus.Optimus._net`
    x <- x + exp(lambda_b * alpha) * d  -  lambda_a * rms(d) * B c

B is Optimus's preconditioner (rank-one updates u, B_0 = I). The step head (alpha, c) and the rank-one
heads are zero-initialised, so with `init_meta_params` alpha = c = u = 0, B stays I and the update is
exactly the teacher's: L-BFGS without a line search, unit steps. Training can only add a correction:
alpha rescales the teacher's step per parameter (what a line search would choose), c adds a step of its
own, in units of the teacher's step size, so the whole update is equivariant to the problem's scale
except for the first step (`first_step` along -g/||g||, as the teacher) and the optional `max_step`
(a cap on the teacher step's Euclidean length, 0: none).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp

from motionrecon.optim import features, imitation
from motionrecon.optim.optimus import Optimus, normalise_preconditioner

NUM_INPUTS = features.NUM_FEATURES + 1  # the features and the normalised teacher direction


class OptimusLBFGSState(NamedTuple):
    """x: [N] iterate; feat: feature accumulators; B: [N, N] preconditioner; history: the teacher's pairs;
    x_prev, g_prev: [N] the previous evaluation; started: bool, whether there is a previous evaluation."""

    x: jax.Array
    feat: features.FeatureState
    B: jax.Array
    history: imitation.History
    x_prev: jax.Array
    g_prev: jax.Array
    started: jax.Array


@dataclasses.dataclass(frozen=True)
class OptimusLBFGS(Optimus):
    """Optimus's architecture options plus the teacher's: history (m), first_step, max_step (see module
    docstring). step_scale is lambda_a of the correction, relative to the teacher's step size."""

    history: int = 10
    first_step: float = 1.0
    max_step: float = 0.0

    kind = "optimus_lbfgs"
    step_option = "first_step"
    starts_as_teacher = True  # no Adam-like warm start before meta-training (`meta.train`)

    def init_meta_params(self, key):
        net = self._transformed.init(key, jnp.zeros((3, NUM_INPUTS), jnp.float32))
        net = hk.data_structures.to_mutable_dict(net)
        net["step_head"] = jax.tree_util.tree_map(jnp.zeros_like, net["step_head"])
        return {"net": net, "decays": features.init_decay_params()}

    def init(self, meta_params, x0) -> OptimusLBFGSState:
        base = super().init(meta_params, x0)
        n = base.x.shape[0]
        return OptimusLBFGSState(x=base.x, feat=base.feat, B=base.B, history=imitation.empty_history(self.history, n),
                                 x_prev=base.x, g_prev=jnp.zeros_like(base.x), started=jnp.asarray(False))

    def teacher(self, history: imitation.History, g):
        """The teacher's step [N] (capped at max_step when set)."""
        d = imitation.lbfgs_direction(history, g, self.first_step)
        if self.max_step > 0:
            d = d * jnp.minimum(1.0, self.max_step / jnp.maximum(jnp.linalg.norm(d), 1e-30))
        return d

    def _outputs(self, net_params, z, d):
        """(alpha [N], c [N], u [L, N]) from features z [N, F] and the teacher's step d [N]."""
        return self.apply_net(net_params, jnp.concatenate([z, (d / features.rms(d))[:, None]], axis=1))

    def _step(self, alpha, c, d, B):
        correction = self.step_scale * features.rms(d) * c
        if B.shape[0]:
            correction = B @ correction
        return jnp.exp(jnp.clip(self.step_exp * alpha, -30.0, 30.0)) * d - correction

    def step_from_labels(self, meta_params, z, d):
        """The step [N] from stored features z [N, F] and teacher step d [N], with B = I (imitation)."""
        alpha, c, _ = self._outputs(meta_params["net"], z, d)
        return self._step(alpha, c, d, jnp.zeros((0, 0), d.dtype))

    def update(self, meta_params, state: OptimusLBFGSState, grad, loss=None) -> OptimusLBFGSState:
        g = features.sanitise_gradient(grad)
        pushed = imitation.push(state.history, state.x - state.x_prev, g - state.g_prev)
        history = jax.tree_util.tree_map(lambda a, b: jnp.where(state.started, a, b), pushed, state.history)
        d = self.teacher(history, g)
        feat, z = features.update(meta_params["decays"], state.feat, state.x, g)
        alpha, c, u = self._outputs(meta_params["net"], z, d)
        B = state.B
        if self.variant != "no_structure":
            base = B if self.variant == "full" else jnp.eye(state.x.shape[0], dtype=B.dtype)
            B = normalise_preconditioner(base + u.T @ u)
        x = state.x + self._step(alpha, c, d, B)
        return OptimusLBFGSState(x=x, feat=feat, B=B, history=history, x_prev=state.x, g_prev=g,
                                 started=jnp.asarray(True))


CLASSIC_WEIGHTS = "optimus_lbfgs_classic.npz"  # no step cap: the classical test functions (the benchmark's)
DIFFPHY_WEIGHTS = "optimus_lbfgs_diffphy.npz"  # the same meta-parameters, max_step 0.3 rad for DiffPhy windows
WEIGHTS = DIFFPHY_WEIGHTS  # `get_solver("optimus_lbfgs")`

