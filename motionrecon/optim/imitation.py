"""Imitation of L-BFGS: its direction from a stored (s, y) history, labels from recorded trajectories at no
extra evaluations, and supervised regression of a learned optimizer's step onto them (with DAgger-style
relabelling of the student's own trajectories).

The teacher. With the last m pairs s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i (oldest first) and the
initial inverse Hessian H_0 = gamma I, gamma = s'y / y'y of the newest pair, the two-loop recursion gives

    q = g;  for i = newest..oldest:  a_i = rho_i s_i'q,  q -= a_i y_i          (rho_i = 1 / y_i's_i)
    r = gamma q;  for i = oldest..newest:  b = rho_i y_i'r,  r += (a_i - b) s_i
    direction = -r = -H g

(Nocedal & Wright, Algorithm 7.4). Pairs that fail the curvature condition y's > eps ||y||^2 are not
stored (as SciPy's L-BFGS-B skips them). With no pair yet the teacher moves `first_step` along -g/||g||
(SciPy's L-BFGS-B starts its first line search with a step of that length, 1).

Everything is a pure function of fixed-size arrays ([m, N] histories with a validity mask), usable under
jit / vmap / scan.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from motionrecon.optim import features

CURVATURE_EPS = 1e-10  # a pair is kept when y's > CURVATURE_EPS * ||y||^2


class History(NamedTuple):
    """The last m curvature pairs, oldest first. s, y: [m, N]; valid: [m] bool (False: an empty slot)."""

    s: jax.Array
    y: jax.Array
    valid: jax.Array


def empty_history(m: int, n: int, dtype=jnp.float32) -> History:
    return History(s=jnp.zeros((m, n), dtype), y=jnp.zeros((m, n), dtype), valid=jnp.zeros((m,), bool))


def push(history: History, s: jax.Array, y: jax.Array) -> History:
    """The history with the pair (s [N], y [N]) appended (the oldest dropped), unless it fails the
    curvature condition (then unchanged)."""
    sy = jnp.vdot(s, y)
    ok = jnp.isfinite(sy) & (sy > CURVATURE_EPS * jnp.vdot(y, y)) & jnp.all(jnp.isfinite(s) & jnp.isfinite(y))
    rolled = History(s=jnp.roll(history.s, -1, axis=0).at[-1].set(s),
                     y=jnp.roll(history.y, -1, axis=0).at[-1].set(y),
                     valid=jnp.roll(history.valid, -1).at[-1].set(True))
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), rolled, history)


def lbfgs_direction(history: History, g: jax.Array, first_step: float = 1.0) -> jax.Array:
    """The L-BFGS direction -H g [N] for gradient g [N] by the two-loop recursion (module docstring).

    Without any valid pair: -first_step * g / ||g|| (zero for a zero gradient)."""
    valid = history.valid
    sy = jnp.sum(history.s * history.y, axis=1)
    rho = jnp.where(valid, 1.0 / jnp.where(valid, sy, 1.0), 0.0)  # an empty slot contributes nothing

    def backward(q, i):
        a = rho[i] * jnp.vdot(history.s[i], q)
        return q - a * history.y[i], a

    m = valid.shape[0]
    q, a_rev = jax.lax.scan(backward, g, jnp.arange(m - 1, -1, -1))
    alphas = a_rev[::-1]
    yy = jnp.vdot(history.y[-1], history.y[-1])
    gamma = jnp.where(valid[-1], sy[-1] / jnp.where(valid[-1], yy, 1.0), 1.0)

    def forward(r, i):
        b = rho[i] * jnp.vdot(history.y[i], r)
        return r + (alphas[i] - b) * history.s[i], None

    r, _ = jax.lax.scan(forward, gamma * q, jnp.arange(m))
    gnorm = jnp.linalg.norm(g)
    first = -first_step * g / jnp.where(gnorm > 0, gnorm, 1.0)
    return jnp.where(jnp.any(valid), -r, first)


# -------------------------------------------------------------------------------------------------- labels

class Labels(NamedTuple):
    """Imitation labels along a trajectory of T evaluations of an N-parameter problem.

    features: [T, N, F] the learned optimizer's per-parameter features after evaluation t (`features.py`);
    teacher: [T, N] the L-BFGS direction from the pairs of evaluations 0..t (the teacher's unit step);
    step: [T, N] the step the recorded trajectory took next, x_{t+1} - x_t (zeros at the last);
    has_step: [T] bool, whether `step` is known (False at the last evaluation)."""

    features: jax.Array
    teacher: jax.Array
    step: jax.Array
    has_step: jax.Array


def trajectory_labels(xs, gs, history: int = 10, first_step: float = 1.0, decay_params=None) -> Labels:
    """Labels from a recorded trajectory: parameters xs [T, N] and gradients gs [T, N] of its evaluations
    in order. The teacher's pairs are consecutive evaluations (s = x_t - x_{t-1}, y = g_t - g_{t-1}), so
    no evaluation is added. decay_params: the feature decays (default: their initial values)."""
    xs, gs = jnp.asarray(xs, jnp.float32), jnp.asarray(gs, jnp.float32)
    decay_params = features.init_decay_params() if decay_params is None else decay_params
    n = xs.shape[1]

    def step(carry, xg):
        fstate, hist, x_prev, g_prev, t = carry
        x, g = xg
        g = features.sanitise_gradient(g)
        hist = jax.lax.cond(t > 0, lambda: push(hist, x - x_prev, g - g_prev), lambda: hist)
        fstate, z = features.update(decay_params, fstate, x, g)
        return (fstate, hist, x, g, t + 1), (z, lbfgs_direction(hist, g, first_step))

    carry = (features.init(n), empty_history(history, n), xs[0], gs[0], jnp.asarray(0))
    _, (z, teacher) = jax.lax.scan(step, carry, (xs, gs))
    steps = jnp.concatenate([xs[1:] - xs[:-1], jnp.zeros((1, n), xs.dtype)])
    has_step = jnp.arange(xs.shape[0]) < xs.shape[0] - 1
    return Labels(features=z, teacher=teacher, step=steps, has_step=has_step)


def relabel_with_teacher(labels: Labels) -> Labels:
    """DAgger: on the student's own trajectory the target is the teacher's unit step from where the student
    is (its history), not the step the student took."""
    return labels._replace(step=labels.teacher, has_step=jnp.ones_like(labels.has_step))


# ------------------------------------------------------------------------------------------- recordings

@dataclasses.dataclass
class Trajectory:
    """Evaluations of one solve in order: xs [T, N], gs [T, N], losses [T] (float64, NumPy)."""

    xs: np.ndarray
    gs: np.ndarray
    losses: np.ndarray


def record_scipy_lbfgs(fun_and_grad: Callable, x0: np.ndarray, max_evals: int, history: int = 10) -> Trajectory:
    """The accepted iterates of SciPy's L-BFGS-B (line-search trials dropped), with their gradients: the
    steps between them are the teacher's directions times the step lengths its line search chose."""
    import scipy.optimize

    seen: list[tuple[np.ndarray, float, np.ndarray]] = []
    accepted: list[int] = [0]

    def f(x):
        loss, grad = fun_and_grad(np.asarray(x, np.float64))
        seen.append((np.array(x, np.float64), float(loss), np.asarray(grad, np.float64)))
        return float(loss), np.asarray(grad, np.float64)

    def callback(xk):
        hits = [i for i in range(len(seen) - 1, -1, -1) if np.array_equal(seen[i][0], xk)]
        if hits:
            accepted.append(hits[0])

    scipy.optimize.minimize(f, np.asarray(x0, np.float64), jac=True, method="L-BFGS-B", callback=callback,
                            options={"maxfun": max_evals, "maxcor": history, "ftol": 0.0, "gtol": 0.0})
    keep = sorted(set(accepted))
    return Trajectory(xs=np.stack([seen[i][0] for i in keep]), gs=np.stack([seen[i][2] for i in keep]),
                      losses=np.array([seen[i][1] for i in keep]))


def student_trajectory(optimizer, meta_params, loss_fn: Callable, x0, steps: int):
    """(xs [steps, N], gs [steps, N], losses [steps]) of a learned optimizer's own run (one evaluation per
    step) on a JAX loss x [N] -> scalar; jittable with the optimizer static."""

    def step(state, _):
        loss, grad = jax.value_and_grad(loss_fn)(state.x)
        return optimizer.update(meta_params, state, grad, loss), (state.x, grad, loss)

    _, (xs, gs, losses) = jax.lax.scan(step, optimizer.init(meta_params, x0), None, length=steps)
    return xs, gs, losses


# ------------------------------------------------------------------------------------------ regression

def imitation_loss(optimizer, meta_params, labels: Labels) -> jax.Array:
    """Mean over labelled evaluations of ||student step - label step||^2 / (||label step||^2 + ||teacher||^2)
    (bounded where a line search accepted a tiny step), the student's step computed from the stored features
    and teacher direction (`optimizer.step_from_labels`)."""
    pred = jax.vmap(lambda z, d: optimizer.step_from_labels(meta_params, z, d))(labels.features, labels.teacher)
    # in units of the larger of the two label norms, so that huge (finite) steps do not overflow float32
    unit = jnp.maximum(jnp.max(jnp.abs(labels.step), axis=-1), jnp.max(jnp.abs(labels.teacher), axis=-1))[:, None]
    unit = jnp.where(unit > 0, unit, 1.0)
    step, teacher = labels.step / unit, labels.teacher / unit
    err = jnp.sum(((pred / unit) - step) ** 2, axis=-1) / (jnp.sum(step**2, axis=-1) + jnp.sum(teacher**2, axis=-1)
                                                          + 1e-12)
    w = labels.has_step.astype(err.dtype)
    return jnp.sum(jnp.where(labels.has_step, err, 0.0)) / jnp.maximum(jnp.sum(w), 1.0)


def concatenate(label_sets: list[Labels]) -> Labels:
    """Labels of several trajectories of one problem size as one set (every evaluation is one item), without
    the items whose features, teacher or step are not finite (a diverging trajectory's last evaluations)."""
    labels = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *label_sets)
    finite = (jnp.all(jnp.isfinite(labels.features), axis=(1, 2)) & jnp.all(jnp.isfinite(labels.teacher), axis=1)
              & jnp.all(jnp.isfinite(labels.step), axis=1))
    keep = np.flatnonzero(np.asarray(finite))
    return jax.tree_util.tree_map(lambda a: a[keep], labels)


