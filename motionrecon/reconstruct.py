"""Reconstruction: Observations -> physically simulated motion.

    obs ──measure_shape──► Body ──inverse_kinematics──► kinematic poses qpos_kin [T, nq]
        windows of `window` seconds overlapping by `overlap`:
            x0  = previous window's controls shifted in time (zeros for the first)
            x*  = solver.minimize(DiffPhy loss and gradient, x0)
                  (with `second_solver`: also solved on a spare CPU core, the lower loss kept; spare_core.py)
            keep frames up to the next window's start; its state starts the next window
        ──► Reconstruction (simulated joints, qpos, controls, metrics, traces)

Compilation happens once per (joint set, window frames, steps per frame,
keyframes); the body itself is a traced argument, so a new subject or clip
reuses the compiled function, and JAX's persistent cache keeps it across runs.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from motionrecon import diffphy, metrics
from motionrecon.body import Body, Gains, build_body
from motionrecon.body.fit import (finite_difference_velocity, inverse_kinematics, lift_onto_ground, measure_shape,
                                  smooth_in_time)
from motionrecon.body.template import BodyShape
from motionrecon.errors import InputError
from motionrecon.jaxsetup import enable_compilation_cache
from motionrecon.observations import Observations
from motionrecon.optim import get_solver
from motionrecon.physics.contact import ContactParams
from motionrecon.physics.rollout import SimState
from motionrecon.skeleton import BODY_LANDMARKS


@dataclasses.dataclass(frozen=True)
class ReconstructionConfig:
    """Settings of a reconstruction (seconds, Hz; see README for the tuning behind the defaults)."""

    solver: str = "optimus"         # see motionrecon.optim.get_solver; optimus falls back to L-BFGS
    solver_weights: Optional[str] = None  # weight file of a learned solver (None: the shipped one)
    max_evals: int = 60             # loss+gradient evaluations per window
    window: float = 1.0             # s
    overlap: float = 0.2            # s
    keyframe_spacing: float = 0.1   # s
    sim_rate: float = 480.0         # Hz (rounded to a whole number of steps per frame)
    reference_smoothing: float = 0.0  # s, Gaussian sigma on the joints the kinematic reference is fitted to
    reference_on_ground: bool = False  # lift reference frames whose foot spheres are below the ground
    reference_2d_weight: float = 0.0  # IK of the reference also fits the 2D keypoints (body.fit.inverse_kinematics)
    reference_ground_weight: float = 0.0  # IK of the reference keeps the foot spheres out of the ground
    gain_scale: float = 1.0         # PD gains (body.template.Gains) times this
    second_solver: Optional[str] = None  # also solve each window with this one on a spare core, keep the lower loss
    weights: diffphy.LossWeights = diffphy.LossWeights()
    contact: ContactParams = ContactParams()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return d

    def make_solver(self):
        """The solver these settings name (ValueError for an unknown name, InputError for named weights that do not load)."""
        options = {} if self.solver_weights is None else {"weights": self.solver_weights}
        return get_solver(self.solver, **options)


def _second_solver_summary(cfg: ReconstructionConfig, windows: list[dict], spare, note: str | None) -> dict:
    """The metrics' record of the second solver: in how many windows its result was kept, or why it did not run."""
    if cfg.second_solver is None:
        return {}
    out = {"second_solver": cfg.second_solver,
           "second_solver_kept_windows": sum(bool((w.get("second_solver") or {}).get("kept")) for w in windows)}
    if spare is not None and spare.compile_s is not None:
        out["second_solver_compile_s"] = spare.compile_s  # in its process: lowered beside this one's compile, then loaded
    why = note or (spare.failure if spare is not None else None)
    if why:
        out["second_solver_note"] = why
    return out


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
class Reconstruction:
    """The result.

    joints3d: [T, J, 3] simulated joints (observation layout), metres, world z-up.
    observed3d: [T, J, 3] the observations. qpos: [T, nq] simulated poses.
    qpos_kinematic: [T, nq] the IK poses. markers: [T, L, 3] all body landmarks.
    contact_pos: [T, C, 3] foot contact sphere centres.
    control: [W, K, U] optimised keyframes per window. windows: per-window facts (start frame,
    solver trace, evaluations, message). metrics: see `metrics.summarize` plus counts and timings.
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


def _frames_per_window(cfg: ReconstructionConfig, fps: float, num_frames: int):
    F = max(2, int(round(cfg.window * fps)))
    F = min(F, num_frames - 1)
    ov = int(round(cfg.overlap * fps))
    ov = min(max(ov, 0), F - 1)
    K = max(2, int(round(F / fps / cfg.keyframe_spacing)) + 1)
    spf = max(1, int(round(cfg.sim_rate / fps)))
    return F, ov, K, spf


def _initial_state(body: Body, qpos0: np.ndarray, qpos1: np.ndarray, dt: float) -> SimState:
    """State at the first frame: IK pose lifted out of the floor, finite-difference velocity."""
    m = body.model
    q = qpos0.copy()
    d = mujoco.MjData(m)
    d.qpos[:] = q
    mujoco.mj_kinematics(m, d)
    geoms = list(body.layout.contact_geoms)
    lowest = float(np.min(d.geom_xpos[geoms, 2] - m.geom_size[geoms, 0]))
    if lowest < 0:
        q[2] -= lowest
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
    qvel = finite_difference_velocity(m, qpos0, qpos1, dt)
    anchor = d.geom_xpos[geoms, :2]
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))
    return SimState(f32(q), f32(qvel), f32(anchor))


def _window_2d(obs: Observations, frames: np.ndarray, valid: np.ndarray) -> dict:
    """The 2D fields of a window's data: detections and camera, or none."""
    if obs.joints2d is None or obs.camera is None:
        return diffphy.no_2d(len(frames), obs.skeleton.num_joints)
    cam = obs.camera
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))
    uv = np.nan_to_num(obs.joints2d[frames])
    return dict(observed2d=f32(uv), confidence2d=f32(obs.confidence[frames] * valid[:, None]), camera_K=f32(cam.K),
                camera_R=f32(cam.R), camera_t=f32(cam.t), image_scale=f32(max(cam.width, cam.height)))


