"""The forecasters' peers: each through `train(cfg)` on tiny data; the pyfunc's direct output."""

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
from viralab.errors import DataError
from viralab.models.peers import BoostingPeer, NaivePeer, StatsPeer, from_config
from viralab.serve.forecast_model import HORIZON_COLUMNS, OUTPUT_COLUMNS, ForecastModel
from viralab.train import train

TINY = ["task.horizons=[1,5,10]", "task.max_plot_videos=1", "target=views"]
HORIZON_METRICS = {
    f"{m}_h{h}"
    for m in ("mae", "mase", "relative_mae", "coverage80", "width80")
    for h in (1, 5, 10)
}


@pytest.fixture
def stats_csv(tmp_path: Path) -> Path:
    path = tmp_path / "stats.csv"
    generate_stats(seed=3, videos={"vid-a": 150, "vid-b": 120}).to_csv(path, index=False)
    return path


def linear_history(n: int = 3, T: int = 80, rate: float = 2.0) -> np.ndarray:
    t = np.arange(T, dtype="float64")
    one = np.stack([1000 + rate * t, 50 + 0.5 * t, 5 + 0.0 * t], axis=1)
    return np.repeat(one[None], n, axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["naive", "boosting", "ets", "theta"])
def test_each_peer_trains_logs_and_registers_through_train(stats_csv: Path, model: str) -> None:
    cfg = compose([f"model={model}", "data=files", f"data.path={stats_csv}", *TINY])
    metrics = train(cfg)
    assert set(metrics) >= HORIZON_METRICS
    assert {"mae", "mase", "relative_mae", "best_baseline_mae"} <= set(metrics)

    (run,) = mlflow.search_runs(experiment_names=["YouTube LSTM Models"], output_format="list")
    assert run.info.run_name.startswith(f"{model}_views_")
    assert run.data.tags["viralab.model"] == model
    assert run.data.tags["viralab.family"] == "forecast"
    assert run.data.tags["viralab.meets_spec_thresholds"] in {"true", "false"}
    assert set(run.data.metrics) >= HORIZON_METRICS
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    by_context = {{t.key: t.value for t in d.tags}.get("mlflow.data.context"): d for d in inputs}
    assert set(by_context) == {"training", "gate"}  # the frozen gate set is logged beside it
    dataset = by_context["training"]
    tags = {t.key: t.value for t in dataset.tags}
    assert tags["rows"] == str(270 - 54) and tags["videos"] == "2"  # the gate set's 20 % held out
    assert dataset.dataset.digest
    (version,) = mlflow.MlflowClient().search_model_versions("name='youtube-lstm-views'")
    assert version.run_id == run.info.run_id

    loaded = mlflow.pyfunc.load_model("models:/youtube-lstm-views/1")
    rows = pd.read_csv(stats_csv).query("video_id == 'vid-b'").tail(61)
    nxt = loaded.predict(rows, params={"horizon": 2})
    assert list(nxt.columns) == OUTPUT_COLUMNS and nxt["step"].tolist() == [1, 2]
    assert (nxt["prediction"] >= rows["view_count"].iloc[-1]).all()


def test_naive_best_picks_per_horizon_on_validation() -> None:
    hist = linear_history()
    future = hist[:, -1:, 0] + 2.0 * np.array([[1, 5]])
    peer = NaivePeer("best").fit(0, (1, 5), 20, (hist, None, future), (hist, None, future))
    assert peer.chosen[5] in {"drift", "mean_increment", "mean_increment_60"}
    np.testing.assert_allclose(peer.predict(hist, None), future)
    again = from_config(json.loads(json.dumps(peer.config())))
    np.testing.assert_allclose(again.predict(hist, None), future)


def test_boosting_interpolates_between_its_horizons_monotonically() -> None:
    rng = np.random.default_rng(0)
    hist = linear_history(n=400) + rng.normal(0, 0.1, (400, 80, 3)).cumsum(axis=1).clip(0)
    hist = np.maximum.accumulate(hist, axis=1)
    times = pd.date_range("2025-07-01", periods=400, freq="min", tz="UTC").to_numpy()
    future = hist[:, -1:, 0] + 2.0 * np.array([[1, 5, 10]])
    peer = BoostingPeer(max_iter=20, min_samples_leaf=5).fit(
        0, (1, 5, 10), 20, (hist, times, future)
    )
    steps = peer.predict_steps(hist[:3], times[:3], 12)
    assert steps.shape == (3, 12)
    assert (np.diff(steps, axis=1) >= 0).all() and (steps[:, 0] >= hist[:3, -1, 0]).all()
    np.testing.assert_allclose(steps[:, [0, 4, 9]], peer.predict(hist[:3], times[:3]))


def test_boosting_fits_when_a_day_before_column_has_no_value_at_any_origin() -> None:
    """Histories a day and half an hour long: "the same minutes a day earlier" exists, the hour
    before it does not (NaN padding). An all-NaN column cannot be binned; the peer drops it."""
    rng = np.random.default_rng(1)
    T = 1440 + 61  # the boosting window: a day and an hour
    hist = np.cumsum(rng.poisson(2.0, (60, T, 3)), axis=1).astype(float)
    hist[:, :30, :] = np.nan  # padding: the history starts 30 minutes into the window
    times = pd.date_range("2025-07-01", periods=60, freq="min", tz="UTC").to_numpy()
    future = hist[:, -1:, 0] + 2.0 * np.array([[1, 5]])
    peer = BoostingPeer(max_iter=10, min_samples_leaf=5).fit(0, (1, 5), T, (hist, times, future))
    out = peer.predict(hist[:4], times[:4])
    assert out.shape == (4, 2) and np.isfinite(out).all()
    again = from_config(json.loads(json.dumps(peer.config())), peer.models)  # as the pyfunc loads
    np.testing.assert_allclose(again.predict(hist[:4], times[:4]), out)


