"""Kinematic initialisation: the body's shape from observed bone lengths, and
per-frame inverse kinematics.

Shape: each `BodyShape` field is measured as the median over frames of a
distance between observed landmarks (left and right averaged); fields the joint
set cannot see are the template's, scaled by the measured leg length.

IK: damped Gauss-Newton (Levenberg-Marquardt) per frame in MuJoCo's tangent
space, with analytic site Jacobians (`mujoco.mj_jacSite`) on the CPU; each
frame starts from the previous solution, the first from the rest pose placed
and turned by the hips and shoulders. A small pull towards the rest pose fixes
the rotations the markers cannot see (e.g. a forearm's twist).
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from motionrecon.body.template import OFFSET_SITES, BodyShape
from motionrecon.observations import Observations, shot_spans
from motionrecon.skeleton import BODY_LANDMARKS


def _landmark_positions(obs: Observations) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """landmark -> (positions [T, 3], confidence [T]) for the observed landmarks."""
    out = {}
    for j, lm in enumerate(obs.skeleton.landmarks):
        out.setdefault(lm, (obs.joints3d[:, j], obs.confidence[:, j]))
    return out


def _distance(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pa - pb, axis=-1)


def _height(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    return pa[..., 2] - pb[..., 2]  # world z-up


def _confident(pos, names) -> list[np.ndarray] | None:
    """The positions [N, 3] of landmarks `names` at the N frames where all of them are confident (> 0.3); None
    where one is not observed or no frame has them all."""
    if any(n not in pos for n in names):
        return None
    ok = np.logical_and.reduce([pos[n][1] > 0.3 for n in names])
    return [pos[n][0][ok] for n in names] if ok.any() else None


def _median_distance(pos, a: str, b: str, measure=_distance) -> float | None:
    """Median over frames where both are confident (> 0.3) of measure(a, b) (default: distance)."""
    points = _confident(pos, (a, b))
    return None if points is None else float(np.median(measure(*points)))


def _both_sides(pos, a: str, b: str, measure=_distance) -> float | None:
    vals = [v for v in (_median_distance(pos, f"left_{a}", f"left_{b}", measure),
                        _median_distance(pos, f"right_{a}", f"right_{b}", measure)) if v is not None]
    return float(np.mean(vals)) if vals else None


def _foot_from_heel(pos, ankle_to_toe: float, default: BodyShape) -> dict[str, float]:
    """Foot geometry where the detector also sees the heel (MediaPipe-33), in its own convention.

    MediaPipe's ankle point sits higher above its toe tip, and its heel point higher above the
    sole, than the template's foot has them (dribble clip: 10.8 cm and 6.4 cm, against 6 cm and 0
    for a template foot of the same length). A body built with the template's foot cannot put
    all three on the detections with its sole on the ground, so it stands on tiptoe and its feet
    reproject tens of pixels above the detected ones (docs/video.md). With a heel in view:
    ankle_height = median height of the ankle above the toe tip, heel_site_height = median height
    of the heel point above the toe tip (within [0, ankle_height]), foot_forward = the rest of
    the ankle-to-toe distance, heel_back in the template's proportion to foot_forward. The
    medians assume the feet are mostly flat on the ground over the clip.
    """
    ankle = _both_sides(pos, "ankle", "toe", _height)
    heel = _both_sides(pos, "heel", "toe", _height)
    if ankle is None or heel is None or not 0.0 < ankle < ankle_to_toe:
        return {}
    forward = float(np.sqrt(ankle_to_toe ** 2 - ankle ** 2))
    return dict(ankle_height=ankle, foot_forward=forward, heel_back=default.heel_back * forward / default.foot_forward,
                heel_site_height=float(np.clip(heel, 0.0, ankle)))


# m: the range of ankle heights `_ankle_height_over_floor` accepts (people stand with the ankle joint centre
# 6-9 cm above the sole; outside it the observations' floor is not where the feet stand).
ANKLE_HEIGHT_RANGE = (0.04, 0.11)


def _ankle_height_over_floor(pos) -> dict[str, float]:
    """ankle_height where the joint set has ankles but no toes (BVH read onto "h36m17", Human3.6M, AIST++):
    the ankles' height over the observations' floor (z = 0) where they stand, the
    metrics.FLOOR_LEVEL_PERCENTILE-th percentile of their confident heights, mean of both sides, when within
    ANKLE_HEIGHT_RANGE; else nothing (the template's, scaled). The template's 5 cm put the Bandai and CMU
    rigs' ankles (7.7-8.5 cm up) 3 cm too low: the IK then pointed the feet toes-down to reach the floor, and
    the simulated body, standing flat, carried its pelvis 2-5 cm below the observed one."""
    from motionrecon.metrics import FLOOR_LEVEL_PERCENTILE

    levels = []
    for side in ("left", "right"):
        if f"{side}_ankle" in pos:
            p, c = pos[f"{side}_ankle"]
            if (c > 0.3).any():
                levels.append(float(np.percentile(p[c > 0.3, 2], FLOOR_LEVEL_PERCENTILE)))
    if not levels or not ANKLE_HEIGHT_RANGE[0] <= np.mean(levels) <= ANKLE_HEIGHT_RANGE[1]:
        return {}
    return {"ankle_height": float(np.mean(levels))}


# Most the hips may sit below the pelvis root when `_hip_drop_from_trunk` measures it (m).
HIP_DROP_MAX = 0.12


def _trunk_length(pos) -> float | None:
    """Median over frames where both hips and both shoulders are confident (> 0.3) of the distance from the
    hips' midpoint to the shoulders' midpoint (m); None without them. (Scaling it by how much longer the 2D
    trunk is in the image than the 3D's projection, 0-6 % on the dev videos, moved the reference's 2D error
    from the hips to the shoulders and was not kept.)"""
    points = _confident(pos, ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
    if points is None:
        return None
    lh, rh, ls, rs = points
    return float(np.median(_distance(0.5 * (ls + rs), 0.5 * (lh + rh))))


def _hip_drop_from_trunk(pos, values: dict[str, float]) -> dict[str, float]:
    """hip_drop where the joint set has no pelvis landmark but sees hips and shoulders (MediaPipe-33,
    COCO-17): the hips-to-shoulders distance (`_trunk_length`) less the rest of the trunk (pelvis_to_chest +
    shoulder_rise, both the template's scaled: these joint sets cannot see the spine), within
    [0, HIP_DROP_MAX]. With the template's trunk MediaPipe's hips sat 5-7 cm below the body's on the dev
    videos, and the reference's hips reprojected 15-30 px above the detected ones (bench/reference_fit.py)."""
    trunk = _trunk_length(pos)
    if "pelvis" in pos or trunk is None:
        return {}
    return {"hip_drop": float(np.clip(trunk - values["pelvis_to_chest"] - values["shoulder_rise"], 0.0,
                                      HIP_DROP_MAX))}


def measure_shape(obs: Observations) -> BodyShape:
    """Bone lengths of the observed person (needs `joints3d`)."""
    if obs.joints3d is None:
        raise ValueError("measure_shape needs 3D joints")
    pos = _landmark_positions(obs)
    default = BodyShape()
    m: dict[str, float] = {}
    for field, (a, b) in dict(thigh=("hip", "knee"), shin=("knee", "ankle"), upper_arm=("shoulder", "elbow"),
                              forearm=("elbow", "wrist")).items():
        v = _both_sides(pos, a, b)
        if v is not None:
            m[field] = v
    hip_w = _median_distance(pos, "left_hip", "right_hip")
    if hip_w:
        m["hip_half_width"] = hip_w / 2
    sh_w = _median_distance(pos, "left_shoulder", "right_shoulder")
    if sh_w:
        m["shoulder_half_width"] = sh_w / 2
    ph = _median_distance(pos, "pelvis", "left_hip")
    if ph and hip_w:
        m["hip_drop"] = float(np.sqrt(max(ph ** 2 - (hip_w / 2) ** 2, 0.0)))
    for field, (a, b) in dict(pelvis_to_chest=("pelvis", "chest"), chest_to_thorax=("chest", "thorax"),
                              thorax_to_head=("thorax", "head")).items():
        v = _median_distance(pos, a, b)
        if v is not None:
            m[field] = v
    cs = _median_distance(pos, "chest", "left_shoulder")
    if cs and sh_w:
        m["shoulder_rise"] = float(np.sqrt(max(cs ** 2 - (sh_w / 2) ** 2, 0.0)))
    toe = _both_sides(pos, "ankle", "toe")
    if toe:
        ref = np.hypot(default.foot_forward, default.ankle_height)
        m.update(foot_forward=default.foot_forward * toe / ref, ankle_height=default.ankle_height * toe / ref,
                 heel_back=default.heel_back * toe / ref)
        m.update(_foot_from_heel(pos, toe, default))
    else:
        m.update(_ankle_height_over_floor(pos))
    # Fields this joint set cannot see: the template's, scaled by the leg length.
    legs = [m[k] for k in ("thigh", "shin") if k in m]
    scale = sum(legs) / (default.thigh + default.shin) if len(legs) == 2 else 1.0
    values = {f.name: m.get(f.name, getattr(default, f.name) * scale) for f in dataclasses.fields(BodyShape)
              if isinstance(getattr(default, f.name), float)}
    values.update(_hip_drop_from_trunk(pos, values))
    values.update(_trunk_from_pelvis(pos, values))
    return BodyShape(**values)


# The least chest_to_thorax (m) `_trunk_from_pelvis` measures: the neck's base that far above the chest joint.
NECK_MIN = 0.05


def _trunk_from_pelvis(pos, values: dict[str, float]) -> dict[str, float]:
    """hip_drop, hip_forward, pelvis_to_chest, shoulder_rise and chest_to_thorax where the joint set has a pelvis (the
    rig's root joint), hips and shoulders but no chest (BVH read onto "h36m17", Human3.6M): medians over the frames
    where all of them (and the thorax, where there is one) are confident (> 0.3) of the hips' midpoint below and in
    front of the pelvis and the shoulders' midpoint above it, in the trunk's frame (left: across the hips and
    shoulders; up: from the pelvis to the shoulders' midpoint, square to left, as the template's trunk stands on its
    root; forward: left x up, the pelvis body's x); the shoulders' height is split into pelvis_to_chest and
    shoulder_rise as the template splits it, and the thorax (the template's neck base, where the head joint is) sits
    as far above or below the shoulders as the rig's.

    With the template's shoulder_rise (DeepMimic's, 0.48 m above the pelvis at the template's scale), the Bandai
    rigs' shoulders, 0.37 m above their root, were out of the body's reach upright: the IK folded the trunk,
    pelvis pitched 19-37 degrees back and torso 63-70 degrees forward (its range: 60), and the CMU rig, whose root
    lies 7 cm behind its hips and whose thorax joint sits 7 cm below its shoulders, 33 and 95 (docs/mocap.md
    "Session 28")."""
    names = ("pelvis", "left_hip", "right_hip", "left_shoulder", "right_shoulder") + (("thorax",) * ("thorax" in pos))
    points = None if "chest" in pos else _confident(pos, names)
    if points is None:
        return {}
    pel, lh, rh, ls, rs = points[:5]
    thorax = points[5] if len(points) > 5 else None
    hips, shoulders = 0.5 * (lh + rh), 0.5 * (ls + rs)
    left = (lh - rh) + (ls - rs)
    left /= np.linalg.norm(left, axis=-1, keepdims=True) + 1e-9
    up = shoulders - pel
    up -= np.sum(up * left, axis=-1, keepdims=True) * left
    up /= np.linalg.norm(up, axis=-1, keepdims=True) + 1e-9
    forward = np.cross(left, up)
    along = lambda v, axis: float(np.median(np.sum(v * axis, axis=-1)))
    height = along(shoulders - pel, up)  # split as the template splits it, at the chest joint
    chest = values["pelvis_to_chest"] / (values["pelvis_to_chest"] + values["shoulder_rise"])
    out = {"hip_drop": float(np.clip(along(pel - hips, up), 0.0, HIP_DROP_MAX)),
           "hip_forward": along(hips - pel, forward),
           "pelvis_to_chest": chest * height, "shoulder_rise": (1 - chest) * height}
    if thorax is not None:  # the neck's base (the head joint), above or below the shoulders as the rig has it
        out["chest_to_thorax"] = max(out["shoulder_rise"] + along(thorax - shoulders, up), NECK_MIN)
    return out


def _root_guess(pos_t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """Root position and quaternion from one frame's hips (and shoulders)."""
    if "left_hip" not in pos_t or "right_hip" not in pos_t:
        return None
    left = pos_t["left_hip"] - pos_t["right_hip"]
    if "left_shoulder" in pos_t and "right_shoulder" in pos_t:
        left = left + pos_t["left_shoulder"] - pos_t["right_shoulder"]
    left[2] = 0.0
    left /= np.linalg.norm(left) + 1e-9
    up = np.array([0.0, 0.0, 1.0])
    fwd = np.cross(left, up)
    R = np.stack([fwd, left, up], axis=1)
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, R.reshape(-1))
    centre = pos_t.get("pelvis", 0.5 * (pos_t["left_hip"] + pos_t["right_hip"]))
    return centre, q


def _reprojection_rows(points: np.ndarray, jac: np.ndarray, observed2d: np.ndarray, camera):
    """2D residuals of world points and their Jacobians, in metres at each point's depth.

    points [J, 3] world; jac [J, 3, nv] their position Jacobians; observed2d [J, 2] pixels;
    camera: `observations.Camera` (pinhole). A pixel error e at depth z counts as e * z / f metres,
    so the 2D rows weigh like the 3D ones; z / f is held fixed within one Gauss-Newton step.
    Returns (residuals [J, 2], Jacobians [J, 2, nv]).
    """
    K, R = camera.K, camera.R
    pc = points @ R.T + camera.t
    z = np.maximum(pc[:, 2], 0.1)
    f = np.array([K[0, 0], K[1, 1]])
    uv = camera.project(points)
    # d(uv)/d(p_cam) = f / z * [[1, 0, -x/z], [0, 1, -y/z]]
    d_uv = np.zeros((len(points), 2, 3))
    d_uv[:, 0, 0], d_uv[:, 1, 1] = f[0] / z, f[1] / z
    d_uv[:, :, 2] = -f * pc[:, :2] / z[:, None] ** 2
    metres = z[:, None] / f  # [J, 2]
    res = (uv - observed2d) * metres
    jac2 = np.einsum("jab,bc,jcv->jav", d_uv, R, jac) * metres[:, :, None]
    return res, jac2


# The IK's joint-range residual weight (`inverse_kinematics`): 1 per radian counts a joint 0.1 rad past its range as
# much as a landmark 10 cm from its observation.
RANGE_WEIGHT = 1.0


def inverse_kinematics(model: mujoco.MjModel, obs: Observations, *, iters_first: int = 60, iters: int = 15,
                       rest_weight: float = 1e-3, temporal_weight: float = 1e-2,
                       weight_2d: float = 0.0, ground_weight: float = 0.0, contact_geoms=(),
                       level_geoms=(), level_weights: np.ndarray | None = None,
                       balance_weight: float = 0.0, range_weight: float = RANGE_WEIGHT) -> np.ndarray:
    """qpos [T, nq] that best places the body's landmark sites on the observed joints.

    range_weight > 0: a joint beyond its range (`joint_range_excess`) is a residual too, the excess (rad) times
    sqrt(range_weight), so the pose stays within the ranges the simulation's soft limits hold. The body has no
    forearm twist and no wrist, so without it a detected hand orientation (MediaPipe's pinky, index and thumb)
    can be matched only by twisting the upper arm half a turn and bending the elbow backwards: the studio
    dance's right elbow stood 108 degrees past straight in a third of the frames (docs/video.md "Session 32").

    weight_2d > 0 (and `obs` has 2D keypoints and a camera): the sites' reprojections are also
    fitted to the 2D keypoints, a pixel error counting as much as a 3D error of the distance it
    spans at the joint's depth, times `weight_2d`. On video the detector's 2D is more accurate
    than its 3D (its feet, in particular), so a reference fitted to both reprojects closer to what
    the video shows.

    ground_weight > 0: the bottoms of `contact_geoms` (sphere ids) below the ground (z = 0) are
    residuals too, times sqrt(ground_weight), so the pose keeps its feet out of the floor where
    the detections would put them in it (typically by moving along the camera ray, which the
    2D does not see, rather than straight up, which it does).

    level_geoms: sphere ids of each foot (a sequence of id sequences); level_weights [T, len(level_geoms)]:
    the bottoms of each foot's spheres away from their mean are residuals too, times the square root of the
    foot's weight at that frame, so the foot lies level (its sole parallel to the floor). For observations
    without toes the foot's orientation moves no observed site; without this it follows the shin.

    balance_weight > 0 (with `level_geoms`, each foot's spheres): in the frames where the person stands nearly
    still (`standing_frames`) on both feet (each foot's lowest sphere bottom within BALANCE_FOOT_HEIGHT of the
    floor), the body's centre of mass is kept over the feet: where it stands outside an ellipse of their spheres
    (`_balance_rows`, BALANCE_REACH), its offset is a residual, times sqrt(balance_weight). One view leaves a
    pose's lean in depth uncertain by about ten degrees (MediaPipe's 3D on the Human3.6M sample frames), enough to
    put a standing person's centre of mass 20 cm beside their feet, where a simulated body has to step to stay up;
    the 2D keypoints barely move when the lean changes in depth.

    Frames with no confident joint between two with one, in the same shot, lie on the way between their
    solutions (`interpolate_unseen`: the root's position linearly, every rotation along its shortest arc): a held
    pose, as before, froze a running person's reference for the 0.23 s the soccer clip's player went undetected
    and then jumped 0.3 m, and the simulated body, its PD targets frozen mid-stride, fell (docs/video.md "Session
    26"). Frames with no confident joint after a shot's last start from its solution, with nothing to fit (the
    joints drift towards rest under the regulariser, about a tenth per frame; held exactly, session 26 measured
    the soccer clip's tackle falling at two budgets of three); each shot of an edited video
    (`obs.shot_starts`) starts afresh at its first frame with a confident joint, as the clip does
    (the root guessed from that frame, no pull towards the previous frame), and its frames before
    that one take its solution.
    """
    js = obs.skeleton
    site_ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, lm) for lm in js.landmarks])
    data = mujoco.MjData(model)
    nv = model.nv
    qpos = model.qpos0.copy()
    out = np.zeros((obs.num_frames, model.nq))
    jacp = np.zeros((3, nv))
    use_2d = weight_2d > 0 and obs.joints2d is not None and obs.camera is not None
    geoms = list(contact_geoms) if ground_weight > 0 else []
    radii = model.geom_size[geoms, 0] if geoms else np.zeros(0)
    seen = np.asarray(obs.confidence > 0).any(axis=1)
    balanced = standing_frames(obs) if balance_weight > 0 and level_geoms else np.zeros(obs.num_frames, bool)
    feet = [list(f) for f in level_geoms]
    first_seen = {a: a + int(np.argmax(seen[a:b])) for a, b in shot_spans(obs.shot_starts, obs.num_frames)
                  if seen[a:b].any()}
    fresh = {0, *first_seen.values()}
    joints = _actuated_joints(model)

    def solve(qpos: np.ndarray, t: int, prev: np.ndarray, iterations: int) -> tuple[np.ndarray, float]:
        """Frame t's Levenberg-Marquardt iterations from qpos (in place): (qpos, the objective at the last
        linearisation: squared residuals plus the rest and temporal terms)."""
        y, c = obs.joints3d[t], obs.confidence[t]
        w = np.sqrt(np.repeat(c, 3))
        w2 = np.sqrt(weight_2d * np.repeat(c, 2))
        lam = 1e-2
        cost = np.inf
        for _ in range(iterations):
            data.qpos[:] = qpos
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)  # the Jacobians read cdof
            sites = data.site_xpos[site_ids]
            r = (sites - y).reshape(-1) * w
            jac = np.zeros((len(site_ids), 3, nv))
            for k, s in enumerate(site_ids):
                mujoco.mj_jacSite(model, data, jacp, None, s)
                jac[k] = jacp
            J = jac.reshape(-1, nv) * w[:, None]
            if use_2d:
                r2, J2 = _reprojection_rows(sites, jac, obs.joints2d[t], obs.camera)
                r = np.concatenate([r, r2.reshape(-1) * w2])
                J = np.concatenate([J, J2.reshape(-1, nv) * w2[:, None]])
            if geoms:
                bottom = data.geom_xpos[geoms, 2] - radii
                below = [(g, b) for g, b in zip(geoms, bottom) if b < 0]
                if below:
                    Jg = np.zeros((len(below), nv))
                    for k, (g, _) in enumerate(below):
                        mujoco.mj_jacGeom(model, data, jacp, None, g)
                        Jg[k] = jacp[2]
                    sw = np.sqrt(ground_weight)
                    r = np.concatenate([r, sw * np.array([b for _, b in below])])
                    J = np.concatenate([J, sw * Jg])
            if balanced[t]:
                rows = _balance_rows(model, data, feet, jacp)
                if rows is not None:
                    r = np.concatenate([r, np.sqrt(balance_weight) * rows[0]])
                    J = np.concatenate([J, np.sqrt(balance_weight) * rows[1]])
            for foot, lw in zip(level_geoms, level_weights[t] if level_weights is not None else ()):
                if lw > 0:
                    rl, Jl = _level_rows(model, data, list(foot), jacp)
                    r = np.concatenate([r, np.sqrt(lw) * rl])
                    J = np.concatenate([J, np.sqrt(lw) * Jl])
            if range_weight > 0:
                rr, Jr = _range_rows(model, qpos, joints)
                r = np.concatenate([r, np.sqrt(range_weight) * rr])
                J = np.concatenate([J, np.sqrt(range_weight) * Jr])
            d_rest = np.zeros(nv)
            mujoco.mj_differentiatePos(model, d_rest, 1.0, model.qpos0, qpos)
            d_prev = np.zeros(nv)
            mujoco.mj_differentiatePos(model, d_prev, 1.0, prev, qpos)
            reg = np.full(nv, rest_weight)
            reg[:6] = 0.0  # the root is free
            tw = 0.0 if t in fresh else temporal_weight
            cost = float(r @ r + reg @ (d_rest * d_rest) + tw * (d_prev @ d_prev))
            H = J.T @ J + np.diag(reg + tw + lam)
            g = J.T @ r + reg * d_rest + tw * d_prev
            step = -np.linalg.solve(H, g)
            mujoco.mj_integratePos(model, qpos, step, 1.0)
            if np.linalg.norm(step) < 1e-6:
                break
        return qpos, cost

    for t in range(obs.num_frames):
        y, c = obs.joints3d[t], obs.confidence[t]
        if t in fresh:
            guess = _root_guess({lm: y[j] for j, lm in enumerate(js.landmarks) if c[j] > 0})
            if guess is not None:
                qpos[:3], qpos[3:7] = guess
        prev = qpos.copy()
        iterations = iters_first if t in fresh else iters
        qpos, cost = solve(qpos, t, prev, iterations)
        turned = qpos.copy()
        names = flip_elbows(model, turned) if range_weight > 0 else ()
        if names:  # the elbows' other branch, kept where it fits better; the previous pose turned alike
            prev_turned = prev.copy()
            flip_elbows(model, prev_turned, names)
            turned, turned_cost = solve(turned, t, prev_turned, iterations)
            if turned_cost < cost:
                qpos = turned
        wrap_hinges(model, qpos)
        out[t] = qpos
    for start, first in first_seen.items():  # a shot's frames before its first detection: as that one
        out[start:first] = out[first]
    return interpolate_unseen(model, out, seen, obs.shot_starts)


