"""The package's own persistent cache of compiled programs, on by default.

Compiling a model's criterion or sampler takes most of a first fit's time. With the cache, a
later process that fits a model of the same shape loads each of the package's compiled programs
from disk instead (the data travel as arguments, so they are not part of any program).

What is stored is what JAX's persistent cache stores: the XLA executable serialised by the
backend, under JAX's key, a hash of the program, its compile options and the jax/jaxlib
versions; each file also carries a SHA-256 of its contents, so a truncated or corrupt entry is
dropped and the program compiled again. Nothing is unpickled. Beside the executables, the
programs as traced and lowered (`program-*`, jax.export's flatbuffers, under keys computed
before tracing: `core/stored_programs.py`) go through the same store (`program_store`). An
executable is machine code:
the folder is created private to the user (0700) and refused, with a warning, if it belongs
to someone else or others can write to it.

JAX's own settings are left as the process has them. The cache is lent to JAX only while one
of the package's compiled programs runs (`serving`), and only where the process has no
persistent cache of its own (then that one serves). Folder: `$GLMM_BAYES_CACHE`, else
`$XDG_CACHE_HOME/glmm_bayes/programs`, else `~/.cache/glmm_bayes/programs`;
`GLMM_BAYES_CACHE=0` or `use_compilation_cache(False)` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from .control import warn
from .errors import GlmmBayesWarning

#: The most disk the cache keeps; the least recently used entries go first beyond it.
MAX_BYTES = 1 << 30
#: A process measures the folder (one stat per entry: ~40 ms for 1,300 entries) on its first
#: put and then after each EVICT_EVERY_BYTES it has written, not on every put.
EVICT_EVERY_BYTES = 16 << 20

_DISABLED = {"0", "off", "false", "no"}
_lock = threading.Lock()
_state = {"directory": None, "configured": False, "store": None, "lent": 0}


def default_cache_directory() -> Path | None:
    """$GLMM_BAYES_CACHE (None where it is "0"), else $XDG_CACHE_HOME/glmm_bayes/programs, else
    ~/.cache/glmm_bayes/programs."""
    setting = os.environ.get("GLMM_BAYES_CACHE", "").strip()
    if setting.lower() in _DISABLED:
        return None
    if setting:
        return Path(setting).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "glmm_bayes" / "programs"


def use_compilation_cache(directory: str | os.PathLike | bool | None = None) -> Path | None:
    """Keep the package's compiled programs in `directory` (None or True: the default folder;
    False: no cache) for this and later processes. Returns the folder, or None when off."""
    if directory is False:
        path = None
    elif directory is None or directory is True:
        path = default_cache_directory()
    else:
        path = Path(directory).expanduser()
    with _lock:
        _state.update(directory=path, configured=True, store=None)
    return path


def _private_folder(path: Path) -> bool:
    """Create `path` private to the user; whether it is safe to load executables from."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
    except OSError as error:
        warn(f"compiled-program cache off: cannot use {path} ({error})", GlmmBayesWarning)
        return False
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        warn(
            f"compiled-program cache off: {path} belongs to another user or others can write "
            "to it, and an executable planted there would run in this process; make it "
            "private (chmod 700) or set GLMM_BAYES_CACHE",
            GlmmBayesWarning,
        )
        return False
    return True


def program_store():
    """The cache JAX is lent, built once per folder; None when off or unsafe."""
    with _lock:
        if not _state["configured"]:
            _state.update(directory=default_cache_directory(), configured=True)
        if _state["store"] is None and _state["directory"] is not None:
            path = _state["directory"]
            _state["store"] = _program_store(path) if _private_folder(path) else False
        return _state["store"] or None


def _program_store(path: Path):
    from jax._src.compilation_cache_interface import CacheInterface

    class ProgramStore(CacheInterface):
        """JAX's cache interface over a folder: one file per key, its SHA-256 first."""

        def __init__(self, folder: Path):
            self._path = folder
            self._written = None  # bytes put since the folder was last measured

        def get(self, key: str) -> bytes | None:
            file = self._path / key
            try:
                content = file.read_bytes()
            except OSError:
                return None
            digest, value = content[:32], content[32:]
            if hashlib.sha256(value).digest() != digest:
                file.unlink(missing_ok=True)  # truncated or corrupt: compile again
                return None
            with contextlib.suppress(OSError):  # another process may have evicted it
                os.utime(file)  # recently used
            return value

        def put(self, key: str, value: bytes) -> None:
            partial = self._path / f".{key}.{os.getpid()}.{threading.get_ident()}"
            partial.write_bytes(hashlib.sha256(value).digest() + value)
            os.replace(partial, self._path / key)  # readers never see half a file
            first, self._written = self._written is None, (self._written or 0) + len(value)
            if first or self._written > EVICT_EVERY_BYTES:
                self._evict()  # on this process's first put, then once per EVICT_EVERY_BYTES
                self._written = 0

        def _evict(self) -> None:
            entries = []
            for file in self._path.iterdir():
                with contextlib.suppress(OSError):  # evicted meanwhile by another process
                    if not file.name.startswith("."):
                        entries.append((file.stat(), file))
            total = sum(info.st_size for info, _ in entries)
            for info, file in sorted(entries, key=lambda entry: entry[0].st_mtime):
                if total <= MAX_BYTES:
                    break
                file.unlink(missing_ok=True)
                total -= info.st_size

    return ProgramStore(path)


@contextmanager
def serving():
    """Lend the package's cache to JAX for the compilations inside: a no-op when it is off, or
    where the process has a persistent cache of its own (which then serves)."""
    store = program_store()
    if store is None:
        yield
        return
    from jax._src import compilation_cache as jax_cache
    from jax._src import config as jax_config

    if not (hasattr(jax_cache, "_cache") and hasattr(jax_config, "compilation_cache_dir")):
        yield  # a JAX whose cache internals differ from those this was written against
        return
    with _lock:
        own = jax_cache._cache is not None or jax_config.compilation_cache_dir.value
        lent = _state["lent"] > 0 or not own
        if lent:
            if _state["lent"] == 0:
                jax_cache._cache = store
            _state["lent"] += 1
    if not lent:
        yield
        return
    try:
        with jax_config.persistent_cache_min_compile_time_secs(0.0):
            yield
    finally:
        with _lock:
            _state["lent"] -= 1
            if _state["lent"] == 0 and jax_cache._cache is store:
                jax_cache._cache = None
