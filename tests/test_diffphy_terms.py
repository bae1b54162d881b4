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


def test_stance_sliding_counts_only_where_the_reference_stands_in_both_frames():
    pos, r = _spheres([0.0, 0.0], 0.02)
    every = jnp.ones((5, 2))
    np.testing.assert_allclose(float(diffphy.stance_sliding(pos, r, every, 1.0 / 25.0)),
                               float(diffphy.foot_sliding(pos, r, 1.0 / 25.0)), rtol=1e-6)
    one = jnp.asarray(np.array([[1, 0]] * 5, np.float32))  # the second sphere never stands in the reference
    np.testing.assert_allclose(float(diffphy.stance_sliding(pos, r, one, 1.0 / 25.0)),
                               0.5 * float(diffphy.foot_sliding(pos, r, 1.0 / 25.0)), rtol=1e-5)
    landing = jnp.asarray(np.array([[0, 0], [1, 1], [1, 1], [1, 1], [1, 1]], np.float32))  # pairs 1-2 ... 3-4
    np.testing.assert_allclose(float(diffphy.stance_sliding(pos, r, landing, 1.0 / 25.0)),
                               0.75 * float(diffphy.foot_sliding(pos, r, 1.0 / 25.0)), rtol=1e-5)
    assert float(diffphy.stance_sliding(pos, r, jnp.zeros((5, 0)), 1.0 / 25.0)) == 0.0  # no stance data: no term
    lifted, r = _spheres([0.15, 0.15], 0.05)  # standing in the reference but lifted in the simulation: free
    assert float(diffphy.stance_sliding(lifted, r, every, 1.0 / 25.0)) < 1e-8


def test_handover_sliding_counts_the_step_out_of_the_initial_state_like_any_other_pair():
    """`handover_sliding`: frames 1..F with the initial frame put in front, the pair (0, 1) alone, in the units
    of `foot_sliding` / `stance_sliding` over frames 1..F (their sum over spheres / (F - 1))."""
    pos, r = _spheres([0.0, 0.0], 0.02, frames=6)  # frame 0 and frames 1..5
    every = jnp.ones((5, 2))
    skate0, stance0 = diffphy.handover_sliding(pos[0], pos[1:], r, jnp.ones(2), every, 1.0 / 25.0)
    whole = float(diffphy.foot_sliding(pos, r, 1.0 / 25.0))  # 5 equal pairs: mean = one pair's sum over spheres
    np.testing.assert_allclose(float(skate0), whole / 4, rtol=1e-5)
    np.testing.assert_allclose(float(stance0), whole / 4, rtol=1e-5)
    _, half = diffphy.handover_sliding(pos[0], pos[1:], r, jnp.asarray([1.0, 0.0]), every, 1.0 / 25.0)
    np.testing.assert_allclose(float(half), whole / 8, rtol=1e-5)  # sphere 1 not standing at frame 0
    _, none = diffphy.handover_sliding(pos[0], pos[1:], r, jnp.zeros(0), jnp.zeros((5, 0)), 1.0 / 25.0)
    assert float(none) == 0.0  # no stance data: no term
    lifted, r = _spheres([0.15, 0.15], 0.05, frames=6)
    assert float(diffphy.handover_sliding(lifted[0], lifted[1:], r, jnp.ones(2), every, 1.0 / 25.0)[0]) < 1e-8


def test_pinned_keyframes_hold_the_first_keyframe_and_give_it_no_gradient():
    from types import SimpleNamespace

    keyframes = jnp.arange(12.0).reshape(4, 3)
    first = jnp.asarray([-1.0, -2.0, -3.0])
    pinned = SimpleNamespace(first_keyframe=first, pin_first=jnp.asarray(1.0))
    free = SimpleNamespace(first_keyframe=first, pin_first=jnp.asarray(0.0))
    np.testing.assert_array_equal(diffphy.pinned_keyframes(keyframes, pinned)[0], first)
    np.testing.assert_array_equal(diffphy.pinned_keyframes(keyframes, pinned)[1:], keyframes[1:])
    np.testing.assert_array_equal(diffphy.pinned_keyframes(keyframes, free), keyframes)
    empty = SimpleNamespace(first_keyframe=jnp.zeros(0), pin_first=jnp.asarray(1.0))
    np.testing.assert_array_equal(diffphy.pinned_keyframes(keyframes, empty), keyframes)
    g = jax.grad(lambda k: jnp.sum(diffphy.pinned_keyframes(k, pinned) ** 2))(keyframes)
    assert float(jnp.abs(g[0]).max()) == 0.0 and float(jnp.abs(g[1:]).min()) > 0.0


