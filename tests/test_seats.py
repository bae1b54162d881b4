"""Seats (`body.seats`): found under a reference that sits on something, nowhere else; a reconstruction of a
sit-down sits on one. The physics of a seat (`physics.contact.support_height`) is tested in test_physics.py."""

import mujoco
import numpy as np
import pytest

from motionrecon.body.seats import MAX_SEATS, find_seats, seat_rows
from motionrecon.datasets.synthetic import sit_down, sit_down_poses


def _geoms(body):
    geoms, pelvis = np.asarray(body.layout.contact_geoms), body.spheres_of(("pelvis",))
    return geoms[pelvis], geoms[~pelvis]


@pytest.fixture(scope="module")
def sitting():
    qpos, body = sit_down_poses()
    return qpos, body


def test_a_seat_is_found_under_a_sitting_pelvis(sitting):
    """The sit-down's seat: one, at the height of the pelvis's underside while seated (to 2 mm), under the pelvis,
    over the seated second and a half (the phases: standing 0.7 s, down 1 s, seated 2 s, up 1 s)."""
    qpos, body = sitting
    pelvis, others = _geoms(body)
    seats = find_seats(body.model, qpos, 30.0, pelvis, others)
    assert len(seats) == 1
    seat = seats[0]
    d = mujoco.MjData(body.model)
    d.qpos[:] = qpos[60]  # seated
    mujoco.mj_kinematics(body.model, d)
    underside = np.min(d.geom_xpos[pelvis, 2] - body.model.geom_size[pelvis, 0])
    assert abs(seat.height - underside) < 0.002, (seat.height, underside)
    assert seat.x[0] < d.xpos[1, 0] < seat.x[1] and seat.y[0] < d.xpos[1, 1] < seat.y[1]
    assert 1.2 < seat.start / 30 < 1.8 and 3.6 < seat.stop / 30 < 4.1, (seat.start / 30, seat.stop / 30)
    rows = seat_rows(seats)
    assert rows.shape == (MAX_SEATS, 5) and np.all(rows[1:] == 0) and rows[0][4] == seat.height
    assert seat_rows(()) is None


def test_no_seat_under_a_standing_body_a_squat_or_a_crawl(sitting, walk_1s):
    """Standing (the sit-down's first frames), a squat held for a second (the pelvis as low as on the chair, but
    the centre of mass over the feet), pybullet's walk and crawl (on hands and knees): no seat."""
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic
    from motionrecon.reconstruct import ReconstructionConfig, reference_and_seats

    qpos, body = sitting
    pelvis, others = _geoms(body)
    assert find_seats(body.model, qpos[:20], 30.0, pelvis, others) == ()
    squat = body.model.qpos0.copy()
    adr = lambda name: body.model.jnt_qposadr[mujoco.mj_name2id(body.model, mujoco.mjtObj.mjOBJ_JOINT, name)]
    pitch = lambda angle: [np.cos(angle / 2), 0.0, np.sin(angle / 2), 0.0]  # about y; positive tips forward
    hip, knee, lean = 1.2, 2.2, 0.6  # rad: thighs 69 degrees forward, shins 57, the trunk 34 over the feet
    squat[3:7] = pitch(lean)
    for side in ("left", "right"):
        squat[adr(f"{side}_thigh"):adr(f"{side}_thigh") + 4] = pitch(-hip - lean)
        squat[adr(f"{side}_shin")] = knee
        squat[adr(f"{side}_foot"):adr(f"{side}_foot") + 4] = pitch(hip - knee)  # feet flat
    d = mujoco.MjData(body.model)
    d.qpos[:] = squat
    mujoco.mj_kinematics(body.model, d)
    feet = np.asarray(body.layout.contact_geoms)[body.spheres_of(("feet",))]
    squat[2] -= np.min(d.geom_xpos[feet, 2] - body.model.geom_size[feet, 0])
    d.qpos[:] = squat
    mujoco.mj_kinematics(body.model, d)
    assert np.min(d.geom_xpos[pelvis, 2] - body.model.geom_size[pelvis, 0]) < 0.45  # as low as a chair's seat
    assert find_seats(body.model, np.repeat(squat[None], 30, 0), 30.0, pelvis, others) == ()
    cfg = ReconstructionConfig()
    for obs in (walk_1s, load_deepmimic(clip_path("crawl"))):
        assert reference_and_seats(obs, cfg, 4)[2] == ()


def test_a_sit_down_is_reconstructed_sitting_on_its_seat():
    """The sit-down reconstructed with the default settings (the test settings' 25 evaluations per window let the
    body fall backwards past the chair as it sits down): the seat is reported and, seated, the simulated pelvis
    stays within 2.5 cm of the reference's (on the floor alone it stayed up to 20 cm above it and MPJPE-G was
    116 mm: bench/seats.py); with `seats` off, none is found."""
    from motionrecon.reconstruct import ReconstructionConfig, reconstruct, reference_and_seats

    obs = sit_down()
    rec = reconstruct(obs, ReconstructionConfig())
    assert len(rec.metrics["seats"]) == 1 and abs(rec.metrics["seats"][0]["height_m"] - 0.368) < 0.01
    seated = slice(int(2.0 * obs.fps), int(3.5 * obs.fps))
    gap = np.abs(rec.qpos[seated, 2] - rec.qpos_kinematic[seated, 2])
    assert gap.max() < 0.025, gap.max()
    assert rec.metrics["mpjpe_g_mm"] < 40, rec.metrics["mpjpe_g_mm"]
    assert reference_and_seats(obs, ReconstructionConfig(seats=False), 4)[2] == ()
