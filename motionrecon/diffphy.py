"""The DiffPhy loss of one window: simulate the body under the control keyframes,
compare its markers with the observations.

    L(x) = w_3d    * sum_{f,j} c_fj |m_fj(x) - o_fj|^2 / sum c          (cm^2)
         + w_root  * same on root-relative markers (video: depth is uncertain)
         + w_smooth* mean_k |x_{k+1} - 2 x_k + x_{k-1}|^2               (rad^2)
         + w_reg   * mean_k |x_k|^2                                     (deviation from the kinematic init)
         + w_ground* mean_{f,c} max(0, r_c - z_fc)^2                    (cm^2, foot spheres below the floor)

x are the control keyframes [K, U] (offsets from the kinematic initialisation,
see `physics.control`), m the simulated landmark sites of the observed joints,
o the observed joints (metres, world frame), c their confidences.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp

from motionrecon.body import BodyArrays, Layout
from motionrecon.physics import contact, rollout


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossWeights:
    marker3d: float = 1.0
    root_relative: float = 0.0
    smooth: float = 10.0
    reg: float = 0.1
    ground: float = 1.0


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WindowData:
    """Everything a window's loss reads besides the controls.

    init: state at the window's first frame. base_qpos: [F+1, nq] kinematic poses.
    observed: [F, J, 3] observed joints at frames 1..F (metres). confidence: [F, J] (0 = ignore, padding).
    landmarks: [J] int, index into BODY_LANDMARKS of each observed joint.
    """

    init: rollout.SimState
    base_qpos: jax.Array
    observed: jax.Array
    confidence: jax.Array
    landmarks: jax.Array


def marker_error(markers, data: WindowData):
    """Confidence-weighted mean squared marker error (m^2) and the per-frame simulated joints [F, J, 3]."""
    sim = markers[:, data.landmarks]
    sq = jnp.sum((sim - data.observed) ** 2, axis=-1)
    return jnp.sum(data.confidence * sq) / jnp.maximum(jnp.sum(data.confidence), 1e-6), sim


def window_loss(x, data: WindowData, m, arrays: BodyArrays, params: contact.ContactParams, weights: LossWeights,
                *, layout: Layout, spf: int, num_keyframes: int):
    """Loss of flat controls x [K*U]. Returns (loss, (trajectory, parts dict))."""
    keyframes = x.reshape(num_keyframes, layout.num_controls)
    traj = rollout.rollout(m, arrays, params, data.init, data.base_qpos, keyframes, layout=layout, spf=spf)
    e3d, sim = marker_error(traj.markers, data)
    root_sim = sim - sim[:, :1]
    root_obs = data.observed - data.observed[:, :1]
    c = data.confidence * data.confidence[:, :1]
    e_root = jnp.sum(c * jnp.sum((root_sim - root_obs) ** 2, -1)) / jnp.maximum(jnp.sum(c), 1e-6)
    smooth = jnp.mean((keyframes[2:] - 2 * keyframes[1:-1] + keyframes[:-2]) ** 2) if num_keyframes > 2 else 0.0
    reg = jnp.mean(keyframes ** 2)
    below = jax.nn.relu(arrays.contact_radius - traj.contact_pos[..., 2])
    ground = jnp.mean(below ** 2)
    parts = {"marker3d": 1e4 * e3d, "root_relative": 1e4 * e_root, "smooth": smooth, "reg": reg,
             "ground": 1e4 * ground}
    loss = (weights.marker3d * parts["marker3d"] + weights.root_relative * parts["root_relative"]
            + weights.smooth * parts["smooth"] + weights.reg * parts["reg"] + weights.ground * parts["ground"])
    return loss, (traj, parts)


@partial(jax.jit, static_argnames=("layout", "spf", "num_keyframes"))
def loss_and_grad(x, data, m, arrays, params, weights, *, layout: Layout, spf: int, num_keyframes: int):
    """((loss, (trajectory, parts)), d loss / d x) for flat controls x [K*U] (float32).

    One compiled function serves the solver (loss, gradient) and the final
    rollout (trajectory), so each window size compiles once.
    """
    f = lambda x: window_loss(x, data, m, arrays, params, weights, layout=layout, spf=spf,
                              num_keyframes=num_keyframes)
    return jax.value_and_grad(f, has_aux=True)(x)