def _shift_keyframes(prev: np.ndarray, shift_frames: int, F: int) -> np.ndarray:
    """Warm start: the previous window's control offsets [K, U] moved `shift_frames` earlier (zeros past its end)."""
    K = prev.shape[0]
    times = np.linspace(0.0, F, K)
    new_times = times + shift_frames
    out = np.zeros_like(prev)
    for u in range(prev.shape[1]):
        out[:, u] = np.interp(new_times, times, prev[:, u], right=0.0)
    return out


def kinematic_reference(obs: Observations, cfg: ReconstructionConfig, spf: int,
                        shape: BodyShape | None = None) -> tuple[Body, np.ndarray]:
    """The body (measured from `obs` unless `shape` is given; `spf` steps per frame) and the
    controllers' kinematic reference qpos [T, nq]: IK on the (optionally smoothed) observations,
    optionally fitted to their 2D keypoints too and kept out of the ground (`cfg.reference_2d_weight`,
    `cfg.reference_ground_weight`), and optionally lifted onto the ground (`cfg.reference_smoothing`,
    `cfg.reference_on_ground`)."""
    body = build_body(shape or measure_shape(obs), Gains().scaled(cfg.gain_scale), timestep=1.0 / (obs.fps * spf))
    qkin = inverse_kinematics(body.model, smooth_in_time(obs, cfg.reference_smoothing),
                              weight_2d=cfg.reference_2d_weight, ground_weight=cfg.reference_ground_weight,
                              contact_geoms=body.layout.contact_geoms)
    if cfg.reference_on_ground:
        qkin, _ = lift_onto_ground(body.model, qkin, body.layout.contact_geoms)
    return body, qkin


