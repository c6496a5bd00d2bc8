"""Shared fixtures: MLflow isolation per test, a real PostgreSQL per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import PostgresServer, require_service, start_postgres

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# frozen gate sets (registry/gate_set.py) never land in data/; each test gets its own store
# (mlflow_isolation), module-scoped fixtures that train share this one
os.environ.setdefault(
    "VIRALAB_GATE_SETS_URL", f"sqlite:///{tempfile.mkdtemp(prefix='viralab-gates-')}/gates.db"
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def mlflow_isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test gets its own SQLite tracking store and artifact root under tmp_path.

    Afterwards any run a test left open is ended and MLflow's globals are cleared, so one test's
    state never leaks into the next (kedro-mlflow's conftest does the same).
    """
    import mlflow

    store = tmp_path / "mlruns"
    store.mkdir()
    uri = f"sqlite:///{store}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # the registry follows the tracking store unless a test points it elsewhere
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("VIRALAB_GATE_SETS_URL", f"sqlite:///{tmp_path}/gate_sets.db")
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    from mlflow.tracking._model_registry import utils as registry_utils

    registry_utils._registry_uri = None  # back to "follow the tracking store"; the setter
    os.environ.pop("MLFLOW_REGISTRY_URI", None)  # also exported it for subprocesses
    try:
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None
    except Exception:  # pragma: no cover - private attribute moved
        pass


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole session, on a free loopback port."""
    try:
        server = start_postgres()
    except (FileNotFoundError, RuntimeError) as exc:
        require_service(f"PostgreSQL: {exc}")
    yield server
    server.remove()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test (psycopg2 URL with the test password)."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