def fit(optimizer, meta_params, label_sets: list[Labels], steps: int, learning_rate: float = 1e-3,
        batch: int = 64, seed: int = 0, log: Callable = print):
    """Adam (global-norm clip 1) on the network's parameters ("net"; the decays stay, the features were computed with them)
    regressing the step onto labels: each step a random batch of `batch` evaluations from one set (the
    sets in turn, each set one problem size). Returns (meta_params, final loss per set)."""
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))
    net = meta_params["net"]

    @jax.jit
    def step(net, opt_state, labels):
        loss, grad = jax.value_and_grad(lambda p: imitation_loss(optimizer, {**meta_params, "net": p}, labels))(net)
        updates, opt_state = tx.update(grad, opt_state, net)
        return optax.apply_updates(net, updates), opt_state, loss

    loss_of = jax.jit(lambda th, labels: imitation_loss(optimizer, th, labels))
    rng = np.random.default_rng(seed)
    opt_state = tx.init(net)
    for i in range(steps):
        labels = label_sets[i % len(label_sets)]
        pick = rng.integers(0, labels.has_step.shape[0], size=batch)
        net, opt_state, loss = step(net, opt_state, jax.tree_util.tree_map(lambda a: a[pick], labels))
        if i % 50 == 0 or i == steps - 1:
            log(f"imitation step {i}: loss {float(loss):.4g}")
    meta_params = {**meta_params, "net": net}
    return meta_params, [float(loss_of(meta_params, lab)) for lab in label_sets]
