"""The A/B report: a verdict only once the outcomes settle it, an estimate of how many more
are needed before, a run in `retraining`, and an A/B block on the challenger's version page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from viralab.cli import app
from viralab.data.database import make_engine
from viralab.data.schema import analyzed_videos, create_schema, video_ratings
from viralab.monitor.ab_report import BETTER, UNSETTLED, WORSE, ab_report
from viralab.promotion.evidence import AB_END, AB_START, with_ab_section, write_ab_section
from viralab.serve.prediction_table import create_prediction_tables, predictions


def synthetic(n_per_arm: int, champion_sd: float, challenger_sd: float, seed: int = 0):
    """Outcomes of both arms; each arm's error ~ |N(0, sd)| (smaller sd = better model)."""
    rng = np.random.default_rng(seed)
    rows = []
    for marker, version, sd in (("champion", 1, champion_sd), ("challenger", 2, challenger_sd)):
        truth = rng.uniform(0.2, 0.8, n_per_arm)
        pred = truth + rng.normal(0, sd, n_per_arm)
        for i in range(n_per_arm):
            rows.append(
                {
                    "version": version,
                    "marker": marker,
                    "video_id": f"{marker}-{i}",
                    "prediction": pred[i],
                    "outcome": truth[i],
                }
            )
    return pd.DataFrame(rows)


def test_a_truly_better_challenger_wins_once_enough_outcomes_arrived() -> None:
    full = synthetic(600, champion_sd=0.15, challenger_sd=0.08)
    early = ab_report(full.groupby("marker").head(8), "preference", 1, 2)
    assert early.verdict == UNSETTLED
    assert early.more_needed is not None and early.more_needed > 0
    assert "more outcomes" in early.note
    late = ab_report(full, "preference", 1, 2)
    assert late.verdict == BETTER and late.high < 0 and late.more_needed == 0
    assert late.challenger.n == 600 and late.champion.n == 600
    assert late.challenger.mae < late.champion.mae
    assert late.difference == pytest.approx(late.challenger.mae - late.champion.mae)


def test_the_estimate_of_more_outcomes_is_what_makes_the_interval_exclude_0() -> None:
    import math

    from viralab.monitor.ab_report import more_outcomes_needed

    # difference 0.02, both spreads 0.1, 50 + 50 outcomes so far: z^2 (0.01/0.5 + 0.01/0.5)
    # / 0.02^2 = 384.1 outcomes in all, i.e. 285 more
    more = more_outcomes_needed(-0.02, 0.1, 0.1, 50, 50, 0.95)
    assert more == 285
    half = 1.959964 * math.sqrt(0.01 / ((100 + more) / 2) * 2)
    assert half < 0.02 < 1.959964 * math.sqrt(0.01 / ((99 + more) / 2) * 2)
    assert more_outcomes_needed(0.0, 0.1, 0.1, 50, 50, 0.95) is None  # nothing to settle
    # in a report: past the minimum per arm, the interval still contains 0 -> unsettled,
    # with the estimate
    full = synthetic(2000, champion_sd=0.15, challenger_sd=0.12, seed=3)
    partial = ab_report(full.groupby("marker").head(40), "preference", 1, 2, min_per_arm=30)
    assert partial.verdict == UNSETTLED and partial.low < 0 < partial.high
    assert partial.more_needed and partial.more_needed > 0
    assert f"about {partial.more_needed} more outcomes" in partial.note
    assert ab_report(full, "preference", 1, 2).verdict == BETTER


def test_a_worse_challenger_is_called_worse_and_no_challenger_is_nothing_to_compare() -> None:
    worse = ab_report(synthetic(500, 0.08, 0.15, seed=1), "preference", 1, 2)
    assert worse.verdict == WORSE and worse.low > 0
    nothing = ab_report(synthetic(50, 0.1, 0.1), "preference", 1, None)
    assert nothing.verdict == UNSETTLED and "no challenger" in nothing.note
    empty = ab_report(pd.DataFrame(), "preference", 1, 2)
    assert empty.verdict == UNSETTLED and empty.challenger.n == 0 and empty.difference is None


def test_only_each_arms_own_answers_count() -> None:
    frame = synthetic(100, 0.1, 0.1)
    stray = frame.assign(marker="explicit")  # e.g. `viralab predict --version 2`
    report = ab_report(pd.concat([frame, stray]), "preference", 1, 2)
    assert report.champion.n == 100 and report.challenger.n == 100


def test_the_ab_block_replaces_its_predecessor_and_keeps_the_evidence() -> None:
    evidence = "## Evidence\n\nmae 0.1"
    once = with_ab_section(evidence, f"{AB_START}\nfirst\n{AB_END}")
    twice = with_ab_section(once, f"{AB_START}\nsecond\n{AB_END}")
    assert twice.startswith(evidence) and "second" in twice and "first" not in twice
    assert twice.count(AB_START) == 1
    assert with_ab_section(twice, None) == evidence


def _version() -> str:
    client = mlflow.MlflowClient()
    client.create_registered_model("preference")
    with mlflow.start_run() as run:
        pass
    for _ in range(2):
        client.create_model_version("preference", "file:///tmp/none", run_id=run.info.run_id)
    client.update_model_version("preference", "2", description="## Evidence\n\ngates pass")
    client.set_registered_model_alias("preference", "champion", "1")
    client.set_registered_model_alias("preference", "challenger", "2")
    return "2"


def test_write_ab_section_on_the_version_page() -> None:
    version = _version()
    client = mlflow.MlflowClient()
    write_ab_section(client, "preference", version, "### A/B\n\nold")
    write_ab_section(client, "preference", version, "### A/B\n\nnew")
    text = client.get_model_version("preference", version).description
    assert text.startswith("## Evidence") and "new" in text and "old" not in text


def test_monitor_ab_logs_a_run_and_writes_the_challengers_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    monkeypatch.setenv("VIRALAB_DATABASE_URL", url)
    version = _version()
    frame = synthetic(200, champion_sd=0.15, challenger_sd=0.06, seed=4)
    made, rated = datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC) - timedelta(hours=1)
    engine = make_engine(url)
    create_schema(engine)
    create_prediction_tables(engine)
    with engine.begin() as conn:
        for i, row in enumerate(frame.itertuples()):
            conn.execute(insert(analyzed_videos).values(id=row.video_id))
            conn.execute(
                insert(predictions).values(
                    request_id="r", model="preference", version=row.version, marker=row.marker,
                    input_digest="d", video_id=row.video_id, prediction=row.prediction, at=made,
                )
            )  # fmt: skip
            conn.execute(
                insert(video_ratings).values(
                    id=f"r{i}", video_id=row.video_id, overall_score=float(row.outcome),
                    rated_at=rated, rater_type="owner",
                )
            )  # fmt: skip
    engine.dispose()
    result = CliRunner().invoke(app, ["monitor", "ab", "preference", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] == BETTER and data["challenger"]["n"] == 200
    run = mlflow.MlflowClient().get_run(data["run_id"])
    experiment = mlflow.MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "retraining"
    assert run.data.tags["viralab.ab.verdict"] == BETTER
    assert run.data.metrics["ab.challenger.n"] == 200
    page = mlflow.MlflowClient().get_model_version("preference", version).description
    assert page.startswith("## Evidence") and "challenger better" in page and AB_START in page
    table = CliRunner().invoke(app, ["monitor", "ab", "preference", "--no-log"])
    assert table.exit_code == 0 and "challenger better: MAE challenger v2" in table.output
