"""Window problems: the unit of work of reconstruction, solved many at a time.

A window is F observation frames after an initial state. Its unknowns are K
control keyframes [K, U] (offsets from the kinematic reference, flattened to
[K*U]); its loss is `diffphy.window_loss`. A `WindowProblem` is everything the
loss reads besides the controls: the window's data (observations, reference
poses, initial state) and the body (`BodyArrays`), so windows of different
clips and different subjects stack into one batch (leading axis B).

    spec = window_spec(...)                       # static: layout, F, K, steps per frame
    batch = pad(stack(problems), bucket(len(problems)))
    out = solve(spec, solver, batch, x0, budget, params, weights, progress=...)
    out.results[i]      # SolveResult of problem i (loss per evaluation, best point, message)
    out.trajectory      # Trajectory of every problem at its best point ([B, F, ...])

One program is compiled per (window spec, batch bucket, solver): the solver's
loop over a chunk of `CHUNK` evaluations, each a batched loss and gradient, that
also keeps the trajectory and the loss parts of each problem's best point, so
the same program gives the final motion (`simulate` runs it with a budget of one
evaluation). Buckets are powers of two; unused slots of a bucket repeat the last
problem and are dropped from the results. JAX's persistent cache keeps the
compiled programs across runs (`jaxsetup.enable_compilation_cache`).
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from motionrecon import diffphy
from motionrecon.body import Body, BodyArrays, Layout
from motionrecon.body.fit import finite_difference_velocity
from motionrecon.observations import Observations, frame_runs, shot_spans
from motionrecon.optim import batched
from motionrecon.physics.contact import ContactParams
from motionrecon.physics.rollout import SimState, Trajectory
from motionrecon.skeleton import BODY_LANDMARKS

CHUNK = 10  # evaluations per call of a compiled solver loop (progress is reported between calls)
BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """The static shape of a window problem (one compiled program per spec and batch bucket).

    frames: F observation frames after the initial state; keyframes: K control keyframes spread over them;
    steps_per_frame: simulation steps per frame; num_joints: observed joints J.
    """

    layout: Layout
    num_joints: int
    frames: int
    keyframes: int
    steps_per_frame: int

    @property
    def num_params(self) -> int:
        """Unknowns per window: K keyframes of U control values."""
        return self.keyframes * self.layout.num_controls


def window_frames(fps: float, num_frames: int, window: float, overlap: float, keyframe_spacing: float,
                  sim_rate: float) -> tuple[int, int, int, int]:
    """(F frames per window, overlap frames, K keyframes, steps per frame) for a clip of `num_frames` at `fps`
    (window, overlap, keyframe_spacing in seconds; sim_rate in Hz, rounded so frames fall on steps)."""
    F = max(2, int(round(window * fps)))
    F = min(F, num_frames - 1)
    ov = int(round(overlap * fps))
    ov = min(max(ov, 0), F - 1)
    K = max(2, int(round(F / fps / keyframe_spacing)) + 1)
    spf = max(1, int(round(sim_rate / fps)))
    return F, ov, K, spf


def window_starts(num_frames: int, F: int, overlap: int) -> list[int]:
    """First frames of the windows that cover frames 0..num_frames-1 (each starts `F - overlap` after the last)."""
    step = F - overlap
    starts = list(range(0, num_frames - 1, step))
    while len(starts) > 1 and starts[-1] + F > num_frames - 1 and starts[-2] + F >= num_frames - 1:
        starts.pop()  # the previous window already reaches the end
    return starts


def observed_segments(confidence: np.ndarray, fps: float, gap_s: float,
                      shot_starts: tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """The stretches of a clip that are simulated, [(first, stop), ...] frame ranges in order: the clip cut at
    every run of at least `gap_s` seconds of frames without any observed joint (confidence [T, J], 0 where
    unobserved), without those runs, and cut at every frame of `shot_starts` (an edited video's cuts to
    another shot). Stretches of fewer than 2 frames, or without an observed frame (a shot whose person
    was never seen), are dropped; a clip with no such gap or cut is one
    stretch, [(0, T)], and so is every clip when `gap_s` <= 0 and it has no cut, or when nothing is observed.
    Frames before the first and after the last observation are left out only when they too last `gap_s`."""
    T = confidence.shape[0]
    seen = np.any(np.asarray(confidence) > 0, axis=1)
    if not seen.any():
        return [(0, T)]
    kept = np.ones(T, bool)
    if gap_s > 0:
        shortest = max(1, int(np.ceil(gap_s * fps - 1e-9)))
        for first, stop in frame_runs(~seen):
            if stop - first >= shortest:
                kept[first:stop] = False
    stretches = [(first + a, first + b) for first, stop in shot_spans(shot_starts, T)
                 for a, b in frame_runs(kept[first:stop])]
    return [(first, stop) for first, stop in stretches if stop - first >= 2 and seen[first:stop].any()] or [(0, T)]


def segment_window_starts(segments: list[tuple[int, int]], F: int, overlap: int) -> list[tuple[int, int]]:
    """(first frame, stop of its segment) of every window over `segments` (`observed_segments`): each segment's
    windows as `window_starts` lays them over it, segment after segment."""
    return [(a + s, b) for a, b in segments for s in window_starts(b - a, F, overlap)]


def part_windows(placed: list[tuple[int, int]], frames_per_part: int, most_parts: int) -> list[list[int]]:
    """The windows of a long clip cut into parts solved side by side: lists of window indices into `placed`
    (`segment_window_starts`), one per part, in order. The clip is cut into as many parts as it spans
    `frames_per_part` frames (at most `most_parts`, each of at least two windows), rounded down to a power of
    two so that the parts fill a batch bucket (`bucket`), at evenly spaced windows. Where a cut falls inside a
    simulated stretch, the window there ends the part before it too (the seam window, solved in both: there
    the two simulations are cross-faded, `reconstruct._Run._join_parts`); where it falls on a stretch's first
    window, that window starts the next part alone. [[0, .., W-1]] (one part) for a short clip or
    `frames_per_part` <= 0."""
    W = len(placed)
    span = placed[-1][1] - placed[0][0] if placed else 0
    parts = min(most_parts, W // 2, span // frames_per_part if frames_per_part > 0 else 1)
    if parts <= 1:
        return [list(range(W))]
    parts = 1 << (parts.bit_length() - 1)
    cuts = [round(k * W / parts) for k in range(1, parts)] + [W]
    out, first = [], 0
    for cut in cuts:
        seam = cut < W and placed[cut][1] == placed[cut - 1][1]  # the cut window continues a stretch
        out.append(list(range(first, cut + 1 if seam else cut)))
        first = cut
    return out


def initial_state(body: Body, qpos0: np.ndarray, qpos1: np.ndarray, dt: float) -> SimState:
    """A state at a frame of the kinematic reference: its pose lifted out of the floor, with the finite-difference
    velocity towards the next frame's pose (qpos0, qpos1 [nq]; dt seconds apart)."""
    m = body.model
    q = np.asarray(qpos0, np.float64).copy()
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


