"""The naive baselines at every horizon (issue 16), from the history up to the origin.

They live with the models, below the forecast family: the peers (`models.peers`) forecast with
them and the family's judge (`families.forecast.evaluate`) scores every model against them.
``persistence`` (no change), ``drift`` (last increment x H), ``mean_increment`` (mean increment
over the ``sequence_length`` window x H), ``mean_increment_60`` (the last 60 minutes' mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NAIVE = ("persistence", "drift", "mean_increment", "mean_increment_60")


def rate(history: np.ndarray, window: int) -> np.ndarray:
    """Mean per-step increment over the last ``window`` steps of each row of ``history``.

    ``history``: (n, T) raw levels, oldest first, NaN before the series starts; a shorter
    series uses the steps it has (0 with a single row).
    """
    history = np.asarray(history, dtype="float64")
    n, T = history.shape
    available = np.sum(~np.isnan(history), axis=1)
    span = np.minimum(int(window), np.maximum(available - 1, 0))
    first = history[np.arange(n), T - 1 - span]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (history[:, -1] - first) / span
    return np.where(span > 0, out, 0.0)


def naive_forecasts(
    history: np.ndarray, horizons: Sequence[int], window: int
) -> dict[str, np.ndarray]:
    """Each naive baseline's counts (n, n_h) from (n, T) raw levels of the target."""
    last = np.asarray(history, dtype="float64")[:, -1:]
    h = np.asarray(horizons, dtype="float64")[None, :]
    rates = {
        "persistence": np.zeros(len(last)),
        "drift": rate(history, 1),
        "mean_increment": rate(history, window - 1),
        "mean_increment_60": rate(history, 60),
    }
    return {name: last + h * np.maximum(r, 0.0)[:, None] for name, r in rates.items()}


__all__ = ["NAIVE", "naive_forecasts", "rate"]
