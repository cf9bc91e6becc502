"""Stage 1 of the pipeline: formula + data + family -> `ModelSpec`."""

from .formula import ParsedFormula, RandomTermSyntax, parse_formula
from .model_spec import ModelSpec, RandomEffectTerm, build_model_spec, column_scale, response_batch

__all__ = [
    "ModelSpec",
    "ParsedFormula",
    "RandomEffectTerm",
    "RandomTermSyntax",
    "build_model_spec",
    "column_scale",
    "parse_formula",
    "response_batch",
]
