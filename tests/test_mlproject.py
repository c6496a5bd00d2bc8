"""`mlflow run .` end to end: declared parameters, the one run it opens, registration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[1]


def _env(tracking_uri: str) -> dict[str, str]:
    """`--env-manager local` runs the MLproject command's `python` from PATH: ours first."""
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
    }


def test_mlflow_run_logs_into_the_run_it_opened(mlflow_isolation: str) -> None:
    env = _env(mlflow_isolation)
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    res = subprocess.run(
        [
            str(mlflow_bin),
            "run",
            str(PROJECT),
            "--env-manager",
            "local",
            "-P",
            "model=ridge",
            "-P",
            "overrides=data.n_videos=200 seed=7",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=PROJECT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    client = mlflow.MlflowClient()
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, "mlflow run must not leave a second, orphan run"
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.data.params["seed"] == "7"  # the overrides string was split for Hydra
    assert run.data.params["data.n_videos"] == "200"
    assert "mae" in run.data.metrics
    versions = client.search_model_versions("name='preference'")
    assert [v.run_id for v in versions] == [run.info.run_id]


def test_mlflow_run_with_an_unknown_model_fails_the_run(mlflow_isolation: str) -> None:
    env = _env(mlflow_isolation)
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    res = subprocess.run(
        [str(mlflow_bin), "run", str(PROJECT), "--env-manager", "local", "-P", "model=nope"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=PROJECT,
    )
    assert res.returncode != 0
    assert "unknown model 'nope'" in res.stderr
    client = mlflow.MlflowClient()
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert [r.info.status for r in runs] == ["FAILED"]
