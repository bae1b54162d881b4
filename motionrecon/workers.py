"""Work spread over worker processes, each on a CPU core of its own.

A reconstruction runs on one core (`jaxsetup.use_one_core`: XLA's CPU thread
pool makes a window's thousands of small kernels wait for each other), so a
machine with several cores reconstructs several inputs at once in several
processes: `motionrecon mocap --workers N`, `motionrecon VIDEO --workers N`,
`motionrecon eval --workers N`.

    run_in_processes(fn, jobs, workers, on_done)   # fn(job) in spawned processes; on_done(job, result, error)

Workers are started with the "spawn" method (a forked JAX runtime is not safe),
each pinned to the next core this process may use (round robin), with NumPy's
BLAS on one thread. They share JAX's persistent compilation cache on disk, so a
program one worker compiled is loaded by the next that needs it. Progress bars
drawn by workers stack, one line per worker (`bar_position`), under tqdm's lock
shared by every process.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

_position = 0  # this process's line among the workers' progress bars (0 outside a worker)


def bar_position() -> int:
    """The line (tqdm's `position`) of this process's progress bars: its worker slot, 0 outside a worker."""
    return _position


def _start_worker(slots, lock) -> None:
    """Worker initialiser: the next (core, slot) from the queue `slots`; the process on that core; tqdm's lock."""
    global _position
    from tqdm import tqdm

    from motionrecon.jaxsetup import use_one_core

    core, _position = slots.get()
    use_one_core(core)
    tqdm.set_lock(lock)


def run_in_processes(fn: Callable[[Any], Any], jobs: Sequence, workers: int,
                     on_done: Callable[[Any, Any, BaseException | None], None], *, first_alone: bool = False) -> None:
    """fn(job) for every job in `workers` spawned processes (at most one per job), each on a core of its own;
    on_done(job, result, None) in this process as each job finishes, or on_done(job, None, error) where fn raised
    or its worker process died (killed for memory, say). fn and the jobs must be picklable (fn a module-level
    function). `first_alone`: the first job runs before the others start, so that the programs it compiles land
    in the persistent cache for them instead of being compiled once per worker (worth it for many jobs)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    from motionrecon.jaxsetup import cores_available

    jobs = list(jobs)
    if not jobs:
        return
    workers = max(1, min(workers, len(jobs)))
    ctx = multiprocessing.get_context("spawn")
    slots, available = ctx.Queue(), cores_available()
    for i in range(workers):
        slots.put((available[i % len(available)], i))
    lock = ctx.RLock()
    tqdm.set_lock(lock)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                             initargs=(slots, lock)) as pool:
        waves = [jobs[:1], jobs[1:]] if first_alone and workers > 1 else [jobs]
        for wave in waves:
            futures = {pool.submit(fn, job): job for job in wave}
            for fut in as_completed(futures):
                try:
                    result, error = fut.result(), None
                except Exception as e:  # fn raised, or the worker process died
                    result, error = None, e
                on_done(futures[fut], result, error)


def failure_line(error: BaseException) -> str:
    """One line for a job whose worker raised `error` (or died): an InputError as it reads (it names the input and
    the problem), anything else as "worker process failed: <type>: <first line>"."""
    from motionrecon.errors import InputError

    if isinstance(error, InputError):
        return str(error)
    lines = str(error).splitlines()
    return f"worker process failed: {type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def split_for_workers(items: Sequence, workers: int, largest: int) -> list[list]:
    """items in consecutive groups of at most `largest`, as many groups as there are workers where the items
    allow (so that every worker has work), in the items' order: [[...], ...]."""
    items = list(items)
    if not items:
        return []
    per_group = max(1, min(largest, -(-len(items) // max(1, workers))))
    return [items[i:i + per_group] for i in range(0, len(items), per_group)]