# Hinges whose backward bend has a mirror image (`flip_elbows`), and how far (rad) past the lower end of its range an
# elbow is tried turned round (the range residual holds one that the observations bend backwards just past it).
ELBOW_HINGES = ("left_forearm", "right_forearm")
FLIP_PAST = 1e-3


def flip_elbows(model: mujoco.MjModel, qpos: np.ndarray, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """qpos [nq] (in place) with every elbow bent backwards (more than FLIP_PAST past the lower end of its range)
    turned round: the shoulder turned half round about the upper arm's long axis and the bend negated. The elbow
    and the wrist stay where they were (the body has no forearm twist; only the hand's points turn). The IK
    (`inverse_kinematics`) solves the frame again from there and keeps the better fit: its range residual alone
    holds an elbow that the observations bend backwards just past the end of its range, straight, far from the
    wrist, because the way round passes through poses that fit worse. `names`: turn these elbows (ELBOW_HINGES
    names) whatever their bend. Returns the names of the elbows turned."""
    wrap_hinges(model, qpos)
    turned = []
    for name in ELBOW_HINGES if names is None else names:
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        a = model.jnt_qposadr[j]
        if names is None and qpos[a] >= model.jnt_range[j, 0] - FLIP_PAST:
            continue
        child = model.jnt_bodyid[j]
        shoulder = model.body_jntadr[model.body_parentid[child]]
        assert model.jnt_type[shoulder] == mujoco.mjtJoint.mjJNT_BALL, name
        s = model.jnt_qposadr[shoulder]
        axis = model.body_pos[child] / np.linalg.norm(model.body_pos[child])  # the upper arm, shoulder to elbow
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, qpos[s:s + 4].copy(), np.r_[0.0, axis])
        qpos[s:s + 4] = quat
        qpos[a] = -qpos[a]
        turned.append(name)
    return tuple(turned)