def test_stats_peer_falls_back_on_a_series_too_short_to_fit() -> None:
    hist = linear_history(n=1, T=6)
    out = StatsPeer("ets").fit(0, (1, 3), 5, (hist, None, None)).predict(hist, None)
    np.testing.assert_allclose(out, [[1012.0, 1016.0]])  # mean increment 2 per step


@pytest.mark.slow
def test_lstm_pyfunc_multi_horizon_output_in_a_fresh_process(
    stats_csv: Path, mlflow_isolation: str
) -> None:
    cfg = compose(
        [
            "model=lstm",
            "model.epochs=1",
            "model.unroll=false",
            "task.permutation_importance.enabled=false",
            "task.plots=false",
            "data=files",
            f"data.path={stats_csv}",
            *TINY,
        ]
    )
    train(cfg)
    rows = pd.read_csv(stats_csv).query("video_id == 'vid-a'").tail(61)
    rows_path = stats_csv.parent / "rows.csv"
    rows.to_csv(rows_path, index=False)
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/youtube-lstm-views/1')\n"
        "out = m.predict(pd.read_csv(sys.argv[1]), params={'horizons': [1, 5, 10]})\n"
        "print(json.dumps(out.assign(timestamp=out.timestamp.astype(str)).to_dict('records')))\n"
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
    assert [r["horizon"] for r in out] == [1, 5, 10]
    assert set(out[0]) == set(HORIZON_COLUMNS)
    last = rows["view_count"].iloc[-1]
    for r in out:
        assert last <= r["lower_80"] <= r["prediction"] <= r["upper_80"]
    assert out[2]["timestamp"].startswith(
        str(pd.Timestamp(rows["timestamp"].iloc[-1]) + pd.Timedelta("10min"))[:16]
    )
    # no cloudpickled wrapper: the logged model is code (models-from-code)
    local = mlflow.artifacts.download_artifacts("models:/youtube-lstm-views/1")
    assert not list(Path(local).rglob("python_model.pkl"))


def naive_model() -> ForecastModel:
    peer = NaivePeer("mean_increment")
    peer.fit(0, (1, 15), 5, (linear_history(), None, None))
    settings = {
        "sequence_length": 5,
        "frequency": "1min",
        "max_gap_steps": 5,
        "round_forecasts": False,
        "target": "views",
        "target_column": "view_count",
        "horizons": [1, 15],
        "interval_quantiles": {"1": [-1.0, 1.0], "15": [-0.5, 0.5]},
    }
    return ForecastModel(settings=settings, peer=peer)


def video_rows(video: str, n: int = 30) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2025-07-01", periods=n, freq="min", tz="UTC"),
            "video_id": video,
            "view_count": 1000 + 2 * i,
            "like_count": 50 + i,
            "comment_count": np.full(n, 7),
        }
    )


def test_direct_horizons_give_points_and_intervals_per_video() -> None:
    frame = pd.concat([video_rows("a"), video_rows("b")], ignore_index=True)
    out = naive_model().predict(None, frame, params={"horizons": [15, 1]})
    assert list(out.columns) == HORIZON_COLUMNS
    assert out["horizon"].tolist() == [1, 15, 1, 15]
    np.testing.assert_allclose(out["prediction"], [1060.0, 1088.0] * 2)
    assert (out["lower_80"] <= out["prediction"]).all()
    assert (out["prediction"] <= out["upper_80"]).all()
    # a horizon without a calibrated interval still gets its point forecast
    odd = naive_model().predict(None, video_rows("a"), params={"horizons": [30]})
    assert odd["prediction"].iloc[0] == pytest.approx(1118.0)
    assert np.isnan(odd["lower_80"].iloc[0])


def test_served_band_uses_the_scale_the_model_was_calibrated_with() -> None:
    """Issue 16: the pyfunc widens the band as the judge did (``interval_scale``), from the
    newest 61 rows; a model saved before the fix (no ``interval_scale``) keeps the plain-rate
    scale its quantiles were calibrated on."""
    from viralab.models import forecast_eval as fe

    rows = video_rows("a", n=90)
    rows.loc[75:, "view_count"] = rows.loc[74, "view_count"] + 20 * np.arange(1, 16)  # turns
    legacy = naive_model()
    fixed = naive_model()
    fixed.settings["interval_scale"] = fe.SCALE
    old = legacy.predict(None, rows, params={"horizons": [15]}).iloc[0]
    new = fixed.predict(None, rows, params={"horizons": [15]}).iloc[0]
    history = rows["view_count"].to_numpy(dtype="float64")[None, -61:]
    expected = fe.scale(history, (15,))[0, 0] * 0.5  # the model's quantile at H = 15
    assert new["upper_80"] - new["prediction"] == pytest.approx(expected)
    assert old["upper_80"] - old["prediction"] == pytest.approx(
        fe.scale(history, (15,), "rate")[0, 0] * 0.5
    )
    assert new["upper_80"] > old["upper_80"]


def test_forecast_cost_is_capped_with_a_line_saying_what_to_do() -> None:
    model = naive_model()
    with pytest.raises(DataError, match="between 1 and 1440"):
        model.predict(None, video_rows("a"), params={"horizon": 10_080})
    frame = pd.concat([video_rows(v) for v in "abc"], ignore_index=True)
    with pytest.raises(DataError, match=r"over the cap of 2880 per request.*horizons"):
        model.predict(None, frame, params={"horizon": 1_000})
    with pytest.raises(DataError, match="horizons must be between"):
        model.predict(None, frame, params={"horizons": [1, 5_000]})