def test_lifted_in_stance_costs_a_standing_parts_lowest_sphere_height_squared_per_sphere():
    """Two feet of two spheres each (bodies 7 and 9): a part that the reference has standing costs its lowest
    sphere's clearance over PLANTED_SLACK squared, once per sphere; a foot on its toes (one sphere down) or just
    off the floor costs nothing, and so does a lifted foot that the reference does not have standing, or no
    stance data."""
    bodies = (7, 7, 9, 9)
    every = jnp.ones((5, 4))
    hop, r = _spheres([0.05, 0.08, 0.0, 0.01], 0.0)  # left foot 5 cm up (lowest sphere), right foot down
    over = 0.05 - diffphy.PLANTED_SLACK
    np.testing.assert_allclose(float(diffphy.lifted_in_stance(hop, r, every, bodies)), 2 * over ** 2, rtol=1e-5)
    toes, r = _spheres([0.0, 0.06, 0.0, 0.0], 0.0)  # heel raised, toe sphere on the floor
    assert float(diffphy.lifted_in_stance(toes, r, every, bodies)) == 0.0
    skim, r = _spheres([0.9 * diffphy.PLANTED_SLACK] * 2 + [0.0, 0.0], 0.0)
    assert float(diffphy.lifted_in_stance(skim, r, every, bodies)) == 0.0
    swing = jnp.asarray(np.array([[0, 0, 1, 1]] * 5, np.float32))  # the left foot swings in the reference
    assert float(diffphy.lifted_in_stance(hop, r, swing, bodies)) == 0.0
    half = jnp.asarray(np.array([[1, 1, 1, 1]] * 2 + [[0, 0, 1, 1]] * 3, np.float32))
    np.testing.assert_allclose(float(diffphy.lifted_in_stance(hop, r, half, bodies)), 0.4 * 2 * over ** 2,
                               rtol=1e-5)
    assert float(diffphy.lifted_in_stance(hop, r, jnp.zeros((5, 0)), bodies)) == 0.0
    g = jax.grad(lambda p: diffphy.lifted_in_stance(p, r, every, bodies))(hop)
    assert float(g[0, 0, 2]) > 0 and float(g[0, 1, 2]) == 0.0  # pulls the lowest sphere down, not the other


def test_fallen_pelvis_counts_only_a_pelvis_below_its_fraction_of_the_reference():
    """Hand-made pelvis heights against a reference at 0.9 m: the frames above UPRIGHT_FRACTION of it cost
    nothing, a pelvis 0.2 m under that line costs 0.04 m^2 in its frame (mean over frames 1..F); a reference that
    itself goes low (a person who really crouches or falls) takes the line down with it."""
    nq, line = 7, diffphy.UPRIGHT_FRACTION * 0.9
    base = np.zeros((4, nq), np.float32)
    base[:, 2] = 0.9
    sim = np.zeros((3, nq), np.float32)
    sim[:, 2] = [0.88, line + 0.01, line - 0.2]
    value = float(diffphy.fallen_pelvis(jnp.asarray(sim), jnp.asarray(base)))
    assert abs(value - 0.2 ** 2 / 3) < 1e-6
    sim[2, 2] = line + 0.05
    assert float(diffphy.fallen_pelvis(jnp.asarray(sim), jnp.asarray(base))) == 0.0
    crouching = base.copy()
    crouching[1:, 2] = 0.3  # frames 1..3 of the reference at 0.3 m: the simulated 0.47-0.88 m are all above
    sim[2, 2] = line - 0.2
    assert float(diffphy.fallen_pelvis(jnp.asarray(sim), jnp.asarray(crouching))) == 0.0
    g = jax.grad(lambda s: diffphy.fallen_pelvis(s, jnp.asarray(base)))(jnp.asarray(sim))
    assert float(g[2, 2]) < 0 and float(jnp.abs(g[:2]).max()) == 0.0  # up is down the gradient, where fallen