def wrap_hinges(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """qpos [nq] (in place, and returned) with each hinge angle moved by whole turns into [-pi, pi): the same
    pose, with the angle the PD controllers and the soft joint limits read as meant. The IK's steps do not see
    whole turns: on the studio dance it bent both elbows by -5.0 rad the whole clip, which places every site as
    +1.28 rad does, 5 rad below the range [0, 2.79] whose spring (300 N m per radian) the simulated arms then
    pushed against (docs/video.md "Session 28")."""
    for a in model.jnt_qposadr[model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE]:
        if not -np.pi <= qpos[a] < np.pi:  # the others exactly as they are
            qpos[a] = (qpos[a] + np.pi) % (2 * np.pi) - np.pi
    return qpos


def hold_after_last_seen(qpos: np.ndarray, seen: np.ndarray, shot_starts: tuple[int, ...] = ()) -> np.ndarray:
    """qpos [T, nq] with the frames after each shot's last `seen` ([T] bool) frame holding that frame's pose: what
    a reconstruction shows over a long gap at the end of a shot, where the IK's reference, with nothing to fit,
    drifts towards rest (the simulation keeps the reference as it is: held exactly, session 26 measured the soccer
    clip's tackle falling at two budgets of three)."""
    out = qpos.copy()
    for a, b in shot_spans(shot_starts, len(qpos)):
        frames = a + np.flatnonzero(seen[a:b])
        if frames.size:
            out[frames[-1] + 1:b] = qpos[frames[-1]]
    return out


def interpolate_unseen(model: mujoco.MjModel, qpos: np.ndarray, seen: np.ndarray,
                       shot_starts: tuple[int, ...] = ()) -> np.ndarray:
    """qpos [T, nq] with each run of frames not `seen` ([T] bool) that lies between two seen frames of the same
    shot (`shot_starts`) replaced by the way between those two poses: at fraction s of the run, the pose reached
    from the first by s times the velocity that leads to the second in unit time (`mj_differentiatePos`): the
    free joint's position linearly, each ball joint's and the root's rotation along the shortest arc (slerp),
    hinges linearly. The other frames are returned as they were."""
    out = qpos.copy()
    velocity = np.zeros(model.nv)
    for a, b in shot_spans(shot_starts, len(qpos)):
        frames = a + np.flatnonzero(seen[a:b])
        for i, j in zip(frames[:-1], frames[1:]):
            if j - i < 2:
                continue
            mujoco.mj_differentiatePos(model, velocity, 1.0, qpos[i], qpos[j])
            for t in range(i + 1, j):
                q = qpos[i].copy()
                mujoco.mj_integratePos(model, q, velocity, (t - i) / (j - i))
                out[t] = q
    return out


def blend_poses(model: mujoco.MjModel, qa: np.ndarray, qb: np.ndarray, toward_b: np.ndarray) -> np.ndarray:
    """[n, nq] poses the fraction `toward_b` [n] of the way from qa [n, nq] to qb [n, nq], as
    `interpolate_unseen` goes (`mj_differentiatePos`: positions and hinges linearly, rotations along the shortest
    arc)."""
    out = np.array(qa, np.float64)
    velocity = np.zeros(model.nv)
    for i, s in enumerate(np.asarray(toward_b, np.float64)):
        mujoco.mj_differentiatePos(model, velocity, 1.0, np.asarray(qa[i], np.float64), np.asarray(qb[i], np.float64))
        mujoco.mj_integratePos(model, out[i], velocity, float(s))
    return out


# The reference's balance (`inverse_kinematics`' balance_weight): a foot is down while its lowest sphere's bottom is
# within BALANCE_FOOT_HEIGHT (m) of the floor; the centre of mass, seen from above, stays within BALANCE_REACH
# standard deviations of the feet's spheres' centres from their mean: an ellipse well inside the polygon under the
# feet, whose spheres lie 1.15-1.64 standard deviations out on the template standing with its feet side by side
# (0.8 chosen over the video corpus against 1.2, docs/video.md "Session 25").
BALANCE_FOOT_HEIGHT = 0.05
BALANCE_REACH = 0.8
# A person stands nearly still (`standing_frames`) where the middle of the observed hips moves slower than
# STANDING_SPEED (m/s, over +-STANDING_SPAN s): a walker's pelvis moves at about 1 m/s.
STANDING_SPEED = 0.3
STANDING_SPAN = 0.1


def standing_frames(obs: Observations) -> np.ndarray:
    """[T] bool: the frames where the middle of the observed hips (both confident) moves horizontally slower than
    STANDING_SPEED, measured over STANDING_SPAN seconds each side; False where the hips are not seen."""
    js = obs.skeleton
    hips = [j for j, lm in enumerate(js.landmarks) if lm in ("left_hip", "right_hip")]
    if len(hips) != 2:
        return np.zeros(obs.num_frames, bool)
    mid = np.asarray(obs.joints3d, np.float64)[:, hips, :2].mean(axis=1)
    seen = (np.asarray(obs.confidence)[:, hips] > 0.3).all(axis=1) & np.isfinite(mid).all(axis=1)
    k = max(1, int(round(STANDING_SPAN * obs.fps)))
    t = np.arange(obs.num_frames)
    a, b = np.maximum(t - k, 0), np.minimum(t + k, obs.num_frames - 1)
    ok = (b > a) & seen[a] & seen[b] & seen
    moved = np.linalg.norm(np.where(ok[:, None], mid[b] - mid[a], 0.0), axis=1)
    return ok & (moved < STANDING_SPEED * np.maximum(b - a, 1) / obs.fps)


def _balance_rows(model: mujoco.MjModel, data: mujoco.MjData, feet: list[list[int]], jacp: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Residuals [2] and their Jacobian [2, nv]: where the body's centre of mass, seen from above, stands outside
    the ellipse of both feet's spheres (`feet`: sphere ids per foot; their centres' mean and covariance, the
    ellipse BALANCE_REACH standard deviations out), its offset from the ellipse along the line to the mean; None
    where a foot is not down or the centre is inside. A smooth stand-in for the polygon under the feet (whose
    nearest edge flips from one Gauss-Newton step to the next). Needs mj_kinematics and mj_comPos at the pose."""
    bottoms = [min(data.geom_xpos[g, 2] - model.geom_size[g, 0] for g in foot) for foot in feet]
    if max(bottoms) >= BALANCE_FOOT_HEIGHT:
        return None  # a foot in the air: walking or running, where the centre of mass passes beside the feet
    spheres = [g for foot in feet for g in foot]
    points = data.geom_xpos[spheres, :2]
    centre = points.mean(axis=0)
    inv_cov = np.linalg.inv(np.cov(points.T, bias=True) + 1e-6 * np.eye(2))
    d = data.subtree_com[1, :2] - centre
    reach = float(np.sqrt(d @ inv_cov @ d))  # in standard deviations
    if reach <= BALANCE_REACH:
        return None
    mujoco.mj_jacSubtreeCom(model, data, jacp, 1)  # body 1: the root, whose subtree is the whole body
    j_com = jacp[:2].copy()
    j_spheres = np.zeros((len(spheres), 2, model.nv))
    for n, g in enumerate(spheres):
        mujoco.mj_jacGeom(model, data, jacp, None, g)
        j_spheres[n] = jacp[:2]
    j_d = j_com - j_spheres.mean(axis=0)
    # d(reach): through d, and through the covariance (d C = mean of dp e^T + e dp^T, e = p - mean)
    v = inv_cov @ d
    d_reach = (v @ j_d - np.einsum("n,a,nav->v", (points - centre) @ v, v, j_spheres) / len(spheres)) / reach
    k = BALANCE_REACH / reach
    return d * (1.0 - k), (1.0 - k) * j_d + (k / reach) * np.outer(d, d_reach)


def _range_rows(model: mujoco.MjModel, qpos: np.ndarray, joints: "_Joints | None" = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Residuals [R] and their Jacobian [R, nv]: how far (rad) each joint beyond its range lies past it (R of
    them; none within; negative below a hinge's lower end). A ball joint's excess is its rotation angle over
    `jnt_range[1]`, whose derivative with respect to the joint's dofs (an angular velocity in its own frame) is
    the rotation's unit axis. `joints`: the model's `_actuated_joints`, if already read."""
    joints = joints or _actuated_joints(model)
    past, axes = _past_range(joints, qpos[None])
    past, axes = past[0], axes[0]
    rows = np.flatnonzero(past)
    jac = np.zeros((len(rows), model.nv))
    for k, j in enumerate(rows):
        d = joints.dofadr[j]
        if joints.ball[j]:
            jac[k, d:d + 3] = axes[j]
        else:
            jac[k, d] = 1.0
    return past[rows], jac


def _level_rows(model: mujoco.MjModel, data: mujoco.MjData, geoms: list, jacp: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Residuals [G] and their Jacobian [G, nv]: each sphere's bottom height minus the mean of the `geoms`'
    (zero where they lie level)."""
    bottom = data.geom_xpos[geoms, 2] - model.geom_size[geoms, 0]
    Jz = np.zeros((len(geoms), model.nv))
    for k, g in enumerate(geoms):
        mujoco.mj_jacGeom(model, data, jacp, None, g)
        Jz[k] = jacp[2]
    return bottom - bottom.mean(), Jz - Jz.mean(axis=0)


def smooth_in_time(obs: Observations, sigma_s: float) -> Observations:
    """`obs` with joints3d (and joints2d, if any) low-pass filtered in time: a Gaussian of `sigma_s`
    seconds, confidence-weighted.

    Used for the kinematic *reference* of the controllers (the PD targets and the
    initial state), never for the loss's targets. Frames and joints with zero
    confidence take their value from their confident neighbours. Each shot of an
    edited video (`Observations.shot_starts`) is filtered on its own.
    """
    from scipy.ndimage import gaussian_filter1d

    if sigma_s <= 0 or obs.num_frames < 3:
        return obs
    sigma = sigma_s * obs.fps
    c = np.asarray(obs.confidence, np.float64)[..., None]
    shots = [slice(a, b) for a, b in shot_spans(obs.shot_starts, obs.num_frames)]
    filtered = lambda a: np.concatenate([gaussian_filter1d(a[s], sigma, axis=0, mode="nearest") for s in shots])
    den = filtered(c)

    def smooth(values):
        y = np.nan_to_num(np.asarray(values, np.float64))
        return np.where(den > 1e-6, filtered(y * c) / np.maximum(den, 1e-6), y).astype(np.float32)

    return dataclasses.replace(obs, joints3d=smooth(obs.joints3d),
                               joints2d=None if obs.joints2d is None else smooth(obs.joints2d))


def lift_onto_ground(model: mujoco.MjModel, qpos: np.ndarray, contact_geoms, sigma_frames: float = 1.0):
    """qpos [T, nq] raised per frame so that no contact sphere is below the ground (z = 0).

    The lift of each frame (metres, >= 0) is smoothed in time with a Gaussian of
    `sigma_frames` and then made at least the lift that frame needs, so the
    reference neither penetrates nor jumps. Returns (qpos, lift [T]).
    """
    from scipy.ndimage import gaussian_filter1d

    geoms = list(contact_geoms)
    bottoms = geom_positions(model, qpos, geoms)[..., 2] - model.geom_size[geoms, 0]
    need = np.maximum(0.0, -bottoms.min(axis=1))
    lift = np.maximum(gaussian_filter1d(need, sigma_frames, mode="nearest") if sigma_frames > 0 else need, need)
    out = np.array(qpos, copy=True)
    out[:, 2] += lift
    return out, lift


def geom_bottoms(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """Height (m) of the lowest point of each of the body's geoms (spheres, capsules, boxes; the floor plane
    excluded; the contact spheres lie inside the body's geometry) at the kinematics in `data`. [G'] in geom order."""
    keep = (model.geom_bodyid > 0) & (model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE)
    size, z = model.geom_size[keep], data.geom_xpos[keep, 2]
    up = data.geom_xmat[keep].reshape(-1, 3, 3)[:, 2, :]  # each local axis's z component
    kind = model.geom_type[keep]
    capsule = z - np.abs(up[:, 2]) * size[:, 1] - size[:, 0]
    box = z - np.sum(np.abs(up) * size, axis=-1)
    return np.where(kind == mujoco.mjtGeom.mjGEOM_CAPSULE, capsule,
                    np.where(kind == mujoco.mjtGeom.mjGEOM_BOX, box, z - size[:, 0]))


def body_part_bottoms(model: mujoco.MjModel, qpos: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """The lowest point (m) of each body's surface (`geom_bottoms`, the lowest of its geoms) per frame:
    ([B] body names, [T, B] heights) for qpos [T, nq]."""
    data = mujoco.MjData(model)
    keep = (model.geom_bodyid > 0) & (model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE)
    owner = model.geom_bodyid[keep]
    bodies = np.unique(owner)
    out = np.zeros((len(qpos), len(bodies)))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        bottoms = geom_bottoms(model, data)
        out[t] = [bottoms[owner == b].min() for b in bodies]
    return tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(b)) for b in bodies), out


def lowest_body_point(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Height (m) of the lowest point of the body's surface (`geom_bottoms`) per frame: [T, nq] -> [T].
    Negative where some part of the body is under the floor."""
    return body_part_bottoms(model, qpos)[1].min(axis=1)


@dataclasses.dataclass(frozen=True)
class _Joints:
    """The body's ball joints and hinges in model order: names, ball (True) or hinge, qpos and dof addresses,
    range [lo, hi] (rad; a ball joint's hi is its largest rotation)."""

    names: tuple[str, ...]
    ball: np.ndarray
    qposadr: np.ndarray
    dofadr: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def _actuated_joints(model: mujoco.MjModel) -> _Joints:
    kinds = (int(mujoco.mjtJoint.mjJNT_BALL), int(mujoco.mjtJoint.mjJNT_HINGE))
    ids = [j for j in range(model.njnt) if int(model.jnt_type[j]) in kinds]
    return _Joints(tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in ids),
                   model.jnt_type[ids] == mujoco.mjtJoint.mjJNT_BALL, model.jnt_qposadr[ids], model.jnt_dofadr[ids],
                   model.jnt_range[ids, 0], model.jnt_range[ids, 1])


