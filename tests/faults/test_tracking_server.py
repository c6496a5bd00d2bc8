"""The tracking server dies: mid training run, and under a process that is scoring.

A real `mlflow server` (SQLite backend, local artifacts) is started per test and killed with
SIGKILL (its whole process group: uvicorn and the job consumers), as a crash would.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import RunStatus

from tests.support.services import ManagedProcess, require_service, start_mlflow_server
from viralab.config import compose
from viralab.data.sample import generate_ratings
from viralab.serve import predict as serving
from viralab.train import train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[tuple[ManagedProcess, str]]:
    backend = f"sqlite:///{tmp_path}/backend.db"
    try:
        server = start_mlflow_server(backend, artifacts_destination=str(tmp_path / "artifacts"))
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server: {exc}")
    yield server, backend
    _kill(server)


def _kill(server: ManagedProcess) -> None:
    """SIGKILL the server's process group (we started it with its own session)."""
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _running_run(client: mlflow.MlflowClient, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiments = [e.experiment_id for e in client.search_experiments()]
        running = "attributes.status = 'RUNNING'"
        runs = client.search_runs(experiments, running) if experiments else []
        if runs:
            return runs[0].info.run_id
        time.sleep(0.3)
    raise AssertionError("the training run never started")


def test_training_run_ends_with_one_line_when_the_server_dies(
    tracking_server: tuple[ManagedProcess, str], tmp_path: Path
) -> None:
    server, backend = tracking_server
    app_db = tmp_path / "viralab.db"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server.url,
        # retries off, as in the report; with MLflow's defaults (kept for training: long
        # uploads deserve retries) the same line comes after ~4 minutes of retrying
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "VIRALAB_DATABASE_URL": f"sqlite:///{app_db}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "viralab.train", "data.n_videos=220"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _running_run(mlflow.MlflowClient(tracking_uri=server.url))
        _kill(server)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    errors = _error_lines(err)
    assert len(errors) == 1 and errors[0].startswith("error: tracking server unreachable"), err
    assert errors[0] == err.strip().splitlines()[-1]  # the last word, nothing after it
    # nothing half-written: no model version from the dead run, no mirror rows
    store = mlflow.MlflowClient(tracking_uri=backend, registry_uri=backend)
    assert store.get_run(run_id).info.status in {"RUNNING", RunStatus.to_string(RunStatus.FAILED)}
    assert store.search_model_versions(f"run_id = '{run_id}'") == []
    if app_db.exists():
        with sqlite3.connect(app_db) as conn:
            tables = {r[0] for r in conn.execute("select name from sqlite_master")}
            if "model_versions" in tables:
                assert conn.execute("select count(*) from model_versions").fetchone()[0] == 0


def test_scoring_keeps_answering_and_the_cli_fails_fast_when_the_server_dies(
    tracking_server: tuple[ManagedProcess, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from typer.testing import CliRunner

    from viralab.cli import app

    server, _ = tracking_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    # the prediction log's identity lookup (a daemon thread per load) would outlive the test,
    # retrying against the dead server for minutes with MLflow's defaults
    monkeypatch.setenv("VIRALAB_SERVED_MODEL", "preference")
    monkeypatch.setenv("VIRALAB_SERVED_VERSION", "1")
    mlflow.set_tracking_uri(server.url)
    serving.clear_caches()
    train(compose(["data.n_videos=220"]))
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "1")
    doc = generate_ratings(n_videos=3, seed=5)[0]["video"]["visual_analysis"]
    fast = {"resolve_ttl": 0.2, "refresh_wait": 1.0}
    held = serving.predict_virality_score(doc, **fast)

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # lookups end; threads too
    _kill(server)
    caplog.set_level(logging.WARNING, logger="viralab.serve.predict")
    for _ in range(4):
        time.sleep(0.3)  # past the TTL: every call re-resolves
        started = time.perf_counter()
        assert serving.predict_virality_score(doc, **fast) == held
        assert time.perf_counter() - started < 5
    outage = [r.getMessage() for r in caplog.records if "registry unreachable" in r.getMessage()]
    assert len(outage) == 1 and "keeps serving version 1" in outage[0], caplog.text

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")  # the CLI's own limits apply
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    serving.clear_caches()
    started = time.perf_counter()
    res = CliRunner().invoke(app, ["predict", str(path), "--model", "preference"])
    assert time.perf_counter() - started < 15  # imports excluded (done above)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("error: ") and server.url.split("//")[1] in res.output

    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    env.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES", None)
    proc = subprocess.run(
        [sys.executable, "-m", "viralab.cli", "predict", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(_error_lines(proc.stderr)) == 1, proc.stderr
