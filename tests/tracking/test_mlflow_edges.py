"""MLflow is called at the edges only: the tracking layer, the registry adapter, the families'
`log` modules, the pyfunc wrappers and a few named log modules (docs/architecture.md, "Where
MLflow is called"). Every other module calls small named helpers in those, and imports MLflow
only for annotations, under `if TYPE_CHECKING:`."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "viralab"

#: Packages whose every module may import MLflow.
ALLOWED_PACKAGES = (
    "tracking/",  # the tracking layer: runs, stores, held writes, artifacts, tags
    "registry/",  # the adapter over MLflow's model registry (client, markers, holdout, sync)
)

#: Single modules that may import MLflow.
ALLOWED_MODULES = {
    "families/forecast/log.py",  # a family's log module
    "families/preference/log.py",
    "serve/forecast_model.py",  # pyfunc wrappers: subclass mlflow.pyfunc.PythonModel, and
    "serve/preference_model.py",  # saved models name these module paths
    # the forecaster pyfunc's signature, split out of forecast_model.py (re-exported there):
    # it is written in MLflow's schema types, and only they can say it
    "serve/forecast_signature.py",
    # RequestLimitError must be an MlflowException(INVALID_PARAMETER_VALUE): that is what
    # `mlflow models serve` answers with 400 instead of 500
    "serve/limits.py",
    "sweeps/runs.py",  # the sweep's run bookkeeping (parent and trial runs)
    "monitor/check_log.py",  # the monitor's own log module
    "promotion/server_app.py",  # `mlflow server --app-name viralab`: a plugin of MLflow's
    "entrypoint.py",  # the MLflow Project entry: purges the run `mlflow run` logged raw -P in
}

#: Modules not converted yet, each with why. Keep this short.
NOT_YET: dict[str, str] = {
    # lowers MLflow's SQL store retry constant for one CLI command; it sits in the settings
    # layer, below tracking/, so a tracking helper would be an upward import (and entrypoint,
    # its allowed sibling, imports it: a circle)
    "service_limits.py": "settings layer, below tracking/",
}


def _allowed(rel: str) -> bool:
    return rel in ALLOWED_MODULES or rel.startswith(ALLOWED_PACKAGES)


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` bodies."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def runtime_mlflow_imports(path: Path) -> list[int]:
    """The lines of `path` that import mlflow (or a submodule) outside `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = _type_checking_blocks(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        mlflow = any(n == "mlflow" or n.startswith("mlflow.") for n in names)
        if mlflow and node.lineno not in guarded:
            found.append(node.lineno)
    return found


def test_only_the_edges_import_mlflow() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if _allowed(rel) or rel in NOT_YET:
            continue
        lines = runtime_mlflow_imports(path)
        if lines:
            offenders.append(f"{rel}:{lines[0]}")
    assert not offenders, (
        "these modules import mlflow at runtime; call a helper in tracking/, registry/ or a "
        f"log module instead (docs/architecture.md, 'Where MLflow is called'): {offenders}"
    )


def test_the_exception_lists_name_real_modules() -> None:
    for rel in NOT_YET:
        assert (SRC / rel).exists(), rel


def test_type_checking_imports_are_allowed(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mlflow\n"
        "def f():\n    import mlflow.pyfunc\n"
    )
    assert runtime_mlflow_imports(module) == [5]
