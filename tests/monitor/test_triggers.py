"""Retrain triggers against a champion: config, preference (count, live MAE, drift), forecasters
(count, schedule, manual) and the `viralab retrain check` command."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from typer.testing import CliRunner

from tests.support.services import copy_sqlite
from viralab.cli import app
from viralab.config import compose
from viralab.data.sample import generate_ratings, generate_stats
from viralab.errors import ConfigError
from viralab.monitor.commands import EXIT_DUE, EXIT_ERROR
from viralab.monitor.triggers import (
    FIRED,
    NOT_JUDGED,
    OFF,
    QUIET,
    CheckResult,
    RetrainSettings,
    check,
)
from viralab.registry.client import RegistryError
from viralab.registry.markers import RegistrySettings
from viralab.tracking import ensure_experiment
from viralab.tracking.tags import DATA_MAX_RATED_AT, DATA_MAX_TIMESTAMP

FAST = ["data.n_videos=220", "task.cv_folds=0", "task.multi_output=false"]
SHIFTED = ("production.durationSeconds", "hook.strength")
FORECASTER = "youtube-lstm-views"
SNAPSHOT_ROWS = 251  # rows per video the fake forecaster "trained" on


# --- stores and data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blank_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow store to copy per test (migrations take ~6 s)."""
    path = tmp_path_factory.mktemp("blank") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return path


@pytest.fixture(scope="module")
def champion_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose `preference` v1, trained on the sample's 220 ratings, is the champion.

    Trained once per module; each test gets a copy (the artifacts stay where they are).
    """
    from viralab.promotion.promote import promote
    from viralab.registry.client import get_client
    from viralab.train import train

    path = tmp_path_factory.mktemp("champion") / "mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        cfg = compose(FAST)
        train(cfg)
        promote(get_client(), registry_settings(cfg), "preference", "1", "champion")
    mlflow.set_tracking_uri(None)
    return path


def use_store(store_uri: str, template: Path) -> str:
    target = Path(store_uri.removeprefix("sqlite:///"))
    copy_sqlite(template, target)
    mlflow.set_registry_uri(store_uri)
    return store_uri


@pytest.fixture
def blank(mlflow_isolation: str, blank_store: Path) -> str:
    return use_store(mlflow_isolation, blank_store)


@pytest.fixture
def champion(mlflow_isolation: str, champion_store: Path) -> str:
    return use_store(mlflow_isolation, champion_store)


def registry_settings(cfg: Any) -> RegistrySettings:
    return RegistrySettings.from_config(OmegaConf.to_container(cfg.registry, resolve=True))


def training_ratings() -> list[dict[str, Any]]:
    """What the champion trained on: the sample of `data.n_videos=220`."""
    return generate_ratings(n_videos=220, seed=42)


def new_ratings(
    n: int, seed: int = 7, *, shift: bool = False, flip: bool = False
) -> list[dict[str, Any]]:
    """`n` usable ratings (plus the sample's non-owner and v2 extras) rated after the training
    data; `shift` moves two features, `flip` turns the owner's taste upside down."""
    last = max(datetime.fromisoformat(r["rated_at"]) for r in training_ratings())
    records = copy.deepcopy(generate_ratings(n_videos=n, seed=seed))
    for i, record in enumerate(records):
        record["id"] = f"new_{seed}_{i:05d}"
        record["video_id"] = f"newvid_{seed}_{i:05d}"
        record["rated_at"] = (last + timedelta(hours=i + 1)).isoformat()
        if shift:
            analysis = record["video"]["visual_analysis"]
            analysis["production"]["durationSeconds"] *= 2.5
            analysis["hook"]["strength"] = min(10, analysis["hook"]["strength"] + 3)
        if flip:
            record["overall_score"] = round(1.0 - record["overall_score"], 2)
    return records


def ratings_overrides(tmp_path: Path, new: list[dict[str, Any]]) -> list[str]:
    """`data=files` over a JSON export of the training ratings plus `new`."""
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(training_ratings() + new), encoding="utf-8")
    return ["data=files", f"data.path={path}"]


