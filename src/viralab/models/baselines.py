"""Naive forecasts a cumulative counter must beat, and MASE against persistence.

Spec 002 reported only scaled errors and never asked whether "next value = last value" does
as well; on a cumulative counter it usually does better than a carelessly trained network
(DESIGN: "What the specs get wrong"). Every forecaster metric is therefore reported beside
these baselines, computed on the very same test windows, in original units.

All functions take ``levels``: (n_windows, sequence_length) raw counts of the input rows,
oldest first.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("persistence", "drift", "mean_increment")


def persistence_forecast(levels: np.ndarray) -> np.ndarray:
    """Next = last."""
    return np.asarray(levels, dtype="float64")[:, -1]


def drift_forecast(levels: np.ndarray) -> np.ndarray:
    """Next = last + last increment (needs windows of at least 2 rows)."""
    levels = np.asarray(levels, dtype="float64")
    if levels.shape[1] < 2:
        return levels[:, -1]
    return levels[:, -1] + (levels[:, -1] - levels[:, -2])


def mean_increment_forecast(levels: np.ndarray) -> np.ndarray:
    """Next = last + the mean per-step increment over the window."""
    levels = np.asarray(levels, dtype="float64")
    if levels.shape[1] < 2:
        return levels[:, -1]
    return levels[:, -1] + (levels[:, -1] - levels[:, 0]) / (levels.shape[1] - 1)


FORECASTS = {
    "persistence": persistence_forecast,
    "drift": drift_forecast,
    "mean_increment": mean_increment_forecast,
}


def error_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, MSE and RMSE (NaN when there is nothing to compare)."""
    actual = np.asarray(actual, dtype="float64").reshape(-1)
    predicted = np.asarray(predicted, dtype="float64").reshape(-1)
    if actual.size == 0:
        return {"mae": float("nan"), "mse": float("nan"), "rmse": float("nan")}
    err = predicted - actual
    mse = float(np.mean(err**2))
    return {"mae": float(np.mean(np.abs(err))), "mse": mse, "rmse": float(np.sqrt(mse))}


def baseline_maes(levels: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Each baseline's MAE on the same windows, in the units of ``levels``."""
    return {name: error_metrics(actual, f(levels))["mae"] for name, f in FORECASTS.items()}


def best_baseline(maes: dict[str, float]) -> tuple[str, float]:
    """The baseline with the lowest MAE (name, mae)."""
    name = min(maes, key=lambda k: np.inf if np.isnan(maes[k]) else maes[k])
    return name, maes[name]


def mase(model_mae: float, persistence_mae: float) -> float:
    """Mean absolute scaled error against persistence on the same windows.

    Below 1 the model beats "next = last"; the ratio is infinite when persistence is exact
    and the model is not, 1 when both are exact.
    """
    if persistence_mae == 0:
        return 1.0 if model_mae == 0 else float("inf")
    return float(model_mae / persistence_mae)


def forecast_report(
    levels: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    level_range: float,
    round_counts: bool = False,
) -> dict[str, float]:
    """A forecast judged beside every baseline on the same windows.

    Returns ``mae``/``mse``/``rmse`` in original counts, the same divided by ``level_range``
    (``*_scaled``: the target count's MinMax range on the training rows, the spec's units),
    ``baseline_<name>_mae`` for each baseline, ``best_baseline_mae``, ``mase`` (against
    persistence) and ``relative_mae`` (model MAE / best baseline MAE). With ``round_counts``
    the baselines are rounded to whole counts too, as the model's forecasts are, so neither
    side gains from rounding alone.
    """
    level_range = float(level_range) or 1.0
    metrics = error_metrics(actual, predicted)
    metrics["mae_scaled"] = metrics["mae"] / level_range
    metrics["mse_scaled"] = metrics["mse"] / level_range**2
    metrics["rmse_scaled"] = metrics["rmse"] / level_range
    maes = {}
    for name, forecast in FORECASTS.items():
        guess = forecast(levels)
        maes[name] = error_metrics(actual, np.round(guess) if round_counts else guess)["mae"]
        metrics[f"baseline_{name}_mae"] = maes[name]
    metrics["baseline_persistence_mae_scaled"] = maes["persistence"] / level_range
    _, best = best_baseline(maes)
    metrics["best_baseline_mae"] = best
    metrics["mase"] = mase(metrics["mae"], maes["persistence"])
    metrics["relative_mae"] = float(metrics["mae"] / best) if best else float("nan")
    return metrics