def window_data(obs: Observations, qkin: np.ndarray, state: SimState, start: int, F: int,
                first_keyframe: np.ndarray | None = None, pin_first: bool = False,
                stance: np.ndarray | None = None, handover: float = 0.0, seats: np.ndarray | None = None,
                seated: np.ndarray | None = None) -> diffphy.WindowData:
    """The loss data of the window of F frames after frame `start` (frames past the end are padded with the
    last one at zero confidence); keyframe 0 held at `first_keyframe` [U] where `pin_first`
    (`diffphy.pinned_keyframes`; None: free in every window of the batch); `stance` [T, C] of the whole clip
    (`reconstruct.reference_stance`; None: no stance term); `handover` the weight of the step out of `state` in
    the skate and stance terms (`diffphy.handover_sliding`); `seats` [S, 5] and `seated` [C] the clip's seats and
    the spheres that rest on them (`body.seats`; None: none)."""
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
        **_window_2d(obs, clipped[1:], valid[1:]),
        first_keyframe=jnp.asarray(np.zeros(0) if first_keyframe is None else first_keyframe, jnp.float32),
        pin_first=jnp.asarray(float(pin_first), jnp.float32),
        stance=jnp.asarray(np.zeros((F, 0)) if stance is None else stance[clipped[1:]] * valid[1:, None],
                           jnp.float32),
        stance0=jnp.asarray(np.zeros(0) if stance is None else stance[clipped[0]], jnp.float32),
        handover=jnp.asarray(handover, jnp.float32),
        seats=jnp.asarray(np.zeros((0, 5)) if seats is None else seats, jnp.float32),
        seated=jnp.asarray(np.zeros(0) if seated is None else seated, jnp.float32))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WindowProblem:
    """One window's loss data and body (or a batch of them: every leaf with a leading axis B)."""

    data: diffphy.WindowData
    body: BodyArrays


