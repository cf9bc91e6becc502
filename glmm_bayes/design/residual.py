"""Residual covariance beyond sigma^2 I: correlation within groups, VarIdent, prior weights.

    Var(e) = sigma^2 S C S,   S = diag(s_i),  s_i = delta_{v(i)} / sqrt(w_i),
C block diagonal over the groups of a correlation structure (nlme's corStruct), delta_v the
residual sd of VarIdent level v relative to the first level (delta_1 = 1), w_i prior weights
(lme4's `weights`: residual variance sigma^2 / w_i). Within a group with positions t_i,
    AR1 / CAR1              C_ij = phi^|t_i - t_j|  (AR1: t = 0, 1, 2, ... in data order, or an
                            integer column with gaps; CAR1: real times, nlme's corCAR1)
    GaussianCorrelation     C_ij = exp(-(|t_i - t_j| / range)^2)       (nlme's corGaus)
    CompoundSymmetry        C_ij = rho                                (nlme's corCompSymm)
This module checks the user's structures against the data and builds `ResidualSpec`, plain
arrays; `core.residual` whitens with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, ModelError


@dataclass(frozen=True)
class AR1:
    """AR(1) among successive observations of each `group`: in data order, or at the integer
    positions in column `order` (gaps allowed: corr phi^gap)."""

    group: str
    order: str | None = None
    kind = "ar1"
    parameter = "phi"

    def columns(self) -> list[str]:
        return [self.group] + ([self.order] if self.order else [])

    @property
    def position_column(self) -> str | None:
        return self.order


@dataclass(frozen=True)
class _TimedCorrelation:
    """A correlation that decays with the distance between times `time` within `group`."""

    time: str
    group: str

    def columns(self) -> list[str]:
        return [self.group, self.time]

    @property
    def position_column(self) -> str:
        return self.time


@dataclass(frozen=True)
class CAR1(_TimedCorrelation):
    """Continuous-time AR(1): corr phi^|t_i - t_j| for real times `time` within `group`
    (nlme's corCAR1; corExp with range = -1 / log(phi))."""

    kind = "car1"
    parameter = "phi"


@dataclass(frozen=True)
class GaussianCorrelation(_TimedCorrelation):
    """corr exp(-(|t_i - t_j| / range)^2) within `group` (nlme's corGaus)."""

    kind = "gaussian"
    parameter = "range"


@dataclass(frozen=True)
class CompoundSymmetry:
    """One correlation rho between any two observations of a `group` (nlme's corCompSymm)."""

    group: str
    kind = "cs"
    parameter = "rho"

    def columns(self) -> list[str]:
        return [self.group]

    position_column = None


@dataclass(frozen=True)
class VarIdent:
    """A residual sd per level of column `by`, relative to its first level (nlme's varIdent)."""

    by: str

    def columns(self) -> list[str]:
        return [self.by]


CORRELATIONS = (AR1, CAR1, GaussianCorrelation, CompoundSymmetry)

#: The column a vector of weights travels in through the data cleaning.
WEIGHTS_COLUMN = "(weights)"


@dataclass(frozen=True)
class ResidualSpec:
    """The residual structure as arrays over the model's rows (see the module docstring)."""

    correlation: object | None  # one of CORRELATIONS, or None
    variance: VarIdent | None
    weights: np.ndarray  # (n,) prior weights, ones where none were given
    weighted: bool
    variance_levels: tuple[str, ...]  # VarIdent levels; the first is the reference
    variance_level: np.ndarray  # (n,) int
    group_rows: np.ndarray  # (G, n_max) rows of each correlation group, padded with n
    group_position: np.ndarray  # (G, n_max) positions t_i, padded with 0
    group_labels: tuple[str, ...]
    weights_column: str | None = None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Natural parameters: the correlation's, then one sd ratio per non-reference level."""
        names = (self.correlation.parameter,) if self.correlation is not None else ()
        return names + tuple(
            ratio_name(self.variance.by, level) for level in self.variance_levels[1:]
        )

    def describe(self) -> str:
        """ "; AR1(group='Mare'), weights=w" (empty without a structure), for tables."""
        parts = [repr(s) for s in (self.correlation, self.variance) if s is not None]
        parts += [f"weights={self.weights_column}"] if self.weighted else []
        return "; " + ", ".join(parts) if parts else ""

    @property
    def is_trivial(self) -> bool:
        return self.correlation is None and self.variance is None and not self.weighted


def ratio_name(by: str, level: str) -> str:
    return f"sigma_ratio({by}={level})"


def residual_columns(correlation, variance, weights) -> list[str]:
    """The data columns the structures read (checked to exist before the rows are cleaned)."""
    columns = []
    if correlation is not None:
        columns += correlation.columns()
    if variance is not None:
        columns += variance.columns()
    if isinstance(weights, str):
        columns.append(weights)
    return columns


def check_structures(correlation, variance, weights, data: pd.DataFrame, family, link) -> None:
    """Types, columns and families, before any row is dropped."""
    if (
        family.residual_sd
        and link.name != "identity"
        and (correlation, variance, weights) != (None, None, None)
    ):
        raise ModelError(
            "correlation=, variance= and weights= need the identity link for a "
            f"{family.name} model; this one has the {link.name} link"
        )
    if correlation is not None and not isinstance(correlation, CORRELATIONS):
        raise ModelError(
            f"correlation= takes gb.AR1, gb.CAR1, gb.GaussianCorrelation or "
            f"gb.CompoundSymmetry, got {correlation!r}"
        )
    if variance is not None and not isinstance(variance, VarIdent):
        raise ModelError(f"variance= takes gb.VarIdent(by=...), got {variance!r}")
    for what, structure in (("correlation", correlation), ("variance", variance)):
        if structure is None:
            continue
        if not family.residual_sd or family.location is not None:
            raise ModelError(
                f"{what}={structure!r} applies to gaussian models (nlme's lme); this "
                f"model is {family.name}"
                + (" (fit log(y) with the gaussian family)" if family.location else "")
            )
        for col in structure.columns():
            if not isinstance(col, str) or col not in data.columns:
                raise DataError(
                    f"{what}={structure!r}: {col!r} is not a column of the data "
                    f"(columns: {', '.join(map(str, data.columns))})"
                )
    if isinstance(weights, str) and weights not in data.columns:
        raise DataError(f"weights={weights!r} is not a column of the data")


def weights_frame(data: pd.DataFrame, weights) -> tuple[pd.DataFrame, str | None]:
    """The data with a vector of weights attached as a column (a copy), and that column's name."""
    if weights is None or isinstance(weights, str):
        return data, weights
    if isinstance(weights, pd.Series) and not weights.index.equals(data.index):
        # a Series goes with the rows by its index, as pandas aligns it, never by position
        if weights.index.has_duplicates or set(weights.index) != set(data.index):
            raise DataError(
                "weights given as a Series must be indexed by the data's rows: "
                f"{len(set(data.index) - set(weights.index))} of the data's index "
                "labels are missing from it"
            )
        weights = weights.reindex(data.index)
    values = (
        np.asarray(weights, dtype=float)
        if not isinstance(weights, pd.Series)
        else weights.to_numpy(float)
    )
    if values.shape != (len(data),):
        raise DataError(
            f"weights must be a column name or one value per row of the data "
            f"({len(data)}), got shape {values.shape}"
        )
    return data.assign(**{WEIGHTS_COLUMN: values}), WEIGHTS_COLUMN


def build_residual(
    correlation,
    variance,
    weights_column: str | None,
    frame: pd.DataFrame,
    level_indices: list[np.ndarray],
    factor_names: list[str],
) -> ResidualSpec:
    """The arrays of the structures on the cleaned rows. `level_indices`: each random-effect
    term's level of each row, which a correlation group must not cross (nlme's nesting rule:
    whitening a group then leaves every row in the same random-effect levels)."""
    n = len(frame)
    weights = np.ones(n)
    if weights_column is not None:
        values = frame[weights_column]
        if not pd.api.types.is_numeric_dtype(values) or values.dtype == bool:
            raise DataError(f"weights {weights_column!r} must be numeric")
        weights = values.to_numpy(dtype=float)
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            bad = weights[~(np.isfinite(weights) & (weights > 0))][0]
            raise DataError(
                f"weights {weights_column!r} must be positive and finite; found {bad:g}"
            )
    levels, level = ("",), np.zeros(n, dtype=int)
    if variance is not None:
        codes, uniques = pd.factorize(frame[variance.by].astype(str), sort=True)
        levels, level = tuple(uniques), codes
        if len(levels) < 2:
            raise DataError(
                f"VarIdent(by={variance.by!r}) needs two levels or more; the column "
                f"holds only {levels[0]!r}"
            )
    rows, position, labels = np.zeros((0, 1), int), np.zeros((0, 1)), ()
    if correlation is not None:
        rows, position, labels = _groups(correlation, frame)
        _check_nested(correlation, rows, n, level_indices, factor_names)
    return ResidualSpec(
        correlation,
        variance,
        weights,
        weights_column is not None,
        levels,
        level.astype(np.int32),
        rows.astype(np.int32),
        position,
        labels,
        weights_column,
    )


def residual_on(residual: ResidualSpec, newdata: pd.DataFrame | None) -> ResidualSpec:
    """The structure on the rows of `newdata` (None: the fitted rows), for simulating: new
    groups and times, VarIdent levels among the fitted ones, weights from the weights column
    where newdata has it (else 1)."""
    if newdata is None:
        return residual
    frame = newdata.reset_index(drop=True)
    needed = residual_columns(residual.correlation, residual.variance, None)
    if missing := [c for c in needed if c not in frame.columns]:
        raise DataError(f"newdata lacks column(s) {missing} of the residual structure")
    if frame[needed].isna().any().any():
        raise DataError(f"newdata has missing values in {needed}")
    column = residual.weights_column
    weights = (
        frame[column].to_numpy(dtype=float) if column in frame.columns else np.ones(len(frame))
    )
    level = np.zeros(len(frame), dtype=np.int32)
    if residual.variance is not None:
        level = pd.Index(residual.variance_levels).get_indexer(
            frame[residual.variance.by].astype(str)
        )
        if np.any(level < 0):
            new = sorted(
                set(frame[residual.variance.by].astype(str)) - set(residual.variance_levels)
            )
            raise DataError(
                f"newdata has level(s) {new} of VarIdent(by={residual.variance.by!r}) "
                f"that the model was not fitted to"
            )
    rows, position, labels = (
        _groups(residual.correlation, frame)
        if residual.correlation
        else (residual.group_rows[:0], residual.group_position[:0], ())
    )
    return ResidualSpec(
        residual.correlation,
        residual.variance,
        weights,
        residual.weighted,
        residual.variance_levels,
        level.astype(np.int32),
        rows.astype(np.int32),
        position,
        labels,
        column,
    )


def _groups(correlation, frame: pd.DataFrame):
    """Rows of each group, sorted by position, padded to the largest group with row n."""
    n = len(frame)
    codes, labels = pd.factorize(frame[correlation.group].astype(str), sort=True)
    time_column = correlation.position_column
    if time_column is None:
        position = np.zeros(n)
        for g in range(len(labels)):
            position[codes == g] = np.arange(np.sum(codes == g))
    else:
        values = frame[time_column]
        if not pd.api.types.is_numeric_dtype(values) or values.dtype == bool:
            raise DataError(f"{correlation!r}: time column {time_column!r} must be numeric")
        position = values.to_numpy(dtype=float)
        if isinstance(correlation, AR1) and np.any(position != np.round(position)):
            raise DataError(
                f"AR1(order={time_column!r}) needs whole-number positions; use "
                "gb.CAR1 for continuous times"
            )
    members = [np.flatnonzero(codes == g) for g in range(len(labels))]
    n_max = max(len(m) for m in members)
    rows = np.full((len(members), n_max), n)
    padded = np.zeros((len(members), n_max))
    for g, m in enumerate(members):
        m = m[np.argsort(position[m], kind="stable")]
        if time_column is not None and len(np.unique(position[m])) < len(m):
            t = position[m]
            dup = t[np.flatnonzero(np.diff(t) == 0)[0]]
            raise DataError(
                f"{correlation!r}: group {labels[g]!r} has two observations at "
                f"{time_column or 'position'} {dup:g}; times within a group must differ"
            )
        rows[g, : len(m)], padded[g, : len(m)] = m, position[m]
    return rows, padded, tuple(labels)


def _check_nested(correlation, rows, n, level_indices, factor_names) -> None:
    for index, factor in zip(level_indices, factor_names):
        padded = np.append(index, -1)[rows]
        valid = rows < n
        first = padded[:, :1]
        if np.any(valid & (padded != first)):
            raise ModelError(
                f"correlation group {correlation.group!r} is not nested within the "
                f"grouping factor {factor!r}: a correlation group must lie within one "
                f"level of every random-effect factor (as in nlme)"
            )
