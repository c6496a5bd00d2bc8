"""Direct multi-horizon windows (issue 16): what each forecast origin may see and must predict.

A forecast *origin* is the last row a forecaster knows (row ``o``); it predicts the count at
``o + H`` for every ``H`` in ``task.horizons`` (default 1, 15, 60, 240 minutes) directly, not by
feeding its own one-step forecasts back.

The origins are the next-step windows of :func:`viralab.features.sequence.make_windows` (origin
= the window's last input row, i.e. its target row minus one), so the LSTM, every peer and
every naive baseline are judged on the very same origins. The target at ``o + H`` counts only
when it lies in the *same segment and the same part* as the window (``fit``/``val``/``test``);
otherwise it is NaN and that horizon is left out for that origin (a training target never
comes from the validation or test rows, a test target never from a later segment). Inputs
are rows ``<= o`` only, so no target is ever inside an input.

Test and validation origins can be thinned to every ``stride``-th origin of each segment
(``task.origin_stride``): neighbouring origins share almost all their future, and local
models such as AutoETS refit at every origin.

History (:func:`history_levels`) is the raw counts of rows ``o - length + 1 .. o`` of the same
segment; rows before the segment's start are NaN (a forecaster uses what exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from viralab.errors import ConfigError
from viralab.features.sequence import COUNT_COLUMNS, Windows

DEFAULT_HORIZONS: tuple[int, ...] = (1, 15, 60, 240)


def check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    """Sorted distinct positive horizons that include 1 (the next-step contract).

    Raises:
        ConfigError: empty, non-positive, or without 1.
    """
    try:
        out = tuple(sorted({int(h) for h in horizons}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"task.horizons must be whole minutes, got {horizons!r}") from exc
    if not out or out[0] < 1:
        raise ConfigError(f"task.horizons must be positive whole minutes, got {list(horizons)}")
    if out[0] != 1:
        raise ConfigError(
            f"task.horizons must include 1 (the next-step forecast), got {list(horizons)}"
        )
    return out


@dataclass
class HorizonWindows:
    """Windows of one part with their direct targets.

    ``windows``: the next-step windows (inputs ``X``, raw ``levels`` of the input rows);
    ``origin_row``: row ``o`` per window (index into the cleaned frame); ``future``: (n, n_h, 3)
    raw counts at ``o + H`` (NaN where that row is outside the window's segment or part).
    """

    windows: Windows
    origin_row: np.ndarray
    future: np.ndarray
    horizons: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.origin_row)

    def last_levels(self) -> np.ndarray:
        """(n, 3) raw counts at the origin."""
        return self.windows.levels[:, -1, :]

    def target_future(self, k: int) -> np.ndarray:
        """(n, n_h) raw counts of count column ``k`` at each horizon (NaN where unknown)."""
        return self.future[:, :, k]


def _subset(windows: Windows, keep: np.ndarray) -> Windows:
    return Windows(
        windows.X[keep],
        windows.target_row[keep],
        windows.levels[keep],
        windows.next_levels[keep],
        windows.segment[keep],
    )


def horizon_windows(
    clean: pd.DataFrame,
    parts: pd.Series,
    windows: Windows,
    part: str,
    horizons: Sequence[int],
    stride: int = 1,
) -> HorizonWindows:
    """Attach each window's direct targets; keep every ``stride``-th window of each segment."""
    horizons = check_horizons(horizons)
    if stride < 1:
        raise ConfigError(f"task.origin_stride must be >= 1, got {stride}")
    keep = np.ones(len(windows), bool)
    if stride > 1 and len(windows):
        position = pd.Series(windows.segment).groupby(windows.segment).cumcount().to_numpy()
        keep = position % stride == 0
    windows = _subset(windows, keep)
    origin = windows.target_row - 1
    n_rows = len(clean)
    segments = clean["segment"].to_numpy()
    part_values = parts.to_numpy()
    counts = clean[list(COUNT_COLUMNS)].to_numpy(dtype="float64")
    future = np.full((len(origin), len(horizons), len(COUNT_COLUMNS)), np.nan)
    for j, h in enumerate(horizons):
        row = origin + h
        inside = row < n_rows
        ok = np.zeros(len(origin), bool)
        r = row[inside]
        ok[inside] = (segments[r] == segments[origin[inside]]) & (part_values[r] == part)
        future[ok, j, :] = counts[row[ok]]
    return HorizonWindows(windows, origin, future, horizons)


def history_levels(clean: pd.DataFrame, origin_rows: np.ndarray, length: int) -> np.ndarray:
    """(n, length, 3) raw counts of rows ``o - length + 1 .. o``; NaN before the segment starts."""
    counts = clean[list(COUNT_COLUMNS)].to_numpy(dtype="float64")
    segments = clean["segment"].to_numpy()
    origin_rows = np.asarray(origin_rows, dtype=int)
    offsets = np.arange(-length + 1, 1)
    rows = origin_rows[:, None] + offsets[None, :]
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    valid &= segments[safe] == segments[origin_rows][:, None]
    out = counts[safe]
    out[~valid] = np.nan
    return out


def direct_targets(hw: HorizonWindows, k: int, predict: str, lo: float, rng: float) -> np.ndarray:
    """The network's scaled target per window and horizon, (n, n_h), NaN where unknown.

    Per-minute means keep every horizon on one scale: ``residual`` is the mean increment
    over the next H minutes minus the window's mean increment, ``increment`` that mean
    increment, ``level`` the count at ``o + H``; each in the matching input column's scale
    (``lo``, ``rng``). At H = 1 these equal the next-step targets of
    :func:`viralab.features.sequence.window_targets`.
    """
    levels = hw.windows.levels[:, :, k]
    last = levels[:, -1:]
    h = np.asarray(hw.horizons, dtype="float64")[None, :]
    fut = hw.target_future(k)
    if predict == "level":
        out = (fut - lo) / rng
    elif predict == "increment":
        out = ((fut - last) / h - lo) / rng
    elif predict == "residual":
        out = ((fut - last) / h - window_mean_increment(levels)[:, None]) / rng
    else:
        raise ConfigError(f"task.predict must be level, increment or residual, got {predict!r}")
    return out.astype("float32")


def window_mean_increment(levels: np.ndarray) -> np.ndarray:
    """Mean per-step increment over each window (n, L) of raw levels (0 for one row)."""
    levels = np.asarray(levels, dtype="float64")
    if levels.shape[1] < 2:
        return np.zeros(len(levels))
    return (levels[:, -1] - levels[:, 0]) / (levels.shape[1] - 1)


def direct_to_counts(
    outputs: np.ndarray,
    levels: np.ndarray,
    horizons: Sequence[int],
    predict: str,
    lo: float,
    rng: float,
) -> np.ndarray:
    """Network outputs (n, n_h) back to counts at each horizon, floored at the last count."""
    out = np.asarray(outputs, dtype="float64").reshape(len(levels), -1)
    levels = np.asarray(levels, dtype="float64")
    last = levels[:, -1:]
    h = np.asarray(horizons, dtype="float64")[None, :]
    if predict == "level":
        counts = out * rng + lo
    elif predict == "increment":
        counts = last + h * (out * rng + lo)
    else:
        counts = last + h * (window_mean_increment(levels)[:, None] + out * rng)
    return np.maximum(counts, last)


__all__ = [
    "DEFAULT_HORIZONS",
    "HorizonWindows",
    "check_horizons",
    "direct_targets",
    "direct_to_counts",
    "history_levels",
    "horizon_windows",
]
