"""Programs stored before tracing: a later process skips tracing and lowering too.

JAX's persistent cache (`compilation_cache`) is keyed by the lowered program, so a later
process still traces and lowers every program before it finds the executable. Here the
lowered program itself is stored as well, in the form `jax.export` serialises it (StableHLO
and its calling convention in a flatbuffer: data, not code), under a key known before tracing:

    SHA-256(the package's source, the versions of jax and jaxlib, the backend, devices and
            tracing settings, the function and its static values (`static_digest`), the
            transform, the arguments' tree and abstract values).

A later process that finds the key deserialises the program and compiles it, which the
persistent cache turns into a load of the executable. The stored program takes and returns flat
lists of arrays (the executable is called as the function was: its arguments are flattened and
its outputs rebuilt inside the compiled call); the output's tree is stored beside it as JSON of
builtin containers and named tuples whose classes are looked up among the modules already
imported (never imported), so reading an entry runs nothing from it.

A program whose static values have no stable digest (an object that is neither a plain value
nor a dataclass, named tuple, array or function of them) is not stored, and neither is one that
jax.export refuses or would write out in elementary operations (`WRITTEN_OUT_BY_EXPORT`); that
refusal is stored, so later processes do not try again.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import sys
import types
from pathlib import Path

import jax
import jaxlib
import numpy as np
from jax._src import core as jax_core

from ..compilation_cache import program_store

#: Static values nested deeper than this are refused (a cycle, or a value no digest is for).
MAX_DEPTH = 40
_REFUSED = {"exportable": False}
#: Primitives that XLA's CPU compiler takes as one operation each and jax.export writes out in
#: hundreds of elementary ones (it keeps no CHLO): lgamma 5 operations against 928, digamma 5
#: against 626. A program with any of them compiles many times slower from its exported form
#: (a beta-binomial Laplace criterion: 17 s against 0.8 s), so it is not stored.
WRITTEN_OUT_BY_EXPORT = frozenset(
    {"lgamma", "digamma", "polygamma", "igamma", "igammac", "igamma_grad_a",
     "random_gamma_grad", "regularized_incomplete_beta", "zeta"}
)  # fmt: skip
_PACKAGE = Path(__file__).resolve().parent.parent
_OWN = __package__.split(".")[0]


class NoDigest(Exception):
    """A static value with no stable digest: the program is traced in every process."""


@functools.cache
def _source_digest() -> bytes:
    """SHA-256 over the package's modules: a stored program is only as new as the code."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _named(value) -> str:
    """module:qualname of a class or function reachable by that name, with its package's
    version or else its file's digest (the package's own source is in the key already)."""
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not module or not name or module not in sys.modules:
        raise NoDigest(value)
    found = _imported(module, name)
    if found is not value and getattr(found, "__wrapped__", None) is not value:
        raise NoDigest(value)
    top = module.split(".")[0]
    version = "" if top == _OWN else getattr(sys.modules.get(top), "__version__", None)
    return f"{module}:{name}@{version or _file_digest(sys.modules[module])}"


def _imported(module: str, name: str):
    """The object `name` (a qualified name) of `module` where that module is imported, else
    None; nothing is imported."""
    found = sys.modules.get(module)
    for part in name.split("."):
        found = getattr(found, part, None)
    return found


def _file_digest(module) -> str:
    """SHA-256 of a module without a version (a script's, a test's): its source file."""
    try:
        return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()
    except (AttributeError, TypeError, OSError) as error:
        raise NoDigest(module) from error


def _function(func: types.FunctionType) -> tuple:
    """A function of the package by its place in the source and what it closes over; any other
    by its name."""
    if not func.__module__.startswith(_OWN + "."):
        return ("function", _named(func))
    cells = tuple(cell.cell_contents for cell in func.__closure__ or ())
    code = func.__code__
    return ("function", func.__module__, func.__qualname__, code.co_firstlineno, cells,
            func.__defaults__, func.__kwdefaults__)  # fmt: skip


