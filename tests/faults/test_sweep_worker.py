"""Killing a sweep worker mid-trial loses nothing: the other worker finishes the study.

Two worker processes (`workers=2`) share one SQLite Optuna storage with heartbeats on; worker
2 gets SIGKILL in the middle of a trial. Its trial turns stale after the grace period, Optuna
fails it and queues a retry with the same parameters, worker 1 runs that and the rest of
worker 2's share, and the coordinator ends the dead trial's MLflow run KILLED. A resume finds
nothing RUNNING.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 6


def _sweep(tmp: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlruns/mlflow.db"}
    env.pop("VIRALAB_OPTUNA_STORAGE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "viralab.sweep", "sweep=ridge", "data.n_videos=200",
         "sweep.study_name=fault", "sweep.heartbeat_interval=1", "sweep.grace_period=3",
         f"hydra.run.dir={tmp}/hydra", *args],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="fault", storage=storage).get_trials()
    except Exception:  # not created yet
        return []


def _kill_mid_trial(
    storage: str, trial: optuna.trial.FrozenTrial
) -> optuna.trial.FrozenTrial | None:
    """SIGKILL the trial's worker only if the trial is still running once the worker is frozen.

    The trial seen RUNNING a moment ago may have finished since (a ridge trial takes about a
    second; on a loaded machine polling lags): freezing the worker first (SIGSTOP) makes the
    check and the kill see the same state. None (worker resumed) when the trial had finished
    or the storage could not be read.
    """
    pid = int(trial.user_attrs["viralab.pid"])
    os.kill(pid, signal.SIGSTOP)
    now = next((t for t in _trials(storage) if t.number == trial.number), None)
    if now is not None and now.state.name == "RUNNING":
        os.kill(pid, signal.SIGKILL)
        return now
    os.kill(pid, signal.SIGCONT)
    return None


def test_a_killed_worker_s_trials_are_finished_by_the_other(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    coordinator = _sweep(tmp_path, f"n_trials={N_TRIALS}", "workers=2")
    victim = None
    try:
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline:
            assert coordinator.poll() is None, coordinator.stdout.read()[-3000:]
            trials = _trials(storage)
            started = any(t.state.name == "COMPLETE" for t in trials)
            for t in trials:
                worker = t.user_attrs.get("viralab.worker")
                # mid-trial: its MLflow run is open (a kill before the run exists leaves
                # no run to end, which is not what this test is about)
                has_run = "mlflow_run_id" in t.user_attrs
                if started and t.state.name == "RUNNING" and worker == "2" and has_run:
                    victim = _kill_mid_trial(storage, t)
                    break
            time.sleep(0.2)
        assert victim is not None, "worker 2 never ran a trial"
        out, _ = coordinator.communicate(timeout=400)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
    assert coordinator.returncode == 0, out[-3000:]
    assert "killed by signal 9" in out

    trials = _trials(storage)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == N_TRIALS  # the study has every trial it was asked for
    dead = trials[victim.number]
    assert dead.state.name == "FAIL"
    retried = [t for t in complete if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].params == dead.params
    assert retried[0].user_attrs["viralab.worker"] == "1"

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    dead_run = mlflow.get_run(dead.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "KILLED"
    assert dead_run.data.tags["optuna.state"] == "FAIL"
    assert "died" in dead_run.data.tags["viralab.error"]
    parent = mlflow.get_run(dead_run.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["n_complete"] == N_TRIALS

    resumed = _sweep(tmp_path, "n_trials=1")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-3000:]
    assert not [t for t in _trials(storage) if t.state.name in ("RUNNING", "WAITING")]
    assert not mlflow.search_runs(
        experiment_names=["preference"], filter_string="attributes.status = 'RUNNING'",
        output_format="list",
    )  # fmt: skip
