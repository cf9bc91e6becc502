"""The layers' imports run one way (CONTRIBUTING.md): design -> core -> frequentist and bayes
-> results -> plots -> model -> cli; frequentist and bayes never import each other."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "glmm_bayes"
#: Each layer's rank; a module may import only from layers of lower or equal rank.
RANKS = {
    "errors": 0, "numerics": 0, "control": 0, "families": 0, "datasets": 0,
    "compilation_cache": 0, "cpu_devices": 0, "progress": 0, "lazy_modules": 0,
    "distributions": 0,
    "design": 1, "core": 2, "frequentist": 3, "bayes": 3, "results": 4, "plots": 5,
    "model": 6, "ray_batch": 7, "cli": 8, "__init__": 9,
}  # fmt: skip


def _layer(parts: list[str]) -> str:
    return parts[0].removesuffix(".py")


def _imports(path: Path):
    """(imported layer, line) for every import of a package module, lazy ones included."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                yield target[0], node.lineno
            else:  # from . import plots
                yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glmm_bayes."):
            yield node.module.split(".")[1], node.lineno


def test_imports_run_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer(list(path.relative_to(PACKAGE).parts))
        for target, line in _imports(path):
            if target == own or target not in RANKS:
                continue
            sideways = {own, target} == {"frequentist", "bayes"}
            if RANKS[target] > RANKS[own] or sideways:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({own}) imports {target}")
    assert not wrong, "\n".join(wrong)
