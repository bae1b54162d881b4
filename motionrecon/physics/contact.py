"""Smooth penalty contact between the body's contact spheres and the ground plane z = 0.

Every sphere is treated alike, whatever body part carries it (feet, hands, knees, elbows, shoulders, pelvis,
back, head: `body.template.CONTACT_PARTS`), and each has its own friction anchor in the state.

MuJoCo's own contacts are disabled (see DESIGN.md: its solver's warm start made
the loss chaotic, its elliptic cone gave NaN gradients, and more than one solver
iteration runs in a `while_loop` that reverse mode cannot differentiate). Here,
each contact sphere i (centre p, radius r, velocity v) gets:

  depth      d   = w * softplus((r - p_z) / w)                 (smooth max(0, r - p_z))
  normal     f_n = k * d * s(1 - alpha * v_z)                  (Hunt-Crossley damping; s = smooth relu)
  tangential a stiction spring to an anchor point A in the ground plane:
             u   = p_xy - A,  R = mu * f_n / k_t  (the friction cone as a stretch limit)
             u_c = u * R / max(|u|, R)             (stretch clipped to the cone)
             f_t = -k_t * u_c - c_t * (d / (d + d_0)) * v_xy
             A'  = p_xy - u_c                      (the anchor slides when the cone is exceeded)

so a loaded foot (hand, knee) does not creep (unlike regularised Coulomb friction) and the
force is continuous in the state. The step is implicit in these contact forces
(`linearisation`, `physics.dynamics.acceleration`), which is what lets the normal
stiffness be 2e5 N/m per sphere at 120 Hz: a body standing on its toes' two spheres
sinks about 2 mm, and a landing about 1 cm (1e5 until session 11: the simulated toes
went 10-16 mm under the floor on 10 of 24 corpus clips; docs/mocap.md).

Seats (`support_height`): the spheres a window names (the pelvis's, where `body.seats` found the reference
sitting on something the pose cannot balance without) meet a seat's top as they meet the floor: the depth is
taken from the height of the support under the sphere instead of from z = 0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ContactParams:
    """Ground contact constants (SI units). Each is a traced scalar."""

    stiffness: float = 2.0e5          # N/m per sphere
    hc_damping: float = 3.0           # s/m, Hunt-Crossley alpha
    friction: float = 0.9             # Coulomb mu
    tangential_stiffness: float = 2.0e4  # N/m
    tangential_damping: float = 150.0    # N s/m
    smoothing: float = 1.0e-3         # m, width of the smooth max
    contact_depth_scale: float = 1.0e-3  # m, d_0


# m: the width over which a seat's edge fades from its height to the floor's (`support_height`)
SEAT_EDGE = 0.02


def support_height(p_xy, seats, edge: float = SEAT_EDGE):
    """Height (m) of what holds up points p_xy [C, 2] (m): the highest seat whose rectangle holds the point, else
    the floor (0). seats: [S, 5] rows (x0, x1, y0, y1, height) in metres, world axes; a row of height 0 is no seat.
    Each rectangle's edges are smooth: across a side the height rises as a smoothstep (3 s^2 - 2 s^3) over
    `edge`, centred on the side, so a sphere sliding off a seat comes down to the floor over a couple of
    centimetres, the force stays differentiable, and the height is exact (the seat's, or 0) beyond half an
    edge from every side. Returns [C]."""
    x, y = p_xy[:, None, 0], p_xy[:, None, 1]
    x0, x1, y0, y1, height = (seats[None, :, k] for k in range(5))

    def step(u):  # 0 outside, 1 inside, u the distance inside the side (m)
        s = jnp.clip(u / edge + 0.5, 0.0, 1.0)
        return s * s * (3.0 - 2.0 * s)

    inside = step(x - x0) * step(x1 - x) * step(y - y0) * step(y1 - y)
    return jnp.max(height * inside, axis=1)


def _smooth_relu(x, width):
    return width * jax.nn.softplus(x / width)


def _terms(p, v, anchor, radius, params: ContactParams):
    depth = _smooth_relu(radius - p[:, 2], params.smoothing)
    hc = 1.0 - params.hc_damping * v[:, 2]
    fn = params.stiffness * depth * _smooth_relu(hc, 0.05)
    u = p[:, :2] - anchor
    un = jnp.sqrt(jnp.sum(u * u, axis=-1) + 1e-12)
    cone = params.friction * fn / params.tangential_stiffness
    ratio = cone / jnp.maximum(un, cone + 1e-9)  # 1 inside the cone, < 1 while sliding
    in_contact = depth / (depth + params.contact_depth_scale)
    return depth, hc, fn, u * ratio[:, None], ratio, in_contact


def forces(p, v, anchor, radius, params: ContactParams):
    """Contact forces on the spheres.

    Args:
      p: [C, 3] sphere centres (m); v: [C, 3] their velocities (m/s);
      anchor: [C, 2] friction anchors (m); radius: [C] (m).
    Returns:
      force [C, 3] (N) at the contact points (p - r z), new anchors [C, 2].
    """
    _, _, fn, u_c, _, in_contact = _terms(p, v, anchor, radius, params)
    ft = -params.tangential_stiffness * u_c - params.tangential_damping * in_contact[:, None] * v[:, :2]
    return jnp.concatenate([ft, fn[:, None]], axis=-1), p[:, :2] - u_c


def linearisation(p, v, anchor, radius, params: ContactParams):
    """How stiff and how damped each contact is at this state, for an implicit integrator:
    (stiffness [C, 3] in N/m, damping [C, 3] in N s/m), the negated derivatives of the force
    (x, y, z) with respect to the sphere's position and velocity along the same axis:

        normal      K_z = k sigma((r - p_z)/w) s(1 - alpha v_z),   D_z = k d alpha sigma((1 - alpha v_z)/0.05)
        tangential  K_xy = k_t min(1, R / |u|) (the stiction spring, weaker while sliding),  D_xy = c_t d/(d + d_0)
    """
    depth, hc, _, _, ratio, in_contact = _terms(p, v, anchor, radius, params)
    gate = jax.nn.sigmoid((radius - p[:, 2]) / params.smoothing)
    kz = params.stiffness * gate * _smooth_relu(hc, 0.05)
    dz = params.stiffness * depth * params.hc_damping * jax.nn.sigmoid(hc / 0.05)
    kt = params.tangential_stiffness * ratio
    dt = params.tangential_damping * in_contact
    return jnp.stack([kt, kt, kz], -1), jnp.stack([dt, dt, dz], -1)
