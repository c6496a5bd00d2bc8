"""The registered stats forecaster: raw recent rows of a video in, next count(s) out.

An MLflow pyfunc around the network (saved in MLflow's Keras flavor, native ``.keras``), the
scaler fitted on training rows (joblib) and the preprocessing settings (JSON), so that
``models:/youtube-lstm-views@champion`` takes what ``video_stats_processed`` holds and answers
in original units (DESIGN principle 2: the logged model is the whole model).

Input: rows of one video (several videos are forecast one by one), the spec's columns
``timestamp``, ``video_id`` (optional), ``view_count``, ``like_count``, ``comment_count``;
growth-rate columns may be present but are recomputed, exactly as in training. At least
``sequence_length`` rows after cleaning (the same messy-row rules as training); pass one more
row than that for exact first increments, else the oldest step's increment and growth rate are
0, as at the start of a series. A gap longer than ``max_gap_steps`` starts a new segment: only
the rows after the last such gap are used.

Output: one row per forecast step: ``video_id``, ``timestamp`` (the forecast minute),
``step``, ``target``, ``prediction`` (the count). ``params={"horizon": H}`` rolls forward H
steps, feeding each forecast back as the newest row; the two counts this model does not
forecast move on by their mean increment over the window (the mean-increment baseline).
"""

from __future__ import annotations

import json
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd

NETWORK_ARTIFACT = "network"
SCALER_ARTIFACT = "scaler"
PREPROCESSING_ARTIFACT = "preprocessing"
OUTPUT_COLUMNS = ["video_id", "timestamp", "step", "target", "prediction"]
MAX_HORIZON = 10_080  # one week of minutes


class ForecastModel(mlflow.pyfunc.PythonModel):
    """pyfunc: recent raw stats rows -> the next count(s) of one target."""

    def __init__(self, network: Any = None, scaler: Any = None, settings: dict | None = None):
        self.network = network
        self.scaler = scaler
        self.settings = settings or {}

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        import mlflow.keras

        # inference only: no optimizer state to restore
        self.network = mlflow.keras.load_model(
            context.artifacts[NETWORK_ARTIFACT], load_model_kwargs={"compile": False}
        )
        self.scaler = joblib.load(context.artifacts[SCALER_ARTIFACT])
        with open(context.artifacts[PREPROCESSING_ARTIFACT], encoding="utf-8") as f:
            self.settings = json.load(f)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        from viralab.errors import DataError

        horizon = (params or {}).get("horizon")
        horizon = 1 if horizon is None else int(horizon)
        if not 1 <= horizon <= MAX_HORIZON:
            raise DataError(f"horizon must be between 1 and {MAX_HORIZON}, got {horizon}")
        frame = pd.DataFrame(model_input).copy()
        if "video_id" not in frame.columns:
            frame["video_id"] = "video"
        frames = [
            forecast_series(self.network, self.scaler, self.settings, rows, horizon)
            for _, rows in frame.groupby(frame["video_id"].astype(str), sort=False)
        ]
        return pd.concat(frames, ignore_index=True)[OUTPUT_COLUMNS]


def _last_segment(rows: pd.DataFrame, settings: dict[str, Any]) -> pd.DataFrame:
    from viralab.features.sequence import clean_stats

    L = int(settings["sequence_length"])
    clean, _ = clean_stats(
        rows,
        sequence_length=L,
        frequency=settings.get("frequency", "1min"),
        max_gap_steps=int(settings.get("max_gap_steps", 5)),
        min_rows=1,  # keep every segment: only the newest one may be forecast from
    )
    last = clean["segment"].iloc[-1]
    return clean[clean["segment"] == last].reset_index(drop=True)


