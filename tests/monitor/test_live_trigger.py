"""The retrain trigger's live MAE comes from what the champion served (the prediction log),
and falls back to re-scoring only when there is nothing logged, saying so. Also: the
in-process serving paths (`score_documents`, `viralab predict`) log with video ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.monitor import test_triggers as triggers_tests
from viralab.cli import app
from viralab.config import compose
from viralab.data.database import make_engine
from viralab.data.loading import load_into_database
from viralab.monitor.triggers import FIRED, check
from viralab.serve import predict as serving
from viralab.serve import prediction_log
from viralab.serve.prediction_table import predictions

pytestmark = pytest.mark.slow

# the trained champion of the trigger tests (trained once for this module too)
champion_store = triggers_tests.champion_store
champion = triggers_tests.champion
by_name = triggers_tests.by_name
new_ratings = triggers_tests.new_ratings
ratings_overrides = triggers_tests.ratings_overrides


@pytest.fixture
def logging_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    url = f"sqlite:///{tmp_path}/app.db"
    monkeypatch.setenv("VIRALAB_DATABASE_URL", url)
    monkeypatch.setenv(prediction_log.ENV_SWITCH, "on")
    monkeypatch.setenv(prediction_log.ENV_FLUSH, "0.05")
    prediction_log.reset_prediction_log()
    serving.clear_caches()
    yield url
    prediction_log.reset_prediction_log()
    serving.clear_caches()


def test_the_trigger_judges_what_was_served(champion: str, logging_on: str, tmp_path: Path) -> None:
    flipped = [r for r in new_ratings(30, flip=True) if r["rater_type"] == "owner"]
    docs = [r["video"]["visual_analysis"] for r in flipped]
    ids = [r["video_id"] for r in flipped]
    served = serving.score_documents(docs, video_ids=ids, with_factors=False)
    log = prediction_log.get_prediction_log()
    log.flush(10)
    assert log.written == len(flipped)
    # the ratings arrive after the answers
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    loaded = load_into_database(logging_on, ratings=[{**r, "rated_at": later} for r in flipped])
    assert loaded.rejected_rows == 0
    result = check(compose(ratings_overrides(tmp_path, [])), "preference")
    perf = by_name(result)["performance_degradation"]
    by_hand = float(
        np.mean(np.abs(served["prediction"].to_numpy() - [r["overall_score"] for r in flipped]))
    )
    assert perf.metrics["trigger.performance_degradation.live_mae"] == pytest.approx(by_hand)
    assert f"{len(flipped)} logged predictions with ratings (prediction log)" in perf.figure_text
    assert perf.status == FIRED  # the owner's taste turned: what was served is now wrong
    assert result.tags()["viralab.retrain.live_mae_source"] == "prediction_log"


def test_without_logged_predictions_it_re_scores_and_says_so(
    champion: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRALAB_DATABASE_URL", f"sqlite:///{tmp_path}/none.db")
    result = check(compose(ratings_overrides(tmp_path, new_ratings(30, flip=True))), "preference")
    perf = by_name(result)["performance_degradation"]
    assert "re-scored by the champion: no prediction log database" in perf.figure_text
    assert result.tags()["viralab.retrain.live_mae_source"] == "re-scored"


def test_viralab_predict_logs_each_document_with_its_video_id(
    champion: str, logging_on: str, tmp_path: Path
) -> None:
    records = new_ratings(5)
    source = tmp_path / "analyses.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(records[0]["video"]["visual_analysis"]), encoding="utf-8")
    for path in (source, bare):
        result = CliRunner().invoke(app, ["predict", str(path), "--json"])
        assert result.exit_code == 0, result.output
    prediction_log.get_prediction_log().flush(10)
    with make_engine(logging_on).connect() as conn:
        rows = conn.execute(select(predictions).order_by(predictions.c.id)).mappings().all()
    assert [r["video_id"] for r in rows] == [r["video_id"] for r in records] + [None]
    assert {(r["model"], r["version"], r["marker"]) for r in rows} == {
        ("preference", 1, "champion")
    }
    scores = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    assert rows[-1]["score"] == pytest.approx(scores[0], abs=1e-4)


def test_judging_a_version_is_not_serving_it(champion: str, logging_on: str) -> None:
    """The registry's gate and champion comparisons run the pyfunc without logging it."""
    import mlflow
    import pandas as pd

    from viralab.features.tabular import ANALYSIS_COLUMN
    from viralab.promotion.evaluation import mae_on

    docs = [json.dumps(r["video"]["visual_analysis"]) for r in new_ratings(8)]
    frame = pd.DataFrame({ANALYSIS_COLUMN: docs})
    log = prediction_log.get_prediction_log()
    mae_on("models:/preference/1", frame, np.zeros(len(frame)))
    log.flush(10)
    assert log.written == 0 and log.pending == 0
    # the same loaded model, called as a server calls it, does log
    mlflow.pyfunc.load_model("models:/preference/1").predict(frame)
    log.flush(10)
    assert log.written == len(frame)
