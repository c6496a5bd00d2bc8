"""The server app guards promotions made over REST and in the UI (`/ajax-api/...`).

A real `mlflow server --app-name viralab` per policy; the UI's alias dialog makes the same
`POST /ajax-api/2.0/mlflow/registered-models/alias` call as below.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.registry.guarded import GuardedServer, start_guarded
from tests.registry.kit import GOOD_PREFERENCE, RegistryKit
from viralab.tracking import ensure_experiment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BAD = {**GOOD_PREFERENCE, "mae": 0.31}


def _server(tmp_path_factory, template: Path, policy: str) -> Iterator[GuardedServer]:
    guarded = start_guarded(tmp_path_factory.mktemp(f"guard-{policy}"), template, policy=policy)
    yield guarded
    guarded.server.stop()


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory, mlflow_template) -> Iterator[GuardedServer]:
    yield from _server(tmp_path_factory, mlflow_template, "enforce")


@pytest.fixture(scope="module")
def warning(tmp_path_factory, mlflow_template) -> Iterator[GuardedServer]:
    yield from _server(tmp_path_factory, mlflow_template, "warn")


def kit_on(server: GuardedServer, monkeypatch: pytest.MonkeyPatch) -> RegistryKit:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    return RegistryKit(MlflowClient(), ensure_experiment(f"guard-{uuid.uuid4().hex[:8]}"))


def aliases(kit: RegistryKit, model: str) -> dict[str, int]:
    return {k: int(v) for k, v in kit.client.get_registered_model(model).aliases.items()}


def ui_alias(server: GuardedServer, model: str, version: int, method: str = "POST"):
    payload = {"name": model, "alias": "champion", "version": str(version)}
    return requests.request(
        method,
        f"{server.url}/ajax-api/2.0/mlflow/registered-models/alias",
        json=payload,
        timeout=60,
    )


def test_enforce_refuses_a_failing_version_with_403_and_one_line(enforcing, monkeypatch):
    kit = kit_on(enforcing, monkeypatch)
    model = "preference"  # guarded: it has gates in conf/registry/
    kit.quick_version(model, GOOD_PREFERENCE)
    kit.quick_version(model, BAD)

    ok = ui_alias(enforcing, model, 1)
    assert ok.status_code == 200, ok.text
    assert enforcing.active(model) == 1  # mirrored right then, no sync needed
    (first,) = enforcing.events(model)
    assert (first["source"], first["actor"], first["to_version"]) == ("ui", "anonymous", 1)

    refused = ui_alias(enforcing, model, 2)
    assert refused.status_code == 403
    body = refused.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert body["message"].startswith("viralab refused to make preference version 2 the champion")
    assert "mae < 0.15 (mae = 0.31)" in body["message"] and "\n" not in body["message"]
    assert aliases(kit, model) == {"champion": 1}
    assert len(enforcing.events(model)) == 1 and enforcing.active(model) == 1

    kit.client.set_model_version_tag(model, "2", "viralab.force_reason", "hotfix for incident 7")
    forced = ui_alias(enforcing, model, 2)
    assert forced.status_code == 200, forced.text
    assert aliases(kit, model) == {"champion": 2}
    last = enforcing.events(model)[-1]
    assert (last["from_version"], last["to_version"], last["forced"]) == (1, 2, True)
    assert last["reason"] == "hotfix for incident 7" and not last["gates"]["passed"]
    assert enforcing.active(model) == 2

    removed = ui_alias(enforcing, model, 2, method="DELETE")
    assert removed.status_code == 200, removed.text
    assert aliases(kit, model) == {}
    assert enforcing.events(model)[-1]["kind"] == "removal"
    assert enforcing.active(model) is None


def test_rest_path_and_unguarded_aliases(enforcing, monkeypatch):
    kit = kit_on(enforcing, monkeypatch)
    kit.quick_version("youtube-lstm-likes", {"mae_scaled": 0.9})  # fails its gates
    rest = requests.post(
        f"{enforcing.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": "youtube-lstm-likes", "alias": "champion", "version": "1"},
        timeout=60,
    )
    assert rest.status_code == 403 and rest.json()["error_code"] == "PERMISSION_DENIED"
    # another alias, or a model without gates, is MLflow's business alone
    kit.client.set_registered_model_alias("youtube-lstm-likes", "candidate-x", "1")
    kit.quick_version("scratch-model", {"mae": 9.0})
    kit.client.set_registered_model_alias("scratch-model", "champion", "1")
    assert aliases(kit, "scratch-model") == {"champion": 1}
    assert enforcing.events("scratch-model") == []


def test_warn_lets_a_failing_version_through_flagged(warning, monkeypatch):
    kit = kit_on(warning, monkeypatch)
    kit.quick_version("preference", BAD)
    response = ui_alias(warning, "preference", 1)
    assert response.status_code == 200, response.text
    assert aliases(kit, "preference") == {"champion": 1}
    tags = kit.client.get_model_version("preference", "1").tags
    assert tags["viralab.promotion_flagged"].startswith("1 gate(s) failed: FAIL mae < 0.15")
    (event,) = warning.events("preference")
    assert event["forced"] and "registry.guard.policy=warn" in event["reason"]
    assert warning.active("preference") == 1
