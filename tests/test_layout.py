"""The code stays the shape STYLE.md asks for: small modules and functions, a runner that only wires plug-ins."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import headstart

PACKAGE = Path(headstart.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, its docstring left out."""
    body = fn.body[1:] if len(fn.body) > 1 and isinstance(fn.body[0], ast.Expr) else fn.body
    assert fn.end_lineno is not None
    return fn.end_lineno - body[0].lineno + 1


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_no_function_body_over_50_lines() -> None:
    long = {}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > 50:
                long[f"{path.relative_to(PACKAGE)}:{node.name}"] = _body_lines(node)
    assert long == {}


def test_the_runner_is_wiring_only() -> None:
    source = (PACKAGE / "runner.py").read_text()
    assert len(source.splitlines()) < 200
    # no branch on a modality, a recipe or model class, a strategy's kind, or the TF-IDF baseline
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    for pattern in (
        r"\bif\b[^\n]*modality",
        r"isinstance\((?!exc)",
        r"Tfidf|tfidf",
        r"(strategy|recipe)\.kind\b",
        r"\.gradients\b",
        r"pretrained",
    ):
        assert not re.search(pattern, code), pattern


def test_data_and_artifacts_never_import_strategies() -> None:
    for room in ("data", "artifacts"):
        for path in (PACKAGE / room).rglob("*.py"):
            assert "headstart.strategies" not in path.read_text(), path
