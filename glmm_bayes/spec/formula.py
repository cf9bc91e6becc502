"""lme4 formula syntax: split a formula into response, fixed part and random-effect terms.

formulae builds the design matrices but does not know lme4's `||`, `a/b` grouping or
`cbind()`/`p()` responses, so this module turns the text into pieces formulae can evaluate:

    y ~ x + (x || g) + (1 | a/b) + offset(log(t))
    -> response "y", fixed "x", offsets ["log(t)"],
       random [("1 + x", "g", uncorrelated), ("1", "a"), ("1", "a:b")]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormulaError

#: Functions a formula may call. Formulas in spec files are data, not code: nothing else runs.
ALLOWED_FUNCTIONS = frozenset(
    {"log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "sin", "cos", "tan",
     "scale", "center", "standardize", "C", "I", "poly", "offset", "cbind", "p"}
)
ALLOWED_CONSTANTS = frozenset({"pi", "True", "False"})

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class RandomTermSyntax:
    """One `(expr | group)` term: `expr` is a formulae expression for the columns of Z_k."""

    expr: str
    group: str
    correlated: bool


@dataclass(frozen=True)
class ResponseSyntax:
    """The left-hand side: a plain expression, or successes and trials for binomial data."""

    expr: str
    successes: str | None = None
    trials: str | None = None   # for cbind(s, f) this is "s + f"; for p(s, n) it is "n"


@dataclass(frozen=True)
class ParsedFormula:
    text: str
    response: ResponseSyntax
    fixed: str
    random: tuple[RandomTermSyntax, ...]
    offsets: tuple[str, ...]


def _split_top_level(text: str, separators: str) -> list[tuple[str, str]]:
    """Split at separator characters outside parentheses; returns (separator, piece) pairs."""
    pieces, depth, start, sep = [], 0, 0, "+"
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in separators:
            pieces.append((sep, text[start:i].strip()))
            sep, start = ch, i + 1
    pieces.append((sep, text[start:].strip()))
    return pieces


def _check_parentheses(text: str) -> None:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            raise FormulaError(f"unbalanced parentheses in formula {text!r}: a ')' has no '('")
    if depth:
        raise FormulaError(f"unbalanced parentheses in formula {text!r}: a '(' is never closed")


def _call_arguments(term: str, name: str) -> list[str] | None:
    """Arguments of `name(...)` when the whole term is that call, else None."""
    match = re.fullmatch(rf"{name}\s*\((.*)\)", term.strip(), flags=re.S)
    if not match:
        return None
    return [piece for _, piece in _split_top_level(match.group(1), ",")]


def _expand_group(group: str) -> list[str]:
    """lme4's nesting: `a/b` -> `a`, `a:b`; `a/b/c` -> `a`, `a:b`, `a:b:c`."""
    parts = [p.strip() for p in group.split("/")]
    if any(not p for p in parts):
        raise FormulaError(f"malformed grouping factor {group!r}")
    for part in parts:
        for factor in part.split(":"):
            if not _IDENTIFIER.fullmatch(factor.strip()):
                raise FormulaError(
                    f"grouping factor {group!r} must be column names joined by ':' or '/'")
    return [":".join(p.replace(" ", "") for p in parts[: i + 1]) for i in range(len(parts))]


def _parse_random(inner: str, text: str) -> list[RandomTermSyntax]:
    correlated = "||" not in inner
    bar = "||" if not correlated else "|"
    depth, position = 0, -1
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and inner.startswith(bar, i):
            position = i
            break
    expr, group = inner[:position].strip(), inner[position + len(bar):].strip()
    if not expr or not group:
        raise FormulaError(f"random-effect term ({inner}) in {text!r} needs 'terms | group'")
    return [RandomTermSyntax(expr, g, correlated) for g in _expand_group(group)]


def _parse_response(lhs: str) -> ResponseSyntax:
    if (args := _call_arguments(lhs, "cbind")) is not None:
        if len(args) != 2:
            raise FormulaError(f"cbind() response needs two columns (successes, failures): {lhs!r}")
        return ResponseSyntax(lhs, successes=args[0], trials=f"{args[0]} + {args[1]}")
    if (args := _call_arguments(lhs, "p")) is not None:
        if len(args) != 2:
            raise FormulaError(f"p() response needs two columns (successes, trials): {lhs!r}")
        return ResponseSyntax(lhs, successes=args[0], trials=args[1])
    return ResponseSyntax(lhs)


def check_identifiers(text: str, columns) -> None:
    """Every called function must be allowed and every other name must be a data column."""
    columns = set(map(str, columns))
    for match in _IDENTIFIER.finditer(text):
        name = match.group(0)
        before = text[: match.start()]
        if before and (before[-1].isalnum() or before[-1] in "._"):
            continue  # inside a number such as 1e5 or part of a longer token
        is_call = text[match.end():].lstrip().startswith("(")
        if is_call:
            if name not in ALLOWED_FUNCTIONS:
                raise FormulaError(
                    f"function {name!r} is not allowed in a formula; allowed: "
                    f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")
        elif name not in columns and name not in ALLOWED_CONSTANTS:
            raise FormulaError(
                f"unknown column {name!r} in formula {text!r}; "
                f"data columns are: {', '.join(sorted(columns))}")


def parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4 formula into response, fixed part, random terms and offsets."""
    if not isinstance(text, str) or text.count("~") != 1:
        raise FormulaError(f"formula must have the form 'response ~ terms', got {text!r}")
    _check_parentheses(text)
    lhs, rhs = (s.strip() for s in text.split("~"))
    if not lhs or not rhs:
        raise FormulaError(f"formula {text!r} needs a response and at least one term")
    fixed, random, offsets = [], [], []
    for sign, term in _split_top_level(rhs, "+-"):
        if not term:
            raise FormulaError(f"empty term in formula {text!r}")
        if term.startswith("(") and term.endswith(")") and "|" in term:
            if sign == "-":
                raise FormulaError(f"a random-effect term cannot be removed with '-': {term}")
            random.extend(_parse_random(term[1:-1], text))
        elif (args := _call_arguments(term, "offset")) is not None:
            offsets.append(args[0])
        else:
            fixed.append(f"{sign} {term}" if fixed or sign == "-" else term)
    fixed_text = " ".join(fixed) if fixed else "1"
    if fixed_text.startswith("- "):
        fixed_text = "1 " + fixed_text
    return ParsedFormula(text, _parse_response(lhs), fixed_text, tuple(random), tuple(offsets))
