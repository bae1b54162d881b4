"""Reconstruction: Observations -> physically simulated motion.

    obs ──measure_shape──► Body ──inverse_kinematics──► kinematic reference qpos_kin [T, nq]
        windows of `window` seconds overlapping by `overlap` (window.window_starts)
        1. shooting: every window of every clip starts from the reference state at its first frame
           (pose lifted out of the floor, finite-difference velocity) and is solved from zero offsets,
           all windows at once in batches (`window.solve`, `max_evals` evaluations each);
        2. continuity: the clip is simulated window after window from its first state, each window
           starting from where the previous one ended, its controls polished from two warm starts (the
           shooting solution and the previous window's controls moved forward in time) with
           `continuity_evals` evaluations each, the better kept; windows of several clips share a batch;
           a window whose feet slide is solved twice more (`slide_retry`), and one whose body falls
           twice more with the upright term on (`fall_retry`).
        ──► Reconstruction: one continuous simulation per clip (joints, qpos, controls, metrics, traces)

Gaps: a stretch of at least `restart_after_gap` seconds in which no joint is
observed (the person out of view, or not detected) is not simulated: the clip's
windows cover its observed stretches (`window.observed_segments`), each stretch
starts from the reference state at its first frame, and the frames of a gap
hold the kinematic reference's pose (`Reconstruction.simulated` marks them).
Unobserved, the body would only follow a reference interpolated across the gap,
and a few seconds of that can end on the floor.

Falls: a window whose simulated pelvis goes lower than `fall_retry_below`
(half) of the reference's is solved again with a term that holds the pelvis up
(`fall_retry`, `diffphy.fallen_pelvis`); the solve that stays up is kept
(`metrics["fall_retries"]`). Where one window hands over to the next, a body
whose pelvis is still that low has fallen; the next window
restarts from the reference state instead of from the fallen one (a jump in the
motion, listed in `metrics["fall_restarts"]` and in the terminal), so one failed
window does not leave the body on the floor for the rest of the clip.

The motion written out is the continuity pass, a single simulation from the
first state of each stretch: window w + 1 starts from the state window w reached at its first
frame, so the joins are continuous by construction (`join_position_jump_m` and
`join_velocity_jump_mps` in the metrics measure them). With `shooting=False`
the continuity pass alone gets `max_evals` per window: the window-at-a-time
reconstruction of earlier versions (bench/speed.py compares the two).

Parts: a clip longer than twice `part_seconds` is cut into parts (`window.part_windows`)
that go through the passes as clips of their own, side by side in one batch (or spread
over worker processes, `workers`), each starting from the reference state at its first
frame. The window where two parts meet is solved in both; over the `step` frames after
its start the two simulations are cross-faded (`_Run._join_parts`), and from there on
the later part's simulation is the motion (`metrics["part_seams"]`).

Compilation: one program per (window shape, batch bucket, solver); the body is
a traced argument, so a new subject reuses it, and JAX's persistent cache keeps
it across runs (`jaxsetup.enable_compilation_cache`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from motionrecon import diffphy, metrics, window
from motionrecon.body import Body, Gains, build_body, with_reference_damping
from motionrecon.body.fit import (blend_poses, geom_positions, hold_after_last_seen, inverse_kinematics,
                                  joint_range_excess, landmark_sites, lift_onto_ground, lowest_body_point,
                                  measure_shape, site_offsets, smooth_in_time)
from motionrecon.body.seats import Seat, find_seats, seat_rows
from motionrecon.body.template import CONTACT_PARTS, FEET_ONLY, BodyShape, contact_spheres
from motionrecon.errors import InputError
from motionrecon.jaxsetup import enable_compilation_cache
from motionrecon.observations import Observations
from motionrecon.optim import batched_solver, get_solver, is_batched
from motionrecon.physics.contact import ContactParams
from motionrecon.skeleton import BODY_LANDMARKS

# progress(stage, done, total): stage "compile" (0 or 1 of 1), "shooting" or "continuity" (evaluations)
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class ReconstructionConfig:
    """Settings of a reconstruction (seconds, Hz; see README for the tuning behind the defaults)."""

    solver: str = "optimus"         # see motionrecon.optim.get_solver; optimus hands over to BFGS (optim.FALLBACK)
    solver_weights: Optional[str] = None  # weight file of a learned solver (None: the shipped one)
    max_evals: int = 100            # loss+gradient evaluations per window (the shooting pass's, with shooting)
    continuity_evals: int = 60      # with shooting: per window and warm start in the continuity pass
    shooting: Optional[bool] = None  # solve all windows at once first; None: where JAX runs on an accelerator
    warm_starts: int = 1            # without shooting: 2 also solves each window from zero offsets, keeps the better
    # s: 0.5 s windows keep runs, jumps and flips up where 1 s windows let 6 of the 24 corpus clips fall
    # (bench/mocap_corpus.py, docs/mocap.md "Window length"); video keeps 1 s (VIDEO_SETTINGS).
    window: float = 0.5
    overlap: float = 0.2            # s
    keyframe_spacing: float = 0.1   # s
    # A window that continues the previous one starts its controls where that one's were at the hand-over (its
    # keyframe 0 is held there, `diffphy.pinned_keyframes`), so the PD targets do not jump between windows.
    continuous_controls: bool = False
    sim_rate: float = 120.0         # Hz (rounded to a whole number of steps per frame)
    largest_bucket: int = 16        # most window problems in one compiled batch
    # s: a clip whose windows span at least twice this is cut into parts of at least this length (a power of two
    # of them, at most `largest_bucket`), whose windows are solved side by side in one batch, each part from the
    # reference state at its first frame, and joined by a cross-fade over one window step (`window.part_windows`,
    # `_Run._join_parts`). A minute of walk in 8 parts: 1.35x faster on one CPU core (bench/clip_parts.py; a batch
    # of 8 windows costs 0.57x per window what one does there, bench/speed.py); on an accelerator a batch costs
    # about what one window does; `reconstruct(workers=N)` spreads the parts over N cores. Clips of up to 12 s
    # (the corpora's) stay whole. 0: never (one simulation throughout).
    part_seconds: float = 6.0
    # s: a stretch this long with no joint observed (a person out of view or not detected) is not simulated;
    # the body restarts from the kinematic reference after it (window.observed_segments). 0: never.
    restart_after_gap: float = 0.5
    # A body whose pelvis, where one window hands over to the next, is lower than this fraction of the kinematic
    # reference's has fallen: the next window restarts from the reference state (metrics "fall_restarts"). 0: never.
    restart_after_fall: float = 0.5
    # A window whose simulated pelvis falls below `fall_retry_below` of the reference's within its frames is
    # solved again from its solution and from zero offsets with the upright term (diffphy.fallen_pelvis) at
    # `fall_retry`; the solve whose body stays above that line with the lowest loss is kept (`_Run._retry_falls`).
    # 0 (either): never.
    fall_retry: float = 1.0
    fall_retry_below: float = 0.5
    reference_smoothing: float = 0.0  # s, Gaussian sigma on the joints the kinematic reference is fitted to
    reference_on_ground: bool = False  # lift reference frames whose contact spheres are below the ground
    reference_2d_weight: float = 0.0  # IK of the reference also fits the 2D keypoints (body.fit.inverse_kinematics)
    reference_ground_weight: float = 0.0  # IK of the reference keeps the contact spheres out of the ground
    # IK of the reference keeps the centre of mass over both feet where the person stands still
    # (body.fit.inverse_kinematics' balance_weight): one view leaves the lean in depth uncertain by about ten degrees.
    reference_balance_weight: float = 0.0
    # Observations without toes (BVH read onto "h36m17", H36M, AIST++) leave the feet's orientation to the IK,
    # where it follows the shin: the Bandai and CMU references stood toes-down, heels 2.5-4.8 cm up. With this
    # weight the IK lays each foot level while its observed ankle is low (`level_feet_weights`); 0: never.
    reference_level_feet: float = 1.0
    # IK passes, before the reference's, that each place the landmark sites that are no joint centre (face,
    # hands, spine, thorax, head top: body.template.OFFSET_SITES) where this person's observations put them
    # (body.fit.site_offsets); 0: the template's sites. With 3 the Bandai walk's reference comes within 5.1 mm of
    # its joints instead of 19.9 (the rig's spine joint sits 56 mm from the template's spine site), and on the
    # static dev videos the reference reprojects 0.66-0.92x the raw detections' error instead of 0.9-1.1x.
    site_passes: int = 3
    gain_scale: float = 1.0         # PD gains (body.template.Gains) times this
    # Fraction of the PD damping (kd = kp / 10) that pulls each joint towards the kinematic reference's joint
    # velocity instead of rest (physics.control.reference_damping): 0 brakes fast motion, 1 damps the error only.
    reference_velocity_damping: float = 0.0
    # Body parts with ground contact spheres (body.template.CONTACT_PARTS). None: chosen per clip from its
    # kinematic reference (`choose_contact_parts`): every part where any comes near the floor, else the feet
    # alone, which cost less per evaluation (bench/contact_cost.py: x1.25 alone, x1.5 in a batch of 8).
    contact_parts: tuple[str, ...] | None = None
    # Seats where the reference sits on something its pose cannot balance without (a chair: body.seats), the
    # pelvis's contact spheres resting on them; False: the floor alone.
    seats: bool = True
    # The stance term (diffphy.stance_sliding) at 1 on mocap: feet planted in the observations stay planted
    # (docs/mocap.md "Session 11"). The ground term at 1 (8x the loss's default): at 0.125 a landing could sink a
    # foot 5 cm into the soft floor for a loss of about 0.2; at 1, over the mocap corpus at 90/100/110
    # evaluations, penetration <= 10 mm on 22/24/23 clips instead of 22/21/22, deepest 10.7/9.2/10.0 mm instead
    # of 16.2/25.7/11.9, MPJPE-G mean 21.8/21.7/21.4 mm instead of 21.9/22.0/23.6 (docs/mocap.md "Session 23").
    # VIDEO_SETTINGS has weights of its own: no stance term, the ground term at 0.125 (1 was not better there).
    weights: diffphy.LossWeights = diffphy.LossWeights(stance=1.0, ground=1.0)
    # A window of the continuity pass whose feet slide while bearing weight, as the stance foot-skate metric reads
    # them from the handed-over frame to the window's last (`slides`), is solved again from its solution with the
    # same budget, the step out of the handed-over state now in the skate and stance terms
    # (`diffphy.handover_sliding`, the stance term at RETRY_STANCE where the settings have none, as on video),
    # once more with the sliding feet also held; the better retry is kept where fewer slide and the observations
    # fit within RETRY_FIT_TOLERANCE (docs/mocap.md "Session 15", "Session 16").
    slide_retry: bool = True
    contact: ContactParams = ContactParams()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_overrides(self, changes: dict, source: str = "settings") -> "ReconstructionConfig":
        """These settings with `changes` (field name -> value, as `to_dict` writes them; `weights` and
        `contact` take a dict of their own fields, merged into the current ones). InputError naming `source`
        for a field that does not exist or a value of the wrong kind."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        out = {}
        for name, value in changes.items():
            if name not in fields:
                raise InputError(source, f"unknown setting {name!r}; known: {', '.join(sorted(fields))}")
            current = getattr(self, name)
            if dataclasses.is_dataclass(current):
                if not isinstance(value, dict):
                    raise InputError(source, f"{name} takes an object of {', '.join(current.__dataclass_fields__)}")
                unknown = sorted(set(value) - set(current.__dataclass_fields__))
                if unknown:
                    raise InputError(source, f"unknown {name} field(s) {', '.join(unknown)}")
                value = dataclasses.replace(current, **{k: float(v) for k, v in value.items()})
            elif name == "contact_parts":
                value = None if value is None else _parts(value, name, source)
            elif isinstance(current, bool) or (current is None and isinstance(value, bool)):
                if not isinstance(value, bool) and value is not None:
                    raise InputError(source, f"{name} takes true, false or null, got {value!r}")
            elif isinstance(current, (int, float)) and not isinstance(value, (int, float)):
                raise InputError(source, f"{name} takes a number, got {value!r}")
            out[name] = type(current)(value) if isinstance(current, (int, float)) and not isinstance(
                current, bool) else value
        return dataclasses.replace(self, **out)

    def solver_options(self) -> dict:
        return {} if self.solver_weights is None else {"weights": self.solver_weights}

    def make_solver(self):
        """The solver these settings name (ValueError for an unknown name, InputError for named weights that do
        not load): a batched state machine (`optim.batched`) where the solver has one, else a `Solver`."""
        if is_batched(self.solver):
            return batched_solver(self.solver, self.solve_budget(), **self.solver_options())
        return get_solver(self.solver, **self.solver_options())

    def uses_shooting(self) -> bool:
        """Whether the windows are first solved all at once (`shooting`; None: where JAX's default device is an
        accelerator, on which a batch of windows costs about what one does; on a CPU it costs about half per
        window (bench/speed.py), less than the continuity pass adds)."""
        if self.shooting is not None:
            return bool(self.shooting)
        import jax

        return jax.default_backend() != "cpu"

    def solve_budget(self) -> int:
        """The trace length of the compiled solver loops: the most evaluations one window gets in one pass,
        rounded up to a power of two, so that nearby budgets share one program."""
        most = max(self.max_evals, self.continuity_evals if self.uses_shooting() else 0, 1)
        return 1 << (most - 1).bit_length()


