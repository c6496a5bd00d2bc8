"""`viralab forecasts compare`: one table per target, best MAE per horizon in bold, logged."""

from __future__ import annotations

import mlflow
from typer.testing import CliRunner

from viralab.cli import app
from viralab.monitor.forecast_compare import markdown, table_rows

runner = CliRunner()


def metrics(mae1: float, mae60: float, cov: float = 0.8) -> dict[str, float]:
    return {
        "mae_h1": mae1,
        "mae_h60": mae60,
        "mase_h1": mae1 / 10,
        "mase_h60": mae60 / 100,
        "coverage80_h1": cov,
        "coverage80_h60": cov,
        "baseline_persistence_mae_h1": 10.0,
        "baseline_persistence_mae_h60": 100.0,
        "baseline_mean_increment_60_mae_h1": 8.0,
        "baseline_mean_increment_60_mae_h60": 90.0,
    }


def test_rows_hold_models_then_naive_baselines_and_mark_the_best() -> None:
    rows = table_rows({"lstm": metrics(7.0, 95.0), "boosting": metrics(7.5, 70.0)}, [1, 60])
    names = [r["name"] for r in rows]
    assert names == ["lstm", "boosting", "naive persistence", "naive mean_increment_60"]
    best = {r["name"]: r["best"] for r in rows}
    assert best["lstm"] == {1} and best["boosting"] == {60}
    assert rows[-1]["cells"][60] == (90.0, 0.9, rows[-1]["cells"][60][2])
    text = markdown("views", rows, [1, 60])
    assert "| boosting | 7.5 / 0.750 (80%) | **70 / 0.700 (80%)** |" in text


def test_command_prints_and_logs_the_tables() -> None:
    mlflow.set_experiment("YouTube LSTM Models")
    for model, m in (("lstm", metrics(7.0, 95.0)), ("boosting", metrics(7.5, 70.0))):
        with mlflow.start_run(run_name=f"{model}_views"):
            mlflow.set_tags(
                {"viralab.task": "forecast", "viralab.model": model, "viralab.target": "views"}
            )
            mlflow.log_metrics(m)
    result = runner.invoke(app, ["forecasts", "compare"])
    assert result.exit_code == 0, result.output
    assert "views" in result.output and "boosting" in result.output
    (run,) = mlflow.search_runs(
        experiment_names=["YouTube LSTM Models"],
        filter_string="tags.`viralab.task` = 'forecast_compare'",
        output_format="list",
    )
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "compare")}
    assert artifacts == {"compare/views.md", "compare/mae_views.png"}
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/compare/views.md")
    assert "**70 / 0.700 (80%)**" in text


def test_no_forecaster_runs_is_one_readable_line() -> None:
    result = runner.invoke(app, ["forecasts", "compare"])
    assert result.exit_code != 0
    assert "no finished forecaster run" in result.output + (result.stderr or "")
    assert "Traceback" not in result.output
