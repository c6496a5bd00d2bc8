"""A reviewer promotes in the MLflow UI; the next sync picks it up with nothing else to do.

A real `mlflow server` subprocess; the UI's promotion is the REST call it makes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.registry.kit import GOOD_FORECAST, GOOD_PREFERENCE, RegistryKit
from tests.support.services import copy_sqlite, free_port, require_service, wait_for_port
from viralab.registry.sync import sync_registry
from viralab.tracking import ensure_experiment

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[str]:
    """`mlflow server` on a free loopback port over a throwaway SQLite backend."""
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    if not mlflow_bin.exists():
        require_service(f"mlflow server: {mlflow_bin} not found")
    base = tmp_path_factory.mktemp("mlflow-server")
    backend = base / "backend.db"
    copy_sqlite(mlflow_template, backend)  # already migrated: starts in seconds
    port = free_port()
    log = (base / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            f"sqlite:///{backend}",
            "--default-artifact-root",
            str(base / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",  # one process is plenty for a test, and starts far faster on 2 cores
        ],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        wait_for_port(port, timeout=120, proc=proc)
        deadline = time.monotonic() + 60
        while requests.get(f"{url}/health", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("mlflow server never became healthy")
            time.sleep(0.5)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        require_service(f"mlflow server: {exc}: {(base / 'server.log').read_text()[-2000:]}")
    print(f"mlflow server ready in {time.monotonic() - started:.1f} s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def server_kit(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> RegistryKit:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    experiment_id = ensure_experiment(f"reviewer-{uuid.uuid4().hex[:8]}")
    return RegistryKit(MlflowClient(), experiment_id)


def set_alias_in_ui(server: str, name: str, version: str) -> None:
    payload = {"name": name, "alias": "champion", "version": version}
    ui_post(server, "registered-models/alias", payload)


def ui_post(server: str, endpoint: str, payload: dict) -> None:
    response = requests.post(f"{server}/api/2.0/mlflow/{endpoint}", json=payload, timeout=30)
    assert response.status_code == 200, response.text


def test_alias_set_in_the_ui_flips_is_active(mlflow_server, server_kit, settings, pg_url):
    name = "preference"
    server_kit.quick_version(name, GOOD_PREFERENCE)
    server_kit.quick_version(name, GOOD_PREFERENCE)
    first = sync_registry(settings, pg_url)
    assert first.inserted == 2 and first.active == {name: None}

    set_alias_in_ui(mlflow_server, name, "1")
    assert sync_registry(settings, pg_url).active == {name: 1}

    set_alias_in_ui(mlflow_server, name, "2")
    moved = sync_registry(settings, pg_url)
    assert (moved.activated, moved.deactivated, moved.active) == (1, 1, {name: 2})
    assert not sync_registry(settings, pg_url).changed


def test_stage_set_in_the_ui_flips_is_active(mlflow_server, server_kit, stage_settings, pg_url):
    name = "youtube-lstm-likes"
    server_kit.quick_version(name, GOOD_FORECAST)
    server_kit.quick_version(name, GOOD_FORECAST)
    for version in ("1", "2"):
        payload = {"name": name, "version": version, "stage": "Production"}
        payload["archive_existing_versions"] = True
        ui_post(mlflow_server, "model-versions/transition-stage", payload)
        result = sync_registry(stage_settings, pg_url)
        assert result.active[name] == int(version)