def _parts(value, name: str, source: str) -> tuple[str, ...]:
    """A settings file's list of contact parts as a tuple; InputError naming `source` for anything else."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value) or not value:
        raise InputError(source, f"{name} takes a list of body parts, e.g. {list(CONTACT_PARTS)}")
    try:
        contact_spheres(BodyShape(), tuple(value))
    except ValueError as e:
        raise InputError(source, f"{name}: {e}") from None
    return tuple(value)


# Video, where the placed 3D is uncertain in depth: mostly 2D reprojection and root-relative 3D pose, a
# foot-sliding penalty (5 per contact sphere: 40 on the mean over the 8 foot spheres of earlier versions),
# twice the mocap weight on smooth control keyframes (against jitter), PD gains twice DeepMimic's, and a
# kinematic reference fitted to the detections smoothed over ~1 frame at 12 fps, to their 3D and 2D with the
# contact spheres kept out of the floor (the loss still compares with the raw detections); its face and hand
# sites are placed by the default 3 site passes, as a mocap body's are (bench/reference_fit.py). docs/video.md
# "Physics on video" has the tables behind them. Every video reconstruction (`motionrecon VIDEO`, `eval --input
# video`) uses `video_config`. Session 24 (docs/video.md "Session 24"): the root-relative 3D pose at 0.3 (1
# before: a single view leaves the body's lean in depth uncertain by about 10 degrees, and the 3D pose held the
# body to it) with the planted term at 1 (no hops where the detections stand): over the 18 corpus runs the 2D
# error lower on 15, the feet higher on 17, targets missed 11 -> 8. Session 25 ("Session 25"): the reference keeps
# a standing person's centre of mass over both feet (reference_balance_weight; targets missed 8 -> 7). Session 28
# ("Session 28"): windows overlap by 0.25 s (0.2 before; 7 % more windows): over the 18 runs the 2D error lower
# on 13 and higher on 2 (mean 2.13 -> 1.93 of raw), foot skate 4.56 -> 3.55 %, the runner's pelvis 0.74 of its
# reference's (0.59-0.63), targets missed 6 -> 6.
VIDEO_SETTINGS = dict(
    weights=diffphy.LossWeights(marker3d=0.2, root_relative=0.3, reprojection=8.0, skate=5.0, smooth=20.0,
                                planted=1.0),
    gain_scale=2.0, reference_smoothing=0.08, reference_on_ground=True, reference_2d_weight=1.0,
    reference_ground_weight=10.0, reference_balance_weight=100.0, max_evals=130, window=1.0, overlap=0.25)


def video_config(**changes) -> ReconstructionConfig:
    """The settings of video reconstruction (VIDEO_SETTINGS over the defaults), with `changes` on top."""
    return dataclasses.replace(ReconstructionConfig(), **{**VIDEO_SETTINGS, **changes})


@dataclasses.dataclass
class Reconstruction:
    """The result.

    joints3d: [T, J, 3] simulated joints (observation layout), metres, world z-up.
    observed3d: [T, J, 3] the observations. qpos: [T, nq] simulated poses.
    qpos_kinematic: [T, nq] the IK poses. markers: [T, L, 3] all body landmarks.
    contact_pos: [T, C, 3] contact sphere centres (`body.template.contact_spheres`).
    control: [W, K, U] optimised keyframes per window. windows: per-window facts (start frame,
    solver traces, evaluations, messages). metrics: see `metrics.summarize` plus counts and timings.
    """

    fps: float
    joint_set: str
    joint_names: tuple[str, ...]
    joints3d: np.ndarray
    observed3d: Optional[np.ndarray]
    confidence: np.ndarray
    qpos: np.ndarray
    qpos_kinematic: np.ndarray
    markers: np.ndarray
    contact_pos: np.ndarray
    control: np.ndarray
    control_fps: float
    body: Body
    windows: list[dict]
    metrics: dict
    config: ReconstructionConfig
    source: str = ""
    simulated: Optional[np.ndarray] = None  # [T] bool: frames simulated; the others (gaps) hold qpos_kinematic


def kinematic_reference(obs: Observations, cfg: ReconstructionConfig, spf: int,
                        shape: BodyShape | None = None) -> tuple[Body, np.ndarray]:
    """The body and the kinematic reference of `reference_and_seats`, without the seats."""
    body, qkin, _ = reference_and_seats(obs, cfg, spf, shape)
    return body, qkin


def reference_and_seats(obs: Observations, cfg: ReconstructionConfig, spf: int,
                        shape: BodyShape | None = None) -> tuple[Body, np.ndarray, tuple[Seat, ...]]:
    """The body (measured from `obs` unless `shape` is given, its landmark sites that are no joint centre then
    placed by `cfg.site_passes` IK passes; `spf` steps per frame; contact spheres on `cfg.contact_parts`, or as
    `choose_contact_parts` decides, with the pelvis's where it sits on a seat), the controllers' kinematic
    reference qpos [T, nq]: IK on the (optionally smoothed) observations, optionally fitted to their 2D keypoints
    too and kept out of the ground (`cfg.reference_2d_weight`, `cfg.reference_ground_weight`), and optionally
    lifted onto the ground (`cfg.reference_smoothing`, `cfg.reference_on_ground`), and the seats the reference
    sits on (`body.seats.find_seats`; none without `cfg.seats`, or where `cfg.contact_parts` leaves out the
    pelvis)."""
    passes = cfg.site_passes if shape is None else 0
    shape = shape or measure_shape(obs)
    gains, timestep = Gains().scaled(cfg.gain_scale), 1.0 / (obs.fps * spf)
    target = smooth_in_time(obs, cfg.reference_smoothing)
    level = level_feet_weights(target, cfg.reference_level_feet)  # the same observations in every pass
    for p in range(passes + 1):
        body = build_body(shape, gains, timestep=timestep, contact_parts=cfg.contact_parts or CONTACT_PARTS)
        feet = [np.asarray(body.layout.contact_geoms)[body.foot_spheres(side)] for side in SIDES]
        qkin = inverse_kinematics(body.model, target, weight_2d=cfg.reference_2d_weight,
                                  ground_weight=cfg.reference_ground_weight, contact_geoms=body.layout.contact_geoms,
                                  level_geoms=feet, level_weights=level, balance_weight=cfg.reference_balance_weight)
        if p < passes:
            shape = dataclasses.replace(shape, site_offsets=site_offsets(body.model, shape, target, qkin))
    every = body  # spheres on every part: the joints and qpos layout of any choice of parts
    parts = cfg.contact_parts or CONTACT_PARTS
    if cfg.contact_parts is None:
        parts = choose_contact_parts(body, qkin)
        if parts != CONTACT_PARTS:  # the same joints and qpos layout, fewer spheres
            body = build_body(shape, gains, timestep=timestep, contact_parts=parts)
    if cfg.reference_on_ground:
        qkin, _ = lift_onto_ground(body.model, qkin, body.layout.contact_geoms)
    seats: tuple[Seat, ...] = ()
    if cfg.seats and (cfg.contact_parts is None or "pelvis" in parts):
        geoms, pelvis = np.asarray(every.layout.contact_geoms), every.spheres_of(("pelvis",))
        seats = find_seats(every.model, qkin, obs.fps, geoms[pelvis], geoms[~pelvis])
        if seats and "pelvis" not in parts:
            body = build_body(shape, gains, timestep=timestep, contact_parts=parts + ("pelvis",))
    if cfg.reference_velocity_damping:
        body = with_reference_damping(body, cfg.reference_velocity_damping)
    return body, qkin, seats


SIDES = ("left", "right")
# m: a foot is laid level with the full weight where its observed ankle is at its floor level (its
# metrics.FLOOR_LEVEL_PERCENTILE-th percentile height), with none from this much above it, linearly between.
LEVEL_FEET_RANGE = 0.05


def level_feet_weights(obs: Observations, weight: float) -> np.ndarray | None:
    """[T, 2] (left, right) weights of the IK's level-foot residuals (`inverse_kinematics` level_weights):
    `weight` times 1 at the observed ankle's floor level down to 0 at LEVEL_FEET_RANGE above it; None where
    the weight is 0 or the observations have toes (then they orient the feet) or no ankles."""
    marks = obs.skeleton.landmarks
    if weight <= 0 or any("toe" in m for m in marks) or not all(f"{s}_ankle" in marks for s in SIDES):
        return None
    z = np.stack([obs.joints3d[:, marks.index(f"{s}_ankle"), 2] for s in SIDES], axis=1)  # [T, 2]
    ok = np.stack([obs.confidence[:, marks.index(f"{s}_ankle")] > 0 for s in SIDES], axis=1)
    floor = np.array([np.percentile(z[ok[:, k], k], metrics.FLOOR_LEVEL_PERCENTILE) if ok[:, k].any() else 0.0
                      for k in range(2)])
    return weight * np.clip(1.0 - (z - floor) / LEVEL_FEET_RANGE, 0.0, 1.0) * ok


# A part whose contact sphere comes this close to the floor in the kinematic reference may touch it (m).
NEAR_FLOOR = 0.15


def choose_contact_parts(body: Body, qkin: np.ndarray) -> tuple[str, ...]:
    """Every part of `CONTACT_PARTS` when, in the reference qkin [T, nq], a sphere of a part other than the
    feet and insteps comes within `NEAR_FLOOR` of the floor (crawling, rolling, getting up, floor work); else
    the feet alone. `body` has spheres on every part."""
    geoms = np.asarray(body.layout.contact_geoms)[~body.spheres_of(FEET_ONLY + ("insteps",))]
    lowest = float(np.min(geom_positions(body.model, qkin, geoms)[..., 2] - body.model.geom_size[geoms, 0]))
    return CONTACT_PARTS if lowest < NEAR_FLOOR else FEET_ONLY


# A contact sphere of the kinematic reference stands where it bears weight by the stance foot skate rule
# (`metrics.weight_bearing`: its bottom below metrics.CONTACT_HEIGHT_M and within metrics.STANCE_BAND_M of its
# floor level for metrics.MIN_STANCE_S or longer, without the first and last metrics.TRANSITION_S) and moves
# slower than this (m/s: 1 cm per 1/25 s).
STANCE_STILL = 0.25
# A foot of the reference stands, all its spheres, where one of them does or where its ankle does: within this
# of the ankle's floor level (its metrics.FLOOR_LEVEL_PERCENTILE-th percentile height) for metrics.MIN_STANCE_S,
# moving slower than STANCE_STILL. Rigs read with ankles alone (BVH onto "h36m17") leave the foot's pitch to the
# IK: before `reference_level_feet` the Bandai and CMU references' heel spheres stood 2.5-4.8 cm up and their toe
# spheres 0.4-4.1 cm under the floor, and the spheres' own rule missed most stances (CMU hops: one sphere of a
# foot, a third of the time); a foot's spheres also part from the floor at different times.
ANKLE_BAND_M = 0.02


def reference_stance(body: Body, qkin: np.ndarray, fps: float) -> np.ndarray:
    """[T, C] float32: 1 where contact sphere c of the kinematic reference qkin [T, nq] stands at frame t (see
    STANCE_STILL, ANKLE_BAND_M), else 0; the loss's stance term holds those spheres still
    (`diffphy.stance_sliding`)."""
    geoms = list(body.layout.contact_geoms)
    pos = geom_positions(body.model, qkin, geoms)
    bottom = pos[..., 2] - body.model.geom_size[geoms, 0]
    stance = metrics.weight_bearing_at(bottom, fps) & (metrics.horizontal_speed(pos, fps) < STANCE_STILL)
    sites = landmark_sites(body.model, qkin)
    for side in SIDES:
        ankle = sites[:, [BODY_LANDMARKS.index(f"{side}_ankle")]]  # [T, 1, 3]
        height = ankle[..., 2] - np.percentile(ankle[..., 2], metrics.FLOOR_LEVEL_PERCENTILE)
        down = metrics.weight_bearing_at(height, fps, contact_height=ANKLE_BAND_M, band=None)
        foot = body.foot_spheres(side)
        standing = (down & (metrics.horizontal_speed(ankle, fps) < STANCE_STILL))[:, 0] | stance[:, foot].any(axis=1)
        stance[:, foot] = standing[:, None]
    return stance.astype(np.float32)


# The foot points a slide retry watches: the stance foot-skate rule's points on every rig (metrics.json and
# bench/mocap_corpus.py read the toes as well as the ankles).
SLIDE_POINTS = ("left_ankle", "left_toe", "right_ankle", "right_toe")
# The loss terms that measure how well the motion fits the observations: a slide retry is kept only where their
# weighted sum (mocap: the marker term; video: mostly the 2D reprojection) is at most RETRY_FIT_TOLERANCE times the
# first solve's. The terms are squared distances: 1.6 is 1.26 times the distance. At 1.25 the retries that removed
# the last slides of the CMU hops, the figure-8 walk and the Bandai walk-right were refused (marker term 1.30-1.55x);
# docs/mocap.md "Session 16".
FIT_PARTS = ("marker3d", "root_relative", "reprojection")
RETRY_FIT_TOLERANCE = 1.6
# The stance term's weight in a slide retry where the settings have none (video): mocap's.
RETRY_STANCE = 1.0
# m: the check reads a foot point as down up to this much higher than the metric does. The metric takes the
# floor levels from the whole clip, the check from the frames simulated so far; on the Bandai walk at 110
# evaluations a toe 1.5 cm over its level (the band's edge) slid by the metric and not by the check.
SLIDE_LEVEL_MARGIN = 0.003


def slides(points: np.ndarray, fps: float, first: int, last: int, levels: np.ndarray) -> int:
    """How many frame pairs the stance foot-skate rule counts where they touch frames (first, last] of points.

    points: [T, P, 3] foot points over consecutive frames of a simulated stretch, from its first frame (m);
    fps: their frame rate; levels: [P] their floor levels (m). As the metric reads them
    (`metrics.foot_skate_stance_pct`): resampled to metrics.SKATE_RATE_FPS from points[0], a pair (k, k + 1)
    slides where a point bears weight in both and moves more than metrics.SLIDE_THRESHOLD_M between them
    (`metrics.stance_slides`). Frames after `last` only tell whether a stance goes on (a look-ahead).
    """
    rate = metrics.SKATE_RATE_FPS
    at = metrics.resample(points, fps, rate) if fps != rate else points
    sliding = metrics.stance_slides(at, rate, levels=levels)
    k = np.arange(len(sliding))
    touches = ((k + 1) / rate > first / fps + 1e-9) & (k / rate < last / fps - 1e-9)
    return int((sliding & touches).sum())


def after_fall_choice(tries: list[tuple[float, float]], line: float) -> int:
    """Which of a fallen window's solves to keep (`_Run._retry_falls`), given each one's (lowest ratio of the
    simulated pelvis height to the reference's, loss under the settings' weights): of those whose pelvis stays at
    or above `line`, the lowest loss; where every one falls, the one whose pelvis stays highest."""
    up = [i for i, (low, _) in enumerate(tries) if low >= line]
    if up:
        return min(up, key=lambda i: tries[i][1])
    return max(range(len(tries)), key=lambda i: tries[i][0])


def weighted_loss(weights: diffphy.LossWeights, parts: dict) -> float:
    """A window's loss from its parts (`diffphy.PARTS` -> value) under `weights`."""
    return float(sum(getattr(weights, p) * float(v) for p, v in parts.items()))


def fallback_summary(windows: list[dict]) -> dict:
    """How many windows' solves fell back from Optimus to L-BFGS, and why (grouped by the reason's kind)."""
    infos = [w.get("info") or {} for w in windows]
    fell = [i for i in infos if i.get("fallback")]
    kinds: dict[str, int] = {}
    for i in fell:
        kind = i.get("fallback_kind") or "unknown"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"fallback_windows": len(fell), "fallback_kinds": kinds,
            "converged_windows": sum(bool(i.get("converged")) for i in infos)}


