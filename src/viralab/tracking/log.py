"""Small named MLflow tracking calls (mostly writes to the active run), for code outside the
tracking layer.

Training, evaluation and monitoring code return results; the modules that log them call these
instead of `mlflow.*`, so MLflow is imported at the edges only (docs/architecture.md, "Where
MLflow is called"). Each is the `mlflow` call of the same name, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow


def set_experiment(name: str) -> None:
    """`mlflow.set_experiment`."""
    mlflow.set_experiment(name)


def start_run(**kwargs: Any) -> Any:
    """`mlflow.start_run` (a context manager yielding the run)."""
    return mlflow.start_run(**kwargs)


def experiment_name(experiment_id: str) -> str:
    """The name of one experiment."""
    return mlflow.get_experiment(experiment_id).name


def search_runs(**kwargs: Any) -> Any:
    """`mlflow.search_runs` (a DataFrame of runs)."""
    return mlflow.search_runs(**kwargs)


def set_tag(key: str, value: Any) -> None:
    """`mlflow.set_tag` on the active run."""
    mlflow.set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """`mlflow.set_tags` on the active run."""
    mlflow.set_tags(tags)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """`mlflow.log_metrics` on the active run."""
    mlflow.log_metrics(metrics, step=step)


def log_dict(obj: Any, path: str) -> None:
    """`mlflow.log_dict` on the active run."""
    mlflow.log_dict(obj, path)


def log_text(text: str, path: str) -> None:
    """`mlflow.log_text` on the active run."""
    mlflow.log_text(text, path)


def log_figure(figure: Any, path: str) -> None:
    """`mlflow.log_figure` on the active run."""
    mlflow.log_figure(figure, path)


def log_artifact(local_path: str, artifact_path: str | None = None) -> None:
    """`mlflow.log_artifact` on the active run."""
    mlflow.log_artifact(local_path, artifact_path=artifact_path)
