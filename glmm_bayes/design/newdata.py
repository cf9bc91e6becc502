"""A fitted model's design on new rows: X, each term's Z_k and the levels they belong to.

The fixed part and every term's columns are evaluated by the fitted data's formulae designs
(same factor levels, contrasts and transforms). Each term's rows point to the distinct levels
of the new data; `fitted_index` says which fitted level each one is (-1 for a level the model
has not seen), so b can be taken from the fit for known levels and decided by the caller for
new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from .formula import parse_formula, referenced_columns
from .model_spec import ModelSpec, RandomEffectTerm, _evaluate, group_labels, term_blocks


@dataclass(frozen=True)
class Rows:
    """The design of a model on some rows: X, offset, binomial trials (None where the rows do
    not give them) and each random-effect term on these rows (`RandomEffectTerm.on_rows`; None
    for terms left out)."""

    X: np.ndarray
    offset: np.ndarray
    trials: np.ndarray | None
    terms: tuple[RandomEffectTerm | None, ...]
    X_zi: np.ndarray | None = None  # the zero-inflation design, for zi= models
    X_disp: np.ndarray | None = None  # the dispersion design, for dispersion= models

    @property
    def n(self) -> int:
        return self.X.shape[0]


def kept_terms(spec: ModelSpec, re_form) -> tuple[bool, ...]:
    """Which random-effect terms a prediction conditions on, lme4's `re.form`: None keeps all,
    "~0" (or "NA", or NaN) none, and a formula such as "~(1 | Subject)" the terms on the grouping
    factors it names."""
    if re_form is None:
        return (True,) * len(spec.terms)
    if not isinstance(re_form, str):
        if isinstance(re_form, float) and np.isnan(re_form):
            return (False,) * len(spec.terms)
        raise FormulaError(
            f"re_form must be None, '~0' or a formula such as '~(1 | g)', got {re_form!r}"
        )
    text = re_form.strip()
    if text.replace(" ", "") in ("~0", "NA", "0", "~-1"):
        return (False,) * len(spec.terms)
    parsed = parse_formula("y " + (text if text.startswith("~") else "~ " + text))
    groups = {syntax.group for syntax in parsed.random}
    factors = {term.factor for term in spec.terms}
    if unknown := sorted(groups - factors):
        raise FormulaError(
            f"re_form {re_form!r} names grouping factor(s) {unknown} that the model "
            f"does not have; its factors are {sorted(factors)}"
        )
    return tuple(term.factor in groups for term in spec.terms)


def _check_columns(newdata: pd.DataFrame, needed: dict[str, str], fitted: pd.DataFrame) -> None:
    """Each needed column (name -> what uses it) is present, has no missing values, and is
    numeric where the fitted data's column is."""
    for column, role in needed.items():
        if column not in newdata.columns:
            raise DataError(f"newdata has no column {column!r} (used by the {role})")
        values = newdata[column]
        was_numeric = column in fitted.columns and pd.api.types.is_numeric_dtype(fitted[column])
        if was_numeric and not pd.api.types.is_numeric_dtype(values):
            raise DataError(
                f"newdata column {column!r} must be numeric, as in the fitted data; "
                f"got {values.dtype} values such as {values.iloc[0]!r}"
            )
        if values.isna().any():
            raise DataError(
                f"newdata column {column!r} has {int(values.isna().sum())} missing "
                "value(s); predictions need every value the model uses"
            )
        if pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
            if not np.all(np.isfinite(values.to_numpy(dtype=float))):
                raise DataError(f"newdata column {column!r} has infinite values")


def _evaluate_design(design, newdata: pd.DataFrame, role: str) -> np.ndarray:
    if design.evaluator is None:
        return np.zeros((len(newdata), 0))
    try:
        matrix = design.evaluator.evaluate_new_data(newdata)
    except Exception as exc:  # formulae raises several types, e.g. for an unseen factor level
        raise DataError(f"could not evaluate the {role} on newdata: {exc}") from exc
    return np.asarray(matrix.design_matrix, dtype=float)


