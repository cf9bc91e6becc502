"""Programs stored before tracing (`core/stored_programs.py`): keys by content, output trees
that load without running anything, and programs jax.export refuses traced as before. A later
process's use of them is in tests/test_compiled.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glmm_bayes.core import stored_programs
from glmm_bayes.core.compiled import Program, bind
from glmm_bayes.core.lmm_deviance import PlsSolution
from glmm_bayes.core.stored_programs import NoDigest, static_digest
from glmm_bayes.families import resolve_family


def test_equal_static_values_have_one_digest_and_different_ones_another():
    """Families (dataclasses of functions, closures and tuples) built twice digest alike; a
    different link, family or numpy array does not."""
    logit = static_digest(resolve_family("binomial", "logit"))
    assert static_digest(resolve_family("binomial", "logit")) == logit
    assert static_digest(resolve_family("binomial", "probit")) != logit
    assert static_digest(resolve_family("poisson", None)) != logit
    assert static_digest(resolve_family("student_t", None, df=3)) != static_digest(
        resolve_family("student_t", None, df=4)
    )
    a = np.arange(6).reshape(2, 3)
    assert static_digest(a) == static_digest(a.copy())
    assert static_digest(a) != static_digest(a.T) != static_digest(a.astype(float))
    partial = functools.partial(stored_programs.static_digest, 1)
    assert static_digest(partial) != static_digest(
        functools.partial(stored_programs.static_digest, 2)
    )


def test_a_value_with_no_stable_digest_is_refused():
    """A lambda of another module is reachable by no name, an object by no content: no key,
    and the program is traced in every process."""
    for value in (lambda x: x, object(), {"f": lambda x: x}, (1, object())):
        with pytest.raises(NoDigest):
            static_digest(value)
    leaves, tree = jax.tree_util.tree_flatten(((np.ones(2),), {}))
    assert stored_programs.program_key(bind(_double, how=object()), "value", leaves, tree) is None
    assert stored_programs.program_key(bind(_double, how=2), "value", leaves, tree) is not None


def _double(x, how):
    return x * how


def _noisy(x):
    jax.debug.callback(lambda v: None, x)
    return x + 1


def test_output_trees_round_trip_and_an_unknown_class_is_a_miss():
    out = (PlsSolution(*range(8)), {"a": [1.0, None], "b": 2.0}, None)
    tree = jax.tree_util.tree_structure(out)
    described = stored_programs._encode_tree(tree)
    assert jax.tree_util.tree_structure(stored_programs._example(described)) == tree
    described["children"][0]["name"] = "NotAClass"
    with pytest.raises(NoDigest):
        stored_programs._example(described)


class _Store:
    """The cache's get/put over a dict."""

    def __init__(self):
        self.entries = {}

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, value):
        self.entries[key] = value


def test_a_stored_program_gives_the_traced_programs_values(monkeypatch):
    """Stored once, loaded without tracing `_double` again: the same values as jit to the last
    bit, with the output tree (a dict) rebuilt."""
    store = _Store()
    monkeypatch.setattr(stored_programs, "program_store", lambda: store)
    x = np.linspace(-1, 1, 5)
    program = Program(bind(_as_dict, how=3.0), "value", stored=True)
    first = program(x)
    assert len(store.entries) == 1 and first.keys() == {"twice", "sum"}
    monkeypatch.setattr(jax.export, "export", _never)
    again = Program(bind(_as_dict, how=3.0), "value", stored=True)(x)
    expected = jax.jit(functools.partial(_as_dict, how=3.0))(x)
    for name in expected:
        np.testing.assert_array_equal(again[name], expected[name])
        np.testing.assert_array_equal(first[name], expected[name])


def _as_dict(x, how):
    return {"twice": x * how, "sum": jnp.sum(x)}


def _never(*args):
    raise AssertionError("exported again")


def test_a_program_jax_export_refuses_is_compiled_as_before_and_not_tried_again(monkeypatch):
    """A host callback cannot be serialised: the refusal is stored, and the next process
    compiles the program directly without trying to export it."""
    store = _Store()
    monkeypatch.setattr(stored_programs, "program_store", lambda: store)
    program = Program(bind(_noisy_bound, how=1), "value", stored=True)
    np.testing.assert_array_equal(program(np.zeros(3)), np.ones(3))
    (entry,) = store.entries.values()
    assert entry == b'{"exportable": false}'
    monkeypatch.setattr(jax.export, "export", _never)
    again = Program(bind(_noisy_bound, how=1), "value", stored=True)
    np.testing.assert_array_equal(again(np.zeros(3)), np.ones(3))


def _noisy_bound(x, how):
    return _noisy(x) * how


def test_a_program_that_export_writes_out_in_elementary_operations_is_not_stored(monkeypatch):
    """digamma and lgamma are one operation each for XLA's CPU compiler but hundreds once
    exported (which compiled a beta-binomial criterion 20 times slower): refused without
    exporting, and the program compiled as jit would."""
    store = _Store()
    monkeypatch.setattr(stored_programs, "program_store", lambda: store)
    monkeypatch.setattr(jax.export, "export", _never)
    program = Program(bind(_special, how=2.0), "value", stored=True)
    x = np.linspace(0.5, 3.0, 4)
    expected = 2.0 * (jax.scipy.special.digamma(x) + jax.scipy.special.gammaln(x))
    np.testing.assert_allclose(program(x), expected, rtol=1e-14)
    assert list(store.entries.values()) == [b'{"exportable": false}']


def _special(x, how):
    return how * (jax.scipy.special.digamma(x) + jax.scipy.special.gammaln(x))
