"""`ModelSpec`: everything the engines need, as plain arrays (lme4's lFormula).

y = X beta + Z b + offset on the link scale, with Z = [Z_1 ... Z_K] one block per random-effect
term k. Term k has a grouping factor with n_k levels and q_k columns; its block of Z has the
term's columns placed at the level of each row, and b_k holds n_k x q_k coefficients.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import formulae
import numpy as np
import pandas as pd

from ..control import Control, warn
from ..errors import DataError, DataWarning, FamilyError, FormulaError, ModelError
from ..families import (
    CATEGORICAL_FAMILIES,
    DISPERSION_FAMILIES,
    ZERO_INFLATABLE,
    Family,
    Link,
    resolve_family,
    with_dispersion,
    zero_inflated,
)
from .formula import (
    ParsedFormula,
    check_identifiers,
    one_sided,
    parse_formula,
    referenced_columns,
    tokens,
)
from .relatedness import check_cov_keys, relatedness_factor
from .residual import (
    ResidualSpec,
    build_residual,
    check_structures,
    residual_columns,
    weights_frame,
)


@dataclass(frozen=True)
class RandomEffectTerm:
    """One term `(expr | factor)` on some rows: the columns Z_k and the level of each row. The
    model's terms hold its fitted rows; `design.newdata` gives the same term on new rows, where
    `fitted_index` says which fitted level each level is (-1 for one the model has not seen)
    and `level_index` is None where only the columns are needed (integrating the term out)."""

    factor: str  # grouping factor, e.g. "Subject" or "dept:service"
    label: str  # lme4's VarCorr group name: "Subject", then "Subject.1", ...
    levels: tuple[str, ...]
    level_index: np.ndarray | None  # (n,) int: level of each row
    Z: np.ndarray  # (n, q_k) term columns
    names: tuple[str, ...]  # column names, lme4 style: "(Intercept)", "Days"
    relatedness: np.ndarray | None = None  # F (n_levels, r), F F' = K, for cov={factor: K}
    fitted_index: np.ndarray | None = None  # per level: its fitted level; None on fitted rows

    @property
    def new_levels(self) -> list[str]:
        """Levels of these rows that the model was not fitted to."""
        if self.fitted_index is None:
            return []
        return [lev for lev, i in zip(self.levels, self.fitted_index) if i < 0]

    def on_rows(self, Z, level_index=None, levels=(), fitted_index=None) -> RandomEffectTerm:
        """This term on other rows."""
        fitted_index = np.arange(0) if fitted_index is None else fitted_index
        return replace(
            self, Z=Z, level_index=level_index, levels=tuple(levels), fitted_index=fitted_index
        )

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class ModelSpec:
    """Response, fixed design X, random-effect terms, offset and binomial trials."""

    formula: str
    family: Family
    link: Link
    response_name: str
    y: np.ndarray
    trials: np.ndarray  # ones where the family has no trials
    offset: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    terms: tuple[RandomEffectTerm, ...]
    data: pd.DataFrame = field(repr=False)
    parsed: ParsedFormula = field(repr=False, compare=False)
    designs: tuple[Design, ...] = field(repr=False, compare=False)  # fixed, then per (expr | g)
    residual: ResidualSpec = field(repr=False, compare=False)  # Var(e) = sigma^2 S C S
    #: the zero-inflation design X_zi (zi=; its rows and columns) or None
    zi: Design | None = field(default=None, repr=False, compare=False)
    zi_formula: str | None = None
    #: the dispersion design X_disp (dispersion=) or None
    dispersion: Design | None = field(default=None, repr=False, compare=False)
    dispersion_formula: str | None = None

    @property
    def X_zi(self) -> np.ndarray | None:
        return None if self.zi is None else self.zi.matrix

    @property
    def X_disp(self) -> np.ndarray | None:
        return None if self.dispersion is None else self.dispersion.matrix

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def row_elements(self) -> int:
        """The elements of the widest per-row array the programs compute on: n times the most
        columns of one term's Z_k, or the categories of a categorical family."""
        widths = [1, len(self.family.categories or ())] + [t.q for t in self.terms]
        return self.n_obs * max(widths)

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.fixed_names

    @property
    def factors(self) -> dict[str, list[RandomEffectTerm]]:
        """Terms grouped by grouping factor, in formula order."""
        out: dict[str, list[RandomEffectTerm]] = {}
        for term in self.terms:
            out.setdefault(term.factor, []).append(term)
        return out