def by_name(result: CheckResult) -> dict[str, Any]:
    return {t.name: t for t in result.triggers}


# --- config -------------------------------------------------------------------------------------


def test_retrain_config_holds_the_specs_thresholds() -> None:
    cfg = compose()
    settings = RetrainSettings.from_config(cfg.retrain)
    assert settings.experiment == "retraining" and settings.auto_promote is False
    assert set(settings.models) == {
        "preference",
        "youtube-lstm-views",
        "youtube-lstm-likes",
        "youtube-lstm-comments",
    }
    pref = settings.for_model("preference")
    assert (pref.family, pref.new_ratings, pref.mae_increase) == ("preference", 50, 0.05)
    assert pref.drift is not None and pref.drift.threshold == 0.1 and pref.max_age_days is None
    assert cfg.retrain.models.preference.drift.measure == "psi"
    for target in ("views", "likes", "comments"):
        fc = settings.for_model(f"youtube-lstm-{target}")
        assert (fc.family, fc.new_rows, fc.mae_increase_ratio, fc.max_age_days) == (
            "forecast",
            1000,
            0.5,
            7.0,
        )
    with pytest.raises(ConfigError, match="configured: preference, youtube-lstm-comments"):
        settings.for_model("nope")
    with pytest.raises(ConfigError, match="family"):
        RetrainSettings.from_config({"models": {"x": {"family": "other"}}})


# --- preference (the champion is trained once per module) ---------------------------------------


@pytest.mark.slow
def test_no_new_ratings_nothing_fires(champion: str, tmp_path: Path) -> None:
    cfg = compose(ratings_overrides(tmp_path, []))
    result = check(cfg, "preference")
    t = by_name(result)
    assert not result.due and result.challenges == "preference/v1"
    assert t["new_ratings"].status == QUIET and t["new_ratings"].figure == 0
    assert t["performance_degradation"].status == NOT_JUDGED
    assert t["feature_drift"].status == NOT_JUDGED
    assert t["schedule"].status == OFF and t["manual"].status == QUIET
    assert "newest training rating" in result.basis
    run = MlflowClient().get_run(result.run.run_id)
    assert run.data.tags[DATA_MAX_RATED_AT] == result.cutoff.isoformat()
    # 220 usable ratings, of which the frozen gate set (issue 13) holds back 20 %
    assert run.data.tags["viralab.data.n_ratings"] == str(220 - 44)


@pytest.mark.slow
def test_new_ratings_from_the_same_taste_fire_the_count_only(champion: str, tmp_path: Path) -> None:
    result = check(compose(ratings_overrides(tmp_path, new_ratings(60))), "preference")
    t = by_name(result)
    assert [x.name for x in result.fired] == ["new_ratings"]
    assert t["new_ratings"].figure == 60 and t["new_ratings"].threshold_text == ">= 50"
    perf = t["performance_degradation"]
    assert perf.status == QUIET and abs(perf.figure) < 0.05
    logged = MlflowClient().get_run(result.run.run_id).data.metrics["mae"]
    live = perf.metrics["trigger.performance_degradation.live_mae"]
    assert perf.figure == pytest.approx(live - logged)
    assert t["feature_drift"].status == QUIET and result.drift.drifting == []
    assert len(result.recent) == 60


@pytest.mark.slow
def test_shifted_features_fire_the_drift_trigger_with_figures(
    champion: str, tmp_path: Path
) -> None:
    result = check(compose(ratings_overrides(tmp_path, new_ratings(60, shift=True))), "preference")
    drift = by_name(result)["feature_drift"]
    assert drift.status == FIRED and drift.figure > 1.0
    assert {f.feature for f in result.drift.drifting} == set(SHIFTED)
    assert result.drift.max_feature in SHIFTED and result.drift.n_recent == 60
    # the encoded feature count depends on the rows trained on (the gate set is held back)
    assert re.search(r"\b2/\d+ features drift", drift.figure_text), drift.figure_text
    assert result.metrics()["trigger.feature_drift.n_drifting"] == 2
    assert result.tags()["viralab.triggers_fired"] == "new_ratings,feature_drift"


