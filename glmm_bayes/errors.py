"""Errors and warnings a user can act on: each names the column, term, value or parameter at fault.

Errors are `ValueError`s (bad input); warnings are `UserWarning`s of the package's own
categories, so a user can filter them (`warnings.simplefilter("error", gb.ConvergenceWarning)`)
or turn a check off through `control=` (`gb.Control`).
"""


class GlmmBayesError(ValueError):
    """Base class of the errors this package raises for bad input."""


class FormulaError(GlmmBayesError):
    """Malformed formula, unknown column, disallowed function."""


class DataError(GlmmBayesError):
    """Bad values in the data: NaN/inf, wrong response values, one-level grouping factors."""


class FamilyError(GlmmBayesError):
    """Unknown family or link, or a combination that does not exist."""


class PriorError(GlmmBayesError):
    """A prior for a parameter that does not exist, or one that cannot be parsed."""


class ModelError(GlmmBayesError):
    """A method that does not apply to this model (REML for a GLMM, nAGQ > 1 for vector terms)."""


class FitError(GlmmBayesError, RuntimeError):
    """A fit that could not produce a result: the objective stayed non-finite after recovery."""


class ClusterError(GlmmBayesError, RuntimeError):
    """A Ray cluster that cannot be reached or used, or a worker that failed there."""


class GlmmBayesWarning(UserWarning):
    """Base class of the package's warnings."""


class ConvergenceWarning(GlmmBayesWarning):
    """An optimiser or sampler stopped without the checks of a converged result passing."""


class SingularFitWarning(GlmmBayesWarning):
    """A variance component at zero or a correlation at +-1 (lme4's isSingular)."""


class SeparationWarning(GlmmBayesWarning):
    """The fixed effects separate the response: some ML estimates are infinite."""


class SamplingWarning(GlmmBayesWarning):
    """NUTS diagnostics: divergences, saturated trees, low E-BFMI, R-hat or ESS."""


class DataWarning(GlmmBayesWarning):
    """Rows dropped, or a design that lme4 would question (levels per observation)."""


def integer_argument(name: str, value, minimum: int = 0) -> int:
    """An integer argument (numpy integers too) of at least `minimum`, or a named error."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise GlmmBayesError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def level_argument(name: str, value) -> float:
    """A confidence or credible level strictly between 0 and 1, or a named error."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise GlmmBayesError(f"{name} must be a level between 0 and 1 (e.g. 0.95), got {value!r}")
    return float(value)