def column_scale(values: np.ndarray) -> float:
    """The sd of a column, or 1 for a constant column: the units of its coefficient."""
    s = float(np.std(values))
    return s if s > 0 and np.ptp(values) > 0 else 1.0


def lme4_name(label: str) -> str:
    """formulae's column label -> lme4's: `Intercept` -> `(Intercept)`, `treat[B]` -> `treatB`."""
    if label == "Intercept":
        return "(Intercept)"
    if label.startswith("poly(") and (match := re.fullmatch(r"(.*)\[(\d+)\]", label)):
        return f"{match.group(1)}{int(match.group(2)) + 1}"  # R numbers poly columns from 1
    return re.sub(r"\[([^\]]*)\]", r"\1", label).replace(" ** ", "^")


def factor(values) -> pd.Categorical:
    """R's factor(x): a column of numbers (or anything) as a factor, its levels sorted."""
    return pd.Categorical(values)


#: functions a formula may call besides formulae's own (C, I, scale, center, poly, ...)
TRANSFORMS = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "pi": np.pi,
    "TRUE": True,
    "FALSE": False,
    "factor": factor,
}


class Design(NamedTuple):
    """A right-hand side evaluated on the model's rows. `evaluator` (formulae's design, None
    for an empty one) evaluates the same columns on new data, with the fitted data's factor
    levels and transforms; `term_columns` maps each term to its column names."""

    matrix: np.ndarray
    names: tuple[str, ...]
    evaluator: object | None
    term_columns: dict


def _design(expr: str, data: pd.DataFrame) -> Design:
    """Evaluate a right-hand side with formulae (lme4 column names)."""
    if re.fullmatch(r"\s*(0|-\s*1)\s*", expr):
        return Design(np.zeros((len(data), 0)), (), None, {})
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # non-finite values from a transform are named and dropped by `_drop_non_finite`
            warnings.simplefilter("ignore", RuntimeWarning)
            common = formulae.design_matrices(
                expr, data, na_action="error", extra_namespace=TRANSFORMS
            ).common
    except Exception as exc:  # formulae raises several types; re-raise with the term named
        raise FormulaError(f"could not build the design for {expr!r}: {exc}") from exc
    columns = {
        lme4_name(name): tuple(lme4_name(l) for l in term.labels)
        for name, term in common.terms.items()
    }
    return Design(
        np.asarray(common.design_matrix, dtype=float),
        tuple(c for cols in columns.values() for c in cols),
        common,
        columns,
    )


def _evaluate(expr: str, data: pd.DataFrame, role: str) -> np.ndarray:
    """A numeric vector from an expression such as `Reaction`, `log(t)` or `s + f`."""
    name = expr.strip()
    if name in data.columns:
        values = data[name]
        if values.dtype == bool:
            return values.to_numpy(dtype=float)
        if not pd.api.types.is_numeric_dtype(values):
            raise DataError(
                f"{role} column {name!r} must be numeric, it holds {values.dtype} values"
            )
        return values.to_numpy(dtype=float)
    matrix = _design(f"0 + I({expr})", data).matrix
    if matrix.shape[1] != 1:
        raise DataError(f"{role} {expr!r} must evaluate to one numeric column")
    return matrix[:, 0]


