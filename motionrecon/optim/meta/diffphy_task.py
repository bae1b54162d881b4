"""Meta-training task "diffphy": the DiffPhy loss of random motion-clip windows, from the kinematic initialisation.

Each inner problem is one window exactly as the reconstruction solves its first
window (`motionrecon.reconstruct`): the window's frames as observations, the body
measured from them (`measure_shape`), inverse kinematics with MuJoCo, the initial
state from the first IK pose, controls x [K*U] = 0 (the kinematic
initialisation) and the loss `diffphy.window_loss` with the reconstruction's
default weights and contact model. Window length, keyframe spacing and
simulation rate are `ReconstructionConfig`'s defaults; the frame rate is the
clip's own (as `motionrecon mocap` uses it), so the problem size N = K*U is
the one the reconstruction solves (308 for a 1 s window of a 30 fps clip).

Variation: every window gets its own start frame, a size factor s uniform in
[1 - scale_range, 1 + scale_range] applied to the observed joints about the
world origin (so the measured bone lengths, and the body, scale by s), and
Gaussian noise of `noise_m` metres on every observed coordinate.

Train / held-out split: the start frames of a looping clip's cycle (P frames)
are split in halves, [0, P/2) for "train" and [P/2, P) for "heldout". The
shipped walk and run clips are single cycles of 1.3 s and 0.8 s, so a 1 s window
of either overlaps every other window of the same clip in motion content: the
held-out windows differ in phase, size and noise, not in motion.

The windows are built once on the CPU (IK, MuJoCo models) into a "bank": one
stacked batch of `window.WindowProblem`s (data and body arrays), which `sample`
indexes under jit. Meta-loss: `normalised_log_loss` with f* = 0 (the DiffPhy
loss is a sum of squares, so 0 is its lower bound; what a window can reach is
unknown and would cost a generous L-BFGS run per window to estimate). A window
whose simulation is already non-finite at x0 is dropped from the bank (listed
in `describe()`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from motionrecon.optim.meta.tasks import normalised_log_loss

SPLITS = ("train", "heldout")


class DiffPhyProblem(NamedTuple):
    """One window: the window problem (`window.WindowProblem`: data and body arrays),
    f_init: loss at x0 = 0, f_star: 0 (the loss's lower bound)."""

    window: Any
    f_init: jax.Array
    f_star: jax.Array


@dataclasses.dataclass
class Window:
    """A built window (NumPy side): clip name, start frame, size factor, the body, WindowData and observations."""

    clip: str
    start: int
    scale: float
    body: Any
    data: Any
    observed: np.ndarray   # [F+1, J, 3] observations of frames 0..F (frame 0 only sets the initial state)
    fps: float


def window_sizes(fps: float, config=None) -> tuple[int, int, int]:
    """(F frames, K keyframes, steps per frame) of a reconstruction window at `fps`."""
    from motionrecon.reconstruct import ReconstructionConfig
    from motionrecon.window import window_frames

    cfg = config or ReconstructionConfig()
    F, _, K, spf = window_frames(fps, 10 ** 6, cfg.window, cfg.overlap, cfg.keyframe_spacing, cfg.sim_rate)
    return F, K, spf


def clip_info(clip: str, fps_target: float | None = None) -> tuple[float, int, str, int]:
    """(fps after subsampling, cycle length in frames, loop mode, subsampling step) of a DeepMimic clip."""
    from motionrecon.datasets.deepmimic import clip_path, read_clip

    info = read_clip(clip_path(clip))
    step = 1 if fps_target is None else max(1, int(round(info.fps / fps_target)))
    return info.fps / step, (info.num_frames - 1) // step, info.loop, step


def clip_observations(clip: str, num_frames: int, fps_target: float | None = None) -> tuple[np.ndarray, float]:
    """([frames, 18, 3] joints, fps) of a DeepMimic clip; a looping clip repeats as a cycle.

    fps_target: keep every n-th frame (n = round(clip fps / fps_target)) of a faster clip."""
    from motionrecon.datasets.deepmimic import clip_path, load_deepmimic, read_clip

    info = read_clip(clip_path(clip))
    fps, _, _, step = clip_info(clip, fps_target)
    count = num_frames * step
    if info.loop == "none":
        count = min(count, info.num_frames)
    obs = load_deepmimic(clip_path(clip), duration=count / info.fps)
    return obs.joints3d[::step], fps


def build_window(clip: str, joints: np.ndarray, fps: float, start: int, scale: float, noise_m: float,
                 rng: np.random.Generator, config=None) -> Window:
    """The reconstruction's first window for observations joints[start : start + F + 1] (scaled, noisy)."""
    from motionrecon.observations import Observations
    from motionrecon.reconstruct import ReconstructionConfig, kinematic_reference, reference_stance
    from motionrecon.skeleton import DEEPMIMIC
    from motionrecon.window import initial_state, window_data

    F, K, spf = window_sizes(fps, config)
    seg = np.asarray(joints[start:start + F + 1], np.float64) * scale
    if seg.shape[0] != F + 1:
        raise ValueError(f"{clip}: window at frame {start} needs {F + 1} frames, the clip has {len(joints)}")
    seg = seg + noise_m * rng.standard_normal(seg.shape)
    obs = Observations(fps=fps, joint_set=DEEPMIMIC.name, joints3d=seg, joints2d=None,
                       confidence=np.ones(seg.shape[:2]), source=f"{clip}@{start}")
    body, qkin = kinematic_reference(obs, config or ReconstructionConfig(), spf)
    data = window_data(obs, qkin, initial_state(body, qkin[0], qkin[1], 1.0 / fps), 0, F,
                       stance=reference_stance(body, qkin, fps))
    return Window(clip=clip, start=int(start), scale=float(scale), body=body, data=data, observed=seg, fps=fps)


def start_frames(period: int, loop: str, total: int, F: int, split: str) -> np.ndarray:
    """Candidate start frames of a split: the first or second half of a looping clip's cycle,
    of the valid starts of a non-looping one."""
    last = period if loop == "wrap" else total - F - 1
    if last <= 0:
        raise ValueError("clip too short for one window")
    half = max(1, last // 2)
    return np.arange(0, half) if split == "train" else np.arange(half, max(last, half + 1))


class Bank(NamedTuple):
    """Stacked windows: problems (DiffPhyProblem, leading axis W), their window spec, per-window descriptions."""

    problems: DiffPhyProblem
    spec: Any
    windows: tuple
    dropped: tuple = ()

    @property
    def layout(self):
        return self.spec.layout

    @property
    def num_keyframes(self) -> int:
        return self.spec.keyframes

    @property
    def spf(self) -> int:
        return self.spec.steps_per_frame


@dataclasses.dataclass(frozen=True)
class DiffPhyTask:
    """Random windows of motion clips (see module docstring); options are the CLI's.

    clips: DeepMimic clip names (all with the same frame rate: one window size).
    windows_per_clip: windows in the bank per clip. split: "train" | "heldout".
    scale_range: body/observation size factor range (+-). noise_m: observation noise std (m).
    window: window length in seconds (None: the reconstruction's default).
    """

    clips: tuple[str, ...] = ("walk", "run")
    windows_per_clip: int = 8
    split: str = "train"
    scale_range: float = 0.1
    noise_m: float = 0.01
    window: float | None = None
    seed: int = 0
    heldout_windows_per_clip: int = 2
    loss_floor: float = 1e-8
    loss_ceiling: float = 1e2

    name = "diffphy"

    def __post_init__(self):
        from motionrecon.datasets.deepmimic import CLIPS

        object.__setattr__(self, "clips", tuple(self.clips))
        unknown = [c for c in self.clips if c not in CLIPS]
        if unknown or not self.clips:
            raise ValueError(f"unknown clip(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(CLIPS)}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.windows_per_clip < 1:
            raise ValueError("windows_per_clip must be at least 1")
        if not 0 <= self.scale_range < 1 or self.noise_m < 0:
            raise ValueError("scale_range must be in [0, 1) and noise_m >= 0")

    # -- the bank -------------------------------------------------------------------------------------------
    def config(self):
        from motionrecon.reconstruct import ReconstructionConfig

        cfg = ReconstructionConfig()
        return cfg if self.window is None else dataclasses.replace(cfg, window=float(self.window))

    @property
    def bank(self) -> Bank:
        return _bank(self)

    @property
    def dims(self) -> tuple[int, ...]:
        b = self.bank
        return (b.num_keyframes * b.layout.num_controls,)

    @property
    def num_windows(self) -> int:
        return len(self.bank.windows)

    def validation_task(self) -> "DiffPhyTask":
        """The held-out windows (other start phases, sizes and noise) of the same clips."""
        return dataclasses.replace(self, split="heldout", windows_per_clip=self.heldout_windows_per_clip,
                                   seed=self.seed + 7919)

    # -- the task interface ---------------------------------------------------------------------------------
    def problem(self, index):
        """(problem, x0) of bank window `index` (int or traced int32)."""
        b = self.bank
        problem = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[index], b.problems)
        n = b.num_keyframes * b.layout.num_controls
        return problem, jnp.zeros(n, jnp.float32)

    def sample(self, key, dim: int):
        if dim not in self.dims:
            raise ValueError(f"the diffphy task has problem size {self.dims[0]}, not {dim}")
        return self.problem(jax.random.randint(key, (), 0, self.num_windows))

    def all_problems(self, dim: int):
        """Every bank window: (stacked problems, x0 [W, dim]); fixed validation sets use this."""
        b = self.bank
        return b.problems, jnp.zeros((self.num_windows, dim), jnp.float32)

    def loss(self, problem: DiffPhyProblem, x):
        return _window_loss(self.bank, self.config(), problem, x)

    def describe(self) -> dict:
        """JSON-able summary of the bank: windows (clip, start frame, size factor), problem size, f_init."""
        return _describe(self)

    def meta_loss(self, problem: DiffPhyProblem, losses):
        return normalised_log_loss(losses, problem.f_star, problem.f_init, self.loss_floor, self.loss_ceiling)


def _window_loss(bank: Bank, cfg, problem: DiffPhyProblem, x):
    from motionrecon import window

    (loss, _), _ = window.loss_and_grad(bank.spec, x, problem.window, cfg.contact, cfg.weights)
    return loss


@functools.lru_cache(maxsize=8)
def _bank(task: DiffPhyTask) -> Bank:
    from motionrecon.jaxsetup import enable_compilation_cache

    enable_compilation_cache()
    cfg = task.config()
    rng = np.random.default_rng([task.seed, SPLITS.index(task.split)])
    windows, fps_seen = [], set()
    for clip in task.clips:
        fps, period, loop, _ = clip_info(clip)
        F, K, spf = window_sizes(fps, cfg)
        joints, fps = clip_observations(clip, period + F + 2)
        fps_seen.add(round(fps, 3))
        starts = start_frames(period, loop, len(joints), F, task.split)
        chosen = rng.choice(starts, size=task.windows_per_clip, replace=len(starts) < task.windows_per_clip)
        for s in chosen:
            scale = 1.0 + task.scale_range * rng.uniform(-1.0, 1.0)
            windows.append(build_window(clip, joints, fps, int(s), scale, task.noise_m, rng, cfg))
    if len(fps_seen) > 1:
        raise ValueError(f"clips {', '.join(task.clips)} have different frame rates {sorted(fps_seen)}; "
                         "one task needs one window size")
    from motionrecon import window

    F, K, spf = window_sizes(windows[0].fps, cfg)
    spec = window.WindowSpec(windows[0].body.layout, windows[0].observed.shape[1], F, K, spf)
    stacked = window.stack([window.WindowProblem(w.data, w.body.arrays) for w in windows])
    zeros = DiffPhyProblem(window=stacked, f_init=jnp.zeros(len(windows)), f_star=jnp.zeros(len(windows)))
    bank = Bank(problems=zeros, spec=spec, windows=tuple((w.clip, w.start, round(w.scale, 4)) for w in windows))
    x0 = jnp.zeros((len(windows), spec.num_params), jnp.float32)
    f_init = np.asarray(jax.jit(jax.vmap(lambda p, x: _window_loss(bank, cfg, p, x)))(zeros, x0))
    keep = np.flatnonzero(np.isfinite(f_init))  # a simulation that blows up at x0 is no training problem
    if keep.size == 0:
        raise FloatingPointError("every bank window has a non-finite loss at the kinematic initialisation")
    problems = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[keep], zeros._replace(f_init=jnp.asarray(f_init)))
    return bank._replace(problems=problems, windows=tuple(bank.windows[i] for i in keep),
                         dropped=tuple(bank.windows[i] for i in np.flatnonzero(~np.isfinite(f_init))))


def _describe(task: DiffPhyTask) -> dict:
    """JSON-able summary of the bank (for cards and logs)."""
    b = task.bank
    return {"clips": list(task.clips), "split": task.split, "windows": [list(w) for w in b.windows],
            "dropped_non_finite_at_x0": [list(w) for w in b.dropped],
            "problem_size": task.dims[0], "keyframes": b.num_keyframes, "steps_per_frame": b.spf,
            "f_init": [round(float(v), 3) for v in np.asarray(b.problems.f_init)],
            "scale_range": task.scale_range, "noise_m": task.noise_m}
