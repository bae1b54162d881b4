"""Quaternion and rotation-vector maths in JAX (w-first, as MuJoCo).

Safe at zero rotation: the square roots carry a tiny epsilon so gradients stay finite.
"""

import jax.numpy as jnp

_EPS = 1e-12


def mul(a, b):
    """Hamilton product of [..., 4] quaternions."""
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return jnp.stack([aw * bw - ax * bx - ay * by - az * bz,
                      aw * bx + ax * bw + ay * bz - az * by,
                      aw * by - ax * bz + ay * bw + az * bx,
                      aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def conj(q):
    return q * jnp.array([1.0, -1.0, -1.0, -1.0], q.dtype)


def normalize(q):
    return q / jnp.sqrt(jnp.sum(q * q, axis=-1, keepdims=True) + _EPS)


def log(q):
    """Unit quaternion [..., 4] -> rotation vector [..., 3] (shortest rotation)."""
    q = jnp.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    n = jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True) + _EPS)
    return v * (2.0 * jnp.arctan2(n, q[..., :1]) / n)


def exp(r):
    """Rotation vector [..., 3] -> unit quaternion [..., 4]."""
    theta = jnp.sqrt(jnp.sum(r * r, axis=-1, keepdims=True) + _EPS)
    return jnp.concatenate([jnp.cos(0.5 * theta), r * (jnp.sin(0.5 * theta) / theta)], axis=-1)


def nlerp(a, b, t):
    """Normalised linear interpolation along the shorter arc; t broadcasts against [..., 1]."""
    b = jnp.where(jnp.sum(a * b, axis=-1, keepdims=True) < 0, -b, b)
    return normalize((1.0 - t) * a + t * b)
