"""Spec 000 §8 milestones: what a run may do at a given number of usable ratings."""

from __future__ import annotations

import mlflow
import pytest
from typer.testing import CliRunner

from viralab.cli import app
from viralab.config import compose
from viralab.errors import ConfigError
from viralab.families.preference.milestones import (
    SPEC_MILESTONES,
    current_milestone,
    decide_training,
    milestone_report,
    milestones_from_config,
    next_milestone,
)
from viralab.train import train


@pytest.mark.parametrize(
    ("n", "force", "train_it", "forced", "milestone"),
    [
        (0, False, False, False, "collecting"),
        (99, False, False, False, "collecting"),
        (99, True, False, False, "collecting"),  # under 100 never trains, forced or not
        (100, False, False, False, "correlation"),
        (199, False, False, False, "correlation"),
        (150, True, True, True, "correlation"),
        (200, False, True, False, "first_model"),
        (299, False, True, False, "first_model"),
        (300, False, True, False, "retrain"),
        (500, False, True, False, "advanced"),
        (5000, True, True, False, "advanced"),
    ],
)
def test_decide_training(n: int, force: bool, train_it: bool, forced: bool, milestone: str) -> None:
    decision = decide_training(n, force=force)
    assert (decision.train, decision.forced, decision.milestone) == (train_it, forced, milestone)
    assert str(n) in decision.reason


def test_spec_milestones_and_neighbours() -> None:
    assert [(m.name, m.at) for m in SPEC_MILESTONES] == [
        ("correlation", 100),
        ("first_model", 200),
        ("retrain", 300),
        ("advanced", 500),
    ]
    assert current_milestone(99) is None and next_milestone(99).name == "correlation"
    assert current_milestone(250).name == "first_model" and next_milestone(250).name == "retrain"
    assert next_milestone(500) is None


def test_thresholds_from_config() -> None:
    custom = milestones_from_config({"correlation": 10, "first_model": 20})
    assert [m.at for m in custom] == [10, 20, 300, 500]
    assert decide_training(15, milestones=custom).milestone == "correlation"
    assert milestones_from_config(None) == SPEC_MILESTONES
    with pytest.raises(ConfigError, match="unknown"):
        milestones_from_config({"bogus": 1})
    with pytest.raises(ConfigError, match="increase"):
        milestones_from_config({"first_model": 50})


def test_report_lines() -> None:
    lines = milestone_report(150)
    assert lines[0] == "Milestone reached: correlation (>= 100 ratings)"
    assert any(line.startswith("Next: first_model at 200 ratings (50 more") for line in lines)
    assert "task.force_train=true" in lines[-1]
    assert milestone_report(40)[0].startswith("Milestone: none yet")
    assert any("every milestone reached" in line for line in milestone_report(900))


def test_milestone_command_counts_usable_ratings() -> None:
    result = CliRunner().invoke(app, ["milestone", "data.n_videos=150"])
    assert result.exit_code == 0, result.output
    assert "Usable ratings: 150 (kept 150 of" in result.output
    assert "Milestone reached: correlation" in result.output
    assert "Next: first_model at 200 ratings (50 more usable ratings needed)" in result.output


def test_milestone_command_user_errors() -> None:
    result = CliRunner().invoke(app, ["milestone", "data=nowhere"])
    assert result.exit_code == 2
    assert "unknown data 'nowhere'" in result.output


@pytest.mark.slow
def test_run_under_200_analyses_correlations_only(capsys) -> None:
    metrics = train(compose(["data.n_videos=150"]))
    out = capsys.readouterr().out
    assert "correlation analysis only" in out and "no model trained" in out
    assert "mae" not in metrics and metrics["corr_expected_found"] == 13
    run = mlflow.search_runs(experiment_names=["preference"], output_format="list")[0]
    assert run.data.tags["viralab.milestone"] == "correlation"
    assert run.data.tags["viralab.stage"] == "correlation_only"
    assert "no model" in run.data.tags["viralab.note"]
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"correlations.csv", "correlations.png", "feature_importance_snapshot.json"} <= names
    assert "model" not in names
    assert mlflow.MlflowClient().search_registered_models() == []


@pytest.mark.slow
def test_forced_run_under_200_trains_and_says_so() -> None:
    train(
        compose(["data.n_videos=150", "task.force_train=true", "task.cv_folds=0", "register=false"])
    )
    run = mlflow.search_runs(experiment_names=["preference"], output_format="list")[0]
    assert run.data.tags["viralab.stage"] == "trained"
    assert run.data.tags["viralab.force_train"] == "true"
    assert run.data.tags["viralab.milestone"] == "correlation"
