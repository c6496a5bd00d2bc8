"""The network's inputs per cleaned row, and the one scaler per run.

Inputs: the spec's six per-minute features (three counts, three growth rates). When the
network predicts increments (``task.predict`` ``increment`` or ``residual``, ``counts_as``
here) the three counts enter as their per-minute increments: a cumulative level keeps rising
past anything seen in training, so a level scaled on training rows leaves [0, 1] on test rows.
With ``task.predict=level`` they enter as levels, as in the spec. Optional time features (hour,
day_of_week, is_weekend, minute_of_hour) are scaled by their fixed ranges, not fitted. The
scaler is fitted on the *fit* rows only (spec 002 fitted it on every row).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from viralab.errors import DataError
from viralab.features.sequence.columns import (
    COUNT_COLUMNS,
    GROWTH_COLUMNS,
    TIME_FEATURES,
    input_columns,
)

# Fixed ranges of the time features: scaled to [0, 1] without fitting anything.
_TIME_RANGES = {"hour": 23.0, "day_of_week": 6.0, "is_weekend": 1.0, "minute_of_hour": 59.0}


def time_features(timestamps: pd.Series) -> pd.DataFrame:
    """Spec 002's `create_time_features`, each divided by its fixed range (so in [0, 1])."""
    ts = pd.to_datetime(timestamps, utc=True)
    raw = {
        "hour": ts.dt.hour,
        "day_of_week": ts.dt.dayofweek,
        "is_weekend": (ts.dt.dayofweek >= 5).astype(int),
        "minute_of_hour": ts.dt.minute,
    }
    return pd.DataFrame(
        {k: v.astype("float64") / _TIME_RANGES[k] for k, v in raw.items()}, index=timestamps.index
    )


def model_inputs(
    clean: pd.DataFrame, counts_as: str = "increment", time_features_on: bool = False
) -> pd.DataFrame:
    """Unscaled network inputs per cleaned row, named by `input_columns`.

    Increments are taken within a segment; a segment's first row gets 0, like its growth rate.
    """
    names = input_columns(counts_as, time_features_on)
    out = pd.DataFrame(index=clean.index)
    for count, name in zip(COUNT_COLUMNS, names[:3], strict=True):
        values = clean[count].astype("float64")
        if counts_as == "increment":
            values = values.groupby(clean["segment"], sort=False).diff().fillna(0.0)
        out[name] = values
    for rate in GROWTH_COLUMNS:
        out[rate] = clean[rate].astype("float64")
    if time_features_on:
        out = pd.concat([out, time_features(clean["timestamp"])], axis=1)
    return out[names]


def learned_columns(columns: Sequence[str]) -> list[str]:
    """The inputs the scaler is fitted on (time features have fixed ranges instead)."""
    return [c for c in columns if c not in TIME_FEATURES]


def fit_scaler(inputs: pd.DataFrame, fit_mask: np.ndarray | pd.Series) -> MinMaxScaler:
    """A MinMaxScaler fitted on the *fit* rows only (spec 002 fitted it on every row).

    Raises:
        DataError: there is no fit row.
    """
    fit_rows = inputs.loc[np.asarray(fit_mask, dtype=bool), learned_columns(inputs.columns)]
    if fit_rows.empty:
        raise DataError("no training rows to fit the scaler on")
    return MinMaxScaler().fit(fit_rows)


def scale_inputs(inputs: pd.DataFrame, scaler: MinMaxScaler) -> np.ndarray:
    """Scaled inputs as float32 (n_rows, n_inputs), columns in the frame's order."""
    learned = learned_columns(inputs.columns)
    out = inputs.to_numpy(dtype="float64", copy=True)
    idx = [list(inputs.columns).index(c) for c in learned]
    out[:, idx] = scaler.transform(inputs[learned])
    return out.astype("float32")


def column_scale(scaler: MinMaxScaler, column_index: int) -> tuple[float, float]:
    """(data_min, data_range) the scaler learned for one column (range 1 if constant)."""
    lo = float(scaler.data_min_[column_index])
    rng = float(scaler.data_range_[column_index]) or 1.0
    return lo, rng
