"""Where runs are stored: the tracking URI, the SQLite store's pragmas, MLflow's platform
probes, and the experiments runs are created in.

Why a module of its own: every entry point configures the store once before any run opens;
nothing here depends on a run being active.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from omegaconf import DictConfig

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """`MLFLOW_TRACKING_URI` wins, then the config, then the embedded default.

    A relative SQLite path is made absolute against the working directory (the project root
    for `mlflow run .` and the README commands) and its folder created, so every entry point
    lands in the same `mlruns/mlflow.db` rather than MLflow 3's own `./mlflow.db` default.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():
            path = (Path.cwd() / path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
    elif uri.startswith("sqlite:////"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def configure_tracking(cfg: DictConfig | None = None) -> str:
    """Point MLflow at the configured store; returns the URI. The registry follows the
    tracking store (MLflow's default when no registry URI is set)."""
    configured = None
    if cfg is not None and "tracking" in cfg:
        configured = cfg.tracking.get("uri")
    uri = resolve_tracking_uri(configured)
    tune_sqlite()
    skip_absent_platform_modules()
    mlflow.set_tracking_uri(uri)
    return uri


#: One writer per store file at a time (a run logs from one process; workers each write their
#: own runs): WAL lets readers go on while it writes, and `synchronous=NORMAL` syncs at
#: checkpoints instead of on every commit. A commit survives a killed process (SIGKILL); only
#: an OS crash or power cut may lose the last commits. WAL needs a local disk (not NFS).
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


@functools.cache
def tune_sqlite() -> None:
    """Open every SQLite database of this process (MLflow's store, Optuna's storage) in WAL mode.

    Why: MLflow's SqlAlchemyStore commits once per logging call, and SQLite's default rollback
    journal with `synchronous=FULL` makes each commit write and fsync the journal and the
    database: most of a small run's tracking time on a SQLite store. MLflow creates its engine
    itself (`mlflow.store.db.utils.create_sqlalchemy_engine`), so the pragmas are set by an
    SQLAlchemy `connect` listener on every engine, which is a no-op for other databases.
    Idempotent.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _sqlite_pragmas)


#: Modules MLflow tries to import on every run it creates and every request it sends to a
#: server, to tell whether it runs on Databricks, beside Spark or in a notebook.
PLATFORM_MODULES = ("pyspark", "dbruntime", "IPython")


@functools.cache
def skip_absent_platform_modules() -> None:
    """Let MLflow's imports of `PLATFORM_MODULES` fail at once when they are not installed.

    Why: MLflow tries `import pyspark.sql`, `import dbruntime...` (Databricks' runtime) and
    `import IPython` whenever it resolves a new run's context tags or a request's headers:
    about 15 imports a request, each a failing search of `sys.path` (Python caches only the
    modules it finds), 1.0 ms of every request to a server and 1.6 ms of every run's creation
    on this machine; 0.1 and 0.15 ms with them marked absent. A `None` entry in `sys.modules`
    is Python's own way to make an import fail at once (`ModuleNotFoundError`); it is set only
    for modules `importlib` cannot find, so an installed Spark or IPython is untouched.
    """
    import importlib.util
    import sys

    for name in PLATFORM_MODULES:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]


def _local_artifact_root(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    return None


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it with artifacts beside the SQLite store if it is new."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            mlflow.tracking.MlflowClient().restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    root = _local_artifact_root(mlflow.get_tracking_uri())
    location = None
    if root is not None:
        slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-").lower() or "experiment"
        location = (root / "artifacts" / slug).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def tracking_uri() -> str:
    """`mlflow.get_tracking_uri()`: the store runs are logged to now."""
    return mlflow.get_tracking_uri()


def is_mlflow_error(exc: BaseException) -> bool:
    """Whether `exc` is an `MlflowException` (for code that must not import MLflow)."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException)


def logged_model_version(mlmodel_path: str) -> ModelVersion | None:
    """The newest registered version of the logged model whose ``MLmodel`` file is at
    ``mlmodel_path`` (matched by logged model id, else by run), aliases included; None when
    it has no run or no version."""
    from mlflow.models import Model

    meta = Model.load(mlmodel_path)
    if not meta.run_id:
        return None
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"run_id = '{meta.run_id}'")
    exact = [v for v in versions if meta.model_id and getattr(v, "model_id", None) == meta.model_id]
    found = exact or versions
    if not found:
        return None
    mv = max(found, key=lambda v: int(v.version))
    return client.get_model_version(mv.name, mv.version)  # a search leaves the aliases out