def group_labels(data: pd.DataFrame, factor: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Levels of a grouping factor (`g` or `a:b`) sorted as R sorts them, and each row's level."""
    columns = factor.split(":")
    keys = []
    for col in columns:
        values = data[col]
        if pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
            as_int = values.astype(np.int64) if np.all(values == np.round(values)) else values
            keys.append(as_int.to_numpy())
        else:
            keys.append(values.astype(str).to_numpy())
    frame = pd.DataFrame({i: k for i, k in enumerate(keys)})
    unique = frame.drop_duplicates().sort_values(list(frame.columns))
    labels = [":".join(map(str, row)) for row in unique.itertuples(index=False)]
    row_labels = [":".join(map(str, row)) for row in frame.itertuples(index=False)]
    return tuple(labels), pd.Index(labels).get_indexer(row_labels)


def _factor_levels(data: pd.DataFrame, factor: str) -> tuple[tuple[str, ...], np.ndarray]:
    """`group_labels` of a grouping factor, which must have two levels or more."""
    labels, index = group_labels(data, factor)
    if len(labels) < 2:
        raise DataError(
            f"grouping factor {factor!r} has only one level ({labels[0]!r}); "
            "a random effect needs at least two"
        )
    return tuple(labels), index


def _used_columns(parsed: ParsedFormula, data: pd.DataFrame) -> list[str]:
    names = {tok.strip("`") for kind, tok in tokens(parsed.text) if kind in ("name", "quoted")}
    used = [c for c in data.columns if str(c) in names]
    if duplicated := sorted({str(c) for c in used if list(data.columns).count(c) > 1}):
        raise DataError(f"data has several columns named {', '.join(map(repr, duplicated))}")
    return used


def _clean_data(parsed: ParsedFormula, data: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    """Copy the used columns (and `extra` ones: the residual structure's), drop rows with
    missing values (with a warning), reject inf."""
    used = _used_columns(parsed, data)
    used += [c for c in dict.fromkeys(extra) if c not in used]
    frame = data.loc[:, used].copy()
    for col in used:
        _check_column_type(frame[col], col)
        if pd.api.types.is_numeric_dtype(frame[col]) and frame[col].dtype != bool:
            if np.isinf(frame[col].to_numpy(dtype=float)).any():
                raise DataError(f"column {col!r} has infinite values")
    missing = frame.isna().any(axis=1)
    if missing.any():
        cols = [c for c in used if frame[c].isna().any()]
        warn(
            f"dropped {int(missing.sum())} of {len(frame)} rows with missing values "
            f"in {', '.join(map(repr, cols))}",
            DataWarning,
        )
        frame = frame.loc[~missing]
    if len(frame) == 0:
        raise DataError("no rows left after dropping missing values")
    return frame.reset_index(drop=True)


def _binomial_from_proportions(y, frame, weights_column, name):
    """glm's binomial idioms without cbind(): a proportion with its trials as the prior weights
    (successes y w of w trials; the weights are used up as the trials), or a 0/1 response (one
    trial each). Returns (successes, trials, the weights column left for the likelihood)."""
    if weights_column is not None and np.all((y >= 0) & (y <= 1)):
        trials = frame[weights_column].to_numpy(dtype=float)
        _check_trials(np.zeros_like(y), trials, f"weights {weights_column!r}")
        successes = y * trials
        if not np.allclose(
            successes, np.round(successes), rtol=0, atol=1e-8 * max(1.0, trials.max())
        ):
            row = int(np.argmax(np.abs(successes - np.round(successes))))
            raise DataError(
                f"response {name!r} with weights {weights_column!r} as trials: "
                f"{y[row]:g} x {trials[row]:g} is not a whole number of successes "
                f"(row {row})"
            )
        return np.round(successes), trials, None
    if np.all((y == 0) | (y == 1)):
        return y, np.ones_like(y), weights_column
    raise DataError(
        f"binomial response {name!r} needs its trials: write cbind(successes, "
        "failures) or p(successes, trials) on the left, a proportion with the "
        "trials as weights=, or a 0/1 response"
    )


def _check_column_type(values: pd.Series, name: str) -> None:
    """Numbers, text, categories or booleans: not dates, and not numbers mixed with text."""
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        raise DataError(
            f"column {name!r} holds dates or times; convert it to a number first "
            "(e.g. days since the first date)"
        )
    if values.dtype == object:
        kinds = {type(v) for v in values.dropna()}
        numbers = {k for k in kinds if issubclass(k, (int, float, np.number)) and k is not bool}
        if numbers and kinds - numbers:
            row = next(i for i, v in values.dropna().items() if type(v) not in numbers)
            raise DataError(
                f"column {name!r} mixes numbers and text (e.g. {values[row]!r} in "
                f"row {row}); make it all numbers, or all text for a factor"
            )
        if kinds and not all(issubclass(k, (str, bool, int, float, np.number)) for k in kinds):
            raise DataError(
                f"column {name!r} holds {sorted(k.__name__ for k in kinds)} values; "
                "use numbers, text or a categorical column"
            )


def _aliased_columns(X: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """Columns that are linear combinations of earlier ones (lme4 drops them; we name them),
    judged in centred and scaled coordinates: with an intercept (a non-zero constant column)
    every other column minus its mean, which spans the same space, then each column over its
    root mean square, so that a covariate's units or offset (a year in seconds, x + 1e6) do
    not decide it."""
    Z = np.array(X, dtype=float)  # rows >= 1: checked when they were cleaned
    constant = np.ptp(Z, axis=0) == 0
    if np.any(constant & (Z[0] != 0)):
        Z[:, ~constant] -= Z[:, ~constant].mean(axis=0)
    rms = np.sqrt(np.mean(Z**2, axis=0))
    Z[:, rms > 0] /= rms[rms > 0]
    kept, aliased = [], []
    tol = 1e-7 * max(Z.shape)
    for j, name in enumerate(names):
        trial = Z[:, kept + [j]]
        if np.linalg.matrix_rank(trial, tol=tol) == len(kept) + 1:
            kept.append(j)
        else:
            aliased.append(name)
    return aliased


#: A covariate whose mean is this many of its sds from 0, beside an intercept, costs the
#: fixed effects' solve about 2 log10(ratio) of float64's 16 digits (lme4's check.scaleX).
FAR_FROM_CENTRE = 1e4


def _warn_far_from_centre(X: np.ndarray, names: tuple[str, ...]) -> None:
    """A DataWarning naming the covariates far from 0 in their own units (x + 1e6): with an
    intercept beside them the fixed effects are estimated to fewer digits."""
    if not len(X) or not np.any((np.ptp(X, axis=0) == 0) & (X[0] != 0)):
        return
    mean, sd = X.mean(axis=0), X.std(axis=0)
    far = [(n, m, s) for n, m, s in zip(names, mean, sd) if s > 0 and abs(m) > FAR_FROM_CENTRE * s]
    if far:
        warn(
            "fixed effects lose digits to covariates far from 0 in their own units: "
            + ", ".join(f"{n} (mean {m:.3g}, sd {s:.3g})" for n, m, s in far)
            + "; centre them (e.g. x - mean(x)) for full precision",
            DataWarning,
        )


def term_blocks(syntax, n_columns: int) -> list[list[int]]:
    """The columns of each term one `(expr | g)` makes: (x || g) is (1 | g) + (0 + x | g), one
    uncorrelated term per column, as lme4 does."""
    return [[j] for j in range(n_columns)] if not syntax.correlated else [list(range(n_columns))]


def _random_terms(
    parsed: ParsedFormula, data: pd.DataFrame, designs, cov: dict
) -> tuple[RandomEffectTerm, ...]:
    terms: list[RandomEffectTerm] = []
    for syntax, (Z, names, *_) in zip(parsed.random, designs):
        if Z.shape[1] == 0:
            raise FormulaError(
                f"random-effect term ({syntax.expr} | {syntax.group}) has no columns"
            )
        levels, index = _factor_levels(data, syntax.group)
        if syntax.group in cov:
            if Z.shape[1] != 1:
                raise ModelError(
                    f"cov={{{syntax.group!r}: K}} needs a scalar term such as "
                    f"(1 | {syntax.group}); ({syntax.expr} | {syntax.group}) has "
                    f"{Z.shape[1]} columns"
                )
            all_levels, F = relatedness_factor(cov[syntax.group], syntax.group, levels)
            index = pd.Index(all_levels).get_indexer([levels[i] for i in index])
            seen = sum(t.factor == syntax.group for t in terms)
            label = syntax.group if seen == 0 else f"{syntax.group}.{seen}"
            terms.append(RandomEffectTerm(syntax.group, label, all_levels, index, Z, names, F))
            continue
        for cols in term_blocks(syntax, Z.shape[1]):
            seen = sum(t.factor == syntax.group for t in terms)
            label = syntax.group if seen == 0 else f"{syntax.group}.{seen}"
            terms.append(
                RandomEffectTerm(
                    syntax.group, label, levels, index, Z[:, cols], tuple(names[j] for j in cols)
                )
            )
    return tuple(terms)


def _numeric_parts(parsed: ParsedFormula, frame: pd.DataFrame):
    """Every numeric piece of the model evaluated on `frame`: named vectors (response, trials,
    offsets), the fixed design and one design per random-effect term."""
    response = parsed.response
    vectors = {
        f"response {response.expr!r}": _evaluate(
            response.successes or response.expr, frame, "response"
        )
    }
    if response.trials is not None:
        vectors[f"trials {response.trials!r}"] = _evaluate(response.trials, frame, "trials")
    for o in parsed.offsets:
        vectors[f"offset({o})"] = _evaluate(o, frame, "offset")
    return vectors, _design(parsed.fixed, frame), [_design(t.expr, frame) for t in parsed.random]


def _drop_non_finite(parsed: ParsedFormula, frame: pd.DataFrame):
    """Rows where a transform made a value NaN or infinite (log(z), z <= 0) are dropped with a
    warning naming the terms, as R's model.frame drops them; returns (frame, parts)."""
    parts = _numeric_parts(parsed, frame)
    vectors, (X, names, *_), designs = parts
    columns = dict(vectors)
    columns.update({name: X[:, j] for j, name in enumerate(names)})
    for syntax, (Z, znames, *_) in zip(parsed.random, designs):
        columns.update({f"{name} | {syntax.group}": Z[:, j] for j, name in enumerate(znames)})
    bad, culprits = np.zeros(len(frame), dtype=bool), []
    for name, values in columns.items():
        if not np.all(finite := np.isfinite(values)):
            bad |= ~finite
            culprits.append(name)
    if not bad.any():
        return frame, parts
    if bad.all():
        raise DataError(f"every row has a NaN or infinite value of {', '.join(culprits)}")
    warn(
        f"dropped {int(bad.sum())} of {len(frame)} rows where {', '.join(culprits)} "
        "is NaN or infinite (a transform outside its domain, such as log of a value <= 0)",
        DataWarning,
    )
    frame = frame.loc[~bad].reset_index(drop=True)
    return frame, _numeric_parts(parsed, frame)


def _check_trials(y: np.ndarray, trials: np.ndarray, expr: str) -> None:
    if np.any(trials < 0) or np.any(trials != np.round(trials)):
        bad = trials[(trials < 0) | (trials != np.round(trials))][0]
        raise DataError(
            f"binomial trials in {expr!r} must be non-negative whole numbers; found {bad:g}"
        )
    if np.any(y > trials):
        raise DataError(f"response {expr!r} has more successes than trials")


def _check_identifiable(spec: ModelSpec, control: Control) -> None:
    """lme4's checks of the design against the data (check.nobs.vs.nlev, check.nobs.vs.nRE)."""
    n, p = spec.X.shape
    if n <= p:
        raise ModelError(
            f"{n} observations for {p} fixed effects: the model needs more "
            "observations than fixed-effect columns"
        )
    gaussian = spec.family.residual_sd
    for term in spec.terms:
        if term.relatedness is not None:  # its levels include K's levels without data
            continue
        if term.n_levels >= n:
            message = (
                f"grouping factor {term.factor!r} has {term.n_levels} levels for {n} "
                "observations: one random effect per observation"
            )
            if gaussian and control.check_nobs_vs_nlev == "stop":
                raise ModelError(
                    message + ", which a gaussian model cannot tell from the "
                    "residual; remove the term (lme4's check.nobs.vs.nlev)"
                )
            if control.check_nobs_vs_nlev != "ignore":
                warn(
                    message
                    + (" (an observation-level effect: overdispersion)" if not gaussian else ""),
                    DataWarning,
                )
        if term.q > term.n_levels:
            warn(
                f"term ({' + '.join(term.names)} | {term.factor}) has {term.q} columns but "
                f"{term.factor!r} has only {term.n_levels} levels: its {term.q} x {term.q} "
                "covariance cannot be estimated; simplify the term",
                DataWarning,
            )
    n_random = sum(t.q * t.n_levels for t in spec.terms)
    if gaussian and n_random >= n:
        control.report(
            "nobs_vs_nre",
            DataWarning,
            f"{n_random} random effects for {n} observations: the random-effect "
            "variances and the residual variance are probably unidentifiable",
        )


def build_model_spec(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    link: str | None = None,
    control: Control | None = None,
    correlation=None,
    variance=None,
    weights=None,
    cov: dict | None = None,
    df=None,
    zi: str | None = None,
    dispersion: str | None = None,
) -> ModelSpec:
    """Formula + data + family (+ residual structure, `design.residual`) -> `ModelSpec`. The
    input DataFrame is never modified."""
    control = control or Control()
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    fam, lnk = resolve_family(family, link, df)
    parsed = parse_formula(formula)
    check_identifiers(parsed.text.replace("||", "|"), data.columns)
    if fam.name in CATEGORICAL_FAMILIES:
        data, categories = _ordinal_response(data, parsed.response)
        fam = CATEGORICAL_FAMILIES[fam.name](categories, lnk)
    zi_rhs = None
    if zi is not None:
        zi_rhs = one_sided(zi, "zi=")
        if fam.zero_model != "hurdle" and (fam.name not in ZERO_INFLATABLE or lnk.name != "log"):
            raise ModelError(
                f"zi= applies to the {' and '.join(ZERO_INFLATABLE)} families with the log "
                f"link, and to the hurdle families; this model is {fam.name} ({lnk.name})"
            )
        check_identifiers(zi_rhs, data.columns)
        fam = fam if fam.zero_model == "hurdle" else zero_inflated(fam)
    elif fam.zero_model == "hurdle":
        raise ModelError(
            f"family {fam.name!r} needs the formula of its zero part's probability: zi='~ 1' "
            "for a constant, zi='~ x' for one that depends on x"
        )
    disp_rhs = None
    if dispersion is not None:
        disp_rhs = one_sided(dispersion, "dispersion=")
        if (fam.base or fam).name not in DISPERSION_FAMILIES:
            raise ModelError(
                f"dispersion= applies to the families with a dispersion parameter "
                f"({', '.join(DISPERSION_FAMILIES)}); this model is {fam.name}"
            )
        if correlation is not None or variance is not None or (weights and fam.residual_sd):
            raise ModelError(
                "dispersion= models the residual sd itself: it does not combine with a "
                "correlation, variance or weights structure (put their covariates into "
                "the dispersion formula)"
            )
        check_identifiers(disp_rhs, data.columns)
        fam = with_dispersion(fam)
    if not parsed.random:
        raise FormulaError(f"formula {formula!r} has no random-effect term such as (1 | group)")
    check_structures(correlation, variance, weights, data, fam, lnk)
    data, weights_column = weights_frame(data, weights)
    extra = residual_columns(correlation, variance, weights_column)
    extra += sorted(referenced_columns(zi_rhs)) if zi_rhs else []
    extra += sorted(referenced_columns(disp_rhs)) if disp_rhs else []
    frame, (vectors, fixed, designs) = _drop_non_finite(parsed, _clean_data(parsed, data, extra))

    response = parsed.response
    y = vectors[f"response {response.expr!r}"]
    if response.trials is not None:
        if not fam.uses_trials or fam.name == "bernoulli":
            raise FamilyError(
                f"response {response.expr!r} gives successes and trials; "
                f"use family='binomial', not {fam.name!r}"
            )
        trials = vectors[f"trials {response.trials!r}"]
        _check_trials(y, trials, response.expr)
    elif fam.uses_trials and fam.name != "bernoulli":  # binomial, beta_binomial
        y, trials, weights_column = _binomial_from_proportions(
            y, frame, weights_column, response.expr
        )
    else:
        trials = np.ones_like(y)
    fam.check_response(y, response.expr)
    if fam.categories:
        _check_categories(y, fam.categories, response.expr)
    offset = sum((vectors[f"offset({o})"] for o in parsed.offsets), np.zeros_like(y))
    _check_variation(y, offset, fam, response.expr)
    X, fixed_names = fixed.matrix, fixed.names
    if fam.categories and "(Intercept)" in fixed_names:  # the thresholds take its place
        keep = [j for j, name in enumerate(fixed_names) if name != "(Intercept)"]
        X, fixed_names = X[:, keep], tuple(fixed_names[j] for j in keep)
    if aliased := _aliased_columns(X, fixed_names):
        raise ModelError(
            f"fixed-effect model matrix is rank deficient: {', '.join(aliased)} "
            "is a linear combination of the other columns; remove it from the formula"
        )
    _warn_far_from_centre(X, fixed_names)
    check_cov_keys(cov or {}, [s.group for s in parsed.random])
    terms = _random_terms(parsed, frame, designs, cov or {})
    residual = build_residual(
        correlation,
        variance,
        weights_column,
        frame,
        [t.level_index for t in terms],
        [t.factor for t in terms],
    )
    spec = ModelSpec(
        formula,
        fam,
        lnk,
        response.expr,
        y,
        trials,
        offset,
        X,
        fixed_names,
        terms,
        frame,
        parsed,
        (fixed, *designs),
        residual,
        _submodel_design(zi_rhs, frame, "zero-inflation") if zi_rhs else None,
        zi,
        _submodel_design(disp_rhs, frame, "dispersion") if disp_rhs else None,
        dispersion,
    )
    _check_identifiable(spec, control)
    return spec


def _ordinal_response(data: pd.DataFrame, response) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """A copy of `data` with a cumulative model's response as the codes 0, ..., K - 1 of its
    ordered categories (NaN where missing), and the categories: a pandas Categorical in the
    order of its categories, or numbers in increasing order. Text has no known order."""
    name = response.expr
    if response.trials is not None or name not in data.columns:
        raise FormulaError(
            f"the response of a cumulative model is one column of ordered categories, got {name!r}"
        )
    values = data[name]
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = [str(c) for c in values.cat.categories]
        codes = values.cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
    elif pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
        numbers = np.sort(values.dropna().unique())
        categories = [f"{v:g}" for v in numbers]
        codes = np.searchsorted(numbers, values.to_numpy(dtype=float)).astype(float)
        codes[values.isna().to_numpy()] = np.nan
    else:
        raise DataError(
            f"response {name!r} of a cumulative model must be a pandas Categorical (in the "
            f"order of its categories) or numbers; the order of {values.dtype} values is not "
            f"known: pd.Categorical(values, categories=[...], ordered=True)"
        )
    if len(categories) < 3:
        raise DataError(
            f"a cumulative model needs a response of 3 or more ordered categories; {name!r} "
            f"has {len(categories)} ({', '.join(categories)}): use family='bernoulli' for two"
        )
    return data.assign(**{name: codes}), tuple(categories)


def category_values(categories: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    """A cumulative model's codes 0, ..., K - 1 as its categories: numbers where every
    category is one (the response was numeric), else the labels."""
    try:
        values = np.array([float(c) for c in categories])
    except ValueError:
        values = np.array(categories, dtype=object)
    return values[np.asarray(codes, dtype=int)]


def _category_codes(responses, spec: ModelSpec) -> pd.DataFrame:
    """Responses of a cumulative model given as its categories (numbers or labels, as
    `simulate` gives them; one column per dataset) -> their codes 0, ..., K - 1."""
    frame = (
        responses
        if isinstance(responses, pd.DataFrame)
        else pd.DataFrame(np.atleast_2d(np.asarray(responses)).T)
    )
    lookup = {c: k for k, c in enumerate(spec.family.categories)}

    def code(value) -> int:
        number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        return lookup.get(f"{value:g}" if number else str(value), -1)

    codes = frame.map(code)
    if (codes < 0).to_numpy().any():
        bad = frame.to_numpy()[codes.to_numpy() < 0][0]
        raise DataError(
            f"response {spec.response_name!r} has category {bad!r}, not one of the model's "
            f"{', '.join(spec.family.categories)}"
        )
    return codes.astype(float)


def _check_categories(y: np.ndarray, categories: tuple[str, ...], name: str) -> None:
    """Every category observed on the model's rows: a threshold between empty categories has
    no information (clm drops such levels; here they must be dropped by the user)."""
    if empty := [c for k, c in enumerate(categories) if not np.any(y == k)]:
        raise DataError(
            f"category {empty[0]!r} of response {name!r} has no observations on the model's "
            "rows, so its thresholds are not identified; drop it from the categories "
            "(values.cat.remove_unused_categories())"
        )


def _submodel_design(rhs: str, frame: pd.DataFrame, what: str) -> Design:
    """The zero-inflation or dispersion design on the model's rows, full rank and finite."""
    design = _design(rhs, frame)
    if not np.all(np.isfinite(design.matrix)):
        raise DataError(f"the {what} formula '~ {rhs}' gives NaN or infinite values")
    if design.matrix.shape[1] == 0:
        raise FormulaError(f"the {what} formula '~ {rhs}' has no columns")
    if aliased := _aliased_columns(design.matrix, design.names):
        raise ModelError(
            f"{what} model matrix is rank deficient: {', '.join(aliased)} is a linear "
            "combination of the other columns"
        )
    return design


def _check_variation(y, offset, family, name: str) -> None:
    """A gaussian response that is constant (after its offset) leaves nothing to model: its
    residual sd is 0 and every criterion is -inf there."""
    if family.residual_sd and np.ptp(y - offset) == 0:
        raise DataError(
            f"{family.name} response {name!r} does not vary"
            f"{' around its offset' if np.any(offset) else ''} (every value is "
            f"{float(y[0] - offset[0]):g}); there is nothing to model"
        )


def response_batch(spec: ModelSpec, responses) -> np.ndarray:
    """Many responses for one model's design, as (datasets, n): an array of that shape, or a
    DataFrame with one column per dataset and one row per row of the model (after rows with
    missing values were dropped). Each is checked as the model's own response is."""
    labels = None
    if spec.family.categories:
        responses = _category_codes(responses, spec)
    if isinstance(responses, pd.DataFrame):
        labels = [str(c) for c in responses.columns]
        if not all(pd.api.types.is_numeric_dtype(t) for t in responses.dtypes):
            bad = [
                str(c) for c, t in responses.dtypes.items() if not pd.api.types.is_numeric_dtype(t)
            ]
            raise DataError(f"response column(s) {bad} are not numeric")
        responses = responses.to_numpy(dtype=float).T
    try:
        batch = np.array(responses, dtype=float, ndmin=2)
    except (TypeError, ValueError):
        raise DataError(
            "responses must be numeric: an array (datasets x rows) or a DataFrame "
            "with one column per dataset"
        ) from None
    if batch.ndim != 2 or batch.shape[1] != spec.n_obs:
        raise DataError(
            f"responses must have shape (datasets, {spec.n_obs}), one value per row "
            f"of the model; got {batch.shape}"
        )
    if batch.shape[0] == 0:
        raise DataError("responses hold no dataset: a batch needs at least one")
    for d, y in enumerate(batch):
        name = f"{spec.response_name} (dataset {d}{f', column {labels[d]}' if labels else ''})"
        if not np.all(np.isfinite(y)):
            raise DataError(f"response {name!r} has NaN or infinite values")
        spec.family.check_response(y, name)
        _check_variation(y, spec.offset, spec.family, name)
        if spec.family.uses_trials and np.any(y > spec.trials):
            raise DataError(f"response {name!r} has more successes than trials")
    return batch