def model_rows(
    spec: ModelSpec,
    newdata: pd.DataFrame | None = None,
    grouped: tuple[bool, ...] | None = None,
    columns: tuple[bool, ...] | None = None,
    require_trials: bool = False,
) -> Rows:
    """The model's design on `newdata` (None: the fitted rows). Terms in `grouped` get their
    columns and levels (the grouping factor must be in newdata); further terms in `columns`
    only their columns (levels empty, as integrating a term out needs); the rest are None."""
    grouped = grouped if grouped is not None else (True,) * len(spec.terms)
    columns = tuple(g or c for g, c in zip(grouped, columns or grouped))
    if newdata is None:
        terms = tuple(
            t.on_rows(t.Z, t.level_index, t.levels, np.arange(t.n_levels))
            if g
            else t.on_rows(t.Z)
            if c
            else None
            for t, g, c in zip(spec.terms, grouped, columns)
        )
        return Rows(spec.X, spec.offset, spec.trials, terms, spec.X_zi, spec.X_disp)
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
    if len(newdata) == 0:
        raise DataError("newdata has no rows")
    parsed = spec.parsed
    needed: dict[str, str] = {}
    for role, text in (
        [("fixed effects", parsed.fixed)]
        + [(f"offset({o})", o) for o in parsed.offsets]
        + [(role, f.split("~")[1]) for role, f in _submodel_formulas(spec)]
    ):
        needed.update({c: needed.get(c, role) for c in referenced_columns(text)})
    blocks = [term_blocks(s, len(d.names)) for s, d in zip(parsed.random, spec.designs[1:])]
    owner = [i for i, b in enumerate(blocks) for _ in b]  # each term's (expr | g)
    uses = lambda flags, i: any(f for f, o in zip(flags, owner) if o == i)
    for i, syntax in enumerate(parsed.random):
        role = f"term ({syntax.expr} | {syntax.group})"
        names = (referenced_columns(syntax.expr) if uses(columns, i) else set()) | (
            set(syntax.group.split(":")) if uses(grouped, i) else set()
        )
        needed.update({c: needed.get(c, role) for c in names})
    _check_columns(newdata, needed, spec.data)
    frame = newdata.reset_index(drop=True)
    X = _evaluate_design(spec.designs[0], frame, "fixed effects")
    # the model's columns (the cumulative family's X lacks the intercept its design has)
    X = X[:, [spec.designs[0].names.index(name) for name in spec.fixed_names]]
    offset = sum((_evaluate(o, frame, "offset") for o in parsed.offsets), np.zeros(len(frame)))
    trials = _new_trials(spec, frame, require_trials)
    terms, fitted = [], iter(zip(spec.terms, grouped, columns))
    for i, (syntax, design) in enumerate(zip(parsed.random, spec.designs[1:])):
        Z = (
            _evaluate_design(design, frame, f"term ({syntax.expr} | {syntax.group})")
            if uses(columns, i)
            else None
        )
        for cols in blocks[i]:
            term, g, c = next(fitted)
            if g:
                levels, index = group_labels(frame, term.factor)
                known = pd.Index(term.levels).get_indexer(list(levels))
                terms.append(term.on_rows(Z[:, cols], index, levels, known))
            else:
                terms.append(term.on_rows(Z[:, cols]) if c else None)
    X_zi, X_disp = (
        None if design is None else _evaluate_design(design, frame, role)
        for design, role in ((spec.zi, "zero inflation"), (spec.dispersion, "dispersion"))
    )
    return Rows(X, offset, trials, tuple(terms), X_zi, X_disp)


def _submodel_formulas(spec: ModelSpec) -> list[tuple[str, str]]:
    """(role, formula) of the model's zero-inflation and dispersion formulas."""
    pairs = (("zero inflation", spec.zi_formula), ("dispersion", spec.dispersion_formula))
    return [(role, formula) for role, formula in pairs if formula is not None]


def _new_trials(spec: ModelSpec, frame: pd.DataFrame, required: bool) -> np.ndarray | None:
    """Binomial trials on the new rows (ones for other families); None where the columns are
    absent and not `required` (predictions of the mean need no trials)."""
    expr = spec.parsed.response.trials
    if expr is None:
        return np.ones(len(frame))
    missing = sorted(referenced_columns(expr) - set(map(str, frame.columns)))
    if missing:
        if required:
            raise DataError(
                f"newdata has no column {missing[0]!r}, which gives the binomial "
                f"trials ({expr}) needed to simulate responses"
            )
        return None
    return _evaluate(expr, frame, "trials")
