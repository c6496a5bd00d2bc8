"""How the monitor scores a saved forecaster on new stats rows.

It re-runs the forecaster's preprocessing chain (cleaning, inputs, scaler, windows, count
conversion) against the network the saved model wraps: kept here, in one place, until the
families offer a scoring interface of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from viralab.features import sequence as seq
from viralab.models.lstm import predict_scaled


def forecast_recent_mae(
    pyfunc: Any, stats: pd.DataFrame, cutoff: pd.Timestamp
) -> tuple[float, int]:
    """MAE (original units) of the champion forecaster on every window whose target row is
    after `cutoff`, its inputs taken from whatever rows precede it; and the window count.

    Batched through the network the pyfunc wraps (one call per 1024 windows) rather than
    `predict` (one call per video per step): the same cleaning, inputs, scaler and count
    conversion as training's test evaluation.
    """

    inner = pyfunc.unwrap_python_model()
    settings = inner.settings
    L = int(settings["sequence_length"])
    clean, _ = seq.clean_stats(
        stats,
        sequence_length=L,
        frequency=settings.get("frequency", "1min"),
        max_gap_steps=int(settings.get("max_gap_steps", 5)),
    )
    inputs = seq.model_inputs(
        clean, settings["counts_as"], bool(settings.get("time_features", False))
    )
    scaled = seq.scale_inputs(inputs, inner.scaler)
    parts = pd.Series(np.where(clean["timestamp"] > cutoff, "test", "fit"), index=clean.index)
    windows = seq.make_windows(clean, scaled, parts, L)["test"]
    if len(windows) == 0:
        return float("nan"), 0
    k = seq.COUNT_COLUMNS.index(settings["target_column"])
    counts = seq.predictions_to_counts(
        # the network answers every horizon; its first output is the next step (H = 1)
        predict_scaled(inner.network, windows.X, n_outputs=1)[:, 0],
        windows.levels[:, :, k],
        settings["predict"],
        inner.scaler,
        int(settings["input_index"]),
    )
    if settings.get("round_forecasts", False):
        counts = np.round(counts)
    return float(np.mean(np.abs(counts - windows.next_levels[:, k]))), len(windows)


__all__ = ["forecast_recent_mae"]
