"""The forecaster pyfunc: raw recent rows in, next count(s) in original units out."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler

from viralab.errors import DataError
from viralab.features import sequence as seq
from viralab.models.baselines import mean_increment_forecast
from viralab.serve.forecast_model import (
    OUTPUT_COLUMNS,
    ForecastModel,
    forecast_series,
    model_signature,
)

L = 5


class ConstantNetwork:
    """Stands in for the Keras model: every window gets the same scaled output."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value
        self.calls: list[np.ndarray] = []

    def __call__(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.calls.append(np.asarray(X))
        return np.full((len(X), 1), self.value, dtype="float32")


def rows(video: str = "a", n: int = L + 1, start: str = "2025-07-01T00:00:00Z") -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq="min"),
            "video_id": video,
            "view_count": 1000 + 10 * i + (i % 2) * 3,
            "like_count": 50 + i,
            "comment_count": np.full(n, 7),
        }
    )


def settings(predict: str = "residual", **kw) -> dict:
    return {
        "sequence_length": L,
        "time_features": False,
        "frequency": "1min",
        "max_gap_steps": 5,
        "predict": predict,
        "counts_as": "level" if predict == "level" else "increment",
        "round_forecasts": False,
        "target": "views",
        "target_column": "view_count",
        "input_index": 0,
        **kw,
    }


def scaler_for(frame: pd.DataFrame, counts_as: str = "increment") -> MinMaxScaler:
    clean, _ = seq.clean_stats(frame, sequence_length=L)
    return seq.fit_scaler(seq.model_inputs(clean, counts_as), np.ones(len(clean), bool))


def test_zero_residual_gives_the_mean_increment_forecast() -> None:
    frame = rows(n=L + 1)
    out = forecast_series(ConstantNetwork(0.0), scaler_for(frame), settings(), frame)
    assert list(out.columns) == OUTPUT_COLUMNS and len(out) == 1
    expected = mean_increment_forecast(frame["view_count"].to_numpy()[None, -L:].astype(float))
    assert out.loc[0, "prediction"] == pytest.approx(expected[0])
    assert out.loc[0, "timestamp"] == frame["timestamp"].iloc[-1] + pd.Timedelta("1min")
    assert (out.loc[0, "video_id"], out.loc[0, "step"], out.loc[0, "target"]) == ("a", 1, "views")


def test_horizon_rolls_forward_one_step_at_a_time() -> None:
    frame = rows(n=30)
    net = ConstantNetwork(0.0)
    out = forecast_series(net, scaler_for(frame), settings(round_forecasts=True), frame, 4)
    assert out["step"].tolist() == [1, 2, 3, 4] and len(net.calls) == 4
    assert out["timestamp"].diff().dropna().eq(pd.Timedelta("1min")).all()
    assert out["prediction"].is_monotonic_increasing
    assert (out["prediction"] == out["prediction"].round()).all()
    assert all(call.shape == (1, L, 6) for call in net.calls)


def test_only_the_newest_rows_are_used() -> None:
    frame = rows(n=40)
    net = ConstantNetwork(0.0)
    scaler = scaler_for(frame)
    a = forecast_series(net, scaler, settings(), frame)
    b = forecast_series(net, scaler, settings(), frame.tail(L + 1))
    assert a.loc[0, "prediction"] == b.loc[0, "prediction"]


def test_too_few_rows_is_a_data_error() -> None:
    with pytest.raises(DataError, match=f"at least {L} consecutive rows"):
        forecast_series(ConstantNetwork(), scaler_for(rows(n=20)), settings(), rows(n=L - 1))


def test_a_long_gap_before_the_last_rows_is_not_bridged() -> None:
    frame = rows(n=30).drop(index=range(20, 27))  # 3 rows after a 7-minute gap
    with pytest.raises(DataError):
        forecast_series(ConstantNetwork(), scaler_for(rows(n=20)), settings(), frame)


def test_pyfunc_forecasts_each_video_and_ignores_given_growth_rates() -> None:
    frame = pd.concat([rows("a", 12), rows("b", 12, start="2025-07-03T00:00:00Z")])
    model = ForecastModel(ConstantNetwork(0.0), scaler_for(frame), settings())
    out = model.predict(None, frame, params={"horizon": 2})
    assert out["video_id"].tolist() == ["a", "a", "b", "b"]
    with_rates = frame.assign(
        views_growth_rate=1e6, likes_growth_rate=0.0, comments_growth_rate=0.0
    )
    pd.testing.assert_frame_equal(model.predict(None, with_rates, {"horizon": 2}), out)


def test_pyfunc_rejects_a_silly_horizon() -> None:
    model = ForecastModel(ConstantNetwork(), scaler_for(rows(n=12)), settings())
    with pytest.raises(DataError, match="horizon"):
        model.predict(None, rows(n=12), params={"horizon": 0})


def test_signature_declares_the_raw_columns_and_the_horizon_param() -> None:
    sig = model_signature()
    names = sig.inputs.input_names()
    assert names[:5] == ["timestamp", "video_id", *seq.COUNT_COLUMNS]
    required = {c.name for c in sig.inputs.inputs if c.required}
    assert required == {"timestamp", *seq.COUNT_COLUMNS}
    assert sig.params.to_dict() == [
        {"name": "horizon", "default": 1, "shape": None, "type": "long"}
    ]
    assert sig.outputs.input_names() == OUTPUT_COLUMNS


@pytest.mark.slow
def test_saved_pyfunc_loads_and_accepts_utc_aware_rows(tmp_path: Path) -> None:
    import mlflow.keras
    import mlflow.pyfunc

    from viralab.config import compose
    from viralab.models.lstm import build_lstm

    cfg = compose(["model=lstm", "model.unroll=false"]).model
    network = build_lstm(cfg, (L, 6), seed=0)
    frame = rows(n=12)
    scaler = scaler_for(frame)
    mlflow.keras.save_model(network, str(tmp_path / "network"), pip_requirements=[])
    joblib.dump(scaler, tmp_path / "scaler.pkl")
    (tmp_path / "prep.json").write_text(json.dumps(settings()))
    mlflow.pyfunc.save_model(
        str(tmp_path / "model"),
        python_model=ForecastModel(),
        artifacts={
            "network": str(tmp_path / "network"),
            "scaler": str(tmp_path / "scaler.pkl"),
            "preprocessing": str(tmp_path / "prep.json"),
        },
        signature=model_signature(),
        pip_requirements=[],
    )
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    out = loaded.predict(frame, params={"horizon": 3})
    assert out["step"].tolist() == [1, 2, 3]
    expected = forecast_series(network, scaler, settings(), frame, 3)
    np.testing.assert_allclose(out["prediction"], expected["prediction"])
    iso = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    np.testing.assert_allclose(loaded.predict(iso)["prediction"], expected["prediction"][:1])
