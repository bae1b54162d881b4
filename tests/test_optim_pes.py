"""PES meta-gradients against the exact gradient of the Gaussian-smoothed meta-loss on a tiny quadratic."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.optim.learned import LearnedOptimizer
from motionrecon.optim.meta import pes


class SGDState(NamedTuple):
    x: jax.Array


@dataclasses.dataclass(frozen=True)
class LearnedLR(LearnedOptimizer):
    """'Learned' SGD whose only meta-parameter is the learning rate."""

    kind = "test_lr"

    def init_meta_params(self, key):
        return {"lr": jnp.array([0.3])}

    def init(self, meta_params, x0):
        return SGDState(x=jnp.asarray(x0, jnp.float32))

    def update(self, meta_params, state, grad, loss=None):
        return SGDState(x=state.x - meta_params["lr"][0] * grad)


@dataclasses.dataclass(frozen=True)
class Quadratic:
    """f(x) = a/2 x^2 from x0 = 1; meta-loss = mean loss over the truncation."""

    a: float = 1.0
    dims = (1,)

    def sample(self, key, dim):
        return jnp.zeros(()), jnp.ones((dim,))

    def loss(self, problem, x):
        return 0.5 * self.a * jnp.sum(x * x)

    def meta_loss(self, problem, losses):
        return jnp.mean(losses)


K, SIGMA, A = 2, 0.1, 1.0


def smoothed_truncation_loss(theta, k, per_truncation=True):
    """E over eps_0..eps_k ~ N(0, sigma^2) of the meta-loss of truncation k, each truncation j using theta_j = theta + eps_j.

    The loss at step s of truncation k is a/2 * prod_{j<k} c_j^(2K) * c_k^(2s) with c = 1 - a * theta_j (x0 = 1),
    and the truncations' perturbations are independent, so the expectation factorises into Gaussian moments
    M(n) = E[(1 - a (theta + eps))^n], computed exactly by Gauss-Hermite quadrature.
    If per_truncation is False, theta enters only the last truncation (the earlier ones are held at a constant
    with the same value): the target that truncated ES, which forgets earlier perturbations, estimates instead.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()

    def moment(th, n):
        return jnp.sum(weights * (1.0 - A * (th + SIGMA * nodes)) ** n)

    past = theta if per_truncation else jax.lax.stop_gradient(theta)
    return jnp.mean(jnp.stack([0.5 * A * moment(past, 2 * K) ** k * moment(theta, 2 * s) for s in range(K)]))


def test_pes_estimate_is_unbiased_for_the_smoothed_meta_loss():
    optimizer, task = LearnedLR(), Quadratic()
    config = pes.PESConfig(num_tasks=4096, unroll_length=3 * K, truncation=K, sigma=SIGMA)
    theta = optimizer.init_meta_params(None)
    step = jax.jit(pes.pes_step, static_argnums=(0, 1, 2))
    repeats = 12
    estimates = np.zeros((repeats, 3))
    for r in range(repeats):
        state = pes.pes_init(optimizer, task, config, theta, 1, jax.random.PRNGKey(r))
        state = state._replace(step=jnp.zeros_like(state.step))  # all tasks start together: truncations 0, 1, 2
        for k in range(3):
            grad, state, _ = step(optimizer, task, config, theta, state, jax.random.PRNGKey(1000 * r + k))
            estimates[r, k] = float(grad["lr"][0])
    mean, stderr = estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(repeats)
    for k in range(3):
        true = float(jax.grad(smoothed_truncation_loss)(0.3, k))
        truncated_target = float(jax.grad(lambda t: smoothed_truncation_loss(t, k, per_truncation=False))(0.3))
        assert abs(mean[k] - true) < 4 * stderr[k] + 1e-3 * abs(true), (k, mean[k], true, stderr[k])
        if k > 0:  # the test can tell PES from the biased truncated-ES target
            assert abs(truncated_target - true) > 8 * stderr[k], (k, truncated_target, true, stderr[k])


def test_pes_resets_inner_problems_and_perturbation_sums():
    optimizer, task = LearnedLR(), Quadratic()
    config = pes.PESConfig(num_tasks=3, unroll_length=2 * K, truncation=K, sigma=SIGMA)
    theta = optimizer.init_meta_params(None)
    state = pes.pes_init(optimizer, task, config, theta, 1, jax.random.PRNGKey(0))
    # tasks at inner steps 0, K, 2K (= unroll_length: due for a reset), all mid-problem at x = 5, xi = 1
    state = state._replace(step=jnp.array([0, K, 2 * K]), pos=SGDState(x=jnp.full((3, 1), 5.0)),
                           neg=SGDState(x=jnp.full((3, 1), 5.0)), xi=jnp.ones_like(state.xi))
    _, new, metrics = pes.pes_step(optimizer, task, config, theta, state, jax.random.PRNGKey(1))
    assert int(metrics["resets"]) == 1
    np.testing.assert_array_equal(np.asarray(new.step), [K, 2 * K, K])
    x = np.abs(np.asarray(new.pos.x[:, 0]))
    assert x[2] < 1.0 and x[0] > 1.0 and x[1] > 1.0  # only the third restarted from x0 = 1
    xi = np.asarray(new.xi[:, 0])
    assert abs(xi[2]) < 0.5 and xi[0] > 0.5 and xi[1] > 0.5  # its perturbation sum restarted too


@dataclasses.dataclass(frozen=True)
class LearnedLRAndDecay(LearnedLR):
    """Two meta-parameters: the learning rate (used) and one the loss does not depend on."""

    def init_meta_params(self, key):
        return {"lr": jnp.array([0.3]), "unused": jnp.array([0.0])}


def test_pes_on_a_subset_perturbs_only_those_and_stays_unbiased():
    optimizer, task = LearnedLRAndDecay(), Quadratic()
    config = pes.PESConfig(num_tasks=4096, unroll_length=3 * K, truncation=K, sigma=SIGMA)
    theta = optimizer.init_meta_params(None)
    indices = jnp.array([0], jnp.int32)  # ravel order sorts dict keys: "lr" first
    step = jax.jit(pes.pes_step, static_argnums=(0, 1, 2))
    repeats = 12
    estimates = np.zeros(repeats)
    for r in range(repeats):
        state = pes.pes_init(optimizer, task, config, theta, 1, jax.random.PRNGKey(r), indices)
        assert state.xi.shape == (config.num_tasks, 1)
        state = state._replace(step=jnp.zeros_like(state.step))
        grad, state, _ = step(optimizer, task, config, theta, state, jax.random.PRNGKey(77 + r), indices)
        assert float(grad["unused"][0]) == 0.0
        estimates[r] = float(grad["lr"][0])
    true = float(jax.grad(smoothed_truncation_loss)(0.3, 0))
    stderr = estimates.std(ddof=1) / np.sqrt(repeats)
    assert abs(estimates.mean() - true) < 4 * stderr + 1e-3 * abs(true), (estimates.mean(), true, stderr)
