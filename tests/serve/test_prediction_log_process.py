"""The prediction log with its writer in a process of its own: rows reach the table under the
serving process's identity, a database that is down costs drops (counted) and never a wait, a
stalled writer fills a bounded queue only, a writer that dies hands over to a thread, and the
database URL never shows on a command line."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from viralab.data.database import make_engine
from viralab.serve import prediction_log as pl
from viralab.serve.prediction_log import PredictionLog, record_scores
from viralab.serve.prediction_log_process import ProcessPredictionLog
from viralab.serve.prediction_table import prediction_log_stats, predictions

SECRET = "s3cret-Pw-991"
DOWN_URL = f"postgresql://viralab:{SECRET}@127.0.0.1:1/viralab"  # nothing listens on port 1


def _log(url: str, **settings) -> ProcessPredictionLog:
    options = {
        "batch_size": 500,
        "queue_size": 50_000,
        "flush_interval": 0.05,
        "retry_interval": 0.2,
        "max_text_bytes": 64 * 1024 * 1024,
        **settings,
    }
    return ProcessPredictionLog(
        url, fallback=lambda: PredictionLog(url, flush_interval=0.05), **options
    )


def _result(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"prediction": [i / n for i in range(n)], "score": [10 * i / n for i in range(n)]}
    ).assign(confidence=0.75)


def _score(log, n: int, start: int = 0) -> int:
    documents = [f'{{"n": {start + i}}}' for i in range(n)]
    return record_scores(
        log, model="preference", version=3, marker="champion", documents=documents,
        video_ids=[f"v{start + i}" for i in range(n)], result=_result(n), latency_ms=2.5,
    )  # fmt: skip


def _rows(url: str) -> tuple[list[dict], list[dict]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(predictions).order_by(predictions.c.id)).mappings().all()
            stats = conn.execute(select(prediction_log_stats)).mappings().all()
    finally:
        engine.dispose()
    return [dict(r) for r in rows], [dict(s) for s in stats]


def test_rows_reach_the_table_through_the_writer_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = _log(url)
    try:
        assert _score(log, 120) == 120
        log.record(model="preference", version=3, marker="champion", video_id="single")
        log.flush(30)
        assert (log.written, log.dropped, log.pending) == (121, 0, 0)
    finally:
        log.close(10)
    assert log._proc.returncode == 0
    rows, stats = _rows(url)
    assert len(rows) == 121
    assert [r["video_id"] for r in rows[:120]] == [f"v{i}" for i in range(120)]
    assert rows[5]["input_digest"] == pl.document_digest('{"n": 5}')
    assert rows[5]["score"] == pytest.approx(50 / 120) and rows[5]["confidence"] == 0.75
    assert len({r["request_id"] for r in rows[:120]}) == 1
    # the stats row is the serving process's, not the writer's
    (row,) = stats
    assert (row["process_id"], row["pid"]) == (log.process_id, os.getpid())
    assert (row["written"], row["dropped"]) == (121, 0)


def test_the_url_travels_on_the_pipe_not_the_command_line(tmp_path: Path) -> None:
    log = _log(f"sqlite:///{tmp_path}/{SECRET}.db")
    try:
        log.flush(30)  # the writer is up
        cmdline = Path(f"/proc/{log._proc.pid}/cmdline").read_bytes().decode()
        assert "prediction_log_writer" in cmdline and SECRET not in cmdline
        # and it yields to the serving process: the lowest priority
        assert os.getpriority(os.PRIO_PROCESS, log._proc.pid) == 19
    finally:
        log.close(5)


def test_a_database_that_is_down_costs_drops_not_waits(capfd: pytest.CaptureFixture) -> None:
    log = _log(DOWN_URL, batch_size=50, queue_size=1_000)
    try:
        started = time.monotonic()
        kept = sum(_score(log, 100, start=k * 100) for k in range(50))
        assert time.monotonic() - started < 2.0, "record must not wait for the database"
        log.flush(20)
        assert log.written == 0
        assert log.dropped + log.pending == 5_000 and kept <= 5_000
    finally:
        log.close(2)
    assert log.dropped == 5_000  # every row accounted for
    err = capfd.readouterr().err
    assert "cannot write" in err and SECRET not in err and "***" in err


def test_a_stalled_writer_fills_a_bounded_queue_and_nothing_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = _log(url, queue_size=300)
    log.flush(30)  # the writer is up and connected
    os.kill(log._proc.pid, signal.SIGSTOP)
    try:
        # 30,000 rows: the pipe (1 MB, ~8,000 such rows) fills, the backlog fills behind it
        # (300 rows) and the rest is dropped
        started = time.monotonic()
        kept = sum(_score(log, 10, start=10 * k) for k in range(3_000))
        assert time.monotonic() - started < 10.0
        assert kept <= 300 + 12_000 and log.dropped == 30_000 - kept > 0
    finally:
        os.kill(log._proc.pid, signal.SIGCONT)
    log.flush(30)
    log.close(10)
    rows, stats = _rows(url)
    # what the pipe held arrives at once and may overflow the writer's own bounded buffer:
    # every row is written or counted, here and in the table
    assert len(rows) == log.written > 0 and log.written + log.dropped == 30_000
    assert (stats[0]["written"], stats[0]["dropped"]) == (log.written, log.dropped)


def test_a_writer_that_dies_hands_over_to_a_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = _log(url)
    try:
        _score(log, 10)
        log.flush(30)
        log._proc.kill()
        log._proc.wait(10)
        deadline = time.monotonic() + 10
        while log._fallback is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log._fallback is not None
        assert "takes over" in caplog.text
        assert _score(log, 7, start=10) == 7
        log.flush(10)
        assert log.written == 17
    finally:
        log.close(5)
    rows, _ = _rows(url)
    assert [r["video_id"] for r in rows] == [f"v{i}" for i in range(17)]


def test_the_process_log_writes_from_a_process_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    log = pl.new_prediction_log(url)
    try:
        assert isinstance(log, ProcessPredictionLog)
    finally:
        log.close(5)
    monkeypatch.setenv(pl.ENV_WRITER, "thread")
    log = pl.new_prediction_log(url)
    try:
        assert isinstance(log, PredictionLog)
    finally:
        log.close(5)