@pytest.mark.slow
def test_worse_live_mae_fires_and_thresholds_come_from_config(
    champion: str, tmp_path: Path
) -> None:
    overrides = ratings_overrides(tmp_path, new_ratings(30, flip=True))
    result = check(compose(overrides), "preference")
    t = by_name(result)
    assert t["new_ratings"].status == QUIET and t["new_ratings"].figure == 30  # 30 < 50
    assert t["performance_degradation"].status == FIRED
    assert t["performance_degradation"].figure > 0.1
    # 30 ratings: deciles are merged so each bin expects 5 rows; no feature moved
    assert t["feature_drift"].status == QUIET
    lowered = check(compose([*overrides, "retrain.models.preference.new_ratings=25"]), "preference")
    assert by_name(lowered)["new_ratings"].status == FIRED


@pytest.mark.slow
def test_schedule_manual_and_the_start_time_fallback(champion: str, tmp_path: Path) -> None:
    overrides = [*ratings_overrides(tmp_path, []), "retrain.models.preference.max_age_days=7"]
    cfg = compose(overrides)
    later = datetime.now(UTC) + timedelta(days=8)
    result = check(cfg, "preference", manual=True, now=later)
    t = by_name(result)
    assert t["schedule"].status == FIRED and 7.9 < t["schedule"].figure < 8.1
    assert t["manual"].status == FIRED
    # a run logged before the cutoff tag existed: "new" = rated after the run started
    MlflowClient().delete_tag(result.run.run_id, DATA_MAX_RATED_AT)
    fallback = check(cfg, "preference")
    assert "start" in fallback.basis and by_name(fallback)["new_ratings"].figure == 0
    assert by_name(fallback)["schedule"].status == QUIET


@pytest.mark.slow
def test_check_command_exit_codes_table_and_logged_run(champion: str, tmp_path: Path) -> None:
    runner = CliRunner()
    quiet = runner.invoke(app, ["retrain", "check", *ratings_overrides(tmp_path, [])])
    assert quiet.exit_code == 0, quiet.output
    assert "nothing to do" in quiet.output and "fired?" in quiet.output

    overrides = ratings_overrides(tmp_path, new_ratings(60, shift=True))
    due = runner.invoke(app, ["retrain", "check", "preference", *overrides, "--log"])
    assert due.exit_code == EXIT_DUE, due.output
    assert "retrain advised (new_ratings, feature_drift)" in due.output
    assert "PSI > 0.1" in due.output and "production.durationSeconds" in due.output

    (run,) = mlflow.search_runs(experiment_names=["retraining"], output_format="list")
    assert run.info.run_name.startswith("retrain-check-preference-")
    assert run.data.tags["viralab.checked_version"] == "preference/v1"
    assert run.data.tags["viralab.trigger.feature_drift"] == "fired"
    assert run.data.metrics["trigger.new_ratings"] == 60
    client = MlflowClient()
    names = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"triggers.json", "drift"} <= names
    drift = {f.path for f in client.list_artifacts(run.info.run_id, "drift")}
    assert {"drift/psi.csv", "drift/psi.png", "drift/hist"} <= drift


def test_check_errors_are_one_line(blank: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["retrain", "check", "preference"])
    assert result.exit_code == EXIT_ERROR
    assert result.output.strip().startswith("error: ") and len(result.output.splitlines()) == 1
    unknown = runner.invoke(app, ["retrain", "check", "no-such-model"])
    assert unknown.exit_code == EXIT_ERROR and "no retrain triggers configured" in unknown.output
    with pytest.raises(RegistryError, match="unknown model"):
        check(compose(), "preference")


