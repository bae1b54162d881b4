"""JAX settings shared by every entry point: XLA's CPU flags, the persistent compilation cache, one CPU core.

Compiled programs are stored in `$MOTIONRECON_CACHE` (default
`~/.cache/motionrecon/jax`), so a second run loads them instead of compiling.

One core: a window's loss is thousands of small operations in sequence (one
physics step at a time), and XLA's CPU runtime spreads them over a thread pool
whose threads wait for each other. Measured on this 2-core machine
(`bench/speed.py`, "threads"): an evaluation on one core takes about half the
time it takes on both, for one window and for a batch of 8; compilation, which
does use the second core, is faster on two. The `motionrecon` command therefore
runs on one core (a choice of the command, `cli.console_main`; the library runs
anywhere). The pool is sized when JAX starts its CPU runtime, so `use_one_core`
has to run before the first JAX computation.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

_done = False

# XLA flags for the CPU, and the jaxlib releases known to accept them (XLA aborts the process on a flag it
# does not know, so they are set only for these). The legacy fusion emitters compile the window problems
# in less than half the time of the newer ones and run them as fast or faster (bench/speed.py measures
# both: compile 10 s against 22 s, an evaluation 0.019 s against 0.022 s on one core).
CPU_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)
CPU_XLA_FLAGS_JAXLIB = ("0.10.2",)


def configure_xla() -> bool:
    """Adds CPU_XLA_FLAGS to XLA_FLAGS before JAX starts its runtime (they are read then), unless the variable
    already names them, the jaxlib is not one known to accept them, or MOTIONRECON_XLA_FLAGS is 0. Returns
    whether the flags are in effect for this process."""
    import jaxlib

    current = os.environ.get("XLA_FLAGS", "")
    if all(flag.split("=")[0] in current for flag in CPU_XLA_FLAGS):
        return all(flag in current for flag in CPU_XLA_FLAGS)
    if (os.environ.get("MOTIONRECON_XLA_FLAGS", "1") == "0" or jaxlib.__version__ not in CPU_XLA_FLAGS_JAXLIB
            or _jax_started()):
        return False
    os.environ["XLA_FLAGS"] = " ".join([current, *CPU_XLA_FLAGS]).strip()
    return True


def cache_dir() -> Path:
    return Path(os.environ.get("MOTIONRECON_CACHE", Path.home() / ".cache" / "motionrecon")) / "jax"


def exported_program_path(key: str) -> Path | None:
    """Where the exported program `key` is kept (beside XLA's cache), or None while the cache is not enabled."""
    if not _done:
        return None
    return cache_dir().parent / "programs" / f"{key}.jaxexport"


def source_fingerprint() -> str:
    """A digest of motionrecon's own source files and of the versions of the libraries its programs are built
    from: an exported program is reused only by the code that made it."""
    global _fingerprint
    if _fingerprint is None:
        import hashlib
        from importlib import metadata

        h = hashlib.sha256()
        root = Path(__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        for pkg in ("jax", "jaxlib", "optimistix", "equinox", "lineax", "dm-haiku", "optax", "numpy"):
            try:
                h.update(f"{pkg}={metadata.version(pkg)}".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{pkg}=none".encode())
        _fingerprint = h.hexdigest()[:20]
    return _fingerprint


_fingerprint: str | None = None


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


# Fewer clips than this reconstructed together: an accelerator is slower than a CPU core (docs/performance.md).
FEW_CLIPS_FOR_AN_ACCELERATOR = 4


def accelerator_note(clips_together: int, backend: str | None = None) -> str | None:
    """A line for the terminal where JAX runs on an accelerator and fewer than FEW_CLIPS_FOR_AN_ACCELERATOR
    clips are reconstructed together, else None. A clip's windows are solved in order, in batches of a few:
    on an H200 one clip took 2.7x as long as on this project's CPU (session 22)."""
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend == "cpu" or clips_together >= FEW_CLIPS_FOR_AN_ACCELERATOR:
        return None
    return (f"note: JAX ran on the {backend}, which is slower than a CPU for a single clip (its windows are solved "
            f"in order, a few at a time; docs/performance.md \"On a GPU\"): JAX_PLATFORMS=cpu is faster here")


def cores_available() -> list[int]:
    """The CPU cores this process may use, as they were before `use_one_core` (sorted)."""
    if _cores_before is not None:
        return sorted(_cores_before)
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
