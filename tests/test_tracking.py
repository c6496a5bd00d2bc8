"""Tracking URI resolution, attaching to `mlflow run`'s run, offered runs, artifact batches."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest

from viralab.tracking import (
    artifact_batch,
    ensure_experiment,
    offer_active_run,
    resolve_tracking_uri,
    tracked_run,
)


def test_env_tracking_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert resolve_tracking_uri("sqlite:///mlruns/mlflow.db") == "http://example.invalid:5000"


def test_relative_sqlite_default_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    uri = resolve_tracking_uri(None)
    assert uri == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert (tmp_path / "mlruns").is_dir()


def test_new_experiment_keeps_artifacts_beside_the_sqlite_store(mlflow_isolation: str) -> None:
    exp_id = ensure_experiment("some experiment")
    location = mlflow.get_experiment(exp_id).artifact_location
    store_dir = Path(mlflow_isolation.removeprefix("sqlite:///")).parent
    assert location == (store_dir / "artifacts" / "some-experiment").as_uri()
    assert ensure_experiment("some experiment") == exp_id


def test_first_run_attaches_to_mlflow_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    exp_id = ensure_experiment("launcher")
    launched = mlflow.MlflowClient().create_run(exp_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", launched.info.run_id)
    with tracked_run(experiment="elsewhere", run_name="attached") as run:
        assert run.info.run_id == launched.info.run_id
        with tracked_run(experiment="elsewhere", run_name="child", nested=True) as child:
            assert child.info.run_id != launched.info.run_id
    finished = mlflow.get_run(launched.info.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.run_name == "attached"
    child_run = mlflow.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == launched.info.run_id
    assert child_run.info.experiment_id == exp_id  # children live with their parent


def test_run_ends_failed_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), tracked_run(experiment="e", run_name="boom") as run:
        run_id = run.info.run_id
        raise RuntimeError("bad thing")
    failed = mlflow.get_run(run_id)
    assert failed.info.status == "FAILED"
    assert "bad thing" in failed.data.tags["viralab.error"]


def test_an_offered_run_is_logged_into_and_left_open_for_its_opener() -> None:
    exp_id = ensure_experiment("offered")
    with (
        mlflow.start_run(experiment_id=exp_id, run_name="trial-0") as opened,
        offer_active_run(),
    ):
        with tracked_run(experiment="elsewhere", run_name="trial-0", tags={"k": "v"}) as run:
            assert run.info.run_id == opened.info.run_id
            with tracked_run(experiment="elsewhere", run_name="inner") as inner:
                assert inner.info.run_id != opened.info.run_id  # taken once: a child
        assert mlflow.active_run().info.run_id == opened.info.run_id  # not ended
        assert mlflow.get_run(opened.info.run_id).info.status == "RUNNING"
        with pytest.raises(RuntimeError), tracked_run(experiment="e", run_name="x"):
            raise RuntimeError("not offered twice")  # a new child, ended FAILED
    run = mlflow.get_run(opened.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["k"] == "v"
    assert mlflow.get_run(inner.info.run_id).data.tags["mlflow.parentRunId"] == run.info.run_id


def test_an_artifact_batch_writes_what_mlflow_log_dict_writes(tmp_path: Path) -> None:
    payload = {"b": [1, 2.5], "a": {"nested": Path("x")}}
    with mlflow.start_run() as run:
        mlflow.log_dict(payload, "direct/one.json")
        with artifact_batch() as batch:
            batch.dict(payload, "batched/one.json")
            batch.dict(payload, "batched/one.yaml")
            batch.text("hello", "batched/deep/t.txt")
        mlflow.log_dict(payload, "direct/one.yaml")
    root = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    for name in ("one.json", "one.yaml"):
        assert (root / "batched" / name).read_bytes() == (root / "direct" / name).read_bytes()
    assert (root / "batched/deep/t.txt").read_text() == "hello"
    with mlflow.start_run(), artifact_batch() as batch, pytest.raises(ValueError):
        batch.path("../outside.txt")


def test_a_batch_opened_inside_a_batch_of_the_same_run_uploads_once_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import viralab.tracking.artifacts as tracking  # where `artifact_batch` looks it up

    uploads: list[list[str]] = []
    upload = tracking.upload_artifacts

    def counted(local_dir: Path, artifact_uri: str, files: list[Path]) -> None:
        uploads.append(sorted(p.name for p in files))
        upload(local_dir, artifact_uri, files)

    monkeypatch.setattr(tracking, "upload_artifacts", counted)
    with mlflow.start_run() as run, artifact_batch() as outer:
        outer.text("a", "a.txt")
        with artifact_batch() as inner:
            assert inner is outer
            inner.text("b", "sub/b.txt")
        assert uploads == []  # the inner one did not upload on its own
        with mlflow.start_run(nested=True) as child, artifact_batch() as own:
            assert own is not outer  # another run: a batch of its own
            own.text("c", "c.txt")
        assert uploads == [["c.txt"]]
    assert uploads == [["c.txt"], ["a.txt", "b.txt"]]
    names = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert names == {"a.txt", "sub"}
    assert [f.path for f in mlflow.MlflowClient().list_artifacts(child.info.run_id)] == ["c.txt"]


def test_held_writes_reach_the_store_in_one_go_when_written() -> None:
    from viralab.tracking import (
        flush_held,
        held_writes,
        hold_writes,
        log_metrics,
        log_params,
        set_tags,
        write_held,
    )

    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        assert hold_writes(run_id) and not hold_writes(run_id)  # held once
        log_params({f"p{i}": i for i in range(150)})  # over one batch's 100 params
        log_metrics({"mae": 0.1, "r2": 0.8})
        set_tags({"a": "1"})
        with held_writes():  # an inner hold of the same run joins the outer one
            set_tags({"b": "2"})
        stored = client.get_run(run_id).data
        assert not stored.params and not stored.metrics and "a" not in stored.tags
        flush_held()  # written now, still holding
        set_tags({"c": "3"})
        stored = client.get_run(run_id).data
        assert len(stored.params) == 150 and stored.metrics == {"mae": 0.1, "r2": 0.8}
        assert {"a", "b"} <= set(stored.tags) and "c" not in stored.tags
        write_held(run_id)
        assert client.get_run(run_id).data.tags["c"] == "3"
        set_tags({"d": "4"})  # no longer held: written at once
        assert client.get_run(run_id).data.tags["d"] == "4"


def test_held_writes_are_written_when_the_body_raises() -> None:
    from viralab.tracking import held_writes, log_params

    with mlflow.start_run() as run, pytest.raises(RuntimeError), held_writes():
        log_params({"kept": "yes"})
        raise RuntimeError("training failed")
    assert mlflow.get_run(run.info.run_id).data.params == {"kept": "yes"}


def test_early_writes_go_while_the_run_goes_on_and_are_all_stored_when_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A held run with early writes (a trial against a server): its params and the files of a
    batch that ended are sent on background threads; `write_held` returns once all of them
    (and the held metrics and tags) are in the store, and removes the batch's folder."""
    import threading

    from viralab.tracking import hold_writes, log_metrics, log_params, set_tags, write_held
    from viralab.tracking.artifacts import Upload
    from viralab.tracking.held import _held

    release = threading.Event()  # the background writes wait until the body has gone on
    started: list[str] = []
    upload = Upload.__call__

    def slow_upload(self: Upload) -> None:
        started.append(Path(self.local_path).name)
        assert release.wait(10)
        upload(self)

    monkeypatch.setattr(Upload, "__call__", slow_upload)
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        assert hold_writes(run_id, early=True)
        log_params({f"p{i}": i for i in range(150)})  # 100 sent now, 50 held for the end
        assert len(_held[run_id].params) == 50
        with artifact_batch() as outer:
            with artifact_batch() as inner:
                inner.text("config", "config.yaml")
            # the inner batch's file is on its way while the body goes on (its thread may
            # take a moment to begin on a busy machine)
            assert _held[run_id].sent
            deadline = time.monotonic() + 10
            while not started and time.monotonic() < deadline:
                time.sleep(0.01)
            assert started == ["config.yaml"]
            outer.text("late", "sub/late.txt")
            root = outer.root
        assert root.exists()  # the uploads still need it
        log_metrics({"mae": 0.1})
        set_tags({"t": "1"})
        release.set()
        write_held(run_id)
        deadline = time.monotonic() + 10  # removed in the background once the uploads end
        while root.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not root.exists()
        stored = client.get_run(run_id).data
        assert len(stored.params) == 150 and stored.metrics == {"mae": 0.1}
        assert stored.tags["t"] == "1"
        names = {f.path for f in client.list_artifacts(run_id)}
        assert names == {"config.yaml", "sub"}
        assert [f.path for f in client.list_artifacts(run_id, "sub")] == ["sub/late.txt"]


