"""Errors a user can act on: each names the column, term or value at fault."""


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
