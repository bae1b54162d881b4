"""Seats: where the kinematic reference sits on something the scene does not show (a chair, a sofa, a step).

The simulated world is a floor. A person sitting on a chair holds a pose that cannot balance on the feet: the
pelvis 0.3-0.6 m up and the centre of mass behind the feet. On the floor alone the simulated body cannot hold it
(a sit-down on a chair 0.36 m high: the pelvis stayed up to 20 cm above the reference's, 116 mm MPJPE-G; the real
Human3.6M SittingDown takes fell). `find_seats` reads such stretches off the reference and places a seat under
each: a level rectangle at the height of the pelvis's underside, under where the pelvis and the thighs were,
that the pelvis's contact spheres rest on (`physics.contact.support_height`); the other spheres go on meeting
the floor alone.

A frame of the reference (qpos [T, nq]) is sitting when
  - the underside of the pelvis (the lowest point of its contact spheres) is more than SEAT_LOWEST above the
    floor and less than SEAT_HIGHEST of its height when the body stands,
  - both thighs lie more than THIGH_FROM_VERTICAL_DEG from the vertical (the hips flexed, as on a chair),
  - the whole body's centre of mass lies more than UNBALANCED_M outside what supports it on the floor (the
    convex hull of the other contact spheres within DOWN_M of the floor: feet, and hands and knees where
    they touch it; with none down, outside), and
  - the pelvis moves slower than STILL_MPS;
and a seat is placed under a run of such frames lasting MIN_SITTING_S or more. A squat keeps the centre of mass
over the feet, a crawl over hands and knees, a stride passes over its support in a fraction of a second, a
person sitting on the floor needs no seat, and people who lean on each other (the dev videos' hug) or a runner
filmed by a panning camera (whose pelvis hardly moves in the world) stand with their thighs upright.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from motionrecon.observations import frame_runs

SEAT_LOWEST = 0.15     # m: a pelvis lower than this sits on the floor (or a step the floor stands for)
SEAT_HIGHEST = 0.75    # of the pelvis's underside standing (0.58 m on the default body: a chair, not a bar stool)
THIGH_FROM_VERTICAL_DEG = 45.0  # both thighs at least this far from the vertical: the hips flexed, as on a chair
UNBALANCED_M = 0.05    # m: the centre of mass this far outside the feet's support cannot balance on them
DOWN_M = 0.03          # m: a contact sphere's underside this close to the floor supports the body
STILL_MPS = 0.3        # m/s: the pelvis rests (it is set on something)
MIN_SITTING_S = 0.3    # s
SEAT_MARGIN = 0.1      # m: a seat reaches this far beyond where the pelvis's spheres and the knees were
#                       (the knees: a body that comes down a little ahead of its reference still meets the seat)
MERGE_HEIGHT = 0.05    # m: seats that overlap and differ in height by less than this are one seat
MAX_SEATS = 4          # seats per clip (the longest sittings); the window data's rows


@dataclasses.dataclass(frozen=True)
class Seat:
    """A level rectangle x0..x1, y0..y1 (m, world axes) at `height` (m) above the floor, found under the
    reference's pelvis from frame `start` to frame `stop` (exclusive)."""

    x: tuple[float, float]
    y: tuple[float, float]
    height: float
    start: int
    stop: int

    def row(self) -> list[float]:
        """The seat as a row of `physics.contact.support_height`: (x0, x1, y0, y1, height)."""
        return [*self.x, *self.y, self.height]

    def describe(self, fps: float) -> dict:
        """JSON-ready facts (metrics.json "seats")."""
        r = lambda v: round(float(v), 3)
        return {"height_m": r(self.height), "x_m": [r(v) for v in self.x], "y_m": [r(v) for v in self.y],
                "from_s": r(self.start / fps), "to_s": r(self.stop / fps)}


def seat_rows(seats: tuple[Seat, ...]) -> np.ndarray | None:
    """[MAX_SEATS, 5] rows for the window data (unused rows at height 0, no seat), or None without seats."""
    if not seats:
        return None
    rows = np.zeros((MAX_SEATS, 5))
    rows[:len(seats)] = [s.row() for s in seats[:MAX_SEATS]]
    return rows


def _outside(point: np.ndarray, support: np.ndarray) -> float:
    """How far (m) the 2D `point` lies outside the convex hull of the 2D points `support` [N, 2] (negative
    inside; the largest signed distance to the hull's edge lines, which is at most the true distance), inf
    without support."""
    from scipy.spatial import ConvexHull, QhullError

    if len(support) == 0:
        return float("inf")
    try:
        hull = ConvexHull(support)
    except (QhullError, ValueError):  # fewer than 3 points, or all on a line
        return float(np.min(np.linalg.norm(support - point, axis=1)))
    return float(np.max(hull.equations[:, :2] @ point + hull.equations[:, 2]))