def _past_range(joints: _Joints, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far past its range each joint lies, signed (negative below a hinge's lower end, 0 within the range),
    [T, J] rad, and each ball joint's unit rotation axis [T, J, 3] (0 for hinges), for qpos [T, nq]."""
    columns = np.minimum(joints.qposadr[:, None] + np.arange(4), qpos.shape[-1] - 1)  # a hinge's row is unused
    quats = qpos[:, columns]  # [T, J, 4]
    sign = np.where(quats[..., :1] < 0, -1.0, 1.0)  # the shorter arc
    w, v = sign[..., 0] * quats[..., 0], sign * quats[..., 1:]
    n = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(n, w)
    theta = qpos[:, joints.qposadr]
    past = np.where(joints.ball, np.maximum(0.0, angle - joints.hi),
                    np.maximum(0.0, theta - joints.hi) + np.minimum(0.0, theta - joints.lo))
    axes = np.where(joints.ball[:, None], v / np.maximum(n, 1e-12)[..., None], 0.0)
    return past, axes


def joint_range_excess(model: mujoco.MjModel, qpos: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """How far each actuated joint is beyond its range, per frame: ([J] joint names, [T, J] radians, 0 within
    the range) for qpos [T, nq]. A ball joint's rotation angle (the shorter arc) is compared with its largest
    rotation (`jnt_range[1]`), a hinge's angle with [lo, hi]. The simulation's limits are soft springs
    (`physics.control`), so a controller or the floor can push a joint past them; this reads by how much."""
    joints = _actuated_joints(model)
    return joints.names, np.abs(_past_range(joints, np.asarray(qpos, float))[0])


def finite_difference_velocity(model: mujoco.MjModel, qpos_a: np.ndarray, qpos_b: np.ndarray, dt: float):
    """qvel [nv] that takes qpos_a to qpos_b in dt seconds."""
    v = np.zeros(model.nv)
    mujoco.mj_differentiatePos(model, v, dt, qpos_a, qpos_b)
    return v


def _over_frames(model: mujoco.MjModel, qpos: np.ndarray, field: str, ids) -> np.ndarray:
    """Forward kinematics of every pose of qpos [T, nq]: [T, len(ids), 3] rows `ids` of MjData's `field`."""
    data = mujoco.MjData(model)
    ids = list(ids)
    out = np.zeros((len(qpos), len(ids), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = getattr(data, field)[ids]
    return out


def landmark_sites(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Forward kinematics: [T, nq] -> [T, L, 3] landmark site positions (BODY_LANDMARKS order)."""
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in BODY_LANDMARKS]
    return _over_frames(model, qpos, "site_xpos", ids)


def geom_positions(model: mujoco.MjModel, qpos: np.ndarray, geoms) -> np.ndarray:
    """Forward kinematics: [T, nq] -> [T, G, 3] centres of the geoms `geoms` (ids, e.g. the contact spheres)."""
    return _over_frames(model, qpos, "geom_xpos", geoms)


def body_positions(model: mujoco.MjModel, qpos: np.ndarray, bodies) -> np.ndarray:
    """Forward kinematics: [T, nq] -> [T, B, 3] origins of the bodies `bodies` (ids; a thigh's is its hip)."""
    return _over_frames(model, qpos, "xpos", bodies)


def on_image_rays(obs: Observations) -> np.ndarray:
    """obs.joints3d [T, J, 3] with each point moved, at its depth from the camera, onto the ray of its 2D
    keypoint (world metres): the image position the 2D's, the depth the 3D's. Points without a finite 2D
    keypoint, and every point where obs has no 2D keypoints or camera, stay where they are."""
    y = np.asarray(obs.joints3d, np.float64)
    if obs.joints2d is None or obs.camera is None:
        return y
    cam = obs.camera
    depth = (y @ cam.R.T + cam.t)[..., 2:3]
    uv = np.asarray(obs.joints2d, np.float64)
    rays = np.concatenate([uv, np.ones_like(uv[..., :1])], axis=-1) @ np.linalg.inv(cam.K).T
    moved = (rays * depth - cam.t) @ cam.R
    return np.where(np.isfinite(moved).all(axis=-1, keepdims=True), moved, y)


# Most a landmark site may move from where the template puts it (`site_offsets`), m, at the template's size.
SITE_OFFSET_LIMIT = 0.08


def site_offsets(model: mujoco.MjModel, shape: BodyShape, obs: Observations, qpos: np.ndarray,
                 sites: tuple[str, ...] = OFFSET_SITES,
                 limit: float = SITE_OFFSET_LIMIT) -> tuple[tuple[str, tuple[float, float, float]], ...]:
    """Where this person's observations (detections, a mocap rig's joints) put the landmark sites `sites`, as
    `BodyShape.site_offsets`.

    `model` is the body of `shape`, `qpos` [T, nq] its IK on `obs` (a first pass). Per site that `obs`
    observes: every observed joint mapped onto it (MediaPipe's three eye points onto one eye site), in the
    frames where it is confident (> 0.3), moved onto its 2D keypoint's camera ray where obs has 2D
    (`on_image_rays`: the detector's 2D is the more accurate; with the 3D points as they are the reference
    reprojected 0.9-1.1x the raw detections' error on the static dev videos, with these 0.66-0.92x), and
    expressed in the site's body frame at qpos; the per-axis median of those points is where the site goes.
    The offset from the template's position (m, the body's frame) is shortened to at most
    `limit` * shape.scale. Sites without a confident observation keep their current offset. Returns
    ((site, (dx, dy, dz)), ...), sorted by site.
    """
    data = mujoco.MjData(model)
    js = obs.skeleton
    points = on_image_rays(obs)
    wanted = {n: [j for j, lm in enumerate(js.landmarks) if lm == n] for n in sites}
    wanted = {n: j for n, j in wanted.items() if j}
    site_id = {n: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in wanted}
    local: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        for n, joints in wanted.items():
            b = model.site_bodyid[site_id[n]]
            ok = [j for j in joints if obs.confidence[t, j] > 0.3]
            if ok:  # body frame: R^T (y - p)
                local[n].append((points[t, ok] - data.xpos[b]) @ data.xmat[b].reshape(3, 3))
    out = dict(shape.site_offsets)
    for n, pts in local.items():
        if not pts:
            continue
        template = model.site_pos[site_id[n]] - np.asarray(out.get(n, (0.0, 0.0, 0.0)))
        d = np.median(np.concatenate(pts), axis=0) - template
        d *= min(1.0, limit * shape.scale / max(float(np.linalg.norm(d)), 1e-12))
        out[n] = tuple(float(x) for x in d)
    return tuple(sorted(out.items()))
