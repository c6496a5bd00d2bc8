"""The forecast path end to end on tiny data: runs, metrics, artifacts, registry, reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from viralab.config import compose
from viralab.data.sample import generate_stats
from viralab.errors import ConfigError, DataError
from viralab.families import forecast as forecasting
from viralab.features import sequence as seq

#: The metric names the registry's promotion gates read (registry contract).
CONTRACT_METRICS = {
    "mae_scaled",
    "mse_scaled",
    "rmse_scaled",
    "mae",
    "mse",
    "rmse",
    "best_baseline_mae",
    "baseline_persistence_mae",
    "baseline_drift_mae",
    "baseline_mean_increment_mae",
    "mase",
}
SPEC_METRICS = {
    "epochs_trained",
    "convergence_epoch",
    "final_train_loss",
    "final_val_loss",
    "training_time",
    "model_size_mb",
}
SPEC_PARAMS = {
    "target",
    "sequence_length",
    "total_sequences",
    "train_sequences",
    "test_sequences",
    "input_features",
    "batch_size",
    "learning_rate",
    "lstm_units_1",
    "lstm_units_2",
    "dropout_rate",
    "dense_units",
}
TINY = [
    "model=lstm",
    "model.epochs=1",
    "model.batch_size=64",
    "model.unroll=false",
    "task.permutation_importance.repeats=1",
    "task.max_plot_videos=2",
]


@pytest.fixture
def stats_csv(tmp_path: Path) -> Path:
    """Two short videos as a CSV export, with a 3-minute gap and a counter correction."""
    frame = generate_stats(seed=3, videos={"vid-a": 150, "vid-b": 120})
    frame = frame.drop(index=[40, 41, 42])
    frame.loc[60, "view_count"] = frame.loc[59, "view_count"] - 5
    path = tmp_path / "stats.csv"
    frame.to_csv(path, index=False)
    return path


def cfg_for(path: Path, *overrides: str):
    return compose([*TINY, "data=files", f"data.path={path}", *overrides])


def test_targets() -> None:
    assert forecasting.resolve_targets("all") == ["views", "likes", "comments"]
    assert forecasting.resolve_targets("likes") == ["likes"]
    with pytest.raises(ConfigError, match="unknown target 'shares'"):
        forecasting.resolve_targets("shares")


def test_unknown_target_fails_before_any_run(stats_csv: Path) -> None:
    with pytest.raises(ConfigError):
        forecasting.train_forecast(cfg_for(stats_csv, "target=shares"))
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_unknown_prediction_mode_is_a_config_error(stats_csv: Path) -> None:
    with pytest.raises(ConfigError, match=r"task\.predict"):
        forecasting.prepare(cfg_for(stats_csv, "task.predict=ratio"))


def test_too_little_data_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    generate_stats(videos={"a": 15}).to_csv(path, index=False)
    with pytest.raises(DataError, match="consecutive usable rows"):
        forecasting.prepare(cfg_for(path))


def test_prepare_scales_on_training_rows_and_windows_every_part(stats_csv: Path) -> None:
    data = forecasting.prepare(cfg_for(stats_csv))
    assert data.report.rows_interpolated == 3 and data.report.counter_corrections == 1
    fit_rows = data.inputs[data.parts == "fit"]
    np.testing.assert_allclose(data.scaler.data_max_, fit_rows.max().to_numpy())
    assert all(len(data.windows[p]) > 0 for p in seq.PARTS)
    assert data.settings["counts_as"] == "increment"  # default predict: residual


@pytest.mark.slow
def test_single_target_run_without_registration(stats_csv: Path) -> None:
    cfg = cfg_for(
        stats_csv,
        "target=views",
        "register=false",
        "features.time_features=true",
        "task.cross_validation.enabled=true",
        "task.cross_validation.n_splits=2",
    )
    metrics = forecasting.train_forecast(cfg)
    assert set(metrics) >= CONTRACT_METRICS

    (run,) = mlflow.search_runs(experiment_names=["YouTube LSTM Models"], output_format="list")
    assert run.info.run_name.startswith("LSTM_views_")
    assert run.data.tags["viralab.family"] == "forecast"  # the family tag every family writes
    assert run.data.tags["viralab.task"] == "forecast"  # kept: forecast compare selects by it
    assert set(run.data.metrics) >= CONTRACT_METRICS | SPEC_METRICS
    assert {"cv_mae_mean", "cv_mae_std", "cv_folds"} <= set(run.data.metrics)
    assert run.data.metrics["clean.rows_interpolated"] == 3
    assert run.data.params["input_features"] == "10"  # six + four time features
    assert mlflow.MlflowClient().search_registered_models() == []


@pytest.mark.slow
def test_all_targets_parent_children_registry_and_reload(
    stats_csv: Path, mlflow_isolation: str
) -> None:
    metrics = forecasting.train_forecast(cfg_for(stats_csv, "target=all"))
    assert {f"{t}.mae" for t in seq.TARGETS} <= set(metrics)

    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(experiment_names=["YouTube LSTM Models"], output_format="list")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["viralab.target"]: r for r in runs if r is not parent}
    assert parent.info.run_name.startswith("LSTM_all_")
    assert set(children) == set(seq.TARGETS)
    assert parent.data.metrics["clean.counter_corrections"] == 1
    assert parent.data.params["model.name"] == "lstm"  # the resolved config
    assert parent.data.tags["viralab.family"] == "forecast"

    for target, run in children.items():
        assert run.info.run_name.startswith(f"LSTM_{target}_")
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["viralab.family"] == "forecast"
        assert set(run.data.metrics) >= CONTRACT_METRICS | SPEC_METRICS
        assert set(run.data.params) >= SPEC_PARAMS
        assert run.data.tags["viralab.meets_spec_thresholds"] in {"true", "false"}
        assert (
            run.data.tags["viralab.beats_naive"]
            == str(run.data.metrics["mae"] < run.data.metrics["best_baseline_mae"]).lower()
        )
        assert "viralab.alerts" in run.data.tags
        assert len(client.get_metric_history(run.info.run_id, "epoch_val_loss")) == 1
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"history.json", "config.json", "scaler.pkl", "plots"} <= names
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert plots == {
            "plots/learning_curve.png",
            "plots/forecast_vid-a.png",
            "plots/forecast_vid-b.png",
        }
        assert {f"importance.{c}" for c in seq.input_columns()} <= set(run.data.metrics)
        (version,) = client.search_model_versions(f"name='youtube-lstm-{target}'")
        assert version.run_id == run.info.run_id

    # the registered model loads in a fresh process and takes raw rows
    rows = pd.read_csv(stats_csv).query("video_id == 'vid-b'").tail(21)
    rows_path = stats_csv.parent / "rows.csv"
    rows.to_csv(rows_path, index=False)
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/youtube-lstm-views/1')\n"
        "rows = pd.read_csv(sys.argv[1])\n"
        "out = m.predict(rows, params={'horizon': 3})\n"
        "print(json.dumps(out.assign(timestamp=out.timestamp.astype(str))"
        ".to_dict('records')))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_isolation, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(rows_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=stats_csv.parent,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["step"] for r in out] == [1, 2, 3]
    last = rows["view_count"].iloc[-1]
    assert all(r["prediction"] >= last and r["prediction"] % 1 == 0 for r in out)
    assert out[0]["timestamp"].startswith(
        str(pd.Timestamp(rows["timestamp"].iloc[-1]) + pd.Timedelta("1min"))[:16]
    )