def stack(problems: list[WindowProblem]) -> WindowProblem:
    """A batch [B, ...] of window problems of one spec."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack([jnp.asarray(x) for x in leaves]), *problems)


def bucket(n: int, largest: int | None = None) -> int:
    """The smallest batch bucket that holds n problems (powers of two up to `largest`, default BUCKETS[-1])."""
    top = largest or BUCKETS[-1]
    for b in BUCKETS:
        if b >= n or b >= top:
            return b
    return BUCKETS[-1]


def pad(batch: WindowProblem, size: int) -> WindowProblem:
    """The batch padded to `size` problems by repeating its last one."""
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    if n == size:
        return batch
    return jax.tree_util.tree_map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], size - n, axis=0)]), batch)


def take(batch: WindowProblem, i: int) -> WindowProblem:
    """Problem i of a batch."""
    return jax.tree_util.tree_map(lambda a: a[i], batch)


# -------------------------------------------------------------------------------------------- compiled parts

def loss_and_grad(spec: WindowSpec, x, problem: WindowProblem, params: ContactParams, weights: diffphy.LossWeights):
    """((loss, (trajectory, parts)), gradient) of one window at controls x [K*U]."""
    f = lambda x: diffphy.window_loss(x, problem.data, problem.body, params, weights, layout=spec.layout,
                                      spf=spec.steps_per_frame, num_keyframes=spec.keyframes)
    return jax.value_and_grad(f, has_aux=True)(x)


@partial(jax.jit, static_argnums=(0,))
def batched_loss_and_grad(spec: WindowSpec, x, batch: WindowProblem, params: ContactParams,
                          weights: diffphy.LossWeights):
    """Loss [B] and gradient [B, K*U] of a batch of windows at controls x [B, K*U] (one compiled call)."""
    (loss, _), grad = jax.vmap(lambda x, p: loss_and_grad(spec, x, p, params, weights))(x, batch)
    return loss, grad


class Best(NamedTuple):
    """The trajectory [B, F, ...] and loss parts {name: [B]} at each problem's best point so far."""

    trajectory: Trajectory
    parts: dict


class LoopState(NamedTuple):
    """What a compiled solver loop carries from one call to the next.

    solver: the solvers' states, flattened (their structure is the solver's own: only the program unflattens
      it, so a deserialised program needs no tracing to be called). record: `batched.Record`. best: `Best`.
    started: whether the first evaluation was made (one flag for the batch)."""

    solver: tuple
    record: batched.Record
    best: Best
    started: jax.Array


def _evaluator(spec: WindowSpec, batch: WindowProblem, params, weights):
    def evaluate(x):
        (loss, (traj, parts)), grad = jax.vmap(lambda x, p: loss_and_grad(spec, x, p, params, weights))(x, batch)
        return loss, grad, traj, parts

    return evaluate


def trajectory_shapes(spec: WindowSpec, size: int, dtype=jnp.float32) -> Best:
    """Zeros shaped as a batch's best trajectories and loss parts (no tracing of the loss)."""
    L, F = spec.layout, spec.frames
    C = len(L.contact_geoms)
    z = lambda *shape: jnp.zeros((size, F) + shape, dtype)
    traj = Trajectory(markers=z(len(L.sites), 3), qpos=z(L.nq), qvel=z(L.nv), anchor=z(C, 2), contact_pos=z(C, 3))
    return Best(traj, {name: jnp.zeros((size,), dtype) for name in diffphy.PARTS})


