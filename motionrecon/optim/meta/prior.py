"""A synthetic prior of training problems (issue 19, part 2): cheap problems with some of the structure of
real windows, behind the meta-training task interface of `tasks.py` (registered as "prior").

Each problem is one of three kinds (drawn with `weights`), in coordinates u = scale * (x - c) where
scale [N] is a random per-coordinate scaling (log10-uniform in +-`scale_decades`) and c [N] the minimiser:

  0 quadratic       f = 1/2 u' Q diag(lam) Q' u, lam drawn from the task's `spectrum` (below);
                    Q a random rotation with probability `rotate`, else the identity (axis-aligned)
  1 least squares   f = 1/2 ||W u + a tanh(V u)||^2 / N: Gauss-Newton-like, non-quadratic (a = 0.5),
                    W with singular values sqrt(lam), lam drawn as for kind 0; V Gaussian / sqrt(N)
  2 classic         one of `classic_functions` (`functions.py`) with a random offset, as `ClassicTask`

Kinds 0 and 1 have f* = 0 at x = c; x0 = c + N(0, 1) / scale. Spectra (`spectrum`), with kappa =
10^U(0, max_log_cond) per problem:

  "log_uniform"     lam log-uniform in [1, kappa]: a guess, made before any window was measured
  "windows"         lam = kappa * 10^r, r drawn from the distribution of log10(lam / lam_max) of the positive
                    eigenvalues measured on the Hessians of real DiffPhy windows (`WINDOW_LOG_SPECTRUM`): half
                    of them three or more decades under the largest, the smallest near 1e-6 of it
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from motionrecon.optim.meta.tasks import ClassicProblem, ClassicTask, normalised_log_loss

NONCONVEX = ("rosenbrock", "rastrigin", "ackley", "levy", "griewank", "styblinski_tang")
SPECTRA = ("log_uniform", "windows")
# The positive eigenvalues of the Hessians of real DiffPhy windows at L-BFGS's end of each window's budget:
# log10(eigenvalue / largest) at the quantiles WINDOW_SPECTRUM_QUANTILES, the median over the windows of
# bench/results/session31/window_spectra.json (`python bench/window_spectra.py`: 16 windows of 8 mocap clips).
WINDOW_SPECTRUM_QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
WINDOW_LOG_SPECTRUM = (-5.74, -5.03, -4.39, -4.07, -3.58, -3.06, -2.65, -1.97, -1.51, -0.61, 0.0)


class PriorProblem(NamedTuple):
    """kind: int32 (0 quadratic, 1 least squares, 2 classic); A, W, V: [N, N]; c, scale: [N];
    classic: the classic problem (used by kind 2); f_star, f_init: scalars."""

    kind: jax.Array
    A: jax.Array
    W: jax.Array
    V: jax.Array
    c: jax.Array
    scale: jax.Array
    classic: ClassicProblem
    f_star: jax.Array
    f_init: jax.Array


def _orthogonal(key, n):
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    return q * jnp.sign(jnp.diag(r))


@dataclasses.dataclass(frozen=True)
class PriorTask:
    dims: tuple[int, ...] = (8, 16, 32)
    weights: tuple[float, float, float] = (0.45, 0.3, 0.25)
    max_log_cond: float = 4.0
    spectrum: str = "log_uniform"
    rotate: float = 0.5
    scale_decades: float = 1.0
    classic_functions: tuple[str, ...] = NONCONVEX
    loss_floor: float = 1e-8
    loss_ceiling: float = 1e2

    name = "prior"

    def __post_init__(self):
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        object.__setattr__(self, "classic_functions", tuple(self.classic_functions))
        if self.spectrum not in SPECTRA:
            raise ValueError(f"spectrum {self.spectrum!r}: choose one of {', '.join(SPECTRA)}")

    def eigenvalues(self, key, log_cond, dim: int):
        """[dim] positive eigenvalues of one problem's quadratic (kind 0), from the task's `spectrum`;
        log_cond: log10 of kappa (scalar)."""
        u = jax.random.uniform(key, (dim,))
        if self.spectrum == "windows":
            r = jnp.interp(u, jnp.asarray(WINDOW_SPECTRUM_QUANTILES), jnp.asarray(WINDOW_LOG_SPECTRUM))
            return 10.0 ** (log_cond + r)
        return 10.0 ** (log_cond * u)

    @property
    def _classic(self) -> ClassicTask:
        return ClassicTask(functions=self.classic_functions, dims=self.dims)

    def loss(self, problem: PriorProblem, x):
        u = problem.scale * (x - problem.c)
        n = x.shape[-1]

        def quadratic():
            return 0.5 * u @ (problem.A @ u)

        def least_squares():
            r = problem.W @ u + 0.5 * jnp.tanh(problem.V @ u)
            return 0.5 * jnp.sum(r * r) / n

        def classic():
            return self._classic.loss(problem.classic, x)

        return jax.lax.switch(problem.kind, (quadratic, least_squares, classic))

    def sample(self, key, dim: int):
        ks = jax.random.split(key, 10)
        kind = jax.random.choice(ks[0], 3, p=jnp.asarray(self.weights) / sum(self.weights))
        log_cond = self.max_log_cond * jax.random.uniform(ks[1])
        lam = self.eigenvalues(ks[2], log_cond, dim)
        q = jnp.where(jax.random.uniform(ks[3]) < self.rotate, _orthogonal(ks[4], dim), jnp.eye(dim))
        A = (q * lam) @ q.T
        sv = jnp.sqrt(self.eigenvalues(ks[5], log_cond, dim))
        W = (_orthogonal(ks[6], dim) * sv) @ _orthogonal(ks[7], dim).T
        V = jax.random.normal(ks[8], (dim, dim)) / jnp.sqrt(dim)
        k_c, k_s, k_x, k_classic = jax.random.split(ks[9], 4)
        c = jax.random.normal(k_c, (dim,))
        scale = 10.0 ** (self.scale_decades * jax.random.uniform(k_s, (dim,), minval=-1.0, maxval=1.0))
        classic, x_classic = self._classic.sample(k_classic, dim)
        is_classic = kind == 2
        x0 = jnp.where(is_classic, x_classic, c + jax.random.normal(k_x, (dim,)) / scale)
        scale = jnp.where(is_classic, 1.0, scale)
        c = jnp.where(is_classic, 0.0, c)
        problem = PriorProblem(kind=kind, A=A, W=W, V=V, c=c, scale=scale, classic=classic,
                               f_star=jnp.where(is_classic, classic.f_star, 0.0), f_init=jnp.zeros(()))
        return problem._replace(f_init=self.loss(problem, x0)), x0

    def meta_loss(self, problem: PriorProblem, losses):
        return normalised_log_loss(losses, problem.f_star, problem.f_init, self.loss_floor, self.loss_ceiling)
