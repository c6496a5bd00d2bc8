"""Credentialed overrides are refused, and the run `mlflow run` logged them in is purged."""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from pathlib import Path

import mlflow
import pytest

from viralab.entrypoint import install_guards, refuse_secret_overrides, secret_override_reason
from viralab.errors import ConfigError

PASSWORD = "p/a@s:s%w0rd-7"
URL = "postgresql://alice:p%2Fa%40s%3As%25w0rd-7@db:5432/app"


@pytest.mark.parametrize(
    ("override", "env"),
    [
        (f"data.url={URL}", "VIRALAB_DATABASE_URL"),
        (f"data.url='{URL}'", "VIRALAB_DATABASE_URL"),
        ("tracking.uri=http://alice:pw12@mlflow:5000", "MLFLOW_TRACKING_URI"),
        ("sweep.storage=postgresql://u:pw12@h/optuna", "VIRALAB_OPTUNA_STORAGE"),
        ("+db.password=hunter2", "README: Secrets"),
        ("~aws_secret_access_key=x", "README: Secrets"),
    ],
)
def test_credentialed_overrides_are_refused_naming_the_variable(override: str, env: str) -> None:
    reason = secret_override_reason(override)
    assert reason is not None and env in reason
    assert "hunter2" not in reason and "pw12" not in reason and PASSWORD not in reason


@pytest.mark.parametrize(
    "override",
    [
        "model.alpha=0.3",
        "data.url=sqlite:///data/viralab.db",
        "data.url=postgresql://alice@db/app",
        "features.require_version_key=comedyStyle",
        "sweep.params.alpha.key=alpha",
        "db.password=null",
        "data=postgres",
    ],
)
def test_ordinary_overrides_pass(override: str) -> None:
    assert secret_override_reason(override) is None
    refuse_secret_overrides([override])


def test_refusal_under_mlflow_run_purges_the_run_and_its_bytes(
    mlflow_isolation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What MLflow Projects leaves before our entry point starts: a run whose `overrides`
    param holds the raw value (and maybe an artifact); after the refusal none of it is left."""
    store = Path(mlflow_isolation.removeprefix("sqlite:///"))
    experiment = mlflow.create_experiment("x", artifact_location=(store.parent / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_param("overrides", f"data.url={URL} seed=1")
        mlflow.log_text(URL, "leak.txt")
        kept = mlflow.MlflowClient().create_run(experiment).info.run_id  # another run: kept
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with pytest.raises(ConfigError) as err:
        refuse_secret_overrides(["seed=1", f"data.url={URL}"])
    message = str(err.value)
    assert "VIRALAB_DATABASE_URL" in message and "purged" in message
    assert run.info.run_id in message and PASSWORD not in message and "%2F" not in message
    client = mlflow.MlflowClient()
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_run(run.info.run_id)
    assert client.get_run(kept).info.lifecycle_stage == "active"
    for path in [store, *store.parent.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert b"p%2Fa%40s" not in data and PASSWORD.encode() not in data, path


def test_uncaught_tracebacks_are_redacted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # what install_guards sets; undone afterwards
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    factory, hook = logging.getLogRecordFactory(), sys.excepthook
    try:
        install_guards()
        try:
            raise RuntimeError("cannot reach http://alice:hunter22@mlflow:5000")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        sys.excepthook = hook
        logging.setLogRecordFactory(factory)
        logging.captureWarnings(False)
    err = capsys.readouterr().err
    assert "RuntimeError: cannot reach http://alice:***@mlflow:5000" in err
    assert "hunter22" not in err
