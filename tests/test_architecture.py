"""The house rules the import contracts do not cover (`lint-imports` checks the layers and
circles): modules stay small, and the few imports hidden inside functions are deliberate."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "viralab"
MAX_LINES = 400
MAX_FUNCTION_IMPORTS = 9  # the bar: fewer than 10


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _function_level_project_imports(path: Path) -> list[int]:
    """Line numbers of `viralab` imports inside a function body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[int] = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(name.startswith("viralab") for name in names):
                found.add(node.lineno)
    return sorted(found)


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in _modules()
        if (n := p.read_text().count("\n")) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_function_level_project_imports_are_few_and_explained() -> None:
    where = {p: _function_level_project_imports(p) for p in _modules()}
    total = sum(len(lines) for lines in where.values())
    assert total <= MAX_FUNCTION_IMPORTS, {
        str(p.relative_to(SRC)): lines for p, lines in where.items() if lines
    }
    unexplained = []
    for path, lines in where.items():
        text = path.read_text().splitlines()
        for lineno in lines:
            # the why: a comment on the import's line or in the few lines above it
            window = text[max(0, lineno - 5) : lineno]
            if not any("#" in line for line in window):
                unexplained.append(f"{path.relative_to(SRC)}:{lineno}")
    assert unexplained == [], f"function-level imports without a comment saying why: {unexplained}"


def test_the_checker_sees_a_function_level_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\ndef f():\n    from viralab.errors import ConfigError\n")
    assert _function_level_project_imports(sample) == [4]
