"""Sliding windows per part, their targets, and the network's outputs back to counts.

Targets (``window_targets``) use the scale of the matching input column: ``level`` the next
count, ``increment`` the next increment, ``residual`` the next increment minus the window's
mean increment (the network corrects the mean-increment baseline). ``predictions_to_counts``
maps outputs back to counts and floors them at the last count (a cleaned counter never falls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from viralab.errors import ConfigError
from viralab.features.sequence.columns import COUNT_COLUMNS, PARTS, PREDICT_MODES, target_column
from viralab.features.sequence.inputs import column_scale


@dataclass
class Windows:
    """Windows of one part: inputs, the rows they end at, and the raw levels for evaluation.

    ``X``: (n, L, n_inputs) scaled inputs of rows ``t-L .. t-1``; ``target_row``: index ``t``
    of the row each window predicts (into the cleaned frame); ``levels``: (n, L, 3) raw counts
    of the input rows; ``next_levels``: (n, 3) raw counts of row ``t``; ``segment``: its id.
    """

    X: np.ndarray
    target_row: np.ndarray
    levels: np.ndarray
    next_levels: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return len(self.target_row)


def make_windows(
    clean: pd.DataFrame,
    scaled: np.ndarray,
    parts: pd.Series,
    sequence_length: int,
) -> dict[str, Windows]:
    """Windows per part (`fit`, `val`, `test`), never crossing a segment boundary.

    A window belongs to the part of its target row; its inputs may be earlier rows of any part
    (they are known when the forecast is made).
    """
    L = sequence_length
    counts = clean[list(COUNT_COLUMNS)].to_numpy(dtype="float64")
    part_values = parts.to_numpy()
    collected: dict[str, list[tuple[np.ndarray, ...]]] = {p: [] for p in PARTS}
    positions = np.arange(len(clean))
    for seg_name, idx in clean.groupby("segment", sort=False).indices.items():
        idx = np.sort(idx)
        if len(idx) <= L:
            continue
        seg_x = scaled[idx]
        seg_counts = counts[idx]
        # (n_windows, L, f): sliding_window_view puts the window axis last
        X = np.lib.stride_tricks.sliding_window_view(seg_x[:-1], L, axis=0).transpose(0, 2, 1)
        lv = np.lib.stride_tricks.sliding_window_view(seg_counts[:-1], L, axis=0).transpose(0, 2, 1)
        rows = positions[idx][L:]
        for part in PARTS:
            sel = part_values[rows] == part
            if sel.any():
                collected[part].append(
                    (X[sel], rows[sel], lv[sel], seg_counts[L:][sel], np.full(sel.sum(), seg_name))
                )
    out = {}
    n_inputs = scaled.shape[1]
    for part, chunks in collected.items():
        if chunks:
            X, rows, lv, nxt, seg = (np.concatenate(c) for c in zip(*chunks, strict=True))
        else:
            X = np.empty((0, L, n_inputs), "float32")
            rows, seg = np.empty(0, int), np.empty(0, object)
            lv, nxt = np.empty((0, L, 3)), np.empty((0, 3))
        out[part] = Windows(np.ascontiguousarray(X, dtype="float32"), rows, lv, nxt, seg)
    return out


def window_targets(
    windows: Windows, target: str, predict: str, scaler: MinMaxScaler, input_index: int
) -> np.ndarray:
    """The network's scaled target per window (see `PREDICT_MODES`) for one count.

    The target is scaled with the column scale of the matching input, which the scaler learned
    on fit rows (levels for `level`, per-minute increments otherwise; a residual is scaled by
    the increment range only, without the offset).
    """
    k = COUNT_COLUMNS.index(target_column(target))
    levels = windows.levels[:, :, k]
    nxt = windows.next_levels[:, k]
    lo, rng = column_scale(scaler, input_index)
    if predict == "level":
        return ((nxt - lo) / rng).astype("float32")
    if predict == "increment":
        return ((nxt - levels[:, -1] - lo) / rng).astype("float32")
    if predict == "residual":
        return ((nxt - _mean_increment_forecast(levels)) / rng).astype("float32")
    raise ConfigError(f"task.predict must be one of {PREDICT_MODES}, got {predict!r}")


def _mean_increment_forecast(levels: np.ndarray) -> np.ndarray:
    if levels.shape[1] < 2:
        return levels[:, -1]
    return levels[:, -1] + (levels[:, -1] - levels[:, 0]) / (levels.shape[1] - 1)


def predictions_to_counts(
    scaled_pred: np.ndarray,
    levels: np.ndarray,
    predict: str,
    scaler: MinMaxScaler,
    input_index: int,
) -> np.ndarray:
    """Network outputs back to counts, given each window's raw levels (n, L) of the target.

    A cumulative counter never falls below its last value, so forecasts are floored there.
    """
    lo, rng = column_scale(scaler, input_index)
    raw = np.asarray(scaled_pred, dtype="float64").reshape(-1)
    levels = np.asarray(levels, dtype="float64")
    last = levels[:, -1]
    if predict == "level":
        counts = raw * rng + lo
    elif predict == "increment":
        counts = last + raw * rng + lo
    elif predict == "residual":
        counts = _mean_increment_forecast(levels) + raw * rng
    else:
        raise ConfigError(f"task.predict must be one of {PREDICT_MODES}, got {predict!r}")
    return np.maximum(counts, last)
