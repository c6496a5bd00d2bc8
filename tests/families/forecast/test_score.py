"""The forecast family's `score_recent`: a saved forecaster on new stats rows, batched through
its own chain, and nothing else reaching into the model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from viralab.data.sample import generate_stats
from viralab.errors import DataError
from viralab.families import forecast
from viralab.features import sequence as seq
from viralab.serve.forecast_model import ForecastModel

L = 6
START = pd.Timestamp("2025-07-01T00:00:00Z")


class ScaledNetwork:
    """Stands in for the Keras model: each window's output is a fixed function of its inputs
    (one column per horizon), so the windows' order and content matter."""

    def __call__(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        first = 0.01 * np.asarray(X)[:, -1, 0]
        return np.stack([first, 2 * first], axis=1).astype("float32")


def settings(**kw) -> dict:
    return {
        "sequence_length": L,
        "time_features": False,
        "frequency": "1min",
        "max_gap_steps": 5,
        "predict": "residual",
        "counts_as": "increment",
        "round_forecasts": True,
        "horizons": [1, 15],
        "target": "likes",
        "target_column": "like_count",
        "input_index": 1,
        **kw,
    }


def stats() -> pd.DataFrame:
    return pd.concat(
        [
            generate_stats(seed=3, videos={"vid-a": 90}, start=str(START)),
            generate_stats(seed=4, videos={"vid-b": 70}, start=str(START)),
        ],
        ignore_index=True,
    )


def loaded(inner: object) -> SimpleNamespace:
    """What `mlflow.pyfunc.load_model` hands back, as far as scoring may look."""
    return SimpleNamespace(unwrap_python_model=lambda: inner)


def model_for(frame: pd.DataFrame, **kw) -> ForecastModel:
    clean, _ = seq.clean_stats(frame, sequence_length=L)
    scaler = seq.fit_scaler(seq.model_inputs(clean, "increment"), np.ones(len(clean), bool))
    return ForecastModel(ScaledNetwork(), scaler, settings(**kw))


def old_recent_mae(inner: ForecastModel, frame: pd.DataFrame, cutoff: pd.Timestamp):
    """The monitor's scoring before the families offered `score_recent`, step by step."""
    s = inner.settings
    clean, _ = seq.clean_stats(frame, sequence_length=L, frequency="1min", max_gap_steps=5)
    scaled = seq.scale_inputs(seq.model_inputs(clean, s["counts_as"], False), inner.scaler)
    parts = pd.Series(np.where(clean["timestamp"] > cutoff, "test", "fit"), index=clean.index)
    windows = seq.make_windows(clean, scaled, parts, L)["test"]
    k = seq.COUNT_COLUMNS.index(s["target_column"])
    out = np.asarray(inner.network(windows.X))[:, 0].astype("float64")
    counts = seq.predictions_to_counts(
        out, windows.levels[:, :, k], s["predict"], inner.scaler, s["input_index"]
    )
    counts = np.round(counts) if s["round_forecasts"] else counts
    return float(np.mean(np.abs(counts - windows.next_levels[:, k]))), len(windows)


@pytest.mark.parametrize("round_forecasts", [True, False])
def test_score_recent_equals_the_old_monitor_scoring(round_forecasts: bool) -> None:
    frame = stats()
    inner = model_for(frame.head(60), round_forecasts=round_forecasts)
    cutoff = START + pd.Timedelta(minutes=50)
    mae, n = forecast.score_recent(loaded(inner), frame, after=cutoff)
    expected_mae, expected_n = old_recent_mae(inner, frame, cutoff)
    assert n == expected_n > 0
    assert mae == pytest.approx(expected_mae)


def test_only_windows_whose_target_row_is_new_are_scored() -> None:
    frame = stats()
    inner = model_for(frame)
    late = START + pd.Timedelta(minutes=80)
    _, n = forecast.score_recent(loaded(inner), frame, after=late)
    assert n == 9  # vid-a's rows 81..89; vid-b ends at minute 69
    mae, n = forecast.score_recent(loaded(inner), frame, after=START + pd.Timedelta(days=1))
    assert n == 0 and np.isnan(mae)


def test_a_model_that_cannot_score_windows_says_so() -> None:
    frame = stats()
    with pytest.raises(DataError, match="not a network forecaster"):
        forecast.score_recent(loaded(object()), frame, after=START)
    peer = ForecastModel(settings=settings(kind="peer"), peer=object())
    with pytest.raises(DataError, match="peer"):
        forecast.score_recent(loaded(peer), frame, after=START)


class OlderWrapper:
    """A forecaster logged by an older version: its own copy of the wrapper code
    (models-from-code), with the parts every version holds and none of today's methods."""

    def __init__(self, model: ForecastModel) -> None:
        self.network, self.scaler, self.settings = model.network, model.scaler, model.settings


def test_a_forecaster_logged_by_older_code_is_scored_alike() -> None:
    frame = stats()
    inner = model_for(frame.head(60))
    cutoff = START + pd.Timedelta(minutes=50)
    today = forecast.score_recent(loaded(inner), frame, after=cutoff)
    older = forecast.score_recent(loaded(OlderWrapper(inner)), frame, after=cutoff)
    assert older == today
