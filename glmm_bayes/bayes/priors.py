"""Priors: the parameter table of a model, data-scaled defaults, and user overrides.

Default rule (weakly informative, on the scale of the data, after rstanarm's autoscale and
brms's defaults). Let s_y = sd(y) for gaussian models (sd(log y) for lognormal ones) and 1
otherwise (the link scale), and s_x the sd of a design column (1 for a constant column):

    Intercept (at the means of the predictors)  student_t(3, m, 2.5 s_y), m = mean(y) (gaussian;
                                                mean(log y) lognormal) or 0
    fixed coefficient of column x               normal(0, 2.5 s_y / s_x)
    sd of a random-effect column z              half_student_t(3, 2.5 s_y / s_z)
    correlations of a term                      lkj(1)   (uniform over correlation matrices)
    sigma (gaussian, lognormal)                 exponential(1 / s_y)
    zero inflation zi_(Intercept), zi_x         logistic(0, 1), normal(0, 2.5 / s_x)
    dispersion sigma_(Intercept), sigma_x       student_t(3, log s_y, 2.5), normal(0, 2.5 / s_x)
      (shape_..., phi_...: the log of the family's first parameter)
    shape (negbinomial, gamma), phi (beta,      gamma(0.01, 0.01)   (as brms)
      beta_binomial)
    df (student_t)                              gamma(2, 0.1)       (as brms)
    phi (AR1, CAR1), rho (compound symmetry)    uniform over the parameter's interval
    range (Gaussian correlation)                lognormal(log(median lag), 1)
    sigma_ratio(by=level) (VarIdent)            lognormal(0, 1)

As in brms, the intercept prior applies with the predictors centred at their means; the
reported `(Intercept)` is transformed back to the uncentred design.

Overrides are keyed by parameter name as every table names it (`"Days"`, `"sd(Days|Subject)"`,
`"sigma"`; a term's correlations share one lkj prior, keyed by the pair's name where the term has
one pair, or by `"cor(Subject)"`) or by class (`"fixed"`, `"Intercept"`, `"sd"`, `"cor"`,
`"sigma"`, `"shape"`, `"zi"`, `"dispersion"`), optionally for one grouping factor
(`"sd|Subject"`, `"cor|Subject"`); the most specific key wins. The parameters themselves come
from the `ParameterMap`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd
from scipy import special

from ..core.parameters import ParameterMap, PopulationParameter
from ..core.residual import ResidualLayout
from ..design import ModelSpec, column_scale
from ..errors import PriorError
from ..lazy_modules import is_numpyro_distribution
from ..lazy_modules import numpyro_distributions as dist

_POSITIVE_CLASSES = {"sd", "sigma", "shape", "phi", "df", "range", "sigma_ratio"}


@dataclass(frozen=True)
class Prior:
    """A prior by name and arguments; `lkj` gets its dimension when attached to a term."""

    name: str
    args: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{a:.4g}' for a in self.args)})"

    def typical(self) -> float | None:
        """A typical value: the median (the mean for gamma, whose median under the default
        shape prior gamma(0.01, 0.01) is about 1e-30); None for lkj. NUTS starts its chains
        around these, so the start is on the scale of the data without drawing from the prior."""
        return None if self.name == "lkj" else float(_TYPICAL[self.name](*self.args))


@dataclass(frozen=True)
class PriorForm:
    """A `Prior` without its numbers: the static part that a compiled program is specialised
    to; the arguments travel as traced data, so data-scaled defaults do not recompile."""

    name: str
    dimension: int | None = None  # q of an lkj prior

    def distribution(self, args):
        return _CONSTRUCTORS[self.name](*args, dimension=self.dimension)


@dataclass(frozen=True)
class DistributionForm:
    """A user's numpyro distribution without its numbers: its pytree structure (class, shapes).
    Its floating-point parameters travel as traced data (`distribution_numbers`), so an equal
    distribution with other numbers does not recompile."""

    treedef: object

    def distribution(self, leaves):
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def distribution_numbers(distribution) -> tuple | None:
    """The leaves of a numpyro distribution as float64 arrays, or None where one is not a
    floating-point number (such a distribution stays part of the compiled program)."""
    leaves = jax.tree_util.tree_leaves(distribution)
    if not all(
        isinstance(leaf, float) or np.issubdtype(np.asarray(leaf).dtype, np.floating)
        for leaf in leaves
    ):
        return None
    return tuple(np.asarray(leaf, dtype=float) for leaf in leaves)


def _folded(base):
    return dist.FoldedDistribution(base)


_CONSTRUCTORS = {
    "normal": lambda mu, s, dimension=None: dist.Normal(mu, s),
    "student_t": lambda df, mu, s, dimension=None: dist.StudentT(df, mu, s),
    "cauchy": lambda mu, s, dimension=None: dist.Cauchy(mu, s),
    "logistic": lambda mu, s, dimension=None: dist.Logistic(mu, s),
    "half_normal": lambda s, dimension=None: dist.HalfNormal(s),
    "half_cauchy": lambda s, dimension=None: dist.HalfCauchy(s),
    "half_student_t": lambda df, s, dimension=None: _folded(dist.StudentT(df, 0.0, s)),
    "exponential": lambda rate, dimension=None: dist.Exponential(rate),
    "gamma": lambda a, b, dimension=None: dist.Gamma(a, b),
    "inv_gamma": lambda a, b, dimension=None: dist.InverseGamma(a, b),
    "lognormal": lambda mu, s, dimension=None: dist.LogNormal(mu, s),
    "uniform": lambda lo, hi, dimension=None: dist.Uniform(lo, hi),
    "lkj": lambda eta, dimension=None: dist.LKJCholesky(dimension, eta),
}
_TYPICAL = {
    "normal": lambda mu, s: mu,
    "student_t": lambda df, mu, s: mu,
    "cauchy": lambda mu, s: mu,
    "logistic": lambda mu, s: mu,
    "half_normal": lambda s: s * special.ndtri(0.75),
    "half_cauchy": lambda s: s,
    "half_student_t": lambda df, s: s * special.stdtrit(df, 0.75),
    "exponential": lambda rate: np.log(2.0) / rate,
    "gamma": lambda a, b: a / b,
    "inv_gamma": lambda a, b: b / special.gammaincinv(a, 0.5),
    "lognormal": lambda mu, s: np.exp(mu),
    "uniform": lambda lo, hi: 0.5 * (lo + hi),
}
#: Each prior's arguments; those marked "+" must be positive.
_ARGUMENTS = {
    "normal": ("mu", "sigma+"),
    "student_t": ("df+", "mu", "sigma+"),
    "cauchy": ("mu", "sigma+"),
    "logistic": ("mu", "sigma+"),
    "half_normal": ("sigma+",),
    "half_cauchy": ("sigma+",),
    "half_student_t": ("df+", "sigma+"),
    "exponential": ("rate+",),
    "gamma": ("shape+", "rate+"),
    "inv_gamma": ("shape+", "scale+"),
    "lognormal": ("mu", "sigma+"),
    "uniform": ("lower", "upper"),
    "lkj": ("eta+",),
}
_FOLDABLE = {"normal": "half_normal", "cauchy": "half_cauchy", "student_t": "half_student_t"}
_POSITIVE = {
    "half_normal",
    "half_cauchy",
    "half_student_t",
    "exponential",
    "gamma",
    "inv_gamma",
    "lognormal",
}


def parse_prior(text: str, key: str = "") -> Prior:
    """`"normal(0, 10)"` -> Prior("normal", (0.0, 10.0))."""
    match = re.fullmatch(r"\s*([a-z_]+)\s*\((.*)\)\s*", str(text))
    if not match or match.group(1) not in _CONSTRUCTORS:
        raise PriorError(
            f"cannot read prior {text!r} for {key!r}; write e.g. 'normal(0, 10)' "
            f"with one of: {', '.join(_CONSTRUCTORS)}"
        )
    name = match.group(1)
    try:
        args = tuple(float(a) for a in match.group(2).split(",")) if match.group(2).strip() else ()
    except ValueError:
        raise PriorError(f"prior {text!r} for {key!r} has non-numeric arguments") from None
    expected = _ARGUMENTS[name]
    if len(args) != len(expected):
        raise PriorError(
            f"prior {name} takes {len(expected)} arguments "
            f"({', '.join(a.rstrip('+') for a in expected)}), got {len(args)} in {text!r}"
        )
    for arg, value in zip(expected, args):
        if not np.isfinite(value) or (arg.endswith("+") and value <= 0):
            raise PriorError(
                f"prior {text!r} for {key!r}: {arg.rstrip('+')} must be "
                f"{'a positive' if arg.endswith('+') else 'a finite'} number, got {value:g}"
            )
    if name == "uniform" and not args[0] < args[1]:
        raise PriorError(f"prior {text!r} for {key!r}: lower must be below upper")
    return Prior(name, args)


@dataclass(frozen=True)
class Parameter:
    """One population-level parameter: its class, grouping factor, column and prior."""

    name: str
    cls: str  # fixed | Intercept | sd | cor | sigma | shape
    group: str | None = None  # VarCorr group label for sd/cor
    coef: str | None = None
    prior: object = None  # Prior or a user's numpyro distribution
    source: str = "default"
    dimension: int | None = None  # q for a correlation block

    @property
    def form(self):
        """What the compiled program is specialised to: the `PriorForm` of a `Prior`, the
        `DistributionForm` of a user's numpyro distribution, or the distribution itself where
        its numbers cannot be traced."""
        if isinstance(self.prior, Prior):
            return PriorForm(self.prior.name, self.dimension)
        if distribution_numbers(self.prior) is not None:
            return DistributionForm(jax.tree_util.tree_structure(self.prior))
        return self.prior

    @property
    def numbers(self) -> np.ndarray | tuple | None:
        """The traced numbers of the prior (see `form`), None where it has none."""
        return (
            np.asarray(self.prior.args, dtype=float)
            if isinstance(self.prior, Prior)
            else distribution_numbers(self.prior)
        )


def _location_response(spec: ModelSpec) -> np.ndarray:
    return spec.family.on_location_scale(spec.y)


def _default_prior(param: PopulationParameter, spec: ModelSpec, s_y: float, lag: float) -> Prior:
    """The default prior of one population parameter (see the module docstring)."""
    if param.cls == "Intercept":
        centre = float(np.mean(_location_response(spec))) if spec.family.y_units else 0.0
        return Prior("student_t", (3.0, centre, 2.5 * s_y))
    if param.cls == "fixed":
        column = spec.X[:, spec.fixed_names.index(param.coef)]
        return Prior("normal", (0.0, 2.5 * s_y / column_scale(column)))
    if param.cls == "sd":
        term = next(t for t in spec.terms if t.label == param.group)
        column = term.Z[:, term.names.index(param.coef)]
        return Prior("half_student_t", (3.0, 2.5 * s_y / column_scale(column)))
    if param.cls == "cor":
        return Prior("lkj", (1.0,))
    if param.cls == "zi":  # brms's: logistic(0, 1) is a uniform prior on a constant p
        if param.coef == "(Intercept)":
            return Prior("logistic", (0.0, 1.0))
        column = spec.zi.matrix[:, spec.zi.names.index(param.coef)]
        return Prior("normal", (0.0, 2.5 / column_scale(column)))
    if param.cls == "dispersion":  # log sigma (shape, phi) = X_disp delta
        if param.coef == "(Intercept)":  # brms's student_t(3, 0, 2.5), centred on log sd(y)
            return Prior("student_t", (3.0, float(np.log(s_y)), 2.5))
        column = spec.dispersion.matrix[:, spec.dispersion.names.index(param.coef)]
        return Prior("normal", (0.0, 2.5 / column_scale(column)))
    for aux in spec.family.aux:
        if param.cls == (aux.cls or aux.name):
            return Prior(*aux.default_prior(s_y))
    if param.cls == "sigma_ratio":
        return Prior("lognormal", (0.0, 1.0))
    if param.cls == "range":
        return Prior("lognormal", (float(np.log(lag)), 1.0))
    return Prior("uniform", (param.lower, param.upper))  # a bounded correlation


def default_parameters(spec: ModelSpec, parameters: ParameterMap | None = None) -> list[Parameter]:
    """One prior per sample site of the program, with the defaults (see the module docstring):
    every population parameter's, except that a term's correlations share one lkj prior."""
    parameters = parameters or ParameterMap.from_spec(spec)
    s_y = column_scale(_location_response(spec)) if spec.family.y_units else 1.0
    layout = ResidualLayout.from_spec(spec.residual, gaussian=True)
    lag = layout.lag if layout is not None else 1.0
    out = {}
    for param in parameters.parameters:
        if param.site in out:
            continue
        dimension = (
            len(next(t for t in parameters.terms if t.label == param.group).names)
            if param.cls == "cor"
            else parameters.ordered_sites.get(param.site)
        )
        out[param.site] = Parameter(
            param.site,
            param.cls,
            param.group,
            param.coef,
            _default_prior(param, spec, s_y, lag),
            dimension=dimension,
        )
    return list(out.values())


def _matches(param: Parameter, key: str, spec: ModelSpec) -> int:
    """Specificity of `key` for `param`: 3 exact name, 2 class|group, 1 class, 0 no match."""
    if key == param.name or (param.cls == "Intercept" and key == "Intercept"):
        return 3
    factor_of = {t.label: t.factor for t in spec.terms}
    if "|" in key and param.group is not None:
        cls, group = key.split("|", 1)
        if cls == param.cls and group in (param.group, factor_of.get(param.group)):
            return 2
    if key == param.cls or (key == "fixed" and param.cls == "fixed"):
        return 1
    return 0


def _as_prior(value, key: str, param: Parameter):
    if is_numpyro_distribution(value):
        return value
    prior = parse_prior(value, key)
    if param.cls in _POSITIVE_CLASSES and prior.name not in _POSITIVE:
        if prior.name in _FOLDABLE and prior.args[-2] == 0.0:
            # a zero-centred prior on an sd means its half version, as in brms
            return Prior(_FOLDABLE[prior.name], prior.args[:-2] + prior.args[-1:])
        raise PriorError(
            f"prior {value!r} for {param.name!r} must be on positive values; "
            "use e.g. 'half_normal(5)' or 'exponential(1)'"
        )
    if param.cls == "correlation":
        lower, upper = param.prior.args  # the default: uniform over the whole interval
        if prior.name != "uniform" or prior.args[0] < lower or prior.args[1] > upper:
            raise PriorError(
                f"prior {value!r} for {param.name!r} must be uniform(lower, upper) "
                f"within ({lower:.4g}, {upper:.4g}), or a numpyro distribution"
            )
    if param.cls == "cor" and prior.name != "lkj":
        raise PriorError(f"correlations {param.name!r} take an lkj(eta) prior, got {value!r}")
    if param.cls != "cor" and prior.name == "lkj":
        raise PriorError(f"lkj() is a prior for correlations, not for {param.name!r}")
    return prior


def _site_key(key: str, parameters: ParameterMap) -> str:
    """A key naming one correlation pair means its term's lkj prior, where the term has only
    that pair; with three or more columns the lkj prior is joint over all of them."""
    if key not in parameters.names or parameters[key].cls != "cor":
        return key
    param = parameters[key]
    pairs = [p for p in parameters.parameters if p.site == param.site]
    if len(pairs) > 1:
        raise PriorError(
            f"{key!r} is one of {len(pairs)} correlations of term {param.group!r}, "
            f"whose lkj prior is joint over all of them: key it {param.site!r} or "
            f"'cor|{param.group}'"
        )
    return param.site


def resolve_priors(
    spec: ModelSpec, priors: dict | None, parameters: ParameterMap | None = None
) -> list[Parameter]:
    """Defaults overridden by the user's dict; an unknown key is a `PriorError`. Keys are the
    population parameters' names (as in every table), classes, class|group, or the program's
    site of a term's correlations, cor(group)."""
    parameters = parameters or ParameterMap.from_spec(spec)
    params = default_parameters(spec, parameters)
    priors = {_site_key(key, parameters): value for key, value in dict(priors or {}).items()}
    for key in priors:
        if not any(_matches(p, key, spec) for p in params):
            valid = (
                list(parameters.names)
                + sorted({p.cls for p in params})
                + sorted(
                    {
                        f"{p.cls}|{t.factor}"
                        for p in params
                        for t in spec.terms
                        if p.group == t.label
                    }
                )
            )
            raise PriorError(
                f"no parameter matches prior key {key!r}; valid keys: "
                f"{', '.join(dict.fromkeys(valid))}"
            )
    out = []
    for p in params:
        ranked = sorted(((_matches(p, k, spec), k) for k in priors), reverse=True)
        if ranked and ranked[0][0] > 0:
            key = ranked[0][1]
            p = Parameter(
                p.name, p.cls, p.group, p.coef, _as_prior(priors[key], key, p), "user", p.dimension
            )
        out.append(p)
    return out


def prior_table(params: list[Parameter], parameters: ParameterMap) -> pd.DataFrame:
    """One row per population parameter (as named in every table): class, group, coefficient,
    prior and whether it is a default; a term's correlations each show their joint lkj prior."""
    by_site = {p.name: p for p in params}
    rows = {q.name: by_site[q.site] for q in parameters.parameters}
    return pd.DataFrame(
        {
            "class": [p.cls for p in rows.values()],
            "group": [p.group for p in rows.values()],
            "coef": [parameters[n].coef for n in rows],
            "prior": [str(p.prior) for p in rows.values()],
            "source": [p.source for p in rows.values()],
        },
        index=pd.Index(list(rows), name="parameter"),
    )
