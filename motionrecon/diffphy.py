"""The DiffPhy loss of one window: simulate the body under the control keyframes,
compare its markers with the observations.

    L(x) = w_3d    * sum_{f,j} c_fj |m_fj(x) - o_fj|^2 / sum c          (cm^2)
         + w_root  * same on root-relative markers (video: depth is uncertain)
         + w_2d    * sum_{f,j} c2_fj |P(m_fj(x)) - u_fj|^2 / (s^2 sum c2)  (x 1e4: 1 = an error of 1 % of the image)
         + w_smooth* mean_k |x_{k+1} - 2 x_k + x_{k-1}|^2               (rad^2)
         + w_reg   * mean_k |x_k|^2                                     (deviation from the kinematic init)
         + w_ground* mean_f sum_c max(0, r_c - z_fc)^2                  (cm^2, contact spheres below the floor)
         + w_skate * mean_f sum_c g_fc |v_fc|^2                          (cm^2: sliding on the floor, see below)
         + w_stance* mean_f sum_c s_fc |v_fc|^2                          (cm^2: sliding where the reference stands)
         + w_planted * mean_f sum_c s_fc max(0, min_{c' on c's part} h_fc' - 2 cm)^2  (cm^2: lifted where it stands)
         + w_upright * mean_f max(0, a z*_f - z_f)^2                    (cm^2: the pelvis fallen, see below)

x are the control keyframes [K, U] (offsets from the kinematic initialisation,
see `physics.control`), m the simulated landmark sites of the observed joints,
o the observed joints (metres, world frame), c their confidences; P projects
through the camera (pinhole, OpenCV convention) to pixels, u are the detected
2D keypoints with confidences c2, s the image's longer side in pixels.
The ground and skate terms sum over the body's contact spheres c (feet, hands,
knees, ...: `body.template.CONTACT_PARTS`), so a sphere counts the same however
many the body has; their default weights are those of the former mean over the
eight foot spheres divided by 8. The skate term penalises the horizontal motion
v_fc of each contact sphere between consecutive frames, expressed as the displacement per 1/25 s (the foot
skate metric's rate), gated by g = sigmoid((SKATE_HEIGHT - h) / SKATE_WIDTH) of
the sphere's clearance h above the ground: a foot (hand, knee) on or just above
the floor should not move sideways; a lifted one is free. The stance term
penalises the same motion where the kinematic reference's sphere bears weight
and stands still (s = 1 in both frames of the pair, `WindowData.stance`): a foot
planted in the observations stays planted, while a landing, a take-off or a toe
skimming the floor, which the skate term also slows, are left free. Both read
the pairs of frames 1..F; the step out of the initial state (frame 0 -> 1) is
added with the weight `WindowData.handover` (`handover_sliding`): 0 in a
window's solve, 1 where a slide retry solves it again. The planted term
(`lifted_in_stance`) is the vertical counterpart of the stance term: where the
reference has a part standing, the simulated part's lowest sphere should touch
the floor (within PLANTED_SLACK). Without it a standing person's simulated
body can hop to turn or shift its weight (the hug video: both feet 6-8 cm up in
10-12 of 72 frames, the pelvis 10 cm over the reference's), which neither
sliding term sees above SKATE_HEIGHT. Its weight is 0 by default and 1 on video
since session 24, together with the root-relative pose at 0.3 (docs/video.md
"Session 24": on the hug the body no longer hops and lands 25 mm into the floor;
in session 20, with the root-relative pose at 1, it raised the dribble clip's
foot skate to 6-12 % and stayed off).
The upright term (`fallen_pelvis`) counts the simulated pelvis height z_f where
it is lower than UPRIGHT_FRACTION (a) of the kinematic reference's z*_f: zero
wherever the body stays up, and where it falls (the body folding over detections
that fold the legs or turn round within a few frames) it gives the solver a way
back up. A person who really crouches or falls has a reference as low, and the
term follows it. Its weight is 0 in every first solve and `fall_retry` where a
window whose body fell is solved again (`reconstruct._Run._retry_falls`): on in
every solve it also moved the solves that never fell (the falling iterates of
their line searches), the dribble clip's TV over 0.5 of raw at 117 evaluations.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.body import BodyArrays, Layout
from motionrecon.physics import contact, dynamics, rollout


PARTS = ("marker3d", "root_relative", "reprojection", "smooth", "reg", "ground", "skate", "stance",
         "planted", "upright")  # the loss's terms
SKATE_HEIGHT = 0.03  # m of clearance below which a contact sphere counts as (nearly) on the ground
SKATE_WIDTH = 0.005  # m, softness of that gate
SKATE_RATE = 25.0  # Hz, the foot skate metric's frame rate
PLANTED_SLACK = 0.02  # m a standing part's lowest sphere may rise before the planted term counts it
UPRIGHT_FRACTION = 0.7  # of the reference's pelvis height, below which the upright term counts the simulated one


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossWeights:
    marker3d: float = 1.0
    root_relative: float = 0.0
    reprojection: float = 1.0
    smooth: float = 10.0
    reg: float = 0.1
    ground: float = 0.125  # per sphere: 1.0 on the mean over the 8 foot spheres of earlier versions
    skate: float = 0.0
    stance: float = 0.0
    planted: float = 0.0
    upright: float = 0.0


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WindowData:
    """Everything a window's loss reads besides the controls.

    init: state at the window's first frame. base_qpos: [F+1, nq] kinematic poses.
    observed: [F, J, 3] observed joints at frames 1..F (metres). confidence: [F, J] (0 = ignore, padding).
    landmarks: [J] int, index into BODY_LANDMARKS of each observed joint.
    observed2d: [F, J, 2] pixels; confidence2d: [F, J] (all 0 without 2D observations).
    camera_K: [3, 3]; camera_R: [3, 3], camera_t: [3] world-to-camera; image_scale: longer image side, pixels.
    first_keyframe: [U] the control offsets keyframe 0 is held at where `pin_first` is 1 (a window continuing
    the previous one: that window's offsets at this frame, so the PD targets do not jump at the hand-over), or
    [0] where no window pins it. pin_first: scalar, 1 or 0 (`pinned_keyframes`).
    stance: [F, C] 1 where the kinematic reference's contact sphere c bears weight and stands still at frames
    1..F, else 0 (`reconstruct.reference_stance`), or [F, 0] without the stance term; stance0: [C] the same at
    frame 0 (or [0]).
    handover: scalar, the weight of the step out of the initial state (frame 0 -> 1) in the skate and stance
    terms (`handover_sliding`): 0 where a window's solve leaves that step unseen (every first solve), 1 in a
    slide retry (`reconstruct._Run._retry_slides`).
    seats: [S, 5] seats under the body (`physics.contact.support_height` rows; S = 0 in a clip where the reference
    never sits on anything: the floor alone, and the program of earlier versions); seated: [C] 1 for the contact
    spheres that rest on seats (the pelvis's), 0 for the others.
    """

    init: rollout.SimState
    base_qpos: jax.Array
    observed: jax.Array
    confidence: jax.Array
    landmarks: jax.Array
    observed2d: jax.Array
    confidence2d: jax.Array
    camera_K: jax.Array
    camera_R: jax.Array
    camera_t: jax.Array
    image_scale: jax.Array
    first_keyframe: jax.Array
    pin_first: jax.Array
    stance: jax.Array
    stance0: jax.Array
    handover: jax.Array
    seats: jax.Array
    seated: jax.Array


def pinned_keyframes(keyframes, data: WindowData):
    """The keyframes [K, U] the window runs: keyframe 0 replaced by `data.first_keyframe` where `data.pin_first`
    is 1 (its gradient is then zero, so a solver leaves it where it starts)."""
    if data.first_keyframe.shape[-1] != keyframes.shape[-1]:
        return keyframes
    first = data.pin_first * data.first_keyframe + (1.0 - data.pin_first) * keyframes[0]
    return keyframes.at[0].set(first)


def no_2d(num_frames: int, num_joints: int) -> dict:
    """The 2D fields of a `WindowData` without 2D observations (mocap)."""
    return dict(observed2d=jnp.zeros((num_frames, num_joints, 2), jnp.float32),
                confidence2d=jnp.zeros((num_frames, num_joints), jnp.float32),
                camera_K=jnp.eye(3, dtype=jnp.float32), camera_R=jnp.eye(3, dtype=jnp.float32),
                camera_t=jnp.asarray([0.0, 0.0, 5.0], jnp.float32), image_scale=jnp.asarray(1.0, jnp.float32))


def project(points, K, R, t):
    """[..., 3] world points -> [..., 2] pixels (depth clamped at 10 cm in front of the camera)."""
    p = points @ R.T + t
    z = jnp.maximum(p[..., 2:3], 0.1)
    uv = (p[..., :2] / z) @ K[:2, :2].T + K[:2, 2]
    return uv


def marker_error(markers, data: WindowData):
    """Confidence-weighted mean squared marker error (m^2) and the per-frame simulated joints [F, J, 3]."""
    sim = markers[:, data.landmarks]
    sq = jnp.sum((sim - data.observed) ** 2, axis=-1)
    return jnp.sum(data.confidence * sq) / jnp.maximum(jnp.sum(data.confidence), 1e-6), sim


def foot_sliding(contact_pos, radius, frame_dt):
    """Gated squared horizontal displacement (m^2 per 1/25 s) of the contact spheres, summed over the spheres,
    mean over frames.

    contact_pos: [F, C, 3] sphere centres per frame; radius: [C] metres; frame_dt: seconds per frame.
    """
    if contact_pos.shape[0] < 2:
        return jnp.zeros((), contact_pos.dtype)
    return jnp.mean(jnp.sum(_sliding(contact_pos, radius, frame_dt), axis=-1))


def _sliding(contact_pos, radius, frame_dt):
    """[F-1, C] squared horizontal displacement (m^2 per 1/25 s) of each contact sphere between consecutive
    frames, gated by its clearance (sigmoid((SKATE_HEIGHT - h) / SKATE_WIDTH))."""
    clearance = 0.5 * (contact_pos[1:, :, 2] + contact_pos[:-1, :, 2]) - radius
    gate = jax.nn.sigmoid((SKATE_HEIGHT - clearance) / SKATE_WIDTH)
    step = (contact_pos[1:, :, :2] - contact_pos[:-1, :, :2]) / (frame_dt * SKATE_RATE)
    return gate * jnp.sum(step ** 2, axis=-1)


def stance_sliding(contact_pos, radius, stance, frame_dt):
    """As `foot_sliding`, only between consecutive frames in which the reference has the sphere standing
    (`stance` 1 in both).

    contact_pos: [F, C, 3]; radius: [C]; stance: [F, C] (or [F, 0]: zero); frame_dt: seconds per frame.
    """
    if contact_pos.shape[0] < 2 or stance.shape[-1] != contact_pos.shape[1]:
        return jnp.zeros((), contact_pos.dtype)
    return jnp.mean(jnp.sum(stance[1:] * stance[:-1] * _sliding(contact_pos, radius, frame_dt), axis=-1))


def lifted_in_stance(contact_pos, radius, stance, contact_bodies: tuple[int, ...]):
    """Mean over frames of the squared height (m^2) by which each body part that the reference has standing
    (`stance` 1) is off the floor: its lowest contact sphere's clearance over PLANTED_SLACK, counted once per
    sphere of the part. A foot standing on its toes keeps a sphere down and costs nothing; a foot lifted (a hop
    the observations do not show: a standing person's simulated body jumping to turn, which the skate term,
    blind above SKATE_HEIGHT, lets through) costs its height over the slack, squared.

    contact_pos: [F, C, 3]; radius: [C]; stance: [F, C] (or [F, 0]: zero); contact_bodies: [C] the body each
    sphere sits on (static).
    """
    if stance.shape[-1] != contact_pos.shape[1]:
        return jnp.zeros((), contact_pos.dtype)
    bodies = np.asarray(contact_bodies)
    same = bodies[:, None] == bodies[None, :]  # [C, C] spheres on one part
    clearance = contact_pos[..., 2] - radius  # [F, C]
    lowest = jnp.min(jnp.where(same[None], clearance[:, None, :], jnp.inf), axis=-1)  # [F, C] of its part
    return jnp.mean(jnp.sum(stance * jax.nn.relu(lowest - PLANTED_SLACK) ** 2, axis=-1))


def handover_sliding(init_contact, contact_pos, radius, stance0, stance, frame_dt):
    """The skate and stance terms' pair (frame 0, frame 1), out of the initial state, in their units: each
    term's sum over the spheres divided by the F - 1 pairs the term averages over (`foot_sliding`,
    `stance_sliding`), so that a window with this pair weighted 1 counts it like any other.

    init_contact: [C, 3] sphere centres at frame 0; contact_pos: [F, C, 3] at frames 1..F; radius: [C];
    stance0: [C] and stance: [F, C] (or [0] and [F, 0]); frame_dt: seconds per frame. Returns (skate, stance).
    """
    pairs = max(contact_pos.shape[0] - 1, 1)
    first = _sliding(jnp.stack([init_contact, contact_pos[0]]), radius, frame_dt)[0]  # [C]
    both = stance.shape[-1] == stance0.shape[-1] == contact_pos.shape[1]
    held = stance0 * stance[0] if both else jnp.zeros_like(first)
    return jnp.sum(first) / pairs, jnp.sum(held * first) / pairs


def fallen_pelvis(qpos, base_qpos):
    """m^2: mean over frames 1..F of the squared height by which the simulated pelvis (qpos [F, nq], free
    joint first, z up) is below UPRIGHT_FRACTION of the kinematic reference's (base_qpos [F+1, nq], frames
    0..F)."""
    return jnp.mean(jax.nn.relu(UPRIGHT_FRACTION * base_qpos[1:, 2] - qpos[:, 2]) ** 2)


def window_loss(x, data: WindowData, arrays: BodyArrays, params: contact.ContactParams, weights: LossWeights,
                *, layout: Layout, spf: int, num_keyframes: int):
    """Loss of flat controls x [K*U]. Returns (loss, (trajectory, parts dict))."""
    keyframes = pinned_keyframes(x.reshape(num_keyframes, layout.num_controls), data)
    traj = rollout.rollout(arrays, params, data.init, data.base_qpos, keyframes, data.seats, data.seated,
                           layout=layout, spf=spf)
    e3d, sim = marker_error(traj.markers, data)
    root_sim = sim - sim[:, :1]
    root_obs = data.observed - data.observed[:, :1]
    c = data.confidence * data.confidence[:, :1]
    e_root = jnp.sum(c * jnp.sum((root_sim - root_obs) ** 2, -1)) / jnp.maximum(jnp.sum(c), 1e-6)
    smooth = jnp.mean((keyframes[2:] - 2 * keyframes[1:-1] + keyframes[:-2]) ** 2) if num_keyframes > 2 else 0.0
    reg = jnp.mean(keyframes ** 2)
    below = jax.nn.relu(arrays.contact_radius - traj.contact_pos[..., 2])
    ground = jnp.mean(jnp.sum(below ** 2, axis=-1))
    skate = foot_sliding(traj.contact_pos, arrays.contact_radius, arrays.timestep * spf)
    stance = stance_sliding(traj.contact_pos, arrays.contact_radius, data.stance, arrays.timestep * spf)
    init_contact = dynamics.body_points(dynamics.kinematics(data.init.qpos, arrays, layout), layout.contact_bodies,
                                        arrays.contact_local)
    skate0, stance0 = handover_sliding(init_contact, traj.contact_pos, arrays.contact_radius, data.stance0,
                                       data.stance, arrays.timestep * spf)
    skate, stance = skate + data.handover * skate0, stance + data.handover * stance0
    planted = lifted_in_stance(traj.contact_pos, arrays.contact_radius, data.stance, layout.contact_bodies)
    uv = project(sim, data.camera_K, data.camera_R, data.camera_t)
    sq2d = jnp.sum(((uv - data.observed2d) / data.image_scale) ** 2, axis=-1)
    e2d = jnp.sum(data.confidence2d * sq2d) / jnp.maximum(jnp.sum(data.confidence2d), 1e-6)
    parts = {"marker3d": 1e4 * e3d, "root_relative": 1e4 * e_root, "reprojection": 1e4 * e2d, "smooth": smooth,
             "reg": reg, "ground": 1e4 * ground,
             "skate": 1e4 * skate, "stance": 1e4 * stance, "planted": 1e4 * planted,
             "upright": 1e4 * fallen_pelvis(traj.qpos, data.base_qpos)}
    loss = (weights.marker3d * parts["marker3d"] + weights.root_relative * parts["root_relative"]
            + weights.reprojection * parts["reprojection"] + weights.smooth * parts["smooth"]
            + weights.reg * parts["reg"] + weights.ground * parts["ground"] + weights.skate * parts["skate"]
            + weights.stance * parts["stance"] + weights.planted * parts["planted"]
            + weights.upright * parts["upright"])
    return loss, (traj, parts)


@partial(jax.jit, static_argnames=("layout", "spf", "num_keyframes"))
def loss_and_grad(x, data, arrays, params, weights, *, layout: Layout, spf: int, num_keyframes: int):
    """((loss, (trajectory, parts)), d loss / d x) for flat controls x [K*U] (float32).

    One compiled function serves the solver (loss, gradient) and the final
    rollout (trajectory), so each window size compiles once.
    """
    f = lambda x: window_loss(x, data, arrays, params, weights, layout=layout, spf=spf,
                              num_keyframes=num_keyframes)
    return jax.value_and_grad(f, has_aux=True)(x)
