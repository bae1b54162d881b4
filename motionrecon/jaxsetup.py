"""JAX settings shared by every entry point: the persistent compilation cache.

Compiled window problems are stored in `$MOTIONRECON_CACHE` (default
`~/.cache/motionrecon/jax`), so a second run loads them instead of compiling
(about a minute of work on a 2-core CPU).
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
