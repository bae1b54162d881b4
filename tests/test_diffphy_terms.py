"""Small terms of the DiffPhy loss checked on hand-made trajectories (no simulation)."""

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon import diffphy


def _spheres(heights, step_m, frames=5, radius=0.02):
    """[frames, C, 3] sphere centres at `heights` above the ground (clearance), moving `step_m` in x per frame."""
    heights = np.asarray(heights, np.float32)
    t = np.arange(frames, dtype=np.float32)[:, None]
    pos = np.zeros((frames, len(heights), 3), np.float32)
    pos[..., 0] = step_m * t
    pos[..., 2] = radius + heights[None, :]
    return jnp.asarray(pos), jnp.full(len(heights), radius, jnp.float32)


def test_foot_sliding_counts_a_grounded_sphere_sliding():
    pos, r = _spheres([0.0], 0.02)
    # 2 cm per frame at 25 fps is 2 cm per 1/25 s: gated ~1, so the mean is (0.02)^2
    value = float(diffphy.foot_sliding(pos, r, 1.0 / 25.0))
    assert abs(value - 0.02 ** 2) / 0.02 ** 2 < 0.01
    # the same speed at 12.5 fps moves 4 cm per frame, still 2 cm per 1/25 s
    pos2, _ = _spheres([0.0], 0.04)
    assert abs(float(diffphy.foot_sliding(pos2, r, 1.0 / 12.5)) - value) / value < 0.01


def test_foot_sliding_ignores_lifted_and_still_feet():
    lifted, r = _spheres([0.15], 0.05)
    assert float(diffphy.foot_sliding(lifted, r, 1.0 / 25.0)) < 1e-8
    still, r = _spheres([0.0, 0.0], 0.0)
    assert float(diffphy.foot_sliding(still, r, 1.0 / 25.0)) == 0.0


def test_foot_sliding_gradient_pulls_towards_standing_still():
    pos, r = _spheres([0.0], 0.02)
    g = jax.grad(lambda p: diffphy.foot_sliding(p, r, 1.0 / 25.0))(pos)
    assert np.all(np.isfinite(np.asarray(g)))
    # moving the last frame further along +x increases the loss; its gradient is positive in x
    assert float(g[-1, 0, 0]) > 0 and float(g[0, 0, 0]) < 0


def test_sliding_sums_over_the_spheres():
    """A sliding sphere counts the same however many other spheres the body has (hands, back, ... in the air)."""
    one, r1 = _spheres([0.0], 0.02)
    many, r = _spheres([0.0] + [0.3] * 20, 0.02)
    np.testing.assert_allclose(float(diffphy.foot_sliding(many, r, 1.0 / 25.0)),
                               float(diffphy.foot_sliding(one, r1, 1.0 / 25.0)), rtol=1e-5)
