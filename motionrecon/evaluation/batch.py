"""Reconstructing split entries into folders: one at a time, in worker processes, or on a Ray cluster.

Each entry goes to `<out>/<entry key>/` with the folder contract of
`motionrecon.export.contract` (motion.npz, metrics.json, run.json), written
atomically: a folder that exists is complete, so a restarted batch skips it.
`run_entry` never raises: a failure comes back as an `EntryOutcome` with a
one-line reason, and the batch goes on.

Batches: motion-capture entries are reconstructed `batch_entries` at a time
(`run_batch`): their windows share the compiled batched loss
(`reconstruct.reconstruct_many`), so a batch of 8 costs about what 4 entries
cost one at a time on a CPU (bench/speed.py). Entries are sorted by length
first, so a batch holds clips of about one length. Video entries go one at a
time (detection first, then their physics).

Parallel runs:
- `run_in_processes`: a batch per job in worker processes (`motionrecon.workers`:
  "spawn", one core each). A worker keeps its compiled programs (the process-wide cache
  of `motionrecon.window`) from one batch to the next, and JAX's persistent
  compilation cache (`motionrecon.jaxsetup`) shares compiled code on disk
  between workers. The first batch runs alone first so that the others load
  its compiled code instead of compiling it once per worker.
- `run_on_ray`: one Ray task per batch on an existing cluster
  (`ray.init(address=...)`), or on a private single-machine Ray ("local").
  Workers write into the same output folder, which must be on storage that
  every node sees at the same path (as must the data set).
"""

from __future__ import annotations

import dataclasses
import glob
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable


from motionrecon.datasets.splits import SplitEntry
from motionrecon.errors import InputError
from motionrecon.fileio import PARTIAL
from motionrecon.observations import Observations


@dataclasses.dataclass(frozen=True)
class EntryTask:
    """Everything a worker needs to reconstruct one entry (picklable).

    Attributes:
      root: the data set folder. entry: the split entry. folder: where its results go.
      config: a `ReconstructionConfig`. exports: also write BVH/glTF/plots/report.
      run_info: extra facts recorded in run.json (dataset, split, ...).
      input: what the reconstruction sees: "mocap" (the 3D ground truth) or "video"
        (`motionrecon.evaluation.video_entry`).
      videos: video input: the folder holding the videos (None: the data set's default place).
    """

    root: str
    entry: SplitEntry
    folder: str
    config: object
    exports: bool = False
    run_info: dict = dataclasses.field(default_factory=dict)
    input: str = "mocap"
    videos: str | None = None


@dataclasses.dataclass(frozen=True)
class EntryOutcome:
    """What became of one entry: status "done" or "failed" (then `reason`, one line), wall seconds, notes."""

    key: str
    status: str
    reason: str = ""
    wall_s: float = 0.0
    notes: tuple[str, ...] = ()


def one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_mocap(task: EntryTask) -> tuple[Observations, Observations | None, list[str]]:
    """An entry's 3D observations (what the reconstruction sees), the same with its camera and 2D keypoints
    where it has them (for the 2D error), and notes."""
    from motionrecon.datasets.splits import load_entry

    notes = []
    obs = load_entry(task.root, task.entry, with_camera=False)
    try:
        seen = load_entry(task.root, task.entry, with_camera=True)
    except InputError as e:
        seen = None
        notes.append(f"no MPJPE-2d: {one_line(e)}")
    return obs, seen, notes


def _write_mocap(task: EntryTask, rec, obs: Observations, seen: Observations | None, notes: list[str]) -> None:
    from motionrecon.datasets import cameras
    from motionrecon.export import export_all
    from motionrecon.export.contract import write_reconstruction

    if seen is not None and seen.joints2d is not None and seen.camera is not None:
        rec.metrics["mpjpe_2d_px"] = cameras.projected_error_px(rec.joints3d, seen, task.entry.dataset)
    elif seen is not None:
        notes.append("no MPJPE-2d: the entry has no 2D keypoints")
    info = {"entry": task.entry.key, "origin": task.entry.origin, "root": task.root,
            "frames": None if task.entry.frames is None else list(task.entry.frames),
            "entry_fps": task.entry.fps, "notes": notes,
            **({"reader": dict(obs.metadata)} if obs.metadata else {}), **task.run_info}
    write_reconstruction(rec, task.folder, info, extra_files=export_all if task.exports else None)


def _failed(key: str, e: Exception, t0: float, notes) -> EntryOutcome:
    if isinstance(e, InputError):
        return EntryOutcome(key, "failed", one_line(e), time.perf_counter() - t0, tuple(notes))
    print(f"motionrecon: internal error on {key}:\n{traceback.format_exc()}", file=sys.stderr)
    return EntryOutcome(key, "failed", one_line(f"internal error: {type(e).__name__}: {e}"), time.perf_counter() - t0,
                        tuple(notes))


def run_entry(task: EntryTask, progress: Callable | None = None) -> EntryOutcome:
    """Reconstructs one entry into `task.folder`; never raises (failures come back with a reason).

    Mocap input: the reconstruction sees the entry's 3D joints only; when the
    entry also has a camera and 2D keypoints, the result's 2D error is added to
    its metrics as `mpjpe_2d_px`. Video input: see `video_entry.reconstruct_video_entry`.
    """
    return run_batch([task], progress)[0]