def _hips_and_knees(model: mujoco.MjModel) -> list[int]:
    """Body ids whose origins are the left hip, left knee, right hip, right knee (the thighs' and shins')."""
    return [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{side}_{part}") for side in ("left", "right")
            for part in ("thigh", "shin")]


def sitting_frames(model: mujoco.MjModel, qpos: np.ndarray, fps: float, pelvis_geoms, support_geoms) -> np.ndarray:
    """[T] bool: the frames of qpos [T, nq] in which the body sits on something (the rules above);
    `pelvis_geoms`: the pelvis's contact sphere geoms, `support_geoms` the others (feet, hands, knees ...)."""
    data = mujoco.MjData(model)
    pelvis, support = list(pelvis_geoms), list(support_geoms)
    mass = model.body_mass[1:]
    data.qpos[:] = model.qpos0  # standing, soles on the floor
    mujoco.mj_kinematics(model, data)
    highest = SEAT_HIGHEST * np.min(data.geom_xpos[pelvis, 2] - model.geom_size[pelvis, 0])
    thigh = _hips_and_knees(model)
    upright = np.cos(np.radians(THIGH_FROM_VERTICAL_DEG))
    speed = np.zeros(len(qpos))
    if len(qpos) > 1:
        v = np.linalg.norm(np.diff(qpos[:, :3], axis=0), axis=1) * fps
        speed = np.maximum(np.r_[v[:1], v], np.r_[v, v[-1:]])  # the faster of the steps into and out of a frame
    out = np.zeros(len(qpos), bool)
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        underside = np.min(data.geom_xpos[pelvis, 2] - model.geom_size[pelvis, 0])
        if not (SEAT_LOWEST <= underside <= highest and speed[t] < STILL_MPS):
            continue
        legs = data.xpos[thigh[0::2]] - data.xpos[thigh[1::2]]  # knee to hip, both legs
        if np.max(legs[:, 2] / np.linalg.norm(legs, axis=1)) > upright:
            continue
        com = mass @ data.xipos[1:, :2] / mass.sum()
        down = data.geom_xpos[support, 2] - model.geom_size[support, 0] < DOWN_M
        out[t] = _outside(com, data.geom_xpos[support][down, :2]) > UNBALANCED_M
    return out


def find_seats(model: mujoco.MjModel, qpos: np.ndarray, fps: float, pelvis_geoms, support_geoms) -> tuple[Seat, ...]:
    """The seats under the reference qpos [T, nq] (see the module's docstring), at most MAX_SEATS (the longest
    sittings), in time order. `pelvis_geoms`, `support_geoms`: as `sitting_frames`."""
    pelvis = list(pelvis_geoms)
    if not pelvis or not len(support_geoms):
        return ()
    sitting = sitting_frames(model, qpos, fps, pelvis, support_geoms)
    shortest = max(1, int(np.ceil(MIN_SITTING_S * fps - 1e-9)))
    runs = [(a, b) for a, b in frame_runs(sitting) if b - a >= shortest]
    if not runs:
        return ()
    from motionrecon.body.fit import body_positions, geom_positions

    knees = _hips_and_knees(model)[1::2]
    seats: list[Seat] = []
    for a, b in runs:
        centres = geom_positions(model, qpos[a:b], pelvis)  # [n, P, 3]
        underside = np.min(centres[..., 2] - model.geom_size[pelvis, 0], axis=1)
        under = np.concatenate([centres, body_positions(model, qpos[a:b], knees)], axis=1)[..., :2]
        lo, hi = under.reshape(-1, 2).min(0) - SEAT_MARGIN, under.reshape(-1, 2).max(0) + SEAT_MARGIN
        seat = Seat((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), float(np.percentile(underside, 10)),
                    int(a), int(b))
        for i, other in enumerate(seats):  # the same chair sat on again
            if (abs(other.height - seat.height) < MERGE_HEIGHT and seat.x[0] < other.x[1] and other.x[0] < seat.x[1]
                    and seat.y[0] < other.y[1] and other.y[0] < seat.y[1]):
                seats[i] = Seat((min(other.x[0], seat.x[0]), max(other.x[1], seat.x[1])),
                                (min(other.y[0], seat.y[0]), max(other.y[1], seat.y[1])),
                                min(other.height, seat.height), other.start, seat.stop)
                break
        else:
            seats.append(seat)
    longest = sorted(seats, key=lambda s: s.stop - s.start, reverse=True)[:MAX_SEATS]
    return tuple(sorted(longest, key=lambda s: s.start))
