"""Modules loaded on first use, so that a frequentist fit never loads NumPyro (~0.2 s to import,
more to tear down at exit): the families and priors name numpyro's distributions in functions
that only the Bayesian engines and simulation call."""

from __future__ import annotations

import sys
from importlib import import_module


class LazyModule:
    """The module `name`, imported when one of its attributes is first read.

    Its top-level package is imported first: ArviZ registers numpyro with importlib's
    LazyLoader, and a subpackage imported before the package has run its `__init__` is then
    run twice, the second copy without its own submodules as attributes
    (`numpyro.distributions.distribution`, which `numpyro.factor` reads)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # copy's and pickle's probes, before _name is set
            raise AttributeError(attribute)
        import_module(self._name.partition(".")[0])
        return getattr(import_module(self._name), attribute)

    def __reduce__(self):
        """Pickled as its name (cloudpickle sends the families' functions with their globals
        to Ray's workers)."""
        return LazyModule, (self._name,)


#: numpyro.distributions, for code that builds distributions only when it runs
numpyro_distributions = LazyModule("numpyro.distributions")


def is_numpyro_distribution(value) -> bool:
    """Whether `value` is a numpyro distribution, without importing numpyro (a user who made one
    has imported it)."""
    module = sys.modules.get("numpyro.distributions")
    return module is not None and isinstance(value, module.Distribution)


def lazy_attributes(package: str, modules: dict[str, str]):
    """A package's module `__getattr__`: each name in `modules` loaded on first use from its
    module (relative to `package`), and kept in the package for later lookups."""

    def __getattr__(name: str):
        if name in modules:
            value = getattr(import_module(modules[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