def test_a_version_without_drift_reference_or_pipeline_is_judged_where_possible(
    blank: str, tmp_path: Path
) -> None:
    """An older or foreign version: no cutoff tag, no drift/reference.json, no pipeline."""
    experiment = ensure_experiment("preference")
    with mlflow.start_run(experiment_id=experiment):
        mlflow.log_metric("mae", 0.1)
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Constant(),
            pip_requirements=["mlflow"],
            registered_model_name="preference",
        )
    MlflowClient().set_registered_model_alias("preference", "champion", "1")
    # every sample rating predates this run: with the start-time cutoff only `new` counts
    new = new_ratings(30)
    for record in new:
        record["rated_at"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = check(compose(ratings_overrides(tmp_path, new)), "preference")
    t = by_name(result)
    assert "start" in result.basis and t["new_ratings"].figure == 30
    assert t["performance_degradation"].status == FIRED  # predicts 0 for every rating
    assert t["feature_drift"].status == NOT_JUDGED
    assert "drift/reference.json" in t["feature_drift"].figure_text


# --- forecasters: a registered stand-in version (the counts need no network) ---------------------


class Constant(mlflow.pyfunc.PythonModel):
    """A stand-in for a forecaster: it cannot score windows, which the check must survive."""

    def predict(self, context, model_input, params=None):  # untyped: no schema warnings
        return np.zeros(len(model_input))


def stats_rows() -> tuple[pd.DataFrame, pd.Timestamp]:
    """Two videos tracked over the same minutes, and the snapshot time the version saw."""
    start = "2025-07-01T00:00:00Z"
    frame = pd.concat(
        [
            generate_stats(seed=3, videos={"vid-a": 400}, start=start),
            generate_stats(seed=4, videos={"vid-b": 360}, start=start),
        ],
        ignore_index=True,
    )
    snapshot = pd.Timestamp(start) + pd.Timedelta(minutes=SNAPSHOT_ROWS - 1)
    return frame, snapshot


def register_forecaster(*, tagged: bool, snapshot: pd.Timestamp, rows_in: int) -> str:
    experiment = ensure_experiment("YouTube LSTM Models")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metrics({"mae": 8.0, "clean.rows_in": float(rows_in)})
        if tagged:
            mlflow.set_tag(DATA_MAX_TIMESTAMP, snapshot.isoformat())
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Constant(),
            pip_requirements=["mlflow"],
            registered_model_name=FORECASTER,
        )
    MlflowClient().set_registered_model_alias(FORECASTER, "champion", "1")
    return run.info.run_id


def stats_overrides(tmp_path: Path, frame: pd.DataFrame) -> list[str]:
    path = tmp_path / "stats.csv"
    frame.to_csv(path, index=False)
    return ["model=lstm", "data=files", f"data.path={path}"]


@pytest.mark.parametrize("tagged", [True, False])
def test_forecaster_new_rows_schedule_and_manual(blank: str, tmp_path: Path, tagged: bool) -> None:
    frame, snapshot = stats_rows()
    seen = int((frame["timestamp"] <= snapshot).sum())
    assert seen == 2 * SNAPSHOT_ROWS
    register_forecaster(tagged=tagged, snapshot=snapshot, rows_in=seen)
    overrides = stats_overrides(tmp_path, frame)
    result = check(compose(overrides), FORECASTER, now=datetime.now(UTC) + timedelta(days=1))
    t = by_name(result)
    assert t["new_rows"].figure == len(frame) - seen == 258
    assert t["new_rows"].status == QUIET and t["new_rows"].threshold_text == "> 1000"
    assert result.basis.startswith("rows after" if tagged else "current rows 760 minus the 502")
    # a stand-in model cannot forecast windows: reported, not fatal
    assert t["performance_degradation"].status == NOT_JUDGED
    assert "cannot score" in t["performance_degradation"].figure_text
    assert t["schedule"].status == QUIET and t["schedule"].threshold_text == "> 7 days"
    assert not result.due

    due = check(
        compose([*overrides, f"retrain.models.{FORECASTER}.new_rows=200"]),
        FORECASTER,
        manual=True,
        now=datetime.now(UTC) + timedelta(days=8),
    )
    assert {x.name for x in due.fired} == {"new_rows", "schedule", "manual"}
    assert by_name(due)["schedule"].figure > 7