def window_data(obs: Observations, qkin: np.ndarray, state: SimState, start: int, F: int) -> diffphy.WindowData:
    """The loss data of the window of F frames after frame `start` (frames past the end are padded
    with the last one at zero confidence)."""
    T = obs.num_frames
    frames = np.arange(start, start + F + 1)
    valid = frames <= T - 1
    clipped = np.minimum(frames, T - 1)
    conf = obs.confidence[clipped[1:]] * valid[1:, None]
    landmarks = jnp.asarray([BODY_LANDMARKS.index(lm) for lm in obs.skeleton.landmarks], jnp.int32)
    return diffphy.WindowData(
        init=state, base_qpos=jnp.asarray(qkin[clipped], jnp.float32),
        observed=jnp.asarray(obs.joints3d[clipped[1:]], jnp.float32),
        confidence=jnp.asarray(conf, jnp.float32), landmarks=landmarks,
        **_window_2d(obs, clipped[1:], valid[1:]))


_PROBLEMS: dict = {}  # compiled window problems of this process, by (joint set, F, K, spf)


class WindowProblem:
    """The compiled loss of one window size, reusable across windows and sequences."""

    def __init__(self, body: Body, num_joints: int, F: int, K: int, spf: int, cfg: ReconstructionConfig,
                 compile_now: bool = True):
        self.body, self.F, self.K, self.spf, self.cfg = body, F, K, spf, cfg
        self.static = dict(layout=body.layout, spf=spf, num_keyframes=K)
        U = body.layout.num_controls
        L = body.layout
        data = diffphy.WindowData(
            init=SimState(jnp.zeros(L.nq), jnp.zeros(L.nv), jnp.zeros((len(L.contact_geoms), 2))),
            base_qpos=jnp.zeros((F + 1, L.nq)), observed=jnp.zeros((F, num_joints, 3)),
            confidence=jnp.zeros((F, num_joints)), landmarks=jnp.zeros(num_joints, jnp.int32),
            **diffphy.no_2d(F, num_joints))
        data = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32) if a.dtype == jnp.float64 else a, data)
        args = (jnp.zeros(K * U, jnp.float32), data, body.mjx_model, body.arrays, cfg.contact, cfg.weights)
        t = time.perf_counter()
        self._lowered = diffphy.loss_and_grad.lower(*args, **self.static)  # traced and lowered (~10 s)
        self.compile_s = time.perf_counter() - t  # lowering and compiling
        self._compiled = None
        if compile_now:
            self.compile()

    def compile(self) -> None:
        """Compiles the lowered loss, or loads it from the persistent cache (at construction unless `compile_now`
        was False: a spare-core worker lowers at once but compiles once the main process has filled the cache)."""
        if self._compiled is None:
            t = time.perf_counter()
            self._compiled = self._lowered.compile()
            self.compile_s += time.perf_counter() - t
            self._lowered = None

    def loss_and_grad(self, *args):
        self.compile()
        return self._compiled(*args)

    def fun_and_grad(self, data: diffphy.WindowData) -> Callable:
        """float64 [K*U] -> (loss, float64 gradient), for the solvers."""
        b, cfg = self.body, self.cfg

        def f(x):
            (loss, _), grad = self.loss_and_grad(jnp.asarray(x, jnp.float32), data, b.mjx_model, b.arrays,
                                                 cfg.contact, cfg.weights)
            return float(loss), np.asarray(grad, np.float64)

        return f

    def run(self, x, data):
        """(loss, trajectory, loss parts) at controls x."""
        b, cfg = self.body, self.cfg
        (loss, (traj, parts)), _ = self.loss_and_grad(jnp.asarray(x, jnp.float32), data, b.mjx_model, b.arrays,
                                                      cfg.contact, cfg.weights)
        return loss, traj, parts