def run_batch(tasks: list[EntryTask], progress: Callable | None = None) -> list[EntryOutcome]:
    """Reconstructs entries together (their windows share batches); never raises. An entry that cannot be
    read fails alone; if the batch's reconstruction fails, each entry is retried alone, so one bad entry
    does not take the others with it. `progress(stage, done, total)` as `reconstruct`'s."""
    from motionrecon.reconstruct import reconstruct_many

    t0 = time.perf_counter()
    outcomes: dict[str, EntryOutcome] = {}
    loaded = []
    for task in tasks:
        key = task.entry.key
        if task.input == "video":
            from motionrecon.evaluation.video_entry import reconstruct_video_entry

            t = time.perf_counter()
            try:
                notes = reconstruct_video_entry(task, progress)
                outcomes[key] = EntryOutcome(key, "done", "", time.perf_counter() - t, tuple(notes))
            except Exception as e:  # a bug or a numerical failure in one entry must not stop the batch
                outcomes[key] = _failed(key, e, t, ())
            continue
        try:
            loaded.append((task, *_load_mocap(task)))
        except Exception as e:
            outcomes[key] = _failed(key, e, t0, ())
    if len(loaded) > 1:
        try:
            recs = reconstruct_many([obs for _, obs, _, _ in loaded], loaded[0][0].config, progress=progress)
        except Exception:  # retried one at a time below, where the failing entry names itself
            recs = None
        if recs is not None:
            for (task, obs, seen, notes), rec in zip(loaded, recs):
                try:
                    _write_mocap(task, rec, obs, seen, notes)
                    outcomes[task.entry.key] = EntryOutcome(task.entry.key, "done", "", time.perf_counter() - t0,
                                                            tuple(notes))
                except Exception as e:
                    outcomes[task.entry.key] = _failed(task.entry.key, e, t0, notes)
            loaded = []
    for task, obs, seen, notes in loaded:
        t = time.perf_counter()
        try:
            (rec,) = reconstruct_many([obs], task.config, progress=progress)
            _write_mocap(task, rec, obs, seen, notes)
            outcomes[task.entry.key] = EntryOutcome(task.entry.key, "done", "", time.perf_counter() - t, tuple(notes))
        except Exception as e:
            outcomes[task.entry.key] = _failed(task.entry.key, e, t, notes)
    return [outcomes[t.entry.key] for t in tasks]


def batches(tasks: list[EntryTask], size: int, length: Callable[[EntryTask], float] | None = None) -> list[list[EntryTask]]:
    """Tasks in batches of at most `size`, video entries alone; mocap entries sorted by `length` (seconds, where
    known) so that a batch holds clips of about one length."""
    video = [[t] for t in tasks if t.input == "video"]
    mocap = [t for t in tasks if t.input != "video"]
    if length is not None:
        mocap.sort(key=length)
    return [mocap[i:i + size] for i in range(0, len(mocap), max(1, size))] + video


def remove_stale_partials(out: Path, keys: Iterable[str]) -> list[Path]:
    """Deletes the hidden `.<key>.partial-*` folders a killed run left for these entries; returns them.

    Only one batch may write into an output folder at a time (a second one's
    work in progress would look stale too).
    """
    removed = []
    for key in keys:
        for p in glob.glob(str(Path(out) / f".{glob.escape(key)}{PARTIAL}*")):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(Path(p))
    return removed


# --------------------------------------------------------------------------- executors

def run_serially(jobs: list[list[EntryTask]], on_done: Callable[[EntryOutcome], None], *,
                 progress_for: Callable[[list[EntryTask]], Callable | None] | None = None) -> None:
    """Batches in this process, in order; `progress_for(batch)` may give a progress callback per batch."""
    for job in jobs:
        progress = progress_for(job) if progress_for is not None else None
        for outcome in run_batch(job, progress):
            on_done(outcome)


def run_in_processes(jobs: list[list[EntryTask]], workers: int, on_done: Callable[[EntryOutcome], None]) -> None:
    """Batches in `workers` spawned processes, each on a core of its own (`motionrecon.workers`); outcomes are
    reported as batches finish. The first batch runs alone first, so the others load its compiled programs."""
    from motionrecon.workers import failure_line, run_in_processes as in_workers

    def done(job: list[EntryTask], outcomes, error) -> None:
        if error is not None:  # the worker process died (e.g. killed for memory); run_batch itself never raises
            outcomes = [EntryOutcome(t.entry.key, "failed", one_line(failure_line(error))) for t in job]
        for outcome in outcomes:
            on_done(outcome)

    in_workers(run_batch, jobs, workers, done, first_alone=True)


def run_on_ray(jobs: list[list[EntryTask]], address: str, on_done: Callable[[EntryOutcome], None], *,
               local_cpus: int | None = None, cpus_per_task: float = 1.0) -> None:
    """One Ray task per batch of entries. `address`: a cluster address for `ray.init`, or "local" for a private
    single-machine Ray with `local_cpus` CPUs (default: all)."""
    ray = import_ray()
    try:
        if address == "local":
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as e:
        raise InputError(f"--ray {address}", f"cannot start or reach Ray ({type(e).__name__}: {one_line(e, 300)})") \
            from None
    try:
        remote = ray.remote(num_cpus=cpus_per_task)(run_batch)
        refs = {remote.remote(job): job for job in jobs}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            job = refs[ready[0]]
            try:
                outcomes = ray.get(ready[0])
            except Exception as e:  # the task's worker or node died
                outcomes = [EntryOutcome(t.entry.key, "failed", one_line(f"Ray task failed: {type(e).__name__}: {e}"))
                            for t in job]
            for outcome in outcomes:
                on_done(outcome)
    finally:
        ray.shutdown()


def import_ray():
    """The `ray` module, or an InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray", "Ray is not installed; install the optional extra: pip install 'motionrecon[ray]'") \
            from None
    return ray
