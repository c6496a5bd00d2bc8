"""Cheaper tracking keeps what a run logs: the same params, metrics, tags and artifacts as before
(`fixtures/trial_run_shape_before.json`, written from the code before the change), bar the
deliberate changes listed in `CHANGES` (and in the README's "Sweeps" section); a sweep killed
mid-trial keeps every completed trial; the trials' config composed once equals Hydra's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import optuna
import psutil
import pytest
from omegaconf import OmegaConf

from viralab.config import compose, to_safe_container
from viralab.sweeps.plan import TrialComposer
from viralab.sweeps.runner import run_sweep
from viralab.sweeps.space import parse_space
from viralab.tracking.tags import (
    CORRELATIONS_PATH,
    CORRELATIONS_RUN_ID,
    DATASET_DIGEST,
    DATASET_NAME,
    DATASET_RUN_ID,
    FEATURE_METADATA_PATH,
    FEATURE_METADATA_RUN_ID,
    SWEEP_COMMAND,
    SWEEP_INVOCATION,
)

FIXTURE = Path(__file__).parent / "fixtures" / "trial_run_shape_before.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATASET = "preference-ratings-sample"
DATASET_TAGS = {DATASET_DIGEST, DATASET_NAME, DATASET_RUN_ID}
METADATA_TAGS = {FEATURE_METADATA_RUN_ID, FEATURE_METADATA_PATH}
#: The correlation table, logged once per content on the parent (issue 18)
CORRELATION_TAGS = {CORRELATIONS_RUN_ID, CORRELATIONS_PATH}
SHARED_CORRELATIONS = {"correlations/<digest>.csv"}
#: The parent's copy of the trials' feature metadata, its digest replaced (see `shape`).
SHARED_METADATA = "feature_metadata/<digest>.json"
GATE_TAGS = {"viralab.gate_set.digest", "viralab.gate_set.held_back"}
#: MLflow's own tags of a run opened with `mlflow.start_run` (a training run has them too).
SOURCE_TAGS = {"mlflow.source.name", "mlflow.source.type", "mlflow.user"}
#: (run, field) -> (removed, added): what a run logs differently on purpose.
CHANGES: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    # the dataset is logged once, on the parent, and referenced by each trial (see below)
    ("parent", "inputs"): (set(), {DATASET}),
    ("parent", "tags"): (set(), {SWEEP_INVOCATION}),  # tells a dead parent from a live one
    # issue 13: training holds the registered model's frozen gate set back and says how much
    ("trial", "metrics"): (set(), {"gate_set_held_back"}),
    ("train", "metrics"): (set(), {"gate_set_held_back"}),
    # the sweep opens a trial's run with `mlflow.start_run` and hands it to `train()` (it was
    # created with the client and re-opened by id): MLflow adds its source tags
    ("trial", "tags"): (
        set(),
        DATASET_TAGS | GATE_TAGS | SOURCE_TAGS | METADATA_TAGS | CORRELATION_TAGS,
    ),
    ("train", "tags"): (set(), GATE_TAGS),
    ("trial", "inputs"): ({DATASET}, set()),
    # a run without a model (a lean trial) skips the drift reference and the scored test rows:
    # only a model's run is ever read for them (retrain's drift trigger and challenger check,
    # the registry's fallback comparison)
    # the feature metadata (57 KB, the same in every trial of a sweep) is logged once per
    # content on the parent, as `feature_metadata/<digest>.json`, and referenced by each trial
    # (tags `viralab.feature_metadata.run_id` and `.path`); a training run still logs its own
    # the same for the correlation table (issue 18): it describes the training data as the
    # trial's features see it (tags `viralab.correlations.*`)
    ("trial", "artifacts"): (
        {
            "drift/reference.json",
            "eval/test_set.parquet",
            "feature_metadata.json",
            "correlations.csv",
        },
        set(),
    ),
    ("parent", "artifacts"): (set(), {SHARED_METADATA} | SHARED_CORRELATIONS),
}


def shape(run_id: str) -> dict[str, list[str]]:
    """The names a run logged: params, metrics, tags, artifact paths, dataset inputs."""
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    artifacts: list[str] = []

    def walk(path: str | None = None) -> None:
        for item in client.list_artifacts(run_id, path):
            if item.is_dir:
                walk(item.path)
            else:
                artifacts.append(item.path)

    walk()
    shared = re.compile(r"(feature_metadata/[0-9a-f]{16}\.json|correlations/[0-9a-f]{16}\.csv)")
    return {
        "params": sorted(run.data.params),
        "metrics": sorted(run.data.metrics),
        "tags": sorted(run.data.tags),
        "artifacts": sorted(
            re.sub(r"/[0-9a-f]{16}\.", "/<digest>.", a) if shared.fullmatch(a) else a
            for a in artifacts
        ),
        "inputs": sorted(d.dataset.name for d in (run.inputs.dataset_inputs or [])),
    }


def expected(kind: str) -> dict[str, set[str]]:
    before = json.loads(FIXTURE.read_text())[kind]
    out = {}
    for field, names in before.items():
        removed, added = CHANGES.get((kind, field), (set(), set()))
        out[field] = (set(names) - removed) | added
    return out


#: Config params that other issues changed on purpose in `conf/` (13: gate sets, guard; 14:
#: retrain allowlist; 16: scale-free forecaster gates, data.split; 17: the prediction log's
#: switch, registry.ab). The resolved config is logged as params, so these follow `conf/`,
#: not the tracking code this test guards.
CONFIG_PARAM_PREFIXES = ("registry.", "retrain.", "data.split", "tracking.prediction_log")


def _tracking_params(names: set[str]) -> set[str]:
    return {n for n in names if not n.startswith(CONFIG_PARAM_PREFIXES)}


#: MLflow's git tags other than the commit (branch, repo URL, dirty, diff) follow where the
#: entry script lives (a git checkout, a branch, a remote), not the tracking code tested here.
GIT_CONTEXT_TAGS = (
    "mlflow.source.git.branch",
    "mlflow.source.git.repoURL",
    "mlflow.source.git.dirty",
    "mlflow.source.git.diff",
)


def assert_same_shape(kind: str, run_id: str) -> None:
    now = {k: set(v) for k, v in shape(run_id).items()}
    want = expected(kind)
    now["tags"] = {t for t in now["tags"] if t not in GIT_CONTEXT_TAGS}
    if "params" in want:
        now["params"], want["params"] = (
            _tracking_params(now["params"]),
            _tracking_params(want["params"]),
        )
    for field in want:
        assert now[field] == want[field], (
            f"{kind} {field}: missing {sorted(want[field] - now[field])}, "
            f"new {sorted(now[field] - want[field])}"
        )


def _children(parent_id: str) -> list[Any]:
    runs = mlflow.MlflowClient().search_runs(
        [mlflow.get_run(parent_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
    )
    return sorted(runs, key=lambda r: int(r.data.tags["optuna.trial_number"]))


def test_the_trials_config_composed_once_equals_hydras_composition() -> None:
    space = parse_space(
        OmegaConf.create(
            {
                "alpha": {"key": "model.alpha", "type": "float", "low": 0.001, "high": 100.0},
                "scaling": {"key": "features.scaling", "type": "categorical",
                            "choices": ["min-max", "z-score", "robust"]},
                "k": {"key": "features.select_k", "type": "categorical", "choices": [20, 0]},
            }
        )
    )  # fmt: skip
    base = ["model=ridge", "task.multi_output=false", "log_model=false", "register=false"]
    composer = TrialComposer(base, [k for p in space.params for k in p.keys])
    assert composer.fast
    for point in ({"alpha": 0.37, "scaling": "robust", "k": 20},
                  {"alpha": 12.0, "scaling": "z-score", "k": 0}):  # fmt: skip
        overrides = [*base, *space.overrides(point), "run_name=t-1"]
        fast = composer.compose({**space.key_values(point), "run_name": "t-1"}, overrides, "x")
        assert OmegaConf.to_container(fast, resolve=True) == OmegaConf.to_container(
            compose(overrides), resolve=True
        )
        # its logged form, built from the base's, is what resolving and redacting it gives
        assert composer.safe_container(fast) == to_safe_container(fast)
    # a swept value is redacted as in the whole config (a credentialed URL as the run name)
    named = composer.compose({"run_name": "https://u:hunter2@h/x"}, [], "x")
    assert "hunter2" not in str(composer.safe_container(named))
    assert composer.safe_container(named) == to_safe_container(named)
    # a swept key that selects a config group cannot be set on a copy: Hydra composes it
    assert not TrialComposer(base, ["model"]).fast


def test_the_sqlite_store_is_opened_in_wal_mode(mlflow_isolation: str) -> None:
    from viralab.tracking import configure_tracking, ensure_experiment

    configure_tracking()
    ensure_experiment("wal-check")
    path = mlflow_isolation.removeprefix("sqlite:///")
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.slow
def test_a_trial_and_a_training_run_log_what_they_logged_before() -> None:
    result = run_sweep(["sweep=ridge", "n_trials=2", "data.n_videos=200"])
    children = _children(result.parent_run_id)
    assert len(children) == 2
    for child in children:
        assert_same_shape("trial", child.info.run_id)
        tags = child.data.tags
        assert tags[DATASET_RUN_ID] == result.parent_run_id
        assert tags[FEATURE_METADATA_RUN_ID] == result.parent_run_id
        assert tags[CORRELATIONS_RUN_ID] == result.parent_run_id
    assert_same_shape("parent", result.parent_run_id)
    # both trials reference the one copy on the parent: what a training run logs itself
    paths = {c.data.tags[FEATURE_METADATA_PATH] for c in children}
    assert len(paths) == 1
    shared = json.loads(mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/{paths.pop()}"))
    parent_input = mlflow.get_run(result.parent_run_id).inputs.dataset_inputs[0].dataset
    assert parent_input.digest == children[0].data.tags[DATASET_DIGEST]

    from viralab.train import train

    train(compose(["model=ridge", "data.n_videos=200", "register=false", "run_name=shape"]))
    run = mlflow.search_runs(
        experiment_names=["preference"], filter_string="tags.mlflow.runName = 'shape'",
        output_format="list",
    )[0]  # fmt: skip
    assert_same_shape("train", run.info.run_id)
    own = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/feature_metadata.json"))
    assert own == shared  # the same ratings: the same metadata

    # the correlation table a trial points to is what a training run with the trial's own
    # command logs (they follow the trial's feature settings, e.g. its scaling)
    child = children[0]
    command = shlex.split(child.data.tags[SWEEP_COMMAND].removeprefix("python -m viralab.train "))
    train(compose([*[o for o in command if not o.startswith("run_name=")], "run_name=again"]))
    again = mlflow.search_runs(
        experiment_names=["preference"], filter_string="tags.mlflow.runName = 'again'",
        output_format="list",
    )[0]  # fmt: skip
    path = child.data.tags[CORRELATIONS_PATH]
    assert path.startswith("correlations/") and path.endswith(".csv")
    theirs = mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/{path}")
    assert theirs == mlflow.artifacts.load_text(f"runs:/{again.info.run_id}/correlations.csv")


@pytest.mark.slow
def test_against_a_tracking_server_a_trial_logs_the_same_and_its_files_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server path: the run handed to `train()`, the artifacts uploaded concurrently."""
    from tests.support.services import require_service, start_mlflow_server

    try:
        server = start_mlflow_server(
            f"sqlite:///{tmp_path}/server.db", artifacts_destination=str(tmp_path / "artifacts")
        )
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server: {exc}")
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("VIRALAB_OPTUNA_STORAGE", f"sqlite:///{tmp_path}/optuna.db")
        mlflow.set_tracking_uri(server.url)
        result = run_sweep(["sweep=ridge", "n_trials=2", "data.n_videos=200"])
        assert result.storage == f"sqlite:///{tmp_path}/optuna.db"
        children = _children(result.parent_run_id)
        assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
        for child in children:
            assert_same_shape("trial", child.info.run_id)
            assert child.data.tags["optuna.state"] == "COMPLETE"
        # an uploaded file is the one `mlflow.log_dict` would have written
        local = mlflow.artifacts.download_artifacts(
            run_id=children[0].info.run_id,
            artifact_path="feature_weights.json",
            dst_path=str(tmp_path / "dl"),
        )
        weights = json.loads(Path(local).read_text())
        assert weights and Path(local).read_text() == json.dumps(weights, indent=2, default=str)
    finally:
        server.stop()


