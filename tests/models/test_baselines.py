"""Naive forecasts and the report that judges a forecast beside them."""

from __future__ import annotations

import numpy as np
import pytest

from viralab.models import baselines as bl

LEVELS = np.array(
    [
        [100.0, 110.0, 130.0, 160.0],  # increments 10, 20, 30
        [5.0, 5.0, 5.0, 5.0],  # flat
    ]
)
ACTUAL = np.array([200.0, 6.0])


def test_persistence_repeats_the_last_value() -> None:
    np.testing.assert_array_equal(bl.persistence_forecast(LEVELS), [160.0, 5.0])


def test_drift_adds_the_last_increment() -> None:
    np.testing.assert_array_equal(bl.drift_forecast(LEVELS), [190.0, 5.0])


def test_mean_increment_adds_the_window_mean_increment() -> None:
    np.testing.assert_array_equal(bl.mean_increment_forecast(LEVELS), [180.0, 5.0])


def test_single_row_windows_fall_back_to_persistence() -> None:
    one = LEVELS[:, -1:]
    for forecast in bl.FORECASTS.values():
        np.testing.assert_array_equal(forecast(one), [160.0, 5.0])


def test_error_metrics() -> None:
    m = bl.error_metrics(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    assert m == {"mae": 1.5, "mse": 2.5, "rmse": pytest.approx(np.sqrt(2.5))}
    assert np.isnan(bl.error_metrics(np.array([]), np.array([]))["mae"])


def test_baseline_maes_and_best() -> None:
    maes = bl.baseline_maes(LEVELS, ACTUAL)
    assert maes == {"persistence": 20.5, "drift": 5.5, "mean_increment": 10.5}
    assert bl.best_baseline(maes) == ("drift", 5.5)


def test_mase_is_relative_to_persistence() -> None:
    assert bl.mase(5.0, 10.0) == 0.5
    assert bl.mase(0.0, 0.0) == 1.0
    assert bl.mase(1.0, 0.0) == float("inf")


def test_report_in_original_and_scaled_units() -> None:
    predicted = np.array([195.0, 6.0])
    report = bl.forecast_report(LEVELS, ACTUAL, predicted, level_range=1000.0)
    assert report["mae"] == 2.5
    assert report["mae_scaled"] == pytest.approx(0.0025)
    assert report["mse_scaled"] == pytest.approx(12.5 / 1e6)
    assert report["baseline_persistence_mae"] == 20.5
    assert report["best_baseline_mae"] == 5.5
    assert report["mase"] == pytest.approx(2.5 / 20.5)
    assert report["relative_mae"] == pytest.approx(2.5 / 5.5)
    assert report["baseline_persistence_mae_scaled"] == pytest.approx(0.0205)


def test_report_rounds_baselines_like_the_model() -> None:
    levels = np.array([[0.0, 0.0, 1.0]])  # mean increment 0.5 -> forecast 1.5
    raw = bl.forecast_report(levels, np.array([2.0]), np.array([2.0]), 1.0)
    rounded = bl.forecast_report(levels, np.array([2.0]), np.array([2.0]), 1.0, round_counts=True)
    assert raw["baseline_mean_increment_mae"] == 0.5
    assert rounded["baseline_mean_increment_mae"] == 0.0  # np.round(1.5) == 2
