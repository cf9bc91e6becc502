"""JAX's persistent compilation cache, switched on only when asked.

Compiling a model's sampler or criterion takes seconds; with the cache on, a later process that
fits a model of the same shape loads the executable from disk instead (the data travel as
arguments, so they are not part of the key). The cache is a process-wide JAX setting, so
importing the package never turns it on: a user calls `use_compilation_cache()`, and the
`glmm-bayes` command line, which owns its process, turns it on unless given
`--no-compilation-cache`.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax


def default_cache_directory() -> Path:
    """$GLMM_BAYES_CACHE, else $XDG_CACHE_HOME/glmm_bayes/jax, else ~/.cache/glmm_bayes/jax."""
    if os.environ.get("GLMM_BAYES_CACHE"):
        return Path(os.environ["GLMM_BAYES_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "glmm_bayes" / "jax"


def use_compilation_cache(
    directory: str | os.PathLike | None = None, min_compile_seconds: float = 0.2
) -> Path:
    """Keep every executable that took at least `min_compile_seconds` to compile in
    `directory` (default `default_cache_directory()`), for this and later processes. Returns
    the directory."""
    path = Path(directory) if directory is not None else default_cache_directory()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
