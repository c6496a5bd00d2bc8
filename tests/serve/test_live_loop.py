"""The live loop end to end: `mlflow models serve` logs what it answers into PostgreSQL,
ratings arrive through the loader, `viralab monitor live` reports the live MAE of exactly those
answers; with PostgreSQL stopped, serving goes on and the dropped rows are counted."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest
import requests
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from tests.support.services import start_model_server, start_postgres
from viralab.cli import app
from viralab.config import compose
from viralab.data.loading import load_into_database
from viralab.data.sample import generate_ratings
from viralab.serve import predict as serving
from viralab.serve import prediction_log
from viralab.serve.prediction_table import prediction_log_stats, predictions
from viralab.train import train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_postgres():
    """A cluster of its own: this test stops and restarts it."""
    try:
        server = start_postgres()
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.skip(f"PostgreSQL: {exc}")
    yield server
    server.remove()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # the database is coming back
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _count(url: str, query) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)
    finally:
        engine.dispose()


def test_served_predictions_are_logged_judged_and_dropped_when_the_database_is_down(
    mlflow_isolation: str, own_postgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serving.clear_caches()
    prediction_log.set_prediction_log(None)  # this process only reads the log
    db = own_postgres.url(own_postgres.create_database())
    train(compose(["data.n_videos=220"]))
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "1")
    monkeypatch.setenv("VIRALAB_PREDICTION_LOG", "on")
    monkeypatch.setenv("VIRALAB_PREDICTION_LOG_URL", db)
    monkeypatch.setenv("VIRALAB_PREDICTION_LOG_FLUSH_S", "0.1")
    try:
        server = start_model_server("models:/preference@champion", mlflow_isolation)
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"mlflow models serve did not start: {exc}")
    records = generate_ratings(n_videos=12, seed=3)[:12]
    docs = [r["video"]["visual_analysis"] for r in records]
    ids = [f"live-{i}" for i in range(len(docs))]
    url = f"{server.url}/invocations"

    def invoke(batch_docs: list, batch_ids: list) -> list[dict]:
        body = {
            "dataframe_split": {
                "columns": ["visual_analysis", "video_id"],
                "data": [[json.dumps(d), v] for d, v in zip(batch_docs, batch_ids, strict=True)],
            }
        }
        res = requests.post(url, json=body, timeout=60)
        assert res.status_code == 200, res.text
        return res.json()["predictions"]

    try:
        answers: dict[str, float] = {}
        for start in range(0, 12, 4):  # three requests of four documents
            out = invoke(docs[start : start + 4], ids[start : start + 4])
            answers.update({v: row["prediction"] for v, row in zip(ids[start:], out, strict=False)})
        _wait(lambda: _count(db, select(func.count()).select_from(predictions)) == 12, 60, "rows")
        engine = create_engine(db)
        with engine.connect() as conn:
            rows = conn.execute(select(predictions)).mappings().all()
        engine.dispose()
        assert {(r["model"], r["version"], r["marker"]) for r in rows} == {
            ("preference", 1, "champion")
        }
        assert {r["video_id"]: r["prediction"] for r in rows} == pytest.approx(answers)

        # ratings for half of the videos arrive (after the predictions), through the loader
        rated = {ids[i]: round(0.1 + 0.07 * i, 2) for i in range(0, 12, 2)}
        now = datetime.now(UTC).isoformat()
        arriving = []
        for i, record in enumerate(records):
            if ids[i] in rated:
                arriving.append(
                    {**record, "id": f"live-r{i}", "video_id": ids[i],
                     "overall_score": rated[ids[i]], "rated_at": now, "rater_type": "owner"}
                )  # fmt: skip
        report = load_into_database(db, ratings=arriving)
        assert report.rejected_rows == 0
        by_hand = sum(abs(answers[v] - score) for v, score in rated.items()) / len(rated)

        monitor = CliRunner().invoke(
            app, ["monitor", "live", "preference", "--since", "1h", "--json"]
        )
        assert monitor.exit_code == 0, monitor.output
        data = json.loads(monitor.stdout)
        (figure,) = data["figures"]
        assert (figure["version"], figure["marker"], figure["n"]) == (1, "champion", 6)
        assert figure["mae"] == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
        assert data["log_dropped"] == 0 and data["log_written"] == 12
        table = CliRunner().invoke(app, ["monitor", "live", "preference", "--since", "1h"])
        assert f"{by_hand:.4f}" in table.output

        # the database goes down: serving keeps answering, the log drops and counts
        own_postgres.stop()
        for i in range(5):
            started = time.monotonic()
            out = invoke([docs[i]], [f"outage-{i}"])
            assert len(out) == 1 and time.monotonic() - started < 5
        time.sleep(3.5)  # the writer tries (and fails) before the database is back
        own_postgres.start()
        _wait(
            lambda: _count(db, select(func.sum(prediction_log_stats.c.dropped))) > 0,
            60,
            "the dropped count",
        )
        logged = _count(db, select(func.count()).select_from(predictions))
        monitor = CliRunner().invoke(app, ["monitor", "live", "preference", "--json"])
        data = json.loads(monitor.stdout)
        assert data["log_dropped"] == 5 and logged == 12  # every outage row lost, and counted
        assert data["log_dropped"] + logged == 17
        table = CliRunner().invoke(app, ["monitor", "live", "preference"])
        assert "dropped 5" in table.output
        # and the log writes again
        invoke([docs[0]], ["after-0"])
        _wait(lambda: _count(db, select(func.count()).select_from(predictions)) == 13, 60, "row")
    finally:
        server.stop()
        serving.clear_caches()
        prediction_log.reset_prediction_log()
    log_text = server.log_tail(20_000)
    assert "dropped" in log_text and own_postgres.password not in log_text