def _sweep_process(tmp: Path, *args: str, tracking_uri: str | None = None) -> subprocess.Popen:
    (tmp / "mlruns").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri or f"sqlite:///{tmp}/mlruns/mlflow.db",
        # beside the embedded store; a server's sweep would default to the working directory's
        "VIRALAB_OPTUNA_STORAGE": f"sqlite:///{tmp}/mlruns/optuna.db",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "viralab.sweep", "sweep=ridge", "data.n_videos=200",
         "sweep.heartbeat_interval=1", "sweep.grace_period=2",
         f"hydra.run.dir={tmp}/hydra", *args],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for(predicate: Any, timeout: float, proc: subprocess.Popen | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep ended early:\n{proc.stdout.read()[-3000:]}")
        try:
            value = predicate()
        except Exception:  # the storage or the store is not created yet
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s")


@pytest.fixture(params=["embedded", "server"])
def sweep_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The sweep's tracking store: the embedded SQLite file, or a real `mlflow server` (whose
    background requests the sweep makes in its tracking writer process)."""
    if request.param == "embedded":
        yield f"sqlite:///{tmp_path}/mlruns/mlflow.db"
        return
    from tests.support.services import require_service, start_mlflow_server

    try:
        server = start_mlflow_server(
            f"sqlite:///{tmp_path}/server.db", artifacts_destination=str(tmp_path / "artifacts")
        )
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


def _writers(pid: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if "viralab.tracking.writer_process" in p.cmdline()
    ]


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_sweep_killed_mid_trial_keeps_every_completed_trial_and_is_cleaned_on_resume(
    tmp_path: Path, mlflow_isolation: str, sweep_store: str
) -> None:
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    server = sweep_store.startswith("http")
    proc = _sweep_process(tmp_path, "n_trials=30", tracking_uri=sweep_store)

    def mid_trial() -> list[optuna.trial.FrozenTrial] | None:
        trials = optuna.load_study(study_name="ridge", storage=storage).get_trials()
        done = [t for t in trials if t.state.name == "COMPLETE"]
        # mid-training: the running trial's run is open (not in the instant before it is)
        running = [
            t for t in trials if t.state.name == "RUNNING" and "mlflow_run_id" in t.user_attrs
        ]
        return trials if len(done) >= 2 and running else None

    try:
        wait_for(mid_trial, 240, proc)
        writers = _writers(proc.pid)
        assert len(writers) == (1 if server else 0)  # only a server's sweep starts one
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the writer reads EOF, finishes what it held and exits with its sweep
    assert wait_for(lambda: all(_gone(w) for w in writers), 30)
    mlflow.set_tracking_uri(sweep_store)
    study = optuna.load_study(study_name="ridge", storage=storage)
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    killed = [t for t in trials if t.state.name == "RUNNING"]
    assert len(complete) >= 2 and len(killed) == 1
    for t in complete:  # everything a finished trial logged reached the store
        run = mlflow.get_run(t.user_attrs["mlflow_run_id"])
        # against a server a trial's status update goes after it, and is settled before the
        # next trial's run opens: the running trial's run was open when the kill came
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.state"] == "COMPLETE"
        assert run.data.metrics["cv_mae"] == pytest.approx(t.value)
        assert_same_shape("trial", run.info.run_id)
    parent_id = mlflow.get_run(complete[0].user_attrs["mlflow_run_id"]).data.tags[
        "mlflow.parentRunId"
    ]
    assert mlflow.get_run(parent_id).info.status == "RUNNING"  # nobody closed it

    time.sleep(3)  # past the grace period: the killed trial's heartbeat is stale
    resumed = _sweep_process(tmp_path, "n_trials=1", tracking_uri=sweep_store)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-3000:]
    trials = optuna.load_study(study_name="ridge", storage=storage).get_trials()
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    dead = trials[killed[0].number]
    assert dead.state.name == "FAIL"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == dead.params
    for t in complete:
        assert mlflow.get_run(t.user_attrs["mlflow_run_id"]).info.status == "FINISHED"
    assert mlflow.get_run(parent_id).info.status == "KILLED"
    dead_run = mlflow.get_run(dead.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "KILLED"
    assert dead_run.data.tags["optuna.state"] == "FAIL"
    running = mlflow.search_runs(
        experiment_names=["preference"], filter_string="attributes.status = 'RUNNING'",
        output_format="list",
    )  # fmt: skip
    assert running == []