def _window(
    history: pd.DataFrame, scaler: Any, settings: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """The newest window's scaled inputs (1, L, f) and raw levels (L, 3)."""
    from viralab.features.sequence import (
        COUNT_COLUMNS,
        growth_rates,
        model_inputs,
        scale_inputs,
    )

    L = int(settings["sequence_length"])
    recent = history.tail(L + 1).reset_index(drop=True)
    recent = pd.concat([recent, growth_rates(recent)], axis=1).assign(segment="s")
    inputs = model_inputs(
        recent, settings["counts_as"], bool(settings.get("time_features", False))
    ).tail(L)
    X = scale_inputs(inputs, scaler)[None, :, :]
    return X, recent[list(COUNT_COLUMNS)].tail(L).to_numpy(dtype="float64")


def forecast_series(
    network: Any, scaler: Any, settings: dict[str, Any], rows: pd.DataFrame, horizon: int = 1
) -> pd.DataFrame:
    """Forecast ``horizon`` steps of one video's target count from its raw recent rows.

    Raises:
        DataError: fewer than ``sequence_length`` usable rows, or missing columns.
    """
    from viralab.errors import DataError
    from viralab.features.sequence import COUNT_COLUMNS, predictions_to_counts
    from viralab.models.baselines import mean_increment_forecast

    L = int(settings["sequence_length"])
    video_id = str(rows["video_id"].iloc[0]) if len(rows) else "video"
    try:
        segment = _last_segment(rows, settings)
    except DataError:
        segment = rows.iloc[:0]
    if len(segment) < L:
        raise DataError(
            f"video {video_id}: need at least {L} consecutive rows (sequence_length) after "
            f"cleaning, got {len(rows)} row(s)"
        )
    history = segment[["timestamp", *COUNT_COLUMNS]].tail(L + 1).reset_index(drop=True)
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(settings.get("frequency", "1min")))
    k = COUNT_COLUMNS.index(settings["target_column"])
    out = []
    for h in range(1, horizon + 1):
        X, levels = _window(history, scaler, settings)
        scaled = np.asarray(network(X, training=False)).reshape(-1)
        nxt = mean_increment_forecast(levels.T)  # the covariates' naive next values
        nxt = np.maximum(nxt, levels[-1])
        nxt[k] = predictions_to_counts(
            scaled, levels[None, :, k], settings["predict"], scaler, int(settings["input_index"])
        )[0]
        ts = history["timestamp"].iloc[-1] + step
        value = float(np.round(nxt[k])) if settings.get("round_forecasts", False) else float(nxt[k])
        out.append(
            {
                "video_id": video_id,
                "timestamp": ts,
                "step": h,
                "target": settings["target"],
                "prediction": value,
            }
        )
        new_row = pd.DataFrame(
            {"timestamp": [ts], **{c: [nxt[i]] for i, c in enumerate(COUNT_COLUMNS)}}
        )
        history = pd.concat([history, new_row], ignore_index=True).tail(L + 1)
    return pd.DataFrame(out, columns=OUTPUT_COLUMNS)


def model_signature() -> Any:
    """Input/output schema and the `horizon` param (growth rates optional, recomputed)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    from viralab.features.sequence import COUNT_COLUMNS, GROWTH_COLUMNS

    # Counts are whole numbers (long). `timestamp` is typed Any: MLflow's datetime type
    # rejects timezone-aware values, and the sources hold UTC-aware ones; the model parses it
    # itself (ISO strings; naive means UTC).
    inputs = Schema(
        [ColSpec(AnyType(), "timestamp"), ColSpec("string", "video_id", required=False)]
        + [ColSpec("long", c) for c in COUNT_COLUMNS]
        + [ColSpec("double", c, required=False) for c in GROWTH_COLUMNS]
    )
    outputs = Schema(
        [
            ColSpec("string", "video_id"),
            ColSpec("datetime", "timestamp"),
            ColSpec("long", "step"),
            ColSpec("string", "target"),
            ColSpec("double", "prediction"),
        ]
    )
    params = ParamSchema([ParamSpec("horizon", "long", 1)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)
