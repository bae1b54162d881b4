"""JAX settings shared by every entry point: the persistent compilation cache, and one CPU core.

Compiled window problems are stored in `$MOTIONRECON_CACHE` (default
`~/.cache/motionrecon/jax`), so a second run loads them instead of compiling
(about a minute of work on a 2-core CPU).

One core: a window's loss is thousands of small operations in sequence (one
physics step at a time), and XLA's CPU runtime splits them over a thread pool
whose threads wait for each other by spinning. Measured on a 2-core machine
(`bench/cpu_threads.py`, `bench/results/cpu_threads.json`): one loss-and-gradient
evaluation of a 1 s window takes 0.36-0.37 s on one core and 0.58 s on two, and
0.27-0.28 s on one core in a process that loaded the compiled code from the
persistent cache. Compilation, which does use the second core, becomes slower
(100-107 s instead of 61-64), once per window size; the compiled result is cached
(and `spare_core.compile_helper` compiles on every core where one is free). The
pool is sized when JAX starts its CPU runtime, so `use_one_core` has to run
before the first JAX computation.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

_done = False


def cache_dir() -> Path:
    return Path(os.environ.get("MOTIONRECON_CACHE", Path.home() / ".cache" / "motionrecon")) / "jax"


def enable_compilation_cache() -> None:
    global _done
    if _done:
        return
    path = cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _done = True


def _compiled_marker(key: str) -> Path:
    import hashlib

    from motionrecon import __version__

    digest = hashlib.sha1(f"{key}|jax {jax.__version__}|motionrecon {__version__}".encode()).hexdigest()[:20]
    return cache_dir() / f"motionrecon-compiled-{digest}"


def compiled_before(key: str) -> bool:
    """Whether `mark_compiled(key)` was called with this cache folder, JAX and motionrecon version (then the
    persistent cache most likely holds the compiled code)."""
    return _compiled_marker(key).exists()


def mark_compiled(key: str) -> None:
    try:
        _compiled_marker(key).touch()
    except OSError:
        pass


def _current_core() -> int | None:
    """The CPU core this process last ran on (Linux), or None."""
    try:
        return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


_cores_before: set[int] | None = None  # this process's cores before use_one_core restricted it


def _jax_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without this check: trust the caller
        return False


def use_one_core(core: int | None = None) -> int | None:
    """Restricts this process (and the threads it starts later) to one CPU core; returns the core.

    `core`: which one (default: the one the process runs on; a given core may lie outside the
    inherited set, as for the workers of a process on one core). Does nothing (returns None) where
    the platform cannot, where the process has one core anyway and none is given, where the environment variable
    MOTIONRECON_ONE_CORE is 0, or once JAX has started its runtime: its threads, already running,
    would then share one core and wait for each other (20 times slower, measured).
    """
    global _cores_before
    if os.environ.get("MOTIONRECON_ONE_CORE", "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    if _jax_started():
        return None
    cores = os.sched_getaffinity(0) if _cores_before is None else _cores_before
    if core is None:
        if len(cores) <= 1:
            return None
        core = _current_core()
        core = core if core in cores else min(cores)
    try:  # a given core may lie outside the inherited set (a worker of a process on one core)
        os.sched_setaffinity(0, {core})
    except OSError:
        return None
    _cores_before = set(cores)
    _one_blas_thread()
    return core


def _one_blas_thread() -> None:
    """NumPy's and SciPy's BLAS on one thread. Their thread pools started when NumPy loaded, before the
    process was restricted to one core, so their threads may run on any core: a second process on
    another core (a worker) would share its core with them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def cores_available() -> list[int]:
    """The CPU cores this process may use, as they were before `use_one_core` (sorted)."""
    if _cores_before is not None:
        return sorted(_cores_before)
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
