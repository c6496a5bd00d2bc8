"""Retraining: the champion's config on today's data, challenger through the gates, the
comparison on the new data, opt-in promotion, and every step as an MLflow run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from typer.testing import CliRunner

from tests.monitor.test_triggers import (  # noqa: F401  (fixtures)
    FORECASTER,
    blank,
    blank_store,
    champion,
    champion_store,
    new_ratings,
    ratings_overrides,
    registry_settings,
    stats_overrides,
    stats_rows,
)
from viralab.cli import app
from viralab.config import REDACTED, compose, to_safe_container
from viralab.errors import ConfigError
from viralab.monitor.commands import EXIT_REFUSED
from viralab.monitor.retrain import (
    CHALLENGER,
    CHAMPION,
    REFUSED,
    SKIPPED,
    ignored_overrides,
    retrain,
    training_config,
    without_redacted,
)
from viralab.monitor.triggers import FIRED, NOT_JUDGED, check
from viralab.tracking.tags import DATA_MAX_TIMESTAMP

# --- the training config ----------------------------------------------------------------------


def logged_yaml(overrides: list[str], **extra: object) -> str:
    """What `log_config` writes as config.yaml: resolved and redacted."""
    safe = to_safe_container(compose(overrides))
    safe.update(extra)
    return OmegaConf.to_yaml(OmegaConf.create(safe))


def test_training_config_repeats_the_champion_on_todays_data() -> None:
    text = logged_yaml(
        ["model=random_forest", "model.n_estimators=7", "seed=3", "task.cv_folds=0"],
        extra={"token": REDACTED, "url": f"postgresql://u:{REDACTED}@db/x", "kept": 1},
    )
    cfg = training_config(
        ["data=files", "data.path=today.json"], text, model="preference", run_name="r-1"
    )
    assert cfg.model.name == "random_forest" and cfg.model.n_estimators == 7
    assert cfg.seed == 3 and cfg.task.cv_folds == 0
    assert cfg.data.source == "files" and cfg.data.path == "today.json"  # today's data
    assert dict(cfg.extra) == {"kept": 1}  # redacted values are never trained with
    assert cfg.register is True and cfg.run_name == "r-1"
    # sample data: the current config's seed decides today's rows, not the logged one
    assert training_config([], text, model="preference", run_name="r").data.seed == 42


def test_training_config_of_a_forecaster_trains_its_own_target() -> None:
    text = logged_yaml(["model=lstm", "model.epochs=1", "target=all"])
    cfg = training_config([], text, model="youtube-lstm-likes", run_name="r")
    assert cfg.task.family == "forecast" and cfg.target == "likes" and cfg.model.epochs == 1
    with pytest.raises(ConfigError, match="registers 'preference', not 'youtube-lstm-views'"):
        training_config([], logged_yaml([]), model="youtube-lstm-views", run_name="r")


def test_overrides_outside_the_current_sections_are_reported() -> None:
    given = ["data=files", "model.alpha=2", "retrain.auto_promote=true", "+foo=1", "registry.x=1"]
    assert ignored_overrides(given) == ["model.alpha=2", "+foo=1"]
    assert without_redacted({"a": {"password": REDACTED, "b": 1}, "c": [REDACTED]}) == {
        "a": {"b": 1}
    }


# --- preference: whole retrains (each trains one model) ------------------------------------------


def retrain_runs() -> list[mlflow.entities.Run]:
    return mlflow.search_runs(
        experiment_names=["retraining"], output_format="list", order_by=["start_time ASC"]
    )


@pytest.mark.slow
@pytest.mark.usefixtures("champion")
def test_good_challenger_is_promoted_with_auto_promote(tmp_path: Path) -> None:
    overrides = ratings_overrides(tmp_path, new_ratings(60, shift=True))
    cfg = compose([*overrides, "retrain.auto_promote=true"])
    outcome = retrain(cfg, "preference", overrides=overrides)

    assert outcome.status == CHAMPION and outcome.version == "2"
    assert outcome.challenger_gates.passed and outcome.champion_gates.passed
    client = MlflowClient()
    assert client.get_registered_model("preference").aliases == {"champion": 2}

    parent, child = retrain_runs()
    assert parent.info.run_id == outcome.run_id
    assert parent.info.run_name.startswith("retrain-preference-")
    tags = parent.data.tags
    assert tags["viralab.challenges"] == "preference/v1"
    assert tags["viralab.triggers_fired"] == "new_ratings,feature_drift"
    assert tags["viralab.retrain.outcome"] == "champion"
    assert tags["viralab.retrain.version"] == "2"
    metrics = parent.data.metrics
    assert metrics["trigger.new_ratings"] == 60 and metrics["trigger.feature_drift"] > 1
    assert metrics["compare.n"] == 60 and 0 < metrics["compare.n_heldout"] < 60
    assert {"compare.champion_mae", "compare.challenger_mae"} <= set(metrics)
    names = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"triggers.json", "comparison.json", "drift"} <= names

    # the training is the parent's child, run with the champion's logged config on today's data
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["viralab.challenges"] == "preference/v1"
    assert child.data.params["task.cv_folds"] == "0"  # from the champion's config.yaml
    assert child.data.params["data.source"] == "files"
    assert child.data.tags["viralab.data.n_ratings"] == "280"
    version = client.get_model_version("preference", "2")
    assert version.run_id == child.info.run_id
    assert version.tags["viralab.challenges"] == "preference/v1"
    assert version.tags["viralab.retrain_run_id"] == parent.info.run_id

    # the new champion saw the new ratings: nothing is due any more
    after = check(compose(overrides), "preference")
    assert str(after.champion.version) == "2" and not after.due


@pytest.mark.slow
@pytest.mark.usefixtures("champion")
def test_challenger_the_gates_refuse_stays_challenger(tmp_path: Path) -> None:
    overrides = [
        *ratings_overrides(tmp_path, new_ratings(60, shift=True)),
        "registry.champion_comparison.tolerance=-0.9",  # must be 10x better than the champion
    ]
    outcome = retrain(compose(overrides), "preference", overrides=overrides, auto_promote=True)
    assert outcome.status == CHALLENGER
    assert outcome.challenger_gates.passed and not outcome.champion_gates.passed
    assert [r.gate for r in outcome.champion_gates.failures] == ["not worse than champion"]
    aliases = MlflowClient().get_registered_model("preference").aliases
    assert aliases == {"champion": 1, "challenger": 2}
    (parent, _) = retrain_runs()
    assert parent.data.tags["viralab.retrain.outcome"] == "challenger"
    assert "FAIL not worse than champion" in parent.data.tags["viralab.retrain.champion_gates"]


@pytest.mark.slow
@pytest.mark.usefixtures("champion")
def test_run_command_skips_when_quiet_and_exits_3_when_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    quiet = runner.invoke(app, ["retrain", "run", *ratings_overrides(tmp_path, [])])
    assert quiet.exit_code == 0, quiet.output
    assert "nothing to do" in quiet.output and retrain_runs() == []

    overrides = [
        *ratings_overrides(tmp_path, new_ratings(60)),
        "registry.gates.preference.thresholds.mae.lt=0.001",
    ]
    refused = runner.invoke(app, ["retrain", "run", "preference", *overrides])
    assert refused.exit_code == EXIT_REFUSED, refused.output
    assert "FAIL mae < 0.001" in refused.output
    assert "version 2 was refused as challenger" in refused.output
    assert MlflowClient().get_registered_model("preference").aliases == {"champion": 1}
    (parent, _) = retrain_runs()
    assert parent.data.tags["viralab.retrain.outcome"] == REFUSED


@pytest.mark.slow
@pytest.mark.usefixtures("champion")
def test_forced_retrain_without_new_data(tmp_path: Path) -> None:
    overrides = ratings_overrides(tmp_path, [])
    assert retrain(compose(overrides), "preference", overrides=overrides).status == SKIPPED
    outcome = retrain(compose(overrides), "preference", overrides=overrides, force=True)
    assert outcome.status == CHALLENGER and outcome.comparison is None
    assert [t.name for t in outcome.check.fired] == ["manual"]
    assert any("not compared" in note for note in outcome.notes)
    (parent, _) = retrain_runs()
    assert parent.data.tags["viralab.retrain.forced"] == "true"


# --- forecaster: a real (tiny) LSTM ------------------------------------------------------------

TINY = [
    "model.epochs=1",
    "model.batch_size=64",
    "model.unroll=false",
    "task.permutation_importance.repeats=1",
    "task.plots=false",
    "target=views",
]


@pytest.mark.slow
@pytest.mark.usefixtures("blank")
def test_forecaster_scores_new_windows_and_retrains(tmp_path: Path) -> None:
    from viralab.promotion.promote import promote
    from viralab.registry.client import get_client
    from viralab.train import train

    frame, snapshot = stats_rows()
    seen = frame[frame["timestamp"] <= snapshot]
    (tmp_path / "seen").mkdir()
    train(compose([*stats_overrides(tmp_path / "seen", seen), *TINY]))
    client = MlflowClient()
    version = client.get_model_version(FORECASTER, "1")
    # what training should log (see the report): the newest row the version saw
    client.set_tag(version.run_id, DATA_MAX_TIMESTAMP, snapshot.isoformat())
    cfg = compose(stats_overrides(tmp_path, frame))
    promote(get_client(), registry_settings(cfg), FORECASTER, "1", "champion", force=True,
            reason="test champion")  # fmt: skip

    result = check(cfg, FORECASTER, now=datetime.now(UTC) + timedelta(days=8))
    t = {x.name: x for x in result.triggers}
    assert t["new_rows"].figure == 258 and t["schedule"].status == FIRED
    perf = t["performance_degradation"]
    assert perf.status != NOT_JUDGED, perf.figure_text
    assert "on 258 new windows" in perf.figure_text and np.isfinite(perf.figure)
    logged = client.get_run(version.run_id).data.metrics["mae"]
    assert perf.metrics["trigger.performance_degradation.logged_mae"] == logged

    outcome = retrain(cfg, FORECASTER, force=True)
    assert outcome.version == "2" and outcome.status in {CHALLENGER, REFUSED}
    assert outcome.comparison is not None and outcome.comparison.n == 258
    assert outcome.comparison.unit == "windows"
    parent, child = retrain_runs()
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.params["target"] == "views" and child.data.params["model.epochs"] == "1"
    assert parent.data.tags["viralab.challenges"] == f"{FORECASTER}/v1"
