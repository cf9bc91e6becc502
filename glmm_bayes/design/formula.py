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
    {
        "log",
        "log2",
        "log10",
        "log1p",
        "exp",
        "sqrt",
        "abs",
        "sin",
        "cos",
        "tan",
        "scale",
        "center",
        "standardize",
        "C",
        "I",
        "poly",
        "offset",
        "cbind",
        "p",
        "factor",
    }
)
ALLOWED_CONSTANTS = frozenset({"pi", "True", "False", "TRUE", "FALSE"})

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TOKEN = re.compile(
    r"""\s*(?:(?P<quoted>`[^`]*`)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<string>"[^"]*"|'[^']*')
    |(?P<op>\*\*|==|!=|<=|>=|\|\||%in%|[-+*/:|^(),=~<>\[\]!%&]))""",
    re.X,
)


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: quoted (a `backticked` column), name, number, string, op."""
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise FormulaError(f"cannot read {text[pos:].strip()!r} in formula {text!r}")
        out.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return out


def _check_operators(text: str) -> None:
    """Two operands side by side (`x z`) are a missing operator, which formulae would silently
    stop at (fitting `y ~ x` for `y ~ x z`)."""
    previous = None
    for kind, tok in tokens(text):
        starts = kind in ("name", "number", "string", "quoted") or tok == "("
        if previous is not None and starts:
            pkind, ptok = previous
            ends = pkind in ("name", "number", "string", "quoted") or ptok == ")"
            if ends and not (pkind == "name" and tok == "("):
                raise FormulaError(
                    f"missing operator between {ptok!r} and {tok!r} in formula "
                    f"{text!r}: write '{ptok} + {tok}' (or ':' or '*' for an "
                    "interaction)"
                )
        previous = (kind, tok)


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
    trials: str | None = None  # for cbind(s, f) this is "s + f"; for p(s, n) it is "n"


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
    """lme4's nesting: `a/b` -> `a`, `a:b`; `a/b/c` -> `a`, `a:b`, `a:b:c`. Backticked
    names (`my group`) lose their backticks."""
    parts = [p.strip() for p in group.split("/")]
    if any(not p for p in parts):
        raise FormulaError(f"malformed grouping factor {group!r}")
    names = []
    for part in parts:
        factors = [f.strip() for f in part.split(":")]
        for factor in factors:
            if not (_IDENTIFIER.fullmatch(factor) or re.fullmatch(r"`[^`]+`", factor)):
                raise FormulaError(
                    f"grouping factor {group!r} must be column names joined by ':' or '/'"
                )
        names.append(":".join(f.strip("`") for f in factors))
    return [":".join(names[: i + 1]) for i in range(len(names))]


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
    expr, group = inner[:position].strip(), inner[position + len(bar) :].strip()
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
    """Every called function must be allowed and every other name must be a data column
    (keyword arguments such as `poly(x, degree=2)` aside); operands need operators between."""
    columns = set(map(str, columns))
    _check_operators(text)
    found = tokens(text)
    for i, (kind, tok) in enumerate(found):
        following = found[i + 1][1] if i + 1 < len(found) else ""
        if kind == "quoted" and tok[1:-1] not in columns:
            raise FormulaError(
                f"unknown column {tok[1:-1]!r} in formula {text!r}; "
                f"data columns are: {', '.join(sorted(columns))}"
            )
        if kind != "name" or following == "=":
            continue
        if following == "(":
            if tok not in ALLOWED_FUNCTIONS:
                raise FormulaError(
                    f"function {tok!r} is not allowed in a formula; allowed: "
                    f"{', '.join(sorted(ALLOWED_FUNCTIONS))}"
                )
        elif tok not in columns and tok not in ALLOWED_CONSTANTS:
            raise FormulaError(
                f"unknown column {tok!r} in formula {text!r}; "
                f"data columns are: {', '.join(sorted(columns))}"
            )


def referenced_columns(text: str) -> set[str]:
    """The data columns an expression reads (names not called as functions or keywords)."""
    found = tokens(text)
    names = set()
    for i, (kind, tok) in enumerate(found):
        following = found[i + 1][1] if i + 1 < len(found) else ""
        if kind == "quoted":
            names.add(tok[1:-1])
        elif kind == "name" and following not in ("(", "=") and tok not in ALLOWED_CONSTANTS:
            names.add(tok)
    return names


def one_sided(text, what: str) -> str:
    """The right-hand side of a one-sided formula such as "~ x" (zi=)."""
    if not isinstance(text, str) or text.count("~") != 1 or text.split("~")[0].strip():
        raise FormulaError(f"{what} must be a one-sided formula such as '~ x', got {text!r}")
    rhs = text.split("~")[1].strip()
    if not rhs:
        raise FormulaError(f"{what} {text!r} has no terms ('~ 1' for a constant)")
    if "|" in rhs:
        raise FormulaError(f"{what} {text!r} takes fixed effects only, no (... | group) term")
    _check_parentheses(rhs)
    return rhs.replace("^", "**")


def parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4 formula into response, fixed part, random terms and offsets."""
    if not isinstance(text, str) or text.count("~") != 1:
        raise FormulaError(f"formula must have the form 'response ~ terms', got {text!r}")
    _check_parentheses(text)
    lhs, rhs = (s.strip() for s in text.split("~"))
    rhs = rhs.replace("^", "**")  # R's power: I(x^2) is x squared, (a + b)^2 interactions
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
