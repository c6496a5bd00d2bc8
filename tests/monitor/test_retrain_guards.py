"""Guards around `viralab retrain run`: one retrain per model at a time (file lock, PostgreSQL
advisory lock), a refused challenger's data does not trigger again, and a champion that cannot
be scored is an error (exit 2), not "nothing to do"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.monitor.test_triggers import (  # noqa: F401  (fixtures)
    FORECASTER,
    blank,
    blank_store,
    champion,
    champion_store,
    new_ratings,
    ratings_overrides,
    register_forecaster,
    stats_overrides,
    stats_rows,
)
from viralab.cli import app
from viralab.monitor.commands import EXIT_DUE, EXIT_ERROR, EXIT_LOCKED, EXIT_REFUSED
from viralab.monitor.lock import RetrainLocked, holder_name, retrain_lock
from viralab.tracking.tags import RETRAIN_REFUSED

HOLD = """
import sys, time
from viralab.monitor.lock import retrain_lock
with retrain_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def hold_in_subprocess(model: str, url: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, model, url], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def acquire_within(model: str, url: str, seconds: float) -> str:
    """Take and release the lock, retrying for a moment (a killed PostgreSQL session ends
    asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with retrain_lock(model, url) as how:
                return how
        except RetrainLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_file_lock_refuses_a_second_holder_and_is_released(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app/viralab.db"
    with retrain_lock("preference", url) as how:
        assert how == f"lock file {tmp_path}/app/locks/retrain-preference.lock"
        locked = pytest.raises(RetrainLocked, match=f"held by {holder_name()} since ")
        with locked as caught, retrain_lock("preference", url):
            pass
        assert "\n" not in str(caught.value)
        with retrain_lock("youtube-lstm-views", url):  # one lock per model
            pass
    with retrain_lock("preference", url):
        pass


def test_run_while_locked_exits_75_in_one_line(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path}/viralab.db"
    monkeypatch.setenv("VIRALAB_DATABASE_URL", url)
    with retrain_lock("preference", url):
        result = CliRunner().invoke(app, ["retrain", "run", "preference", "--force"])
    assert result.exit_code == EXIT_LOCKED, result.output
    (line,) = error_lines(result.output)
    assert "another retrain of preference is running" in line and holder_name() in line


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_holder_releases_the_lock(backend: str, tmp_path: Path, request) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/viralab.db"
    )
    proc = hold_in_subprocess("preference", url)
    try:
        with pytest.raises(RetrainLocked) as caught, retrain_lock("preference", url):
            pass
        message = str(caught.value)
        assert f":{proc.pid}" in message and "\n" not in message
        if backend == "postgresql":
            assert "PostgreSQL advisory lock 'viralab.retrain:preference'" in message
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    how = acquire_within("preference", url, seconds=10)
    assert ("advisory" in how) == (backend == "postgresql")


@pytest.mark.usefixtures("blank")
def test_a_champion_that_cannot_be_scored_is_an_error_not_nothing_to_do(tmp_path: Path) -> None:
    frame, snapshot = stats_rows()
    register_forecaster(tagged=True, snapshot=snapshot, rows_in=0)
    overrides = stats_overrides(tmp_path, frame)
    runner = CliRunner()
    for command in (["check"], ["run"]):
        result = runner.invoke(app, ["retrain", *command, FORECASTER, *overrides])
        assert result.exit_code == EXIT_ERROR, result.output
        (line,) = error_lines(result.output)
        assert line.startswith(f"error: cannot judge {FORECASTER} v1: performance_degradation:")
        assert "cannot score the new rows" in line
        assert "nothing to do" not in result.output


@pytest.mark.slow
@pytest.mark.usefixtures("champion")
def test_a_refused_challenger_quiets_the_trigger_on_the_same_data(
    tmp_path: Path, monkeypatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("VIRALAB_DATABASE_URL", f"sqlite:///{tmp_path}/viralab.db")
    runner = CliRunner()
    overrides = [
        *ratings_overrides(tmp_path, new_ratings(60)),
        "registry.gates.preference.thresholds.mae.lt=0.001",
    ]
    refused = runner.invoke(app, ["retrain", "run", "preference", *overrides])
    assert refused.exit_code == EXIT_REFUSED, refused.output
    tag = MlflowClient().get_registered_model("preference").tags[RETRAIN_REFUSED]
    assert '"version": "2"' in tag and '"n_new": 60' in tag and "mae < 0.001" in tag

    again = runner.invoke(app, ["retrain", "check", "preference", *overrides])
    assert again.exit_code == 0, again.output
    assert "nothing to do: already judged on this data: preference version 2" in again.output
    assert "trained on the same 60 new rows" in again.output
    quiet = runner.invoke(app, ["retrain", "run", "preference", *overrides])
    assert quiet.exit_code == 0 and "already judged on this data" in quiet.output
    assert len(MlflowClient().search_model_versions("name = 'preference'")) == 2

    manual = runner.invoke(app, ["retrain", "check", "preference", "--manual", *overrides])
    assert manual.exit_code == EXIT_DUE, manual.output
    more = ratings_overrides(tmp_path, new_ratings(60) + new_ratings(5, seed=11))
    changed = runner.invoke(app, ["retrain", "check", "preference", *more])
    assert changed.exit_code == EXIT_DUE, changed.output
