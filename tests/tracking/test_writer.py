"""The tracking writer process (`viralab.tracking.writer`): a tracking server's background
requests made in a child process, against a real `mlflow server`; what it cannot take (a
local store, a dead writer) runs on the background threads instead, and nothing is lost."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import psutil
import pytest
from mlflow.entities import Param, RunTag

from tests.support.services import ManagedProcess, require_service, start_mlflow_server
from viralab.tracking import writer
from viralab.tracking.artifacts import Upload
from viralab.tracking.writer import ClientCall, WriterError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    root = tmp_path_factory.mktemp("writer-server")
    try:
        proc = start_mlflow_server(
            f"sqlite:///{root}/backend.db", artifacts_destination=str(root / "artifacts")
        )
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server: {exc}")
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def fresh_writer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(writer.WRITER_ENV, raising=False)
    writer.stop()
    monkeypatch.setattr(writer, "_failed", False)
    yield
    writer.stop()


def _run_id(url: str) -> str:
    client = mlflow.MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("writer") or client.get_experiment(
        client.create_experiment("writer")
    )
    return client.create_run(experiment.experiment_id).info.run_id


def test_requests_to_a_server_are_made_by_the_writer_process(
    server: ManagedProcess, tmp_path: Path
) -> None:
    run_id = _run_id(server.url)
    batch = ClientCall(
        server.url,
        "log_batch",
        (run_id,),
        {"params": [Param("alpha", "0.5")], "tags": [RunTag("t", "1")]},
    )
    local = tmp_path / "config.yaml"
    local.write_text("a: 1\n")
    artifact_uri = mlflow.MlflowClient(tracking_uri=server.url).get_run(run_id).info.artifact_uri
    assert writer.start(server.url)
    futures = [
        writer.submit(batch),
        writer.submit(Upload(artifact_uri, server.url, str(local), "conf")),
    ]
    assert [f.result(timeout=60) for f in futures] == [None, None]
    pid = writer.writer_pid()
    assert pid is not None and pid != os.getpid()
    assert psutil.Process(pid).cmdline()[-3] == "viralab.tracking.writer_process"
    assert writer.answered() == 2

    end = ClientCall(server.url, "set_terminated", (run_id, "FINISHED"))
    writer.submit(end).result(timeout=60)
    client = mlflow.MlflowClient(tracking_uri=server.url)
    run = client.get_run(run_id)
    assert run.data.params == {"alpha": "0.5"} and run.data.tags["t"] == "1"
    assert run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run_id, "conf")] == ["conf/config.yaml"]
    # a result comes back too (a run read in the writer)
    got = writer.submit(ClientCall(server.url, "get_run", (run_id,))).result(timeout=60)
    assert got.info.run_id == run_id and writer.answered() == 4


def test_a_failed_request_raises_where_it_is_waited_for(server: ManagedProcess) -> None:
    assert writer.start(server.url)
    future = writer.submit(ClientCall(server.url, "get_run", ("f" * 32,)))
    error = future.exception(timeout=60)
    assert isinstance(error, WriterError)
    assert "RESOURCE_DOES_NOT_EXIST" in str(error) and "f" * 32 in str(error)
    assert writer.writer_pid() is not None  # one failure does not end the writer


def test_local_stores_and_plain_callables_stay_in_this_process(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/local.db"
    run_id = mlflow.MlflowClient(tracking_uri=uri).create_run("0").info.run_id
    call = ClientCall(uri, "log_batch", (run_id,), {"params": [Param("k", "v")]})
    assert not call.remote()
    assert not writer.start(uri)  # not for a local store
    assert writer.start("http://127.0.0.1:1")
    writer.submit(call).result(timeout=60)
    assert writer.submit(os.getpid).result(timeout=60) == os.getpid()
    assert writer.answered() == 0  # neither went to the writer
    assert mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.params == {"k": "v"}


def test_requests_stay_on_threads_until_a_sweep_starts_the_writer(server: ManagedProcess) -> None:
    run_id = _run_id(server.url)
    writer.submit(ClientCall(server.url, "set_tag", (run_id, "k", "v"))).result(timeout=60)
    assert writer.writer_pid() is None  # a single training run does not wait for its imports
    assert mlflow.MlflowClient(tracking_uri=server.url).get_run(run_id).data.tags["k"] == "v"


def test_thread_mode_keeps_every_request_in_this_process(
    server: ManagedProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(writer.WRITER_ENV, "thread")
    run_id = _run_id(server.url)
    assert not writer.start(server.url)
    writer.submit(ClientCall(server.url, "set_tag", (run_id, "k", "v"))).result(timeout=60)
    assert writer.writer_pid() is None
    assert mlflow.MlflowClient(tracking_uri=server.url).get_run(run_id).data.tags["k"] == "v"


def test_a_dead_writer_hands_what_it_held_to_threads_and_nothing_is_lost(
    server: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = _run_id(server.url)
    assert writer.start(server.url)
    pid = writer.writer_pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the next call waits in the pipe, unanswered
    caplog.set_level(logging.WARNING, logger="viralab.tracking.writer")
    held = writer.submit(ClientCall(server.url, "set_tag", (run_id, "held", "1")))
    os.kill(pid, signal.SIGKILL)
    held.result(timeout=60)  # made again on a thread
    assert writer.writer_pid() is None
    later = writer.submit(ClientCall(server.url, "set_tag", (run_id, "later", "2")))
    later.result(timeout=60)
    tags = mlflow.MlflowClient(tracking_uri=server.url).get_run(run_id).data.tags
    assert tags["held"] == "1" and tags["later"] == "2"
    warnings = [r.getMessage() for r in caplog.records if "writer process ended" in r.getMessage()]
    assert len(warnings) == 1 and "1 pending request(s)" in warnings[0]


def test_the_writer_takes_the_environment_of_each_call() -> None:
    env = {"MLFLOW_TRACKING_TOKEN": "old", "MLFLOW_GONE": "x", "PATH": "/bin"}
    wanted = writer.call_environment({"MLFLOW_TRACKING_TOKEN": "new", "AWS_REGION": "eu", "X": "1"})
    assert wanted == {"MLFLOW_TRACKING_TOKEN": "new", "AWS_REGION": "eu"}
    writer.apply_environment(wanted, env)
    assert env == {"MLFLOW_TRACKING_TOKEN": "new", "AWS_REGION": "eu", "PATH": "/bin"}


def test_the_writer_ends_when_its_parent_is_killed(server: ManagedProcess) -> None:
    code = (
        "import sys, time\n"
        "from viralab.tracking import writer\n"
        "assert writer.start('http://127.0.0.1:1')\n"
        "print(writer.writer_pid(), flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert psutil.pid_exists(pid)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"writer {pid} outlived its killed parent")
    finally:
        parent.kill()