def test_a_failed_early_write_fails_write_held_after_the_rest_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from viralab.tracking import hold_writes, log_metrics, write_held
    from viralab.tracking.artifacts import Upload

    def broken(self: Upload) -> None:
        raise OSError("the server went away")

    monkeypatch.setattr(Upload, "__call__", broken)
    with mlflow.start_run() as run:
        assert hold_writes(run.info.run_id, early=True)
        with artifact_batch() as batch:
            batch.text("x", "x.txt")
        log_metrics({"mae": 0.2})
        with pytest.raises(OSError, match="went away"):
            write_held(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"mae": 0.2}


def test_a_status_update_goes_beside_the_last_batch_with_early_writes_and_after_it_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`write_held(along=...)`: with early writes (a server) the caller's request (a trial's
    status update) is made while the last batch is in flight; without, after it, also when
    it raised. Either way `write_held` returns only once both are done."""
    import threading

    from viralab.tracking import hold_writes, log_metrics, write_held

    client = mlflow.MlflowClient()
    batch = client.log_batch
    in_flight = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def slow_batch(*args: object, **kwargs: object) -> None:
        in_flight.set()
        assert release.wait(10)
        batch(*args, **kwargs)
        seen.append("batch")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", lambda self, *a, **k: slow_batch(*a, **k))

    def status() -> None:
        assert in_flight.wait(10)  # the batch is on its way, not yet stored
        seen.append("status")
        release.set()

    with mlflow.start_run() as run:
        assert hold_writes(run.info.run_id, early=True)
        log_metrics({"mae": 0.1})
        write_held(run.info.run_id, along=status)
        assert seen == ["status", "batch"]  # both done on return
    assert mlflow.get_run(run.info.run_id).data.metrics == {"mae": 0.1}

    def broken(*args: object, **kwargs: object) -> None:
        seen.append("batch")
        raise OSError("the server went away")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", lambda self, *a, **k: broken(*a, **k))
    seen.clear()
    with mlflow.start_run() as run:
        assert hold_writes(run.info.run_id, early=False)
        log_metrics({"mae": 0.1})
        with pytest.raises(OSError, match="went away"):
            write_held(run.info.run_id, along=lambda: seen.append("status"))
    assert seen == ["batch", "status"]


def test_tags_held_before_an_early_params_batch_go_with_it_and_later_values_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full params batch sent early carries the tags held so far (a trial's command tag
    reaches the store while it trains); a newer value of such a tag, written at the end,
    is stored after it even when the early batch is slow; a discarded one is deleted."""
    from viralab.tracking import discard_held_tag, hold_writes, log_params, set_tags, write_held

    batch = mlflow.MlflowClient.log_batch
    calls: list[set[str]] = []

    def slow_first(self: mlflow.MlflowClient, run_id: str, **kwargs: object) -> None:
        calls.append({t.key for t in kwargs.get("tags", [])})
        if len(calls) == 1:
            time.sleep(0.3)  # the early batch lands after the last one would have
        batch(self, run_id, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", slow_first)
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        assert hold_writes(run_id, early=True)
        set_tags({"command": "python -m viralab.train x=1", "state": "old", "error": "boom"})
        log_params({f"p{i}": i for i in range(100)})  # a full batch: sent now, with the tags
        deadline = time.monotonic() + 10  # its thread may take a moment to begin
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == [{"command", "state", "error"}]
        set_tags({"state": "new"})
        write_held(run_id)
    tags = mlflow.get_run(run_id).data.tags
    assert tags["state"] == "new" and tags["command"] == "python -m viralab.train x=1"

    calls.clear()
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        assert hold_writes(run_id, early=True)
        set_tags({"error": "boom"})
        log_params({f"p{i}": i for i in range(100)})
        assert not discard_held_tag("error", run_id)  # sent: stored now, the caller deletes it
        assert client.get_run(run_id).data.tags["error"] == "boom"
        client.delete_tag(run_id, "error")
        write_held(run_id)
    assert "error" not in mlflow.get_run(run_id).data.tags


def test_log_config_sends_all_its_params_early_and_leaves_the_last_batch_metrics_and_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A held run with early writes: `log_config` sends every param (a full batch and the
    rest, with the tags held so far) while the run goes on, so the run's last batch, which
    its end waits for, holds no params; without early writes nothing goes before the end."""
    from concurrent import futures

    from omegaconf import OmegaConf

    from viralab.tracking import hold_writes, log_config, log_metrics, set_tags, write_held
    from viralab.tracking.held import _held

    batch = mlflow.MlflowClient.log_batch
    calls: list[tuple[int, int, int]] = []  # (params, metrics, tags) per log_batch

    def counted(self: mlflow.MlflowClient, run_id: str, **kwargs: object) -> None:
        calls.append(tuple(len(kwargs.get(k) or []) for k in ("params", "metrics", "tags")))
        batch(self, run_id, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", counted)
    cfg = OmegaConf.create({"model": {f"p{i}": i for i in range(117)}})
    for early in (True, False):
        calls.clear()
        with mlflow.start_run() as run:
            run_id = run.info.run_id
            assert hold_writes(run_id, early=early)
            set_tags({"command": "python -m viralab.train"})
            log_config(cfg)
            futures.wait(_held[run_id].sent)  # what was sent early has been made
            sent = list(calls)
            log_metrics({"mae": 0.1})
            set_tags({"verdict": "good"})
            write_held(run_id)
        stored = mlflow.get_run(run_id).data
        assert len(stored.params) == 117 and stored.metrics == {"mae": 0.1}
        assert stored.tags["command"] == "python -m viralab.train"
        if early:
            assert sorted(p for p, _, _ in sent) == [17, 100]
            assert calls[-1][:2] == (0, 1)  # the last batch: no params
        else:
            assert sent == [] and calls == [(117, 1, calls[0][2])]


def test_early_writes_are_for_remote_stores_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from viralab.tracking import EARLY_WRITES_ENV, early_writes

    monkeypatch.delenv(EARLY_WRITES_ENV, raising=False)
    assert early_writes("http://127.0.0.1:5000") and early_writes("https://mlflow.internal")
    assert not early_writes("sqlite:////tmp/mlflow.db") and not early_writes("file:///tmp/x")
    monkeypatch.setenv(EARLY_WRITES_ENV, "1")
    assert early_writes("sqlite:////tmp/mlflow.db")
    monkeypatch.setenv(EARLY_WRITES_ENV, "0")
    assert not early_writes("http://127.0.0.1:5000")
