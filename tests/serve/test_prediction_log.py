"""The prediction log: never blocks, drops and counts when the database is down or the buffer
is full, writes in batches, keeps secrets out of its rows and messages, switches on and off."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event, select

from viralab.data.database import make_engine
from viralab.serve import prediction_log as pl
from viralab.serve.prediction_log import PredictionLog, record_scores, switch
from viralab.serve.prediction_table import prediction_log_stats, predictions

SECRET = "s3cret-Pw-991"
#: Nothing listens on port 1: a connection is refused at once (a database that is down).
DOWN_URL = f"postgresql://viralab:{SECRET}@127.0.0.1:1/viralab"


def _row(i: int, **extra) -> dict:
    return {
        "model": "preference",
        "version": 1,
        "marker": "champion",
        "input_digest": f"{i:064x}",
        "video_id": f"v{i}",
        "prediction": i / 100,
        **extra,
    }


def test_record_never_blocks_and_counts_drops_while_the_database_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    log = PredictionLog(DOWN_URL, batch_size=50, queue_size=200, flush_interval=0.01)
    started = time.monotonic()
    kept = sum(log.record(**_row(i)) for i in range(20_000))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"20,000 records took {elapsed:.2f} s: record must not wait"
    assert kept <= 20_000 and log.dropped >= 20_000 - 200  # the buffer holds 200 at most
    t0 = time.monotonic()
    log.close(timeout=1.0)
    assert time.monotonic() - t0 < 3.0  # bounded, whatever the database does
    assert log.written == 0
    assert log.dropped == 20_000  # every row is accounted for: written + dropped
    text = caplog.text + repr(log.stats())
    assert "dropped" in caplog.text and "cannot write" in caplog.text
    assert SECRET not in text and "***" in text


def test_a_full_buffer_drops_the_newest_rows_at_once() -> None:
    # the writer sleeps (long interval, batch never full): rows only pile up
    log = PredictionLog(DOWN_URL, batch_size=10_000, queue_size=10, flush_interval=60)
    try:
        kept = log.record_many([_row(i) for i in range(25)])
        assert kept == 10 and log.dropped == 15 and log.pending == 10
        assert log.record(**_row(99)) is False and log.dropped == 16
    finally:
        log.close(timeout=0.5)
    assert log.dropped + log.written == 26


def test_rows_are_written_in_batches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = PredictionLog(url, batch_size=7, flush_interval=0.01)
    log.flush(5)  # the writer is idle: nothing to do, no wait
    sizes: list[int] = []
    log._connect()

    @event.listens_for(log._engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO PREDICTIONS"):
            # rows per statement: an executemany's parameter sets, or one multi-row VALUES
            sizes.append(len(parameters) if executemany else statement.count("(?"))

    for i in range(50):
        log.record(**_row(i))
    log.flush(10)
    assert log.written == 50 and log.dropped == 0 and log.pending == 0
    assert sum(sizes) == 50 and max(sizes) <= 7 and len(sizes) < 50
    log.close(1)
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(predictions)).mappings().all()
        stats = conn.execute(select(prediction_log_stats)).mappings().all()
    assert len(rows) == 50
    assert {r["video_id"] for r in rows} == {f"v{i}" for i in range(50)}
    assert all(r["at"] is not None and r["request_id"] == "" for r in rows)
    assert len(stats) == 1 and stats[0]["written"] == 50 and stats[0]["dropped"] == 0


def test_logged_rows_hold_a_digest_not_the_document(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = PredictionLog(url, flush_interval=0.01)
    document = '{"hook": {"strength": 0.9}, "api_key": "sk-live-SECRET-123"}'
    result = pd.DataFrame({"prediction": [0.7], "score": [7.0], "confidence": [0.5]})
    record_scores(
        log,
        model="preference",
        version="3",
        marker="challenger",
        documents=[document],
        video_ids=["vid-1"],
        result=result,
        latency_ms=1.5,
    )
    log.close(5)
    with make_engine(url).connect() as conn:
        (row,) = conn.execute(select(predictions)).mappings().all()
    assert "sk-live-SECRET-123" not in repr(dict(row))
    assert row["input_digest"] == pl.digest(document) and len(row["input_digest"]) == 32
    assert (row["version"], row["marker"], row["video_id"]) == (3, "challenger", "vid-1")
    assert (row["prediction"], row["score"], row["confidence"]) == (0.7, 7.0, 0.5)
    assert row["latency_ms"] == 1.5 and len(row["request_id"]) == 32


def test_dicts_get_the_digest_of_their_canonical_json() -> None:
    assert pl.document_digest({"b": 1, "a": 2}) == pl.document_digest({"a": 2, "b": 1})
    assert pl.document_digest('{"a": 2}') == pl.digest('{"a": 2}')


@pytest.mark.parametrize(
    ("switch", "uri", "expected"),
    [
        ("on", "sqlite:///x.db", True),
        ("off", "http://mlflow:5000", False),
        (None, "http://mlflow:5000", True),
        (None, "https://mlflow.example.com", True),
        (None, "sqlite:///mlruns/mlflow.db", False),
    ],
)
def test_on_by_default_for_a_tracking_server_opt_in_locally(
    monkeypatch: pytest.MonkeyPatch, switch: str | None, uri: str, expected: bool
) -> None:
    import mlflow

    if switch is None:
        monkeypatch.delenv(pl.ENV_SWITCH, raising=False)
    else:
        monkeypatch.setenv(pl.ENV_SWITCH, switch)
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: uri)
    assert pl.logging_enabled() is expected


def test_the_config_switch_decides_when_the_environment_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    monkeypatch.delenv(pl.ENV_SWITCH, raising=False)
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: "sqlite:///x.db")
    monkeypatch.setattr(switch, "_config_switch", lambda: True)
    assert pl.logging_enabled() is True
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: "http://mlflow:5000")
    monkeypatch.setattr(switch, "_config_switch", lambda: False)
    assert pl.logging_enabled() is False


def test_the_process_log_follows_the_switch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIRALAB_DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    pl.reset_prediction_log()
    try:
        monkeypatch.setenv(pl.ENV_SWITCH, "off")
        assert pl.get_prediction_log() is None
        pl.reset_prediction_log()
        monkeypatch.setenv(pl.ENV_SWITCH, "on")
        first = pl.get_prediction_log()
        assert first is not None and pl.get_prediction_log() is first
        assert first.url == f"sqlite:///{tmp_path}/app.db"
        with pl.suppressed():
            assert pl.active_log() is None  # a serving path logs for the pyfunc it calls
        assert pl.active_log() is first
    finally:
        pl.reset_prediction_log()


@pytest.mark.parametrize("max_text_bytes", [64 * 1024 * 1024, 100])
def test_scored_batches_are_split_into_batches_and_digested_by_the_writer(
    tmp_path: Path, max_text_bytes: int
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = PredictionLog(url, batch_size=7, flush_interval=0.01, max_text_bytes=max_text_bytes)
    documents = [f'{{"n": {i}}}' for i in range(30)] + [{"n": 30}]
    result = pd.DataFrame(
        {"prediction": [i / 100 for i in range(31)], "score": [0.0] * 31, "confidence": [1.0] * 31}
    )
    sizes: list[int] = []
    log._connect()

    @event.listens_for(log._engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO PREDICTIONS"):
            # rows per statement: an executemany's parameter sets, or one multi-row VALUES
            sizes.append(len(parameters) if executemany else statement.count("(?"))

    kept = record_scores(
        log, model="preference", version=2, marker="challenger", documents=documents,
        video_ids=[f"v{i}" for i in range(31)], result=result, latency_ms=3.0,
    )  # fmt: skip
    assert kept == 31
    log.close(10)
    assert log.written == 31 and max(sizes) <= 7 and sum(sizes) == 31
    with make_engine(url).connect() as conn:
        rows = conn.execute(select(predictions).order_by(predictions.c.id)).mappings().all()
    assert [r["input_digest"] for r in rows] == [pl.document_digest(d) for d in documents]
    assert [r["video_id"] for r in rows] == [f"v{i}" for i in range(31)]
    assert len({r["request_id"] for r in rows}) == 1


def test_a_full_buffer_keeps_the_head_of_a_scored_batch() -> None:
    log = PredictionLog(DOWN_URL, batch_size=10_000, queue_size=10, flush_interval=60)
    try:
        result = pd.DataFrame({"prediction": [0.5] * 25, "score": [5.0] * 25})
        result["confidence"] = 1.0
        kept = record_scores(
            log, model="p", version=1, marker="champion", documents=["{}"] * 25,
            video_ids=None, result=result, latency_ms=1.0,
        )  # fmt: skip
        assert kept == 10 and log.dropped == 15 and log.pending == 10
    finally:
        log.close(0.5)
    assert log.dropped == 25


def test_a_process_flushes_its_log_at_exit(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/app.db"
    code = (
        "from viralab.serve.prediction_log import get_prediction_log\n"
        "log = get_prediction_log()\n"
        "for i in range(40):\n"
        "    log.record(model='preference', version=1, marker='champion', video_id=f'v{i}')\n"
    )  # no flush, no close: the atexit hook writes them
    env = {
        **os.environ,
        "VIRALAB_PREDICTION_LOG": "on",
        "VIRALAB_PREDICTION_LOG_URL": url,
        "VIRALAB_PREDICTION_LOG_FLUSH_S": "30",  # the writer would not wake by itself
    }
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert time.monotonic() - started < 30
    with make_engine(url).connect() as conn:
        assert len(conn.execute(select(predictions)).all()) == 40


def test_scores_given_as_columns_log_one_row_per_document(tmp_path: Path) -> None:
    # the serving paths hand the scorer's output arrays, not a frame: a dict's len() is its
    # number of columns, never the number of documents
    import numpy as np

    url = f"sqlite:///{tmp_path}/app.db"
    log = PredictionLog(url, flush_interval=0.01)
    columns = {
        "prediction": np.linspace(0, 1, 7),
        "score": np.linspace(0, 10, 7),
        "confidence": np.full(7, 0.5),
        "top_factors": np.array(["[]"] * 7, dtype=object),
    }
    kept = record_scores(
        log, model="preference", version=1, marker="champion", documents=["{}"] * 7,
        video_ids=None, result=columns, latency_ms=1.0,
    )  # fmt: skip
    log.close(10)
    assert kept == 7 and log.written == 7 and log.dropped == 0
    with make_engine(url).connect() as conn:
        rows = conn.execute(select(predictions).order_by(predictions.c.id)).mappings().all()
    assert [r["video_id"] for r in rows] == [None] * 7
    assert [r["prediction"] for r in rows] == pytest.approx(list(np.linspace(0, 1, 7)))