def reconstruct(obs: Observations, config: ReconstructionConfig | None = None, *,
                shape: BodyShape | None = None, progress: Callable[[int, int], None] | None = None,
                problem_cache: dict | None = None) -> Reconstruction:
    """Physically simulated reconstruction of `obs` (3D observations).

    Args:
      obs: observations with `joints3d` (world z-up, ground z = 0, metres).
      config: settings; defaults as `ReconstructionConfig()`.
      shape: body shape; measured from `obs` when None.
      progress: called as progress(evaluations_done, evaluations_total).
      problem_cache: where compiled window problems are kept (default: one per process).
    """
    cfg = config or ReconstructionConfig()
    if obs.joints3d is None:
        raise InputError(obs.source, "reconstruction from 2D keypoints alone is not supported yet")
    solver = cfg.make_solver()  # unknown names and named weights that do not load fail before any work
    t_start = time.perf_counter()
    enable_compilation_cache()
    spare, spare_note = _start_second_solver(cfg)  # its process starts up while this one fits the body
    try:
        return _reconstruct(obs, cfg, solver, shape, progress, problem_cache, t_start, spare, spare_note)
    finally:
        if spare is not None:
            spare.close()


def _start_second_solver(cfg: ReconstructionConfig):
    """(the spare-core solver of `cfg.second_solver`, or None; a note for the metrics)."""
    if cfg.second_solver is None:
        return None, None
    from motionrecon.spare_core import Worker, spare_core

    get_solver(cfg.second_solver)  # an unknown name fails before any work
    core = spare_core()
    if core is None:
        return None, "not run: no spare CPU core (the process does not run on one core, or has no other)"
    return Worker(cfg.second_solver, core), None


def _pick(res, second, name: str) -> tuple[np.ndarray, dict | None]:
    """The controls with the lower loss of this process's result and the second solver's, and a record."""
    if second is None:
        return res.x, None
    kept = bool(second.fun < res.fun)
    return (second.x if kept else res.x), {"solver": name, "loss": float(second.fun), "n_evals": second.n_evals,
                                           "message": second.message, "kept": kept}


def _compiled_problem(key: tuple, body, num_joints, F, K, spf, cfg) -> WindowProblem:
    """The compiled window problem of `key` (the in-process cache's key). Where this process runs on one
    core, another is free and this key was never compiled with this cache folder, a helper process on
    every core compiles it into the persistent cache while this one lowers its copy, then loads it
    (`spare_core.compile_helper`)."""
    from motionrecon.jaxsetup import compiled_before, mark_compiled
    from motionrecon.spare_core import compile_helper, spare_core

    key = repr(key)
    helper = None
    if not compiled_before(key) and spare_core() is not None:
        helper = compile_helper(body, num_joints, F, K, spf, cfg)
    try:
        problem = WindowProblem(body, num_joints, F, K, spf, cfg, compile_now=helper is None)
        if helper is not None:
            helper.wait_ready()  # if it failed, this process compiles by itself below
    finally:
        if helper is not None:
            helper.close(wait=False)
    problem.compile()
    mark_compiled(key)
    return problem


