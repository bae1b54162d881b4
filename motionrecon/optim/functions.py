"""The 15 classical test functions of the Optimus paper's benchmark (its section 5.1, Table 8).

Every function is defined for any dimension d >= 2, written in JAX (float32,
jit/vmap/grad friendly), with its known global minimum value f*(d), a global
minimiser x*(d) and the box used to draw random initialisations. Definitions
follow the Virtual Library of Simulation Experiments (Surjanovic & Bingham,
sfu.ca/~ssurjano); deviations, all forced by dimensions up to 1000, are:

- Perm (0, d, beta=10): initialisations come from [-1, 1]^d instead of
  [-d, d]^d, because x_j^i with |x_j| > 1 and i up to d overflows float32 (and
  float64) for d >~ 15. The minimiser x_j = 1/j lies inside [-1, 1].
- Powell: defined for d a multiple of 4; other d are zero-padded to the next
  multiple of 4 (the padded coordinates are constants 0), which keeps f* = 0 at
  x* = 0 and the standard form whenever 4 divides d.
- Ackley: sqrt(mean(x^2) + 1e-20) so the gradient at the minimiser is 0 rather
  than NaN; the value moves by < 1e-8.

`offset` support: `evaluate(fn, x, offset)` computes f(x - offset), moving the
minimiser to x* + offset (meta-training uses random offsets so a learned
optimizer cannot memorise where the minimum is).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class TestFunction:
    """A benchmark function.

    Attributes:
      name: lower-case identifier with underscores, e.g. "dixon_price".
      fn: x [d] float32 -> scalar; differentiable with jax.grad.
      minimum: d -> f*(d), the global minimum value.
      minimiser: d -> x*(d) [d] float64, one global minimiser.
      domain: d -> (low, high), the box for random initialisations.
    """

    __test__ = False  # not a pytest class

    name: str
    fn: Callable
    minimum: Callable[[int], float]
    minimiser: Callable[[int], np.ndarray]
    domain: Callable[[int], tuple[float, float]]


def _idx(x):
    """1-based coordinate indices [d], float32."""
    return jnp.arange(1, x.shape[-1] + 1, dtype=x.dtype)


def ackley(x):
    a, b, c = 20.0, 0.2, 2.0 * math.pi
    rms = jnp.sqrt(jnp.mean(x * x) + 1e-20)
    return -a * jnp.exp(-b * rms) - jnp.exp(jnp.mean(jnp.cos(c * x))) + a + math.e


def dixon_price(x):
    i = _idx(x)[1:]
    return (x[0] - 1.0) ** 2 + jnp.sum(i * (2.0 * x[1:] ** 2 - x[:-1]) ** 2)


def griewank(x):
    return jnp.sum(x * x) / 4000.0 - jnp.prod(jnp.cos(x / jnp.sqrt(_idx(x)))) + 1.0


def levy(x):
    w = 1.0 + (x - 1.0) / 4.0
    head = jnp.sin(math.pi * w[0]) ** 2
    mid = jnp.sum((w[:-1] - 1.0) ** 2 * (1.0 + 10.0 * jnp.sin(math.pi * w[:-1] + 1.0) ** 2))
    tail = (w[-1] - 1.0) ** 2 * (1.0 + jnp.sin(2.0 * math.pi * w[-1]) ** 2)
    return head + mid + tail


PERM_BETA = 10.0


def perm(x):
    """Perm (0, d, beta): sum_i (sum_j (j + beta)(x_j^i - j^-i))^2, i, j = 1..d.

    Powers by cumulative products (exact for negative x, no pow of a negative base).
    """
    d = x.shape[-1]
    j = _idx(x)
    x_pow = jnp.cumprod(jnp.broadcast_to(x, (d, d)), axis=0)  # row i-1: x_j^i
    inv_j_pow = jnp.cumprod(jnp.broadcast_to(1.0 / j, (d, d)), axis=0)  # row i-1: j^-i
    inner = jnp.sum((j + PERM_BETA) * (x_pow - inv_j_pow), axis=1)
    return jnp.sum(inner**2)


def powell(x):
    d = x.shape[-1]
    pad = (-d) % 4
    z = jnp.concatenate([x, jnp.zeros((pad,), x.dtype)]).reshape(-1, 4)
    a, b, c, e = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
    return jnp.sum((a + 10.0 * b) ** 2 + 5.0 * (c - e) ** 2 + (b - 2.0 * c) ** 4 + 10.0 * (a - e) ** 4)


def rastrigin(x):
    return 10.0 * x.shape[-1] + jnp.sum(x * x - 10.0 * jnp.cos(2.0 * math.pi * x))


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1.0) ** 2)


def rotated_hyper_ellipsoid(x):
    """sum_i sum_{j<=i} x_j^2 = sum_j (d - j + 1) x_j^2."""
    d = x.shape[-1]
    return jnp.sum((d + 1.0 - _idx(x)) * x * x)


def sphere(x):
    return jnp.sum(x * x)


def styblinski_tang(x):
    return 0.5 * jnp.sum(x**4 - 16.0 * x**2 + 5.0 * x)


def sum_of_powers(x):
    """Sum of different powers: sum_i |x_i|^(i+1)."""
    return jnp.sum(jnp.abs(x) ** (_idx(x) + 1.0))


def sum_of_squares(x):
    return jnp.sum(_idx(x) * x * x)


def trid(x):
    """sum (x_i - 1)^2 - sum x_i x_{i-1}, written as
    1/2 sum (x_i - x_{i-1})^2 + (x_1^2 + x_d^2)/2 - 2 sum x_i + d, which cancels far less in float32 at d = 1000."""
    return (0.5 * jnp.sum((x[1:] - x[:-1]) ** 2) + 0.5 * (x[0] ** 2 + x[-1] ** 2) - 2.0 * jnp.sum(x)
            + x.shape[-1])


def zakharov(x):
    s = jnp.sum(0.5 * _idx(x) * x)
    return jnp.sum(x * x) + s**2 + s**4


# Styblinski-Tang: each coordinate minimises 0.5(t^4 - 16 t^2 + 5 t) at the root of 4t^3 - 32t + 5 near -2.9035.
_ST_ROOT = float(min(np.roots([4.0, 0.0, -32.0, 5.0]).real))
_ST_MIN_PER_DIM = 0.5 * (_ST_ROOT**4 - 16.0 * _ST_ROOT**2 + 5.0 * _ST_ROOT)


def _zeros(d):
    return np.zeros(d)


def _ones(d):
    return np.ones(d)


def _fixed(lo, hi):
    return lambda d: (lo, hi)


def _dixon_price_minimiser(d):
    i = np.arange(1, d + 1, dtype=np.float64)
    return 2.0 ** -(1.0 - 2.0 ** (1.0 - i))  # = 2^(-(2^i - 2)/2^i), overflow-free


def _trid_minimiser(d):
    i = np.arange(1, d + 1, dtype=np.float64)
    return i * (d + 1.0 - i)


FUNCTIONS: dict[str, TestFunction] = {
    f.name: f
    for f in [
        TestFunction("ackley", ackley, lambda d: 0.0, _zeros, _fixed(-32.768, 32.768)),
        TestFunction("dixon_price", dixon_price, lambda d: 0.0, _dixon_price_minimiser, _fixed(-10.0, 10.0)),
        TestFunction("griewank", griewank, lambda d: 0.0, _zeros, _fixed(-600.0, 600.0)),
        TestFunction("levy", levy, lambda d: 0.0, _ones, _fixed(-10.0, 10.0)),
        TestFunction("perm", perm, lambda d: 0.0, lambda d: 1.0 / np.arange(1, d + 1), _fixed(-1.0, 1.0)),
        TestFunction("powell", powell, lambda d: 0.0, _zeros, _fixed(-4.0, 5.0)),
        TestFunction("rastrigin", rastrigin, lambda d: 0.0, _zeros, _fixed(-5.12, 5.12)),
        TestFunction("rosenbrock", rosenbrock, lambda d: 0.0, _ones, _fixed(-5.0, 10.0)),
        TestFunction("rotated_hyper_ellipsoid", rotated_hyper_ellipsoid, lambda d: 0.0, _zeros,
                     _fixed(-65.536, 65.536)),
        TestFunction("sphere", sphere, lambda d: 0.0, _zeros, _fixed(-5.12, 5.12)),
        TestFunction("styblinski_tang", styblinski_tang, lambda d: _ST_MIN_PER_DIM * d,
                     lambda d: np.full(d, _ST_ROOT), _fixed(-5.0, 5.0)),
        TestFunction("sum_of_powers", sum_of_powers, lambda d: 0.0, _zeros, _fixed(-1.0, 1.0)),
        TestFunction("sum_of_squares", sum_of_squares, lambda d: 0.0, _zeros, _fixed(-10.0, 10.0)),
        TestFunction("trid", trid, lambda d: -d * (d + 4.0) * (d - 1.0) / 6.0, _trid_minimiser,
                     lambda d: (-float(d * d), float(d * d))),
        TestFunction("zakharov", zakharov, lambda d: 0.0, _zeros, _fixed(-5.0, 10.0)),
    ]
}

FUNCTION_NAMES: tuple[str, ...] = tuple(FUNCTIONS)


def get_function(name: str) -> TestFunction:
    """Function by name (lower-case, underscores); raises KeyError naming the choices."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise KeyError(f"unknown test function {name!r}; choose from {', '.join(FUNCTION_NAMES)}") from None


def evaluate(fn: Callable, x, offset=None):
    """f(x - offset): the function with its minimiser moved by `offset` ([d] or None)."""
    return fn(x if offset is None else x - offset)


def sample_inits(name: str, dim: int, n: int, seed: int) -> np.ndarray:
    """n uniform random initialisations [n, dim] float64 in the function's domain (seeded)."""
    lo, hi = FUNCTIONS[name].domain(dim)
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, dim))
