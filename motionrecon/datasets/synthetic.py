"""Synthetic motion of the template body, for what the bundled captures do not show.

`sit_down`: the default body stands, sits down on a chair (its pelvis's underside 0.36 m up, the thighs level,
the trunk leaning forward on the way down and up), stays seated, and stands up again, its feet fixed on the
floor; observed as the joints of a joint set (default Human3.6M-17), all confident. Seated, its centre of mass is
about 0.3 m behind its heels: a pose no body balances on its feet (`body.seats`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

from motionrecon.observations import Observations

if TYPE_CHECKING:
    from motionrecon.body import Body

LEAN = 0.45  # rad: the trunk's forward lean halfway down or up


def sit_down_poses(fps: float = 30.0, stand: float = 0.7, down: float = 1.0, seated: float = 2.0, up: float = 1.0,
                   after: float = 0.7) -> tuple[np.ndarray, "Body"]:
    """(qpos [T, nq] of the default body, the body): standing `stand` s, sitting down over `down` s, seated
    `seated` s, standing up over `up` s, standing `after` s, at `fps`."""
    from motionrecon.body import build_body

    body = build_body()
    m, d = body.model, mujoco.MjData(body.model)
    adr = lambda name: m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)]
    ankles = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"{side}_ankle") for side in ("left", "right")]
    soles = list(np.asarray(body.layout.contact_geoms)[body.spheres_of(("feet",))])

    def pose(s: float) -> np.ndarray:
        """s = 0 standing, 1 seated (hips flexed and knees bent by s * 90 degrees)."""
        q = m.qpos0.copy()
        lean = LEAN * np.sin(np.pi * s)
        hip = -s * np.pi / 2 - lean  # the thighs pitch forward; the pelvis (and the trunk with it) leans by `lean`
        for side in ("left", "right"):
            q[adr(f"{side}_thigh"):adr(f"{side}_thigh") + 4] = [np.cos(hip / 2), 0.0, np.sin(hip / 2), 0.0]
            q[adr(f"{side}_shin")] = s * np.pi / 2
        q[3:7] = [np.cos(lean / 2), 0.0, np.sin(lean / 2), 0.0]
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        q[0:2] -= d.site_xpos[ankles, :2].mean(axis=0)  # the ankles stay over the origin
        q[2] -= float(np.min(d.geom_xpos[soles, 2] - m.geom_size[soles, 0]))  # the soles on the floor
        return q

    n = lambda seconds: int(round(seconds * fps))
    s = np.concatenate([np.zeros(n(stand)), 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n(down))), np.ones(n(seated)),
                        0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n(up))), np.zeros(n(after))])
    return np.array([pose(x) for x in s]), body


def sit_down(fps: float = 30.0, joint_set: str = "h36m17", **phases) -> Observations:
    """`sit_down_poses` observed as the joints of `joint_set` (its landmarks' sites on the body), all confident;
    `phases`: the durations of `sit_down_poses`."""
    from motionrecon.body.fit import landmark_sites
    from motionrecon.skeleton import BODY_LANDMARKS, JOINT_SETS

    qpos, body = sit_down_poses(fps, **phases)
    marks = JOINT_SETS[joint_set].landmarks
    joints = landmark_sites(body.model, qpos)[:, [BODY_LANDMARKS.index(lm) for lm in marks]]
    return Observations(fps=fps, joint_set=joint_set, joints3d=joints.astype(np.float32), joints2d=None,
                        confidence=np.ones(joints.shape[:2], np.float32), source="synthetic sit-down")