def _loop_zeros(spec: WindowSpec, solver, size: int, trace_len: int, solver_avals) -> LoopState:
    """A loop state before the first evaluation: zeros of the solvers' state leaves (`solver_avals`, shapes and
    dtypes), of a record and of the best trajectories; `started` False."""
    z = jnp.zeros
    record = batched.Record(trace=z((size, trace_len)), best_x=z((size, spec.num_params)), best_f=z((size,)),
                            n_evals=z((size,), jnp.int32), stopped=z((size,), bool),
                            extra={k: z((size,), dtype) for k, dtype in solver.summary_dtypes.items()})
    return LoopState(tuple(z(a.shape, a.dtype) for a in solver_avals), record, trajectory_shapes(spec, size),
                     jnp.asarray(False))


def _solver_structure(spec: WindowSpec, solver, size: int, trace_len: int):
    """(treedef, leaf shapes) of the solvers' batched state: traced from their start, without the loss."""
    x = jax.ShapeDtypeStruct((size, spec.num_params), jnp.float32)
    f = jax.ShapeDtypeStruct((size,), jnp.float32)
    carry = jax.eval_shape(lambda x, f, g: batched.start(solver, x, f, g, trace_len), x, f, x)
    leaves, treedef = jax.tree_util.tree_flatten(carry.state)
    return treedef, leaves


