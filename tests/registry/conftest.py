"""Registry fixtures: a fast throwaway MLflow store, a version factory, the project settings.

Every test gets its own SQLite tracking store (tests/conftest.py). Creating one runs MLflow's
migrations (~6 s here), so the store is copied from a template migrated once per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.registry.kit import RegistryKit
from tests.support.services import copy_sqlite
from viralab.registry.markers import RegistrySettings
from viralab.tracking import ensure_experiment


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store to copy per test."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return path


@pytest.fixture(autouse=True)
def fast_store(mlflow_isolation: str, mlflow_template: Path) -> str:
    """Put the migrated template where this test's tracking URI points before MLflow opens it."""
    target = Path(mlflow_isolation.removeprefix("sqlite:///"))
    if not target.exists():
        copy_sqlite(mlflow_template, target)
    return mlflow_isolation


@pytest.fixture(autouse=True)
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's application database (mirror + registry_events), never the project's."""
    url = f"sqlite:///{tmp_path}/viralab.db"
    monkeypatch.setenv("VIRALAB_DATABASE_URL", url)
    return url


@pytest.fixture
def kit(fast_store: str) -> RegistryKit:
    experiment_id = ensure_experiment("registry-tests")
    return RegistryKit(MlflowClient(), experiment_id)


@pytest.fixture(scope="session")
def settings() -> RegistrySettings:
    """The project's real registry config (alias mode)."""
    from omegaconf import OmegaConf

    from viralab.config import compose

    cfg = compose()
    return RegistrySettings.from_config(OmegaConf.to_container(cfg.registry, resolve=True))


@pytest.fixture(scope="session")
def stage_settings(settings: RegistrySettings) -> RegistrySettings:
    from dataclasses import replace

    return replace(settings, mode="stage")


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("VIRALAB_USER", "reviewer-ann")
    yield "reviewer-ann"