def _feed(digest, value, depth: int = 0) -> None:
    """Add `value` to `digest` by what it is, not where it lives; NoDigest where that is
    unknown."""
    if depth > MAX_DEPTH:
        raise NoDigest(value)
    feed = lambda v: _feed(digest, v, depth + 1)  # noqa: E731
    kind = type(value)
    if value is None or kind in (bool, int, float, complex, str, bytes):
        digest.update(f"{kind.__name__}:{value!r};".encode())
    elif isinstance(value, enum.Enum):
        digest.update(f"enum:{_named(kind)}.{value.name};".encode())
    elif isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise NoDigest(value)
        digest.update(f"array:{array.dtype.str}{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    elif isinstance(value, type):
        digest.update(f"class:{_named(value)};".encode())
    elif kind in (tuple, list) or (isinstance(value, tuple) and hasattr(kind, "_fields")):
        digest.update(f"{_named(kind) if kind not in (tuple, list) else kind.__name__}(".encode())
        for item in value:
            feed(item)
        digest.update(b")")
    elif kind is dict:
        digest.update(b"dict(")
        for key in sorted(value, key=repr):
            feed(key)
            feed(value[key])
        digest.update(b")")
    elif dataclasses.is_dataclass(value):
        digest.update(f"{_named(kind)}(".encode())
        for field in dataclasses.fields(value):
            feed(field.name)
            feed(getattr(value, field.name))
        digest.update(b")")
    elif isinstance(value, functools.partial):
        feed(("partial", value.func, value.args, value.keywords))
    elif isinstance(value, types.MethodType):
        feed(("method", value.__self__, value.__func__))
    elif isinstance(value, types.FunctionType):
        feed(_function(value))
    elif isinstance(value, np.ufunc):  # numpy's or scipy.special's, by name and signature
        digest.update(f"ufunc:{value.__name__}{value.types};".encode())
    elif callable(value):  # a builtin or a jitted function of a library
        digest.update(f"callable:{_named(value)};".encode())
    else:
        raise NoDigest(value)


def static_digest(value) -> str:
    """SHA-256 of `value` by content; NoDigest where some part of it has no stable digest."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def program_key(function, kind: str, leaves: list, in_tree) -> str | None:
    """The stored program's key, computed without tracing; None where `function` (a `Bound`
    or any function) has no stable digest."""
    config = jax.config
    context = (
        jax.__version__, jaxlib.__version__, jax.default_backend(), jax.local_device_count(),
        bool(config.jax_enable_x64), str(config.jax_default_matmul_precision),
        str(config.jax_default_prng_impl), bool(config.jax_threefry_partitionable),
    )  # fmt: skip
    avals = tuple((leaf.shape, str(leaf.dtype), bool(leaf.weak_type)) for leaf in
                  map(jax.typeof, leaves))  # fmt: skip
    try:
        described = static_digest((context, function, kind, str(in_tree), avals))
    except NoDigest:
        return None
    return "program-" + hashlib.sha256(_source_digest() + described.encode()).hexdigest()


def _encode_tree(treedef) -> object:
    """A JSON description of an output tree of builtin containers and named tuples."""
    if jax.tree_util.treedef_is_leaf(treedef):
        return "*" if treedef.num_leaves == 1 else None
    kind, aux = treedef.node_data()
    children = [_encode_tree(child) for child in treedef.children()]
    if kind in (tuple, list):
        return {"type": kind.__name__, "children": children}
    if kind is dict and all(isinstance(key, str) for key in aux):
        return {"type": "dict", "keys": list(aux), "children": children}
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):
        module, name = kind.__module__, kind.__qualname__
        return {"type": "namedtuple", "module": module, "name": name, "children": children}
    raise NoDigest(kind)


def _example(description) -> object:
    """An object of the described tree with 0 at its leaves; NoDigest where a named tuple's
    class is not among the modules imported."""
    if description == "*":
        return 0
    if description is None:
        return None
    children = [_example(child) for child in description["children"]]
    kind = description["type"]
    if kind in ("tuple", "list"):
        return tuple(children) if kind == "tuple" else children
    if kind == "dict":
        return dict(zip(description["keys"], children, strict=True))
    found = _imported(description["module"], description["name"])
    if not (isinstance(found, type) and issubclass(found, tuple) and hasattr(found, "_fields")):
        raise NoDigest(description["name"])
    return found(*children)


def _read(store, key: str):
    """(exported, out_tree), _REFUSED, or None where there is no usable entry."""
    content = store.get(key)
    if content is None:
        return None
    header, _, body = content.partition(b"\n")
    try:
        described = json.loads(header)
        if described == _REFUSED:
            return _REFUSED
        out_tree = jax.tree_util.tree_structure(_example(described["out_tree"]))
        return jax.export.deserialize(bytearray(body)), out_tree
    except Exception:  # noqa: BLE001 (another layout, a class not loaded: trace as before)
        return None


def _primitives(jaxpr, found: set) -> set:
    """The names of the primitives in `jaxpr` and the jaxprs inside it."""
    for equation in jaxpr.eqns:
        found.add(equation.primitive.name)
        for inner in jax_core.jaxprs_in_params(equation.params):
            _primitives(inner, found)
    return found


def _stored_form(jitted, args: tuple, kwargs: dict, in_tree):
    """((exported, out_tree), the entry's bytes): `jitted` exported as a function of the flat
    leaves; or (_REFUSED, its bytes) where jax.export refuses it or would write it out
    (`WRITTEN_OUT_BY_EXPORT`)."""
    out_tree = []

    def flat(*leaves):
        args, kwargs = jax.tree_util.tree_unflatten(in_tree, leaves)
        out, tree = jax.tree_util.tree_flatten(jitted(*args, **kwargs))
        out_tree.append(tree)
        return out

    leaves = jax.tree_util.tree_leaves((args, kwargs))
    flat_jitted = jax.jit(flat)
    traced = flat_jitted.trace(*leaves)  # the export below reuses this tracing
    refused = _REFUSED, json.dumps(_REFUSED).encode()
    if _primitives(traced.jaxpr.jaxpr, set()) & WRITTEN_OUT_BY_EXPORT:
        return refused
    try:
        exported = jax.export.export(flat_jitted)(*leaves)
        description = json.dumps({"out_tree": _encode_tree(out_tree[0])}).encode()
        return (exported, out_tree[0]), description + b"\n" + exported.serialize()
    except Exception:  # noqa: BLE001 (anything jax.export refuses: traced as before)
        return refused


def compile_program(jitted, function, kind: str, args: tuple, kwargs: dict, stored: bool = True):
    """The executable of `jitted` (the `kind` transform of `function`) for these arguments,
    by way of the stored program where there is one or one can be stored (`stored=False`:
    compiled directly, for programs jax.export refuses)."""
    store = program_store() if stored else None
    leaves, in_tree = jax.tree_util.tree_flatten((args, kwargs))
    key = program_key(function, kind, leaves, in_tree) if store is not None else None
    entry = _read(store, key) if key is not None else _REFUSED
    if entry is None:
        entry, content = _stored_form(jitted, args, kwargs, in_tree)
        store.put(key, content)
    if entry is _REFUSED:
        return jitted.lower(*args, **kwargs).compile()
    exported, out_tree = entry

    def stored_program(*args, **kwargs):  # called as the function it was exported from
        leaves = jax.tree_util.tree_leaves((args, kwargs))
        return jax.tree_util.tree_unflatten(out_tree, exported.call(*leaves))

    return jax.jit(stored_program).lower(*args, **kwargs).compile()
