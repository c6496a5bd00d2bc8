"""The sweep entry points: `viralab sweep ...` and `python -m viralab.sweep` (MLproject)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from viralab.sweeps.cli import app

PROJECT = Path(__file__).resolve().parents[2]


def test_list_shows_every_space_with_its_metric() -> None:
    res = CliRunner().invoke(app, ["list"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [line.split()[0] for line in lines] == [
        "gradient_boosting",
        "lstm",
        "random_forest",
        "ridge",
    ]
    assert "sequence_length, lstm_units, dropout_rate" in res.output


def test_run_with_an_unknown_space_is_one_error_line() -> None:
    res = CliRunner().invoke(app, ["run", "nope", "--trials", "2"])
    assert res.exit_code == 2
    assert "error: unknown sweep 'nope'; valid choices:" in res.output


def test_status_names_the_studies_a_storage_has(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    res = CliRunner().invoke(app, ["status", "ridge", "--storage", storage])
    assert res.exit_code == 2
    assert f"error: no study 'ridge' in {storage}; studies: none" in res.output


@pytest.mark.slow
@pytest.mark.integration
def test_module_entry_point_adopts_the_mlflow_run_id_as_its_parent(mlflow_isolation: str) -> None:
    """What `mlflow run . -e sweep -P sweep=ridge -P n_trials=2 -P overrides=...` executes."""
    client = mlflow.MlflowClient()
    launcher = client.create_run(client.create_experiment("launcher"))  # as mlflow run does
    env = {**os.environ, "MLFLOW_RUN_ID": launcher.info.run_id}
    res = subprocess.run(
        [sys.executable, "-m", "viralab.sweep", "sweep=ridge", "n_trials=2", "workers=1",
         "data.n_videos=200 seed=3"],  # the MLproject `overrides` string arrives as one argument
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT,
        env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "trial    1 COMPLETE" in res.stdout
    parent = client.get_run(launcher.info.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["viralab.sweep"] == "ridge"
    children = client.search_runs(
        [launcher.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{launcher.info.run_id}'",
    )
    assert len(children) == 2
    assert {c.data.params["seed"] for c in children} == {"3"}
    assert {c.data.params["data.n_videos"] for c in children} == {"200"}
    others = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(others) == 3, "no orphan runs: the launcher's run is the parent"


@pytest.mark.slow
@pytest.mark.integration
def test_mlflow_run_sweep_entry_point(mlflow_isolation: str) -> None:
    import yaml

    entry_points = yaml.safe_load((PROJECT / "MLproject").read_text())["entry_points"]
    assert set(entry_points["sweep"]["parameters"]) >= {"sweep", "n_trials", "overrides"}
    bindir = str(Path(sys.executable).parent)
    res = subprocess.run(
        [str(Path(sys.executable).with_name("mlflow")), "run", str(PROJECT), "-e", "sweep",
         "--env-manager", "local", "-P", "sweep=ridge", "-P", "n_trials=2",
         "-P", "overrides=data.n_videos=200 seed=5"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT,
        env={**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    runs = mlflow.search_runs(search_all_experiments=True)
    parents = runs[runs["tags.mlflow.project.entryPoint"] == "sweep"]
    assert len(parents) == 1 and len(runs) == 3  # the launcher's run is the parent: no orphan
    parent_id = parents["run_id"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == parent_id]
    assert sorted(children["tags.optuna.trial_number"]) == ["0", "1"]
    assert set(children["params.seed"]) == {"5"}
