"""A retrain killed mid-training (SIGKILL): its lock goes with it, nothing is left
half-registered, and the next retrain proceeds (closing the orphaned runs as KILLED)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.monitor.test_triggers import (  # noqa: F401  (fixtures)
    champion,
    champion_store,
    new_ratings,
    ratings_overrides,
)
from viralab.monitor.lock import retrain_lock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "viralab.cli"]


def training_child(client: MlflowClient) -> tuple[str, str] | None:
    """(parent, child) run ids once a retrain's training run is RUNNING."""
    exp = client.get_experiment_by_name("retraining")
    if exp is None:
        return None
    for run in client.search_runs(
        [exp.experiment_id], filter_string="attributes.status = 'RUNNING'"
    ):
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent:
            return parent, run.info.run_id
    return None


@pytest.mark.usefixtures("champion")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_retrain_killed_mid_training_leaves_nothing_half_done(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/viralab.db"
    )
    env = {**os.environ, "VIRALAB_DATABASE_URL": url, "MLFLOW_DISABLE_TELEMETRY": "true"}
    overrides = ratings_overrides(tmp_path, new_ratings(60))
    command = [*CLI, "retrain", "run", "preference", "--force", *overrides]
    client = MlflowClient()

    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    found = None
    while found is None and time.monotonic() < deadline and proc.poll() is None:
        found = training_child(client)
        time.sleep(0.05)
    assert found is not None, f"no training run seen (rc {proc.poll()})"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    parent_id, child_id = found
    assert client.get_run(parent_id).info.status == "RUNNING"  # orphaned by the kill

    # the lock died with the process (file lock: the kernel; advisory lock: the session)
    deadline = time.monotonic() + 15
    while True:
        try:
            with retrain_lock("preference", url):
                break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

    after = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "is the challenger" in after.stdout
    assert "Traceback" not in after.stderr

    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["viralab.retrain.outcome"] == "killed"
    assert client.get_run(child_id).info.status in {"KILLED", "FINISHED"}
    versions = client.search_model_versions("name = 'preference'")
    for found in versions:  # every version is the champion, the challenger, or abandoned
        v = client.get_model_version("preference", str(found.version))
        assert v.aliases or v.tags.get("viralab.retrain.abandoned") == parent_id, v
    challenger = client.get_model_version_by_alias("preference", "challenger")
    assert challenger.tags["viralab.challenges"] == "preference/v1"
    assert challenger.tags["viralab.retrain_run_id"] != parent_id
    assert str(client.get_model_version_by_alias("preference", "champion").version) == "1"
