"""Live MAE from logged predictions joined to the ratings that came after them, and the
`viralab monitor live` command (figures, dropped count, one-line errors)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from viralab.cli import app
from viralab.data.database import make_engine
from viralab.data.schema import analyzed_videos, create_schema, video_ratings
from viralab.errors import ConfigError
from viralab.monitor.live import live_report, logged_live_mae, outcomes, parse_since
from viralab.serve.prediction_table import (
    create_prediction_tables,
    prediction_log_stats,
    predictions,
)

NOW = datetime.now(UTC)


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/app.db"
    monkeypatch.setenv("VIRALAB_DATABASE_URL", url)
    monkeypatch.delenv("VIRALAB_PREDICTION_LOG_URL", raising=False)
    engine = make_engine(url)
    create_schema(engine)
    create_prediction_tables(engine)
    engine.dispose()
    return url


def _fill(url: str) -> list[tuple[float, float]]:
    """Predictions and ratings; returns the (prediction, rating) pairs that must be joined."""
    engine = make_engine(url)
    pred = [
        # id, version, marker, video, prediction, made at
        (1, 1, "champion", "a", 0.40, NOW - timedelta(hours=5)),
        (2, 1, "champion", "a", 0.45, NOW - timedelta(hours=1)),  # after a's first rating
        (3, 1, "champion", "b", 0.90, NOW - timedelta(hours=5)),
        (4, 2, "challenger", "c", 0.20, NOW - timedelta(hours=5)),
        (5, 1, "champion", "d", 0.50, NOW - timedelta(hours=5)),  # no rating: not judged
        (6, 1, "champion", "e", 0.10, NOW - timedelta(days=20)),  # outside a 7d window
    ]
    ratings = [
        # id, video, score, rated at, rater
        ("r1", "a", 0.70, NOW - timedelta(hours=3), "owner"),
        ("r2", "a", 0.60, NOW - timedelta(minutes=30), "owner"),
        ("r3", "b", 0.50, NOW - timedelta(hours=2), "owner"),
        ("r4", "b", 0.10, NOW - timedelta(hours=1), "crowd"),  # other rater type
        ("r5", "c", 0.30, NOW - timedelta(hours=6), "owner"),  # before the prediction
        ("r6", "e", 0.30, NOW - timedelta(days=19), "owner"),
    ]
    with engine.begin() as conn:
        for video in "abcde":
            conn.execute(insert(analyzed_videos).values(id=video))
        for i, version, marker, video, value, at in pred:
            conn.execute(
                insert(predictions).values(
                    id=i, request_id="r", model="preference", version=version, marker=marker,
                    input_digest="d", video_id=video, prediction=value, at=at,
                )
            )  # fmt: skip
        for rid, video, score, at, rater in ratings:
            conn.execute(
                insert(video_ratings).values(
                    id=rid, video_id=video, overall_score=score, rated_at=at, rater_type=rater
                )
            )
        conn.execute(
            insert(prediction_log_stats).values(
                process_id="p1", written=6, dropped=4, started_at=NOW, updated_at=NOW
            )
        )
    engine.dispose()
    # 1 -> r1 (first rating after it), 2 -> r2, 3 -> r3 (owner only); 4: rated before; 5: none
    return [(0.40, 0.70), (0.45, 0.60), (0.90, 0.50)]


def test_each_prediction_is_judged_by_the_first_rating_after_it(app_db: str) -> None:
    pairs = _fill(app_db)
    engine = make_engine(app_db)
    report = live_report(engine, "preference", NOW - timedelta(days=7))
    (fig,) = report.figures
    assert (fig.version, fig.marker, fig.n, fig.n_videos) == (1, "champion", 3, 2)
    assert fig.mae == pytest.approx(sum(abs(p - r) for p, r in pairs) / 3)
    assert fig.low < fig.mae < fig.high
    assert report.counts.dropped == 4 and report.counts.logged == 5
    everything = outcomes(engine, "preference", None)
    assert sorted(everything["id"]) == [1, 2, 3, 6]
    mae, n = logged_live_mae("preference", 1, url=app_db)[0]
    assert n == 4 and mae == pytest.approx((0.3 + 0.15 + 0.4 + 0.2) / 4)
    assert logged_live_mae("preference", 9, url=app_db) == (
        None,
        "no logged prediction of version 9 has an outcome yet",
    )


def test_no_log_database_is_no_figure_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/absent.db"
    assert logged_live_mae("preference", 1, url=url) == (None, "no prediction log database")
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800), ("30m", 1800), ("2w", 1209600)])
def test_since_reads_durations(text: str, seconds: int) -> None:
    assert parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["garbage", "7", "-3d", "0d", "7y", ""])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ConfigError, match="--since"):
        parse_since(text)


def _register(name: str = "preference") -> None:
    mlflow.MlflowClient().create_registered_model(name)


def test_monitor_live_prints_figures_and_the_dropped_count(app_db: str) -> None:
    _fill(app_db)
    _register()
    result = CliRunner().invoke(app, ["monitor", "live", "preference", "--since", "7d"])
    assert result.exit_code == 0, result.output
    assert "champion" in result.output and "0.2833" in result.output
    assert "dropped 4" in result.output
    as_json = CliRunner().invoke(app, ["monitor", "live", "preference", "--json"])
    data = json.loads(as_json.stdout)
    assert data["log_dropped"] == 4 and data["figures"][0]["n"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "live", "preference", "--since", "garbage"], "--since 'garbage'"),
        (["monitor", "live", "nosuchmodel"], "unknown model 'nosuchmodel'"),
        (["monitor", "ab", "nosuchmodel"], "unknown model 'nosuchmodel'"),
        (["monitor", "ab", "preference", "--since", "soon"], "--since 'soon'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(app_db: str, args: list[str], message: str) -> None:
    _register()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_an_unreachable_log_database_is_one_masked_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _register()
    monkeypatch.setenv("VIRALAB_PREDICTION_LOG_URL", "postgresql://u:Pw-991x@127.0.0.1:1/db")
    result = CliRunner().invoke(app, ["monitor", "live", "preference"])
    assert result.exit_code == 2
    assert "Pw-991x" not in result.output + result.stderr
    assert result.stderr.startswith("error: database error")