@dataclasses.dataclass
class _Clip:
    """One clip being reconstructed: observations, body, reference, window starts, and what the passes give."""

    obs: Observations
    body: Body
    qkin: np.ndarray
    starts: list[int]
    ends: list[int]  # per window: the stop frame of its simulated stretch (window.segment_window_starts)
    segments: list[tuple[int, int]]  # the simulated stretches, (first, stop) frames
    # [T, C] where the reference's spheres stand (`reference_stance`; the stance term and the slide retries read it)
    stance: np.ndarray | None
    seats: tuple[Seat, ...] = ()  # what the reference sits on (`body.seats.find_seats`)
    shooting: list = dataclasses.field(default_factory=list)      # SolveResult per window
    continuity: list = dataclasses.field(default_factory=list)    # (SolveResult, candidate, candidates) per window
    controls: list = dataclasses.field(default_factory=list)      # [K, U] kept per window
    restarts: list = dataclasses.field(default_factory=list)      # windows restarted after a fall
    slide_retries: dict = dataclasses.field(default_factory=dict)  # window -> what its slide retry did
    fall_retries: dict = dataclasses.field(default_factory=dict)  # window -> what its fall retry did
    # A part of a long clip (`window.part_windows`): the frames [first, stop) its windows simulate; None: the whole.
    span: tuple[int, int] | None = None
    # A long clip joined from its parts (`_Run._join_parts`): the part of each window, and each seam's facts.
    window_part: list = dataclasses.field(default_factory=list)
    seams: list = dataclasses.field(default_factory=list)

    @functools.cached_property
    def seat_data(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The window data's seat rows [MAX_SEATS, 5] and [C] mask of the spheres that rest on them (the
        pelvis's), once per clip; (None, None) where the reference sits on nothing."""
        if not self.seats:
            return None, None
        return seat_rows(self.seats), self.body.spheres_of(("pelvis",)).astype(np.float32)

    def starts_segment(self, w: int) -> bool:
        """Whether window w is the first of a simulated stretch (it starts from the reference state)."""
        return w == 0 or self.ends[w] != self.ends[w - 1]

    def starts_fresh(self, w: int) -> bool:
        """Whether window w starts from the reference state: a stretch's first, or restarted after a fall."""
        return self.starts_segment(w) or w in self.restarts

    def part(self, windows: list[int], F: int) -> "_Clip":
        """The part of this clip made of its windows `windows` (in order; F frames each): a clip of its own over
        the same observations, body and reference, whose first window starts from the reference state."""
        starts, ends = [self.starts[w] for w in windows], [self.ends[w] for w in windows]
        first, stop = starts[0], min(ends[-1], starts[-1] + F + 1)
        segments = [(max(a, first), min(b, stop)) for a, b in self.segments if a < stop and b > first]
        return self.unsolved(starts=starts, ends=ends, segments=segments, span=(first, stop))

    def unsolved(self, **changes) -> "_Clip":
        """This clip with `changes` and none of its windows' work (solves, controls, restarts, retries, parts)."""
        return dataclasses.replace(self, shooting=[], continuity=[], controls=[], restarts=[], slide_retries={},
                                   fall_retries={}, window_part=[], seams=[], **changes)


def reconstruct(obs: Observations, config: ReconstructionConfig | None = None, *,
                shape: BodyShape | None = None, progress: Progress | None = None,
                resume: str | os.PathLike | None = None, workers: int = 1,
                worker_progress: Callable[[str], Progress] | None = None) -> Reconstruction:
    """Physically simulated reconstruction of `obs` (3D observations); see `reconstruct_many`."""
    return reconstruct_many([obs], config, shapes=[shape], progress=progress, resume=resume, workers=workers,
                            worker_progress=worker_progress)[0]


def reconstruct_many(observations: list[Observations], config: ReconstructionConfig | None = None, *,
                     shapes: list[BodyShape | None] | None = None,
                     progress: Progress | None = None,
                     resume: str | os.PathLike | None = None, workers: int = 1,
                     worker_progress: Callable[[str], Progress] | None = None) -> list[Reconstruction]:
    """Reconstructs several clips together: their windows share batches (module docstring).

    Args:
      observations: clips with `joints3d` (world z-up, ground z = 0, metres); clips whose windows have another
        shape (frame rate) than the first are solved in a batch of their own.
      config: settings; defaults as `ReconstructionConfig()`.
      shapes: body shape per clip; measured from the observations where None.
      progress: called as progress(stage, done, total).
      resume: a file where the work done so far is kept after every window (and after the shooting pass): a
        call with the same observations and settings that finds it carries on from there instead of starting
        over (a killed long clip loses at most one window). Removed when the call returns.
      workers: processes (each on a CPU core of its own, `motionrecon.workers`) over which the parts of long
        clips (`part_seconds`) are spread, in smaller batches: the same parts, solved sooner; the same motion up
        to rounding, which the solves carry on (a batch of another size, or XLA on one thread, rounds differently
        on some CPUs: docs/performance.md), so an equally good one (bench/clip_parts.py). 1: this process alone.
        With `resume`, each worker keeps its share's work in a file of its own beside it.
      worker_progress: a picklable worker_progress(label) -> progress for each worker's share (label: which
        parts); `progress` then reports the stage "parts" (shares done of all).
    """
    cfg = config or ReconstructionConfig()
    for obs in observations:
        if obs.joints3d is None:
            raise InputError(obs.source, "reconstruction from 2D keypoints alone is not supported yet")
    solver = cfg.make_solver()  # unknown names and named weights that do not load fail before any work
    enable_compilation_cache()
    shapes = shapes or [None] * len(observations)
    t0 = time.perf_counter()
    groups: dict = {}  # clips whose windows share one program: window shape, joints, body layout
    for i, (obs, shape) in enumerate(zip(observations, shapes)):
        F, ov, K, spf = window.window_frames(obs.fps, obs.num_frames, cfg.window, cfg.overlap, cfg.keyframe_spacing,
                                             cfg.sim_rate)
        body, qkin, seats = reference_and_seats(obs, cfg, spf, shape)
        segments = window.observed_segments(obs.confidence, obs.fps, cfg.restart_after_gap, obs.shot_starts)
        placed = window.segment_window_starts(segments, F, ov)
        wants_stance = cfg.weights.stance or cfg.weights.planted or cfg.slide_retry
        stance = reference_stance(body, qkin, obs.fps) if wants_stance else None
        clip = _Clip(obs, body, qkin, [a for a, _ in placed], [b for _, b in placed], segments, stance, seats)
        groups.setdefault((F, ov, K, spf, obs.skeleton.num_joints, body.layout, bool(seats)), []).append((i, clip))
    out: list = [None] * len(observations)
    for g, ((F, ov, K, spf, J, layout, _), members) in enumerate(groups.items()):
        clips = [clip for _, clip in members]
        spec = window.WindowSpec(layout, J, F, K, spf)
        keep = None if resume is None else _Checkpoint(Path(f"{resume}.{g}" if g else resume), cfg, clips)
        recs = _Run(cfg, solver, spec, F - ov, clips, progress, t0 if g == 0 else time.perf_counter(), keep,
                    workers=workers, worker_progress=worker_progress).run()
        for (i, _), rec in zip(members, recs):
            out[i] = rec
    return out


class _Checkpoint:
    """The work of a run kept in a file (`reconstruct_many(resume=...)`): written atomically after every step,
    read back only by a run of the same observations, settings and code (a fingerprint of them is inside)."""

    def __init__(self, path: Path, cfg: ReconstructionConfig, clips: list):
        import hashlib
        import json

        from motionrecon.jaxsetup import source_fingerprint

        h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode())
        for c in clips:
            for a in (c.obs.joints3d, c.obs.confidence, c.obs.joints2d):
                if a is not None:
                    h.update(np.ascontiguousarray(a).tobytes())
            h.update(f"{c.obs.fps}|{c.body.mjcf}|{c.span}".encode())
        h.update(source_fingerprint().encode())
        self.path, self.fingerprint = path, h.hexdigest()

    def load(self) -> dict | None:
        import pickle

        try:
            with open(self.path, "rb") as f:
                saved = pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            return None
        return saved if isinstance(saved, dict) and saved.get("fingerprint") == self.fingerprint else None

    def save(self, state: dict) -> None:
        import pickle

        from motionrecon.fileio import write_bytes

        write_bytes(self.path, pickle.dumps({"fingerprint": self.fingerprint, **state}, protocol=5))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class _Run:
    """The two passes over the clips of one window shape; a long clip's parts (`part_seconds`) go through them as
    clips of their own and are joined at the end (`_join_parts`)."""

    def __init__(self, cfg: ReconstructionConfig, solver, spec: window.WindowSpec, step: int, clips: list[_Clip],
                 progress: Progress | None, t0: float, checkpoint: _Checkpoint | None = None, *, workers: int = 1,
                 worker_progress: Callable[[str], Progress] | None = None):
        self.cfg, self.solver, self.spec, self.step, self.whole = cfg, solver, spec, step, clips
        self.progress, self.t0, self.checkpoint = progress, t0, checkpoint
        self.workers, self.worker_progress = workers, worker_progress
        most = max(1, cfg.largest_bucket // max(cfg.warm_starts, 1))
        self.parts = []
        for c in clips:  # a part (of a share solved in a worker) is not cut again
            fpp = 0 if c.span is not None else int(round(cfg.part_seconds * c.obs.fps))
            cut = window.part_windows(list(zip(c.starts, c.ends)), fpp, most)
            self.parts.append([c] if len(cut) == 1 else [c.part(ws, spec.frames) for ws in cut])
        self.clips = [part for parts in self.parts for part in parts]
        self.shooting = cfg.uses_shooting()
        self.batched = is_batched(cfg.solver)
        problems = sum(len(c.starts) for c in self.clips) if self.shooting else cfg.warm_starts * len(self.clips)
        self.size = window.bucket(problems, cfg.largest_bucket)
        self.compile_s, self.ready_s, self.problem_evals = 0.0, None, 0
        self.foot_levels: dict = {}  # per clip: the reference's SLIDE_POINTS floor levels [P] (`_foot_levels`)

    # -- solving -----------------------------------------------------------------------------------------
    def _solve(self, problems: list[window.WindowProblem], x0: np.ndarray, budget: int, stage: str | None,
               done: int, total: int, weights: diffphy.LossWeights | None = None) -> window.Solved:
        """Solves problems in batches of the run's bucket, with the loss `weights` (None: the settings'); progress
        counts evaluations of the stage (None: not reported)."""
        results, trajs, parts = [], [], []
        for first in range(0, len(problems), self.size):
            chunk = problems[first:first + self.size]
            report = None
            if self.progress is not None and stage is not None:
                base = done + (first // self.size) * budget
                report = lambda d, t, base=base: self.progress(stage, min(total, base + d), total)
            if self.ready_s is None:
                self._prepare(chunk[0], x0[first:first + 1])
            solve = window.solve if self.batched else window.solve_one_at_a_time
            out = solve(self.spec, self.solver, window.stack(chunk), x0[first:first + len(chunk)], budget,
                        self.cfg.contact, weights or self.cfg.weights, size=self.size,
                        trace_len=self.cfg.solve_budget(),
                        progress=report)
            self.problem_evals += self.size * budget
            results += out.results
            trajs.append(out.trajectory)
            parts.append(out.parts)
        import jax

        trajectory = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *trajs)
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return window.Solved(results, trajectory, merged, 0.0, 0.0)

    def _prepare(self, problem, x0) -> None:
        """Compiles (or loads from the persistent cache) the run's program, as a stage of its own."""
        if self.progress is not None:
            self.progress("compile", 0, 1)
        t = time.perf_counter()
        window.prepare(self.spec, self.solver if self.batched else None, self.size, window.stack([problem]), x0,
                       self.cfg.solve_budget(), self.cfg.contact, self.cfg.weights)
        self.compile_s = time.perf_counter() - t
        self.ready_s = time.perf_counter() - self.t0
        if self.progress is not None:
            self.progress("compile", 1, 1)

    def _problem(self, clip: _Clip, start: int, state, first_keyframe: np.ndarray | None = None,
                 handover: float = 0.0, stance: np.ndarray | None = None) -> window.WindowProblem:
        """Window problem at `start` from `state`; keyframe 0 held at `first_keyframe` [U] unless None; the step
        out of `state` weighted `handover` in the skate and stance terms. With `continuous_controls` every window
        carries a [U] first keyframe (zeros where free), so that all of a run share one compiled shape; without,
        none does."""
        free = np.zeros(self.spec.layout.num_controls) if self.cfg.continuous_controls else None
        data = window.window_data(clip.obs, clip.qkin, state, start, self.spec.frames,
                                  free if first_keyframe is None else first_keyframe, first_keyframe is not None,
                                  clip.stance if stance is None else stance, handover, *clip.seat_data)
        return window.WindowProblem(data, clip.body.arrays)

    def _reference_state(self, clip: _Clip, frame: int):
        nxt = min(frame + 1, clip.obs.num_frames - 1)
        return window.initial_state(clip.body, clip.qkin[frame], clip.qkin[nxt], 1.0 / clip.obs.fps)

    # -- the passes --------------------------------------------------------------------------------------
    def run(self) -> list[Reconstruction]:
        if self.workers > 1 and len(self.clips) > 1:
            self._solve_in_workers()
        else:
            self.solve()
        wall = time.perf_counter() - self.t0
        out = [self._result(self._join_parts(c, parts), wall) for c, parts in zip(self.whole, self.parts)]
        if self.checkpoint is not None:
            self.checkpoint.remove()
        return out

    def solve(self) -> None:
        """The passes over the clips (from where the checkpoint left them, where it kept any work)."""
        saved = self.checkpoint.load() if self.checkpoint is not None else None
        if saved is not None:
            self._restore(saved)
        elif self.shooting:
            self._shooting()
            self._save(0)
        self._continuity(saved["next_window"] if saved is not None else 0)

    def _solve_in_workers(self) -> None:
        """`solve` with the clips (parts) spread over `workers` processes in consecutive shares
        (`_solve_share`), their work then taken in as from a checkpoint. Each share keeps its work in a file of its
        own beside the run's checkpoint (named by the parts it holds), so a killed run resumes share by share."""
        from motionrecon.errors import InputError
        from motionrecon.workers import failure_line, run_in_processes, split_for_workers

        shares = split_for_workers(list(range(len(self.clips))), self.workers, len(self.clips))
        jobs = []
        for share in shares:
            label = (f"part {share[0] + 1}" if len(share) == 1 else f"parts {share[0] + 1}-{share[-1] + 1}") + \
                f" of {len(self.clips)}"
            path = None if self.checkpoint is None else f"{self.checkpoint.path}.parts{share[0]}-{share[-1]}"
            jobs.append(_Share(self.cfg, self.spec, self.step, [self.clips[i] for i in share], path,
                               self.worker_progress, label))
        states, errors = {}, []

        def finished(job, result, error) -> None:
            if error is not None:
                errors.append(error)
            else:
                states[id(job)] = result
            if self.progress is not None:
                self.progress("parts", len(states) + len(errors), len(jobs))

        if self.progress is not None:
            self.progress("parts", 0, len(jobs))
        run_in_processes(_solve_share, jobs, self.workers, finished)
        if errors:
            raise InputError(self.whole[0].obs.source, failure_line(errors[0]))
        done = [states[id(job)] for job in jobs]
        merged = {k: [x for d in done for x in d[k]] if done[0][k] is not None else None
                  for k in ("clips", "shooting_traj", "frames", "states")}
        self._restore({**merged, "next_window": 0, "problem_evals": sum(d["problem_evals"] for d in done),
                       "elapsed_s": max(d["elapsed_s"] - d["session_s"] for d in done)})
        self.compile_s = max(d["compile_s"] for d in done)
        self.ready_s = min(d["ready_s"] or 0.0 for d in done)
        self.size = max(d["batch_bucket"] for d in done)
        for job in jobs:
            if job.path is not None:
                Path(job.path).unlink(missing_ok=True)

    def _state(self, next_window: int) -> dict:
        """Everything the passes have done before window `next_window` of the continuity pass."""
        clips = [{"shooting": c.shooting, "continuity": c.continuity, "controls": c.controls, "restarts": c.restarts,
                  "slide_retries": c.slide_retries, "fall_retries": c.fall_retries} for c in self.clips]
        return {"next_window": next_window, "clips": clips,
                "shooting_traj": getattr(self, "shooting_traj_list", None),
                "frames": [self.frames[id(c)].saved() for c in self.clips] if hasattr(self, "frames") else None,
                "states": [_np_state(self.states[id(c)]) for c in self.clips] if hasattr(self, "states") else None,
                "problem_evals": self.problem_evals, "elapsed_s": time.perf_counter() - self.t0}

    def _save(self, next_window: int) -> None:
        """Keeps `_state(next_window)` in the checkpoint."""
        if self.checkpoint is not None:
            self.checkpoint.save(self._state(next_window))

    def _restore(self, saved: dict) -> None:
        """Carries on from a checkpoint of the same run."""
        for c, d in zip(self.clips, saved["clips"]):
            c.shooting, c.continuity, c.controls = d["shooting"], d["continuity"], d["controls"]
            c.restarts, c.slide_retries, c.fall_retries = d["restarts"], d["slide_retries"], d["fall_retries"]
        if saved["shooting_traj"] is not None:
            self.shooting_traj_list = saved["shooting_traj"]
            self.shooting_traj = {(id(c), w): v for c, row in zip(self.clips, saved["shooting_traj"])
                                  for w, v in enumerate(row)}
        if saved["frames"] is not None:
            self.frames = {}
            for c, d in zip(self.clips, saved["frames"]):
                fr = _Frames(c)
                fr.restore(d)
                self.frames[id(c)] = fr
            self.states = {id(c): _jnp_state(s) for c, s in zip(self.clips, saved["states"])}
        self.problem_evals = saved["problem_evals"]
        self.t0 -= saved["elapsed_s"]  # the wall time counts the work before the interruption too

    def _shooting(self) -> None:
        items = [(c, w, s) for c in self.clips for w, s in enumerate(c.starts)]
        problems = [self._problem(c, s, self._reference_state(c, s)) for c, _, s in items]
        x0 = np.zeros((len(problems), self.spec.num_params), np.float32)
        total = -(-len(problems) // self.size) * self.cfg.max_evals
        out = self._solve(problems, x0, self.cfg.max_evals, "shooting", 0, total)
        self.shooting_traj = {}
        for k, (c, w, _) in enumerate(items):
            c.shooting.append(out.results[k])
            self.shooting_traj[(id(c), w)] = _index(out.trajectory, k), {p: v[k] for p, v in out.parts.items()}
        self.shooting_traj_list = [[self.shooting_traj[(id(c), w)] for w in range(len(c.starts))] for c in self.clips]

    def _continuity(self, first: int = 0) -> None:
        """Windows `first`, `first` + 1, ... of every clip in order (earlier ones were restored)."""
        cfg, K, U = self.cfg, self.spec.keyframes, self.spec.layout.num_controls
        budget = cfg.continuity_evals if self.shooting else cfg.max_evals
        if first == 0:
            self.states = {id(c): self._reference_state(c, c.starts[0]) for c in self.clips}
            self.frames = {id(c): _Frames(c) for c in self.clips}
        states = self.states
        most = max(len(c.starts) for c in self.clips)
        total = most * max(budget, 1)
        for w in range(first, most):
            active = [c for c in self.clips if w < len(c.starts)]
            if w == 0 and self.shooting:  # the first window starts where the shooting one did: nothing to redo
                for c in active:
                    traj, parts = self.shooting_traj[(id(c), 0)]
                    res = c.shooting[0]
                    self._keep(c, 0, traj, parts, res.x.reshape(K, U), (None, 0, 0), states)
                self._save(1)
                continue
            problems, x0, owners, first = [], [], [], {}
            for c in active:
                warm = self._warm_starts(c, w)
                first[id(c)] = self._first_keyframe(c, w)
                for k, x in enumerate(warm):
                    problems.append(self._problem(c, c.starts[w], states[id(c)], first[id(c)]))
                    x0.append(x.reshape(-1))
                    owners.append((c, k, len(warm)))
            out = self._solve(problems, np.asarray(x0, np.float32), max(budget, 1), "continuity", w * max(budget, 1),
                              total)
            chosen = {}
            for c in active:
                idx = [i for i, (o, _, _) in enumerate(owners) if o is c]
                best = min(idx, key=lambda i: out.results[i].fun if np.isfinite(out.results[i].fun) else np.inf)
                res = out.results[best]
                chosen[id(c)] = [_index(out.trajectory, best), {p: v[best] for p, v in out.parts.items()},
                                 self._controls(res, first[id(c)]), (res, owners[best][1], owners[best][2])]
            self._retry_slides(w, active, chosen, states, first, max(budget, 1))
            self._retry_falls(w, active, chosen, states, first, max(budget, 1))
            for c in active:
                self._keep(c, w, *chosen[id(c)], states)
            self._save(w + 1)

    def _controls(self, res, first_keyframe: np.ndarray | None) -> np.ndarray:
        """[K, U] a solve's controls, keyframe 0 at `first_keyframe` where it was held."""
        controls = np.array(res.x, np.float64).reshape(self.spec.keyframes, self.spec.layout.num_controls)
        if first_keyframe is not None:
            controls[0] = first_keyframe
        return controls

    def _frames_in_stretch(self, c: _Clip, w: int) -> int:
        """How many of window w's frames lie within its simulated stretch (all but a last window's overhang)."""
        return min(self.spec.frames, c.ends[w] - 1 - c.starts[w])

    def _kept_frames(self, c: _Clip, w: int) -> int:
        """How many of window w's frames the clip keeps (up to the next window's start, or to its stretch's end)."""
        last = w == len(c.starts) - 1 or c.starts_segment(w + 1)
        return self._frames_in_stretch(c, w) if last else self.step

    def _foot_levels(self, c: _Clip, before: np.ndarray, idx: list[int]) -> np.ndarray:
        """[P] m: the floor levels a slide check reads the points `idx` against: those of the simulated frames
        `before` [T, P, 3] where they span a second or more (as the metric takes them from the simulated points),
        otherwise the kinematic reference's over the clip. The same for a window's first solve and its retry."""
        if len(before) >= c.obs.fps:
            return metrics.floor_levels(before[..., 2])
        if id(c) not in self.foot_levels:
            self.foot_levels[id(c)] = metrics.floor_levels(landmark_sites(c.body.model, c.qkin)[:, idx, 2])
        return self.foot_levels[id(c)]

    def _held_stance(self, c: _Clip, start: int, points: np.ndarray, first: int, n: int,
                     levels: np.ndarray) -> np.ndarray:
        """[T, C] the clip's stance (`reference_stance`) with, over the window after frame `start`, the spheres of
        each foot whose point slides (`slides` over points [m, P, 3], `SLIDE_POINTS`, points[first] at frame
        `start`, through points[first + n]) held wherever that point bears weight in the simulation: a slide
        retry's loss then holds a planted simulated foot still too, where the reference's is not planted."""
        stance = c.stance.copy()
        bearing = metrics.weight_bearing_at(points[..., 2], c.obs.fps, levels=levels)  # [n, P]
        frames = np.arange(start + 1, min(start + 1 + self.spec.frames, len(stance)))
        for p, name in enumerate(SLIDE_POINTS):
            if slides(points[:, [p]], c.obs.fps, first, first + n, levels[[p]]):
                down = bearing[first + 1:first + 1 + len(frames), p]
                spheres = c.body.foot_spheres(name.split("_")[0])
                stance[np.ix_(frames[down], np.flatnonzero(spheres))] = 1.0
        return stance

    def _retry_slides(self, w: int, active: list[_Clip], chosen: dict, states: dict, first: dict,
                      budget: int) -> None:
        """Window w solved twice more from its solution in one call, with `budget` evaluations each and the step
        out of the handed-over state in the skate and stance terms (`slide_retry`, `diffphy.handover_sliding`),
        the second also holding the sliding feet where they bear weight (`_held_stance`), for the clips where a
        foot point slides while bearing weight from the handed-over frame to the window's last (`slides`: the
        points `SLIDE_POINTS` of the stretch simulated so far and the window's, as the metric reads them, against
        `_foot_levels` raised by SLIDE_LEVEL_MARGIN). The retry with the fewest slides in the kept frames (then
        over the window, then the better fit) replaces `chosen[id(c)]` (trajectory, parts, controls) where fewer
        slide over the window, no more over its kept frames, and the observations fit within RETRY_FIT_TOLERANCE
        (`FIT_PARTS`). The retries share a batch where the run's bucket holds them (several clips, or shooting);
        with one clip on a CPU (bucket 1) they are solved one after the other.

        Most slides left by a first solve are at the hand-over step, which its loss does not see (a window starts
        there with the previous window's velocities and its own PD targets). The frames after the kept ones are
        checked too: the next window starts from this one's state, and a foot that lands early and short there
        (the CMU hops at frame 466: 12 cm short, still moving at 2 m/s) slides in the next window whatever it does.
        """
        if not self.cfg.slide_retry:
            return
        idx = [BODY_LANDMARKS.index(n) for n in SLIDE_POINTS]
        todo, held = [], {}
        for c in active:
            s, keep = c.starts[w], self._kept_frames(c, w)
            if c.starts_fresh(w):  # from the reference state: nothing simulated before it
                before = landmark_sites(c.body.model, np.asarray(states[id(c)].qpos, np.float64)[None])[:, idx]
            else:  # the stretch simulated so far, up to frame s
                begin = max(a for a, _ in c.segments if a <= s)
                before = self.frames[id(c)].between(begin, s + 1).markers[:, idx]
            levels = self._foot_levels(c, before, idx) + SLIDE_LEVEL_MARGIN
            n, span = len(before) - 1, self._frames_in_stretch(c, w)  # the handed-over frame; the window's frames
            points_of = lambda traj, before=before: np.concatenate([before, np.asarray(traj.markers)[:, idx]])

            def count(traj, points_of=points_of, n=n, span=span, keep=keep, levels=levels,
                      fps=c.obs.fps) -> tuple[int, int]:
                """(over the window, over its kept frames): the pairs that slide after the handed-over frame."""
                points = points_of(traj)
                return slides(points, fps, n, n + span, levels), slides(points, fps, n, n + keep, levels)

            found = count(chosen[id(c)][0])
            if found[0]:
                todo.append((c, found, count))
                held[id(c)] = self._held_stance(c, s, points_of(chosen[id(c)][0]), n, span, levels)
        if not todo:
            return
        # two retries per window, in one call: the hand-over step seen, and that with the sliding feet held
        problems = [self._problem(c, c.starts[w], states[id(c)], first[id(c)], handover=1.0, stance=stance)
                    for c, _, _ in todo for stance in (None, held[id(c)])]
        x0 = np.stack([np.asarray(chosen[id(c)][3][0].x, np.float32) for c, _, _ in todo for _ in range(2)])
        weights = self.cfg.weights
        out = self._solve(problems, x0, budget, None, 0, 0,
                          dataclasses.replace(weights, stance=weights.stance or RETRY_STANCE))
        fit_of = lambda parts: float(sum(getattr(weights, p) * parts[p] for p in FIT_PARTS))
        for i, (c, found, count) in enumerate(todo):
            fit = fit_of(chosen[id(c)][1])
            tries = []
            for k in (2 * i, 2 * i + 1):
                traj, parts = _index(out.trajectory, k), {p: v[k] for p, v in out.parts.items()}
                tries.append((count(traj), fit_of(parts), k, traj, parts))
            better = [t for t in tries if t[0][0] < found[0] and t[0][1] <= found[1]
                      and t[1] <= RETRY_FIT_TOLERANCE * fit]
            after, fit_after, k, traj, parts = min(better or tries, key=lambda t: (t[0][1], t[0][0], t[1]))
            c.slide_retries[w] = {"slides": found[0], "slides_after": after[0],
                                  "slides_in_kept_frames": [found[1], after[1]],
                                  "fit": fit, "fit_after": fit_after, "held": bool(k % 2),
                                  "kept": bool(better), "n_evals": sum(out.results[t[2]].n_evals for t in tries)}
            if better:  # the first solve's facts stay in the record (its trace); the retry's are in slide_retries
                chosen[id(c)][:3] = [traj, parts, self._controls(out.results[k], first[id(c)])]

    def _lowest_pelvis(self, c: _Clip, w: int, traj) -> float:
        """The lowest ratio of the simulated pelvis height to the reference's over window w's frames within its
        stretch (trajectory `traj`)."""
        s, n = c.starts[w], self._frames_in_stretch(c, w)
        return float(np.min(np.asarray(traj.qpos)[:n, 2] / np.maximum(c.qkin[s + 1:s + 1 + n, 2], 1e-3)))

    def _retry_falls(self, w: int, active: list[_Clip], chosen: dict, states: dict, first: dict,
                     budget: int) -> None:
        """Window w solved twice more in one call, with `budget` evaluations each and the upright term at
        `fall_retry` (`diffphy.fallen_pelvis`), from its solution and from zero offsets, for the clips where the
        simulated pelvis falls below `fall_retry_below` of the reference's within the window's frames (its kept
        ones and those after, from whose state the next window starts). Of the three solves, the one whose pelvis
        stays above that line with the lowest loss under the settings' weights replaces `chosen[id(c)]`
        (trajectory, parts, controls); where all three fall, the one whose pelvis stays highest.

        A body falls where the detections fold its legs or turn it round within a few frames (the soccer clip,
        docs/video.md "Session 26"): the first solve's loss has no term that sees the fall until the observations
        do, and its solver stalls with the body on the floor. Windows where nothing falls are left as they were.
        """
        ratio, weight = self.cfg.fall_retry_below, self.cfg.fall_retry
        if ratio <= 0 or weight <= 0:
            return
        todo = [(c, self._lowest_pelvis(c, w, chosen[id(c)][0])) for c in active]
        todo = [(c, low) for c, low in todo if low < ratio]
        if not todo:
            return
        problems = [problem for c, _ in todo  # one problem per clip, solved from two starts
                    for problem in [self._problem(c, c.starts[w], states[id(c)], first[id(c)])] * 2]
        x0 = np.stack([x for c, _ in todo for x in (np.asarray(chosen[id(c)][2], np.float32).reshape(-1),
                                                     np.zeros(self.spec.num_params, np.float32))])
        weights = self.cfg.weights
        out = self._solve(problems, x0, budget, None, 0, 0, dataclasses.replace(weights, upright=weight))
        for i, (c, low) in enumerate(todo):
            tries = [(low, weighted_loss(weights, chosen[id(c)][1]), None)]
            for k in (2 * i, 2 * i + 1):
                traj, parts = _index(out.trajectory, k), {p: v[k] for p, v in out.parts.items()}
                tries.append((self._lowest_pelvis(c, w, traj), weighted_loss(weights, parts), (k, traj, parts)))
            best = tries[after_fall_choice([t[:2] for t in tries], ratio)]
            c.fall_retries[w] = {"lowest_pelvis_ratio": low, "lowest_pelvis_ratio_after": best[0],
                                 "loss": tries[0][1], "loss_after": best[1], "kept": best[2] is not None,
                                 "from": None if best[2] is None else ("solution", "zero offsets")[best[2][0] % 2],
                                 "n_evals": sum(out.results[t].n_evals for t in (2 * i, 2 * i + 1))}
            if best[2] is not None:
                k, traj, parts = best[2]
                chosen[id(c)][:3] = [traj, parts, self._controls(out.results[k], first[id(c)])]

    def _first_keyframe(self, c: _Clip, w: int) -> np.ndarray | None:
        """[U] where window w's keyframe 0 is held (`continuous_controls`): the previous window's control offsets
        at this window's first frame; None where it starts from the reference state or the setting is off."""
        if not self.cfg.continuous_controls or c.starts_fresh(w):
            return None
        return shift_keyframes(c.controls[w - 1], self.step, self.spec.frames)[0]

    def _warm_starts(self, c: _Clip, w: int) -> list[np.ndarray]:
        """Where the continuity pass starts window w: the shooting solution, and the previous window's
        controls moved `step` frames earlier (zeros past their end)."""
        K, U = self.spec.keyframes, self.spec.layout.num_controls
        first = c.starts_fresh(w)
        shifted = np.zeros((K, U)) if first else shift_keyframes(c.controls[w - 1], self.step, self.spec.frames)
        if not self.shooting:
            return [shifted, np.zeros((K, U))][:self.cfg.warm_starts] if not first else [shifted]
        return [c.shooting[w].x.reshape(K, U), shifted]

    def _keep(self, c: _Clip, w: int, traj, parts: dict, controls: np.ndarray, continuity, states: dict) -> None:
        """Keeps window w's frames up to the next window's start; its state there starts the next window, unless
        that one starts a stretch of its own (after a gap), from the reference state."""
        s = c.starts[w]
        last = w == len(c.starts) - 1 or c.starts_segment(w + 1)  # the last window of its stretch
        keep = self._kept_frames(c, w)
        self.frames[id(c)].put(s, keep, traj, states[id(c)], first=c.starts_fresh(w))
        if w + 1 < len(c.starts):
            state = None if last else _state_at(traj, self.step - 1)
            if state is not None and self._fallen(c, float(state.qpos[2]), c.starts[w + 1]):
                c.restarts.append(w + 1)
                state = None
            states[id(c)] = self._reference_state(c, c.starts[w + 1]) if state is None else state
        c.controls.append(np.asarray(controls))
        c.continuity.append(continuity)
        self.frames[id(c)].window_parts.append({k: float(v) for k, v in parts.items()})

    def _join_parts(self, whole: _Clip, parts: list[_Clip]) -> _Clip:
        """The clip `whole` as one, from its parts solved side by side: their frames in order, windows, controls
        and retries. Where a part begins with the window that ended the part before (a seam inside a stretch:
        `window.part_windows`), the two simulations' poses are cross-faded over the `step` frames after the seam
        (`blend_poses`, from all the earlier part's to all the later's), so the motion has no jump there; each
        seam's gap before the cross-fade (landmarks, pelvis) goes into the metrics."""
        if len(parts) == 1:
            return parts[0]
        joined = whole.unsolved(starts=[], ends=[])
        fr = _Frames(joined)
        for p, part in enumerate(parts):
            pf, (first, stop), offset = self.frames[id(part)], part.span, len(joined.starts)
            copy_from = first
            if p > 0 and part.starts[0] == parts[p - 1].starts[-1]:
                n = min(self.step, stop - first - 1)
                frames = np.arange(first + 1, first + 1 + n)
                earlier, later = fr.between(first + 1, first + 1 + n), pf.between(first + 1, first + 1 + n)
                gap = np.linalg.norm(earlier.markers[0] - later.markers[0], axis=-1)
                joined.seams.append({"frame": int(first), "frames_blended": int(n),
                                     "landmark_gap_max_m": float(gap.max()),
                                     "pelvis_gap_m": float(np.linalg.norm(earlier.qpos[0, :3] - later.qpos[0, :3]))})
                for t, q in zip(frames, blend_poses(whole.body.model, earlier.qpos, later.qpos, (frames - first) / n)):
                    fr.pose(int(t), q)
                copy_from = first + 1 + n
            fr.copy(pf, copy_from, stop)
            joined.starts += part.starts
            joined.ends += part.ends
            joined.shooting += part.shooting
            joined.continuity += part.continuity
            joined.controls += part.controls
            joined.restarts += [offset + w for w in part.restarts]
            joined.slide_retries.update({offset + w: r for w, r in part.slide_retries.items()})
            joined.fall_retries.update({offset + w: r for w, r in part.fall_retries.items()})
            joined.window_part += [p] * len(part.starts)
            fr.kept += pf.kept
            fr.window_parts += pf.window_parts
            fr.join_position_jump = max(fr.join_position_jump, pf.join_position_jump)
            fr.join_velocity_jump = max(fr.join_velocity_jump, pf.join_velocity_jump)
        self.frames[id(joined)] = fr
        return joined

    def _fallen(self, c: _Clip, pelvis_height: float, frame: int) -> bool:
        """Whether a simulated pelvis at `pelvis_height` (m) at `frame` has fallen (`restart_after_fall`)."""
        ratio = self.cfg.restart_after_fall
        return ratio > 0 and pelvis_height < ratio * float(c.qkin[frame, 2])

    # -- the result --------------------------------------------------------------------------------------
    def _result(self, c: _Clip, wall: float) -> Reconstruction:
        cfg, obs, js = self.cfg, c.obs, c.obs.skeleton
        fr = self.frames[id(c)]
        simulated = np.zeros(obs.num_frames, bool)
        for a, b in c.segments:
            simulated[a:b] = True
        seen = np.asarray(obs.confidence > 0).any(axis=1)
        fr.fill_unsimulated(hold_after_last_seen(c.qkin, seen, obs.shot_starts), simulated)
        windows = [self._window_record(c, w, fr.window_parts[w]) for w in range(len(c.starts))]
        landmarks = np.asarray(window.window_data(obs, c.qkin, self._reference_state(c, 0), 0, 1).landmarks)
        joints3d = fr.markers[:, landmarks]
        radius = np.asarray(c.body.arrays.contact_radius)
        feet = fr.markers[:, [BODY_LANDMARKS.index(n) for n in metrics.skate_landmarks(js)]]
        stretches = None if c.segments == [(0, obs.num_frames)] else c.segments
        m = metrics.summarize(joints3d, obs.joints3d, obs.fps, js, weights=obs.confidence, feet=feet,
                              stretches=stretches)
        n_evals = int(sum(wd["n_evals"] for wd in windows))
        joints, excess = joint_range_excess(c.body.model, fr.qpos)
        worst = int(np.argmax(excess.max(axis=0)))
        m.update({
            "joints_beyond_range_pct": metrics.beyond_range_pct(excess),
            "joint_range_excess_max_deg": float(np.degrees(excess.max())),
            "joint_most_beyond_range": joints[worst] if excess.max() > 0 else None,
            "contact_penetration_mm": float(max(0.0, 1000 * np.max(radius - fr.contact_pos[..., 2]))),
            "lowest_body_point_mm": float(1000 * np.min(lowest_body_point(c.body.model, fr.qpos))),
            "pelvis_height_error_max_mm": float(1000 * np.max(np.abs(fr.qpos[:, 2] - c.qkin[:, 2]))),
            "join_position_jump_m": fr.join_position_jump, "join_velocity_jump_mps": fr.join_velocity_jump,
            "n_evals": n_evals, "n_windows": len(windows), "solver": cfg.solver,
            "simulated_frames": int(simulated.sum()),
            "simulated_stretches": [[int(a), int(b) - 1] for a, b in c.segments],
            "seats": [seat.describe(obs.fps) for seat in c.seats],
            "fall_restarts": [int(c.starts[w]) for w in c.restarts],
            "parts": 1 + max(c.window_part, default=0), "part_seams": c.seams,
            "slide_retries": {"windows": len(c.slide_retries),
                              "kept": sum(r["kept"] for r in c.slide_retries.values())},
            "fall_retries": {"windows": len(c.fall_retries),
                             "kept": sum(r["kept"] for r in c.fall_retries.values())},
            "problem_evals": int(self.problem_evals), "batch_bucket": int(self.size),
            **(fallback_summary(windows) if any("fallback" in (wd["info"] or {}) for wd in windows) else {}),
            "wall_s": wall, "compile_s": self.compile_s, "ready_s": self.ready_s or 0.0, "frames": obs.num_frames,
            "fps": obs.fps, "compute_s_per_motion_s": wall / max(obs.duration, 1e-9),
        })
        K = self.spec.keyframes
        return Reconstruction(
            fps=obs.fps, joint_set=js.name, joint_names=js.joints, joints3d=joints3d, observed3d=obs.joints3d,
            confidence=obs.confidence, qpos=fr.qpos, qpos_kinematic=c.qkin, markers=fr.markers,
            contact_pos=fr.contact_pos, control=np.stack(c.controls),
            control_fps=(K - 1) / (self.spec.frames / obs.fps), body=c.body, windows=windows, metrics=m, config=cfg,
            source=obs.source, simulated=simulated)

    def _window_record(self, c: _Clip, w: int, parts: dict) -> dict:
        """A window's facts for run.json: its solves' traces (shooting, then the kept continuity solve),
        evaluations, messages and solver facts."""
        shooting = c.shooting[w] if self.shooting else None
        cont, kept, candidates = c.continuity[w]
        trace = (list(shooting.trace) if shooting else []) + (list(cont.trace) if cont else [])
        main = shooting or cont
        retry, fall = c.slide_retries.get(w), c.fall_retries.get(w)
        n_evals = len(trace) + (retry["n_evals"] if retry else 0) + (fall["n_evals"] if fall else 0)
        rec = {"start_frame": int(c.starts[w]), "frames": int(self.spec.frames),
               "kept_frames": int(self.frames[id(c)].kept[w]), "n_evals": n_evals, "n_iters": n_evals,
               "loss": weighted_loss(self.cfg.weights, parts), "parts": parts,
               "message": main.message, "trace": trace, "info": main.info}
        if c.window_part:
            rec["part"] = c.window_part[w]
        if retry is not None:  # where it is kept, the parts above are the retry's
            rec["slide_retry"] = retry
        if fall is not None:  # likewise
            rec["fall_retry"] = fall
        if shooting is not None:
            rec["shooting"] = {"n_evals": shooting.n_evals, "loss": shooting.fun, "message": shooting.message}
        if cont is not None:
            rec["continuity"] = {"n_evals": cont.n_evals, "loss": cont.fun, "message": cont.message,
                                 "warm_start": ("shooting", "previous window")[kept] if self.shooting
                                 else "previous window", "candidates": candidates}
        return rec


class _Share(NamedTuple):
    """A worker's share of `_Run._solve_in_workers`: some of the parts, and what solving them needs."""

    cfg: ReconstructionConfig
    spec: window.WindowSpec
    step: int
    parts: list
    path: str | None  # its checkpoint (None: none kept)
    progress_of: Callable[[str], Progress] | None  # progress_of(label) -> its progress (picklable)
    label: str  # which parts, for its progress bar


def _solve_share(share: _Share) -> dict:
    """The `_Run._state` of a share's parts once solved (in a worker process), with its compile time, batch
    bucket and this call's time. The checkpoint stays until the caller has taken the work in."""
    progress = None if share.progress_of is None else share.progress_of(share.label)
    t0 = time.perf_counter()
    enable_compilation_cache()
    keep = None if share.path is None else _Checkpoint(Path(share.path), share.cfg, share.parts)
    run = _Run(share.cfg, share.cfg.make_solver(), share.spec, share.step, share.parts, progress, t0, keep)
    run.solve()
    return {**run._state(max(len(c.starts) for c in share.parts)), "compile_s": run.compile_s,
            "ready_s": run.ready_s, "batch_bucket": run.size, "session_s": time.perf_counter() - t0}


class _Frames:
    """The continuous simulation of one clip, filled window by window."""

    def __init__(self, c: _Clip):
        import mujoco

        self.first, stop = c.span or (0, c.obs.num_frames)  # the frames kept: first .. stop - 1
        T, body = stop - self.first, c.body
        self.qpos = np.zeros((T, body.model.nq))
        self.markers = np.zeros((T, len(body.layout.sites), 3))
        self.contact_pos = np.zeros((T, len(body.layout.contact_geoms), 3))
        self.kept, self.window_parts = [], []
        self.join_position_jump = 0.0
        self.join_velocity_jump = 0.0
        self._body = body
        self._last_state = None
        d = mujoco.MjData(body.model)
        self._mj = d

    DATA = ("first", "qpos", "markers", "contact_pos", "kept", "window_parts", "join_position_jump",
            "join_velocity_jump", "_last_state")

    def saved(self) -> dict:
        """What a checkpoint keeps of it."""
        return {k: getattr(self, k) for k in self.DATA}

    def restore(self, saved: dict) -> None:
        for k in self.DATA:
            setattr(self, k, saved[k])

    def pose(self, frame: int, qpos) -> None:
        """Frame `frame` from a pose alone (its markers and contact spheres by MuJoCo's kinematics)."""
        import mujoco

        self._mj.qpos[:] = qpos
        mujoco.mj_kinematics(self._body.model, self._mj)
        t = frame - self.first
        self.qpos[t] = qpos
        self.markers[t] = self._mj.site_xpos[list(self._body.layout.sites)]
        self.contact_pos[t] = self._mj.geom_xpos[list(self._body.layout.contact_geoms)]

    def between(self, a: int, b: int) -> "_FrameRange":
        """Frames a .. b - 1 (clip frame numbers) of qpos, markers and contact spheres."""
        sl = slice(a - self.first, b - self.first)
        return _FrameRange(self.qpos[sl], self.markers[sl], self.contact_pos[sl])

    def copy(self, other: "_Frames", a: int, b: int) -> None:
        """Frames a .. b - 1 (clip frame numbers) taken from `other`."""
        src, dst = slice(a - other.first, b - other.first), slice(a - self.first, b - self.first)
        self.qpos[dst], self.markers[dst], self.contact_pos[dst] = other.qpos[src], other.markers[src], \
            other.contact_pos[src]

    def put(self, start: int, keep: int, traj, state, first: bool = False) -> None:
        """Frames start+1 .. start+keep from a window's trajectory; `state` is the window's initial state: frame
        `start` itself for the `first` window of a simulated stretch, otherwise checked against the state the
        previous window left at frame `start`."""
        if first:
            self.pose(start, np.asarray(state.qpos, np.float64))
        elif self._last_state is not None:
            q, v = self._last_state
            self.join_position_jump = max(self.join_position_jump, float(np.max(np.abs(np.asarray(state.qpos) - q))))
            self.join_velocity_jump = max(self.join_velocity_jump, float(np.max(np.abs(np.asarray(state.qvel) - v))))
        sl = slice(start + 1 - self.first, start + 1 + keep - self.first)
        self.qpos[sl] = traj.qpos[:keep]
        self.markers[sl] = traj.markers[:keep]
        self.contact_pos[sl] = traj.contact_pos[:keep]
        self.kept.append(keep)
        self._last_state = (np.asarray(traj.qpos[keep - 1]), np.asarray(traj.qvel[keep - 1]))

    def fill_unsimulated(self, qkin: np.ndarray, simulated: np.ndarray) -> None:
        """Frames outside the simulated stretches (`simulated` [T] false: the gaps of `window.observed_segments`)
        take the pose of `qkin` [T, nq] (the kinematic reference, held after a shot's last detection:
        `body.fit.hold_after_last_seen`)."""
        for t in np.flatnonzero(~simulated[self.first:self.first + len(self.qpos)]) + self.first:
            self.pose(int(t), np.asarray(qkin[t], np.float64))


class _FrameRange(NamedTuple):
    """Some frames of a `_Frames`: qpos [n, nq], markers [n, S, 3], contact spheres [n, C, 3]."""

    qpos: np.ndarray
    markers: np.ndarray
    contact_pos: np.ndarray


def _np_state(state):
    return tuple(np.asarray(a) for a in (state.qpos, state.qvel, state.anchor))


def _jnp_state(arrays):
    import jax.numpy as jnp

    from motionrecon.physics.rollout import SimState

    return SimState(*(jnp.asarray(a) for a in arrays))


def _index(tree, i):
    import jax

    return jax.tree_util.tree_map(lambda a: np.asarray(a[i]), tree)


def _state_at(traj, frame: int):
    import jax.numpy as jnp

    from motionrecon.physics.rollout import SimState

    return SimState(jnp.asarray(traj.qpos[frame]), jnp.asarray(traj.qvel[frame]), jnp.asarray(traj.anchor[frame]))


def shift_keyframes(prev: np.ndarray, shift_frames: int, F: int) -> np.ndarray:
    """Warm start: the previous window's control offsets [K, U] moved `shift_frames` earlier (zeros past its end)."""
    K = prev.shape[0]
    times = np.linspace(0.0, F, K)
    new_times = times + shift_frames
    out = np.zeros_like(prev)
    for u in range(prev.shape[1]):
        out[:, u] = np.interp(new_times, times, prev[:, u], right=0.0)
    return out