def _reconstruct(obs, cfg, solver, shape, progress, problem_cache, t_start, spare, spare_note) -> Reconstruction:
    T, fps = obs.num_frames, obs.fps
    F, ov, K, spf = _frames_per_window(cfg, fps, T)
    body, qkin = kinematic_reference(obs, cfg, spf, shape)
    if spare is not None:
        spare.set_problem(body, obs.skeleton.num_joints, F, K, spf, cfg)
    js = obs.skeleton

    key = (js.name, F, K, spf)
    cache = problem_cache if problem_cache is not None else _PROBLEMS
    problem = cache.get(key)
    compile_s = 0.0
    if problem is None:
        t = time.perf_counter()
        problem = _compiled_problem(key, body, js.num_joints, F, K, spf, cfg)
        cache[key] = problem
        compile_s = time.perf_counter() - t
    problem.body = body  # traced argument: same compiled code, this subject's body
    problem.cfg = cfg

    step = F - ov
    starts = list(range(0, T - 1, step))
    while len(starts) > 1 and starts[-1] + F > T - 1 and starts[-2] + F >= T - 1:
        starts.pop()  # the previous window already reaches the end
    total_evals = len(starts) * cfg.max_evals
    U = body.layout.num_controls

    qpos = np.zeros((T, body.model.nq))
    markers = np.zeros((T, len(BODY_LANDMARKS), 3))
    contact_pos = np.zeros((T, len(body.layout.contact_geoms), 3))
    state = _initial_state(body, qkin[0], qkin[1], 1.0 / fps)
    qpos[0] = np.asarray(state.qpos)
    d0 = mujoco.MjData(body.model)
    d0.qpos[:] = qpos[0]
    mujoco.mj_kinematics(body.model, d0)
    markers[0] = d0.site_xpos[list(body.layout.sites)]
    contact_pos[0] = d0.geom_xpos[list(body.layout.contact_geoms)]

    controls, windows = [], []
    x_prev = np.zeros((K, U))
    evals_done = 0
    for w, s in enumerate(starts):
        data = window_data(obs, qkin, state, s, F)
        x0 = _shift_keyframes(x_prev, step, F) if w > 0 else np.zeros((K, U))
        offset = evals_done
        if w == 0:
            ready_s = time.perf_counter() - t_start  # setup and compilation done, optimisation starts

        def cb(n, f, offset=offset):
            if progress is not None:
                progress(offset + n, total_evals)

        if spare is not None:
            spare.submit(data, x0.reshape(-1), cfg.max_evals)
        res = solver.minimize(problem.fun_and_grad(data), x0.reshape(-1), max_evals=cfg.max_evals, callback=cb)
        evals_done += cfg.max_evals
        if progress is not None and res.n_evals < cfg.max_evals:  # stopped early: the bar moves on
            progress(evals_done, total_evals)
        x, second = _pick(res, spare.result() if spare is not None else None, cfg.second_solver)
        loss, traj, parts = problem.run(x, data)
        last = w == len(starts) - 1
        keep = min(F, T - 1 - s) if last else step  # frames s+1 .. s+keep
        sl = slice(s + 1, s + 1 + keep)
        qpos[sl] = np.asarray(traj.qpos[:keep])
        markers[sl] = np.asarray(traj.markers[:keep])
        contact_pos[sl] = np.asarray(traj.contact_pos[:keep])
        if not last:
            state = traj.state(step - 1)
        x_prev = np.asarray(x).reshape(K, U)
        controls.append(x_prev.copy())
        windows.append({"start_frame": int(s), "frames": int(F), "kept_frames": int(keep), "n_evals": res.n_evals,
                        "n_iters": res.n_iters, "loss": float(loss), "parts": {k: float(v) for k, v in parts.items()},
                        "message": res.message, "trace": [float(v) for v in res.trace], "info": res.info,
                        **({"second_solver": second} if second is not None else {})})
    joints3d = markers[:, np.asarray(data.landmarks)]
    wall_s = time.perf_counter() - t_start
    radius = np.asarray(body.arrays.contact_radius)
    m = metrics.summarize(joints3d, obs.joints3d, fps, js, weights=obs.confidence)
    m.update({
        "contact_penetration_mm": float(max(0.0, 1000 * np.max(radius - contact_pos[..., 2]))),
        "pelvis_height_error_max_mm": float(1000 * np.max(np.abs(qpos[:, 2] - qkin[:, 2]))),
        "n_evals": int(sum(wd["n_evals"] for wd in windows)), "n_windows": len(windows), "solver": cfg.solver,
        **(fallback_summary(windows) if any("fallback" in (wd["info"] or {}) for wd in windows) else {}),
        **_second_solver_summary(cfg, windows, spare, spare_note),
        "wall_s": wall_s, "compile_s": compile_s, "ready_s": ready_s, "frames": T, "fps": fps,
    })
    return Reconstruction(
        fps=fps, joint_set=js.name, joint_names=js.joints, joints3d=joints3d, observed3d=obs.joints3d,
        confidence=obs.confidence, qpos=qpos, qpos_kinematic=qkin, markers=markers, contact_pos=contact_pos,
        control=np.stack(controls), control_fps=(K - 1) / (F / fps), body=body, windows=windows, metrics=m,
        config=cfg, source=obs.source)