def _chunk(spec: WindowSpec, solver, trace_len: int, iterations: int, treedef, loop: LoopState,
           batch: WindowProblem, x0, budget, params, weights) -> LoopState:
    """`iterations` evaluations of every problem: the first ever starts the solvers at x0. The loss is
    evaluated once per iteration, outside any branch (a program holds one copy of it). `treedef`: the
    structure of the solvers' state (`_solver_structure`)."""
    evaluate = _evaluator(spec, batch, params, weights)

    def body(loop: LoopState, _):
        carry = batched.Carry(jax.tree_util.tree_unflatten(treedef, loop.solver), loop.record)
        x = jnp.where(loop.started, batched.query(solver, carry), x0)
        f, g, traj, parts = evaluate(x)
        carry = jax.lax.cond(loop.started, lambda c: batched.tell(solver, c, x, f, g, budget),
                             lambda c: batched.start(solver, x0, f, g, trace_len), carry)
        improved = (carry.record.best_f < loop.record.best_f) | ~loop.started
        keep = lambda new, old: jnp.where(improved.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        best = jax.tree_util.tree_map(keep, Best(traj, parts), loop.best)
        return LoopState(tuple(jax.tree_util.tree_leaves(carry.state)), carry.record, best, jnp.asarray(True)), None

    loop, _ = jax.lax.scan(body, loop, None, length=iterations)
    return loop


_COMPILED: dict = {}  # programs of this process, by (spec, bucket, solver, trace length, data shapes)


def _program_key(spec: WindowSpec, solver, size: int, trace_len: int, shapes: tuple) -> str:
    """A name for a compiled solver loop that changes with everything that could change its code: the spec,
    bucket, solver (and its weights), trace length, the shapes of its data, chunk, backend, XLA flags, package
    versions and the source of motionrecon itself."""
    import hashlib
    import os

    from motionrecon.jaxsetup import source_fingerprint

    text = repr((spec, size, solver, trace_len, shapes, CHUNK, jax.default_backend(), jax.__version__,
                 os.environ.get("XLA_FLAGS", ""), source_fingerprint()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _Program(NamedTuple):
    """A compiled solver loop: `run(loop, batch, x0, budget, params, weights) -> loop`, and the loop state to
    start from."""

    run: Callable
    initial: LoopState


def _compiled_loop(spec: WindowSpec, solver, size: int, trace_len: int, batch, x0, params, weights) -> _Program:
    """The compiled chunk of the solver loop for batches of `size` problems.

    The program is exported (`jax.export`, StableHLO) into the cache folder under `_program_key` with the
    solvers' state flattened into arrays: a later process deserialises it and calls it without tracing the
    physics, its gradient or the solvers (seconds of Python at every start), and XLA's persistent cache
    gives its compiled code. Arguments cross the program's boundary as flat lists of arrays, so no pytree
    type needs registering for serialisation."""
    budget = jnp.full((size,), trace_len, jnp.int32)
    rest = (batch, x0, budget, params, weights)
    rest_leaves = [jnp.asarray(a) for a in jax.tree_util.tree_leaves(rest)]
    shapes = tuple((a.shape, str(a.dtype)) for a in rest_leaves)
    key = (spec, size, solver, trace_len, shapes)
    if key in _COMPILED:
        return _COMPILED[key]
    from motionrecon.jaxsetup import exported_program_path

    path = exported_program_path(_program_key(spec, solver, size, trace_len, shapes))
    exported = None
    if path is not None and path.is_file():
        try:
            exported = jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # unreadable (a killed write, another version): export again
            exported = None
    if exported is None:
        treedef, solver_avals = _solver_structure(spec, solver, size, trace_len)
        loop = _loop_zeros(spec, solver, size, trace_len, solver_avals)
        loop_tree = jax.tree_util.tree_structure(loop)
        rest_tree = jax.tree_util.tree_structure(rest)
        n_loop = loop_tree.num_leaves

        def flat_chunk(*leaves):
            loop = jax.tree_util.tree_unflatten(loop_tree, leaves[:n_loop])
            args = jax.tree_util.tree_unflatten(rest_tree, leaves[n_loop:])
            return jax.tree_util.tree_leaves(_chunk(spec, solver, trace_len, CHUNK, treedef, loop, *args))

        leaves = jax.tree_util.tree_leaves(loop) + rest_leaves
        exported = jax.export.export(jax.jit(flat_chunk))(*[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in leaves])
        if path is not None:
            from motionrecon.fileio import write_bytes

            write_bytes(path, bytes(exported.serialize()))
    else:  # the solvers' state leaves come first in the program's signature; the rest is known without tracing
        others = jax.tree_util.tree_structure(_loop_zeros(spec, solver, size, trace_len, ())).num_leaves
        n_solver = len(exported.in_avals) - len(rest_leaves) - others
        loop = _loop_zeros(spec, solver, size, trace_len, exported.in_avals[:n_solver])
    compiled = jax.jit(exported.call).lower(*(jax.tree_util.tree_leaves(loop) + rest_leaves)).compile()
    out_tree = jax.tree_util.tree_structure(loop)

    def run(loop, batch, x0, budget, params, weights):
        out = compiled(*jax.tree_util.tree_leaves((loop, batch, x0, budget, params, weights)))
        return jax.tree_util.tree_unflatten(out_tree, out)

    _COMPILED[key] = _Program(run, loop)
    return _COMPILED[key]


def _compiled_evaluator(spec: WindowSpec):
    """The compiled loss, gradient, trajectory and parts of one window (solvers outside JAX use it)."""
    key = (spec, "evaluate")
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(lambda x, p, c, w: loss_and_grad(spec, x, p, c, w))
    return _COMPILED[key]


def prepare(spec: WindowSpec, solver, size: int, problem: WindowProblem, x0: np.ndarray, trace_len: int,
            params: ContactParams, weights: diffphy.LossWeights) -> None:
    """Compiles, or loads from JAX's persistent cache, the program that `solve` (solver: a batched solver) or
    `solve_one_at_a_time` (solver None) will run for batches of `size` problems like `problem` (a batch of
    one, x0 [1, K*U])."""
    x0 = jnp.asarray(np.repeat(np.asarray(x0, np.float32), size, axis=0))
    if solver is None:
        fn = _compiled_evaluator(spec)
        jax.block_until_ready(fn(x0[0], take(problem, 0), params, weights))
        return
    _compiled_loop(spec, solver, size, trace_len, pad(problem, size), x0, params, weights)


@dataclasses.dataclass
class Solved:
    """A batch solved: results [n] (`SolveResult`), trajectory [n, F, ...] and parts {name: [n]} at each best
    point, and timings (compile_s: lowering and compiling or loading this program, solve_s)."""

    results: list
    trajectory: Trajectory
    parts: dict
    compile_s: float
    solve_s: float


def solve(spec: WindowSpec, solver, problems: WindowProblem, x0: np.ndarray, budget: int, params: ContactParams,
          weights: diffphy.LossWeights, *, size: int | None = None, trace_len: int | None = None,
          progress: Optional[Callable[[int, int], None]] = None) -> Solved:
    """Solves a batch of n window problems (leading axis n) from x0 [n, K*U] with `budget` evaluations each.

    The batch is padded to `size` (default: its bucket); the solver (`optim.batched`) runs inside one compiled
    loop, CHUNK evaluations per call, keeping traces of `trace_len` evaluations (default: the budget; one
    program serves every budget up to it); `progress(done, total)` is called between calls."""
    n = int(np.shape(x0)[0])
    size = size or bucket(n)
    trace_len = trace_len or max(int(budget), 1)
    budget = min(max(int(budget), 1), trace_len)
    batch = pad(problems, size)
    x0p = np.concatenate([x0, np.repeat(x0[-1:], size - n, axis=0)]) if size > n else np.asarray(x0)
    x0p = jnp.asarray(x0p, jnp.float32)
    t = time.perf_counter()
    fn, loop = _compiled_loop(spec, solver, size, trace_len, batch, x0p, params, weights)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    budget_arr = jnp.full((size,), budget, jnp.int32)
    done = 0
    while done < budget:
        loop = fn(loop, batch, x0p, budget_arr, params, weights)
        done = min(budget, done + CHUNK)
        if progress is not None:
            progress(done, budget)
        if bool(jnp.all(loop.record.stopped)):
            break
    jax.block_until_ready(loop)
    solve_s = time.perf_counter() - t
    results = batched.results(solver, loop.record, np.asarray(x0p), n)
    best = jax.device_get(loop.best)
    traj = jax.tree_util.tree_map(lambda a: np.asarray(a[:n]), best.trajectory)
    parts = {k: np.asarray(v[:n]) for k, v in best.parts.items()}
    return Solved(results=results, trajectory=traj, parts=parts, compile_s=compile_s, solve_s=solve_s)


def solve_one_at_a_time(spec: WindowSpec, solver, problems: WindowProblem, x0: np.ndarray, budget: int,
                        params: ContactParams, weights: diffphy.LossWeights, *, size: int | None = None,
                        trace_len: int | None = None, progress: Optional[Callable[[int, int], None]] = None) -> Solved:
    """As `solve`, for a solver outside JAX (`optim.base.Solver`: SciPy's BFGS, basin hopping): each problem
    in turn, through the compiled loss of one window (float64 at the solver's side)."""
    fn = _compiled_evaluator(spec)
    n = int(np.shape(x0)[0])
    t = time.perf_counter()
    results, trajs, parts = [], [], []
    for i in range(n):
        problem = take(problems, i)

        def fun_and_grad(x, problem=problem):
            (loss, _), grad = fn(jnp.asarray(x, jnp.float32), problem, params, weights)
            return float(loss), np.asarray(grad, np.float64)

        def report(k, _f, i=i):
            if progress is not None:
                progress(min(budget, k), budget)

        res = solver.minimize(fun_and_grad, np.asarray(x0[i], np.float64), max_evals=budget, callback=report)
        (_, (traj, part)), _ = fn(jnp.asarray(res.x, jnp.float32), problem, params, weights)
        results.append(res)
        trajs.append(jax.device_get(traj))
        parts.append(jax.device_get(part))
    traj = jax.tree_util.tree_map(lambda *a: np.stack(a), *trajs)
    merged = {k: np.asarray([p[k] for p in parts]) for k in parts[0]}
    return Solved(results=results, trajectory=traj, parts=merged, compile_s=0.0, solve_s=time.perf_counter() - t)
