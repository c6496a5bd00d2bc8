"""Per-horizon judging: naive baselines, scale-free errors and intervals that mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from viralab import forecast_eval as fe


def test_coverage_counts_inside_including_the_bounds_and_skips_unknowns() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    lower = np.array([1.0, 2.5, 0.0, 0.0, 0.0])
    upper = np.array([1.0, 3.0, 3.0, 3.9, 9.0])
    assert fe.coverage(actual, lower, upper) == pytest.approx(2 / 4)


def test_conformal_intervals_cover_80_percent_of_a_series_with_known_noise() -> None:
    """Counts = a known mean path + Gaussian noise (sd grows with the horizon)."""
    rng = np.random.default_rng(0)
    horizons = (1, 15, 60)
    sd = np.array([2.0, 10.0, 30.0])

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        history = np.cumsum(rng.poisson(3.0, size=(n, 70)), axis=1).astype("float64")
        point = history[:, -1:] + 3.0 * np.asarray(horizons)[None, :]
        actual = point + rng.normal(0.0, sd[None, :], size=point.shape)
        return history, point, actual

    h_val, p_val, a_val = draw(10_000)
    quantiles = fe.calibrate(a_val, p_val, fe.scale(h_val, horizons))
    h_test, p_test, a_test = draw(20_000)
    lower, upper = fe.intervals(p_test, fe.scale(h_test, horizons), quantiles, h_test[:, -1])
    for j in range(len(horizons)):
        assert fe.coverage(a_test[:, j], lower[:, j], upper[:, j]) == pytest.approx(0.8, abs=0.02)
        # and as wide as the true 80 % band (2 x 1.2816 sd), not wider
        assert (upper[:, j] - lower[:, j]).mean() == pytest.approx(2 * 1.2816 * sd[j], rel=0.08)
    # the exact band of the known noise covers 80 % too: the measure itself is right
    exact = fe.coverage(a_test[:, 2], p_test[:, 2] - 1.2816 * 30, p_test[:, 2] + 1.2816 * 30)
    assert exact == pytest.approx(0.8, abs=0.01)


def test_naive_baselines_extend_the_recent_rates() -> None:
    history = np.array([[np.nan] * 40 + list(range(0, 80, 2)) + [80.0]])  # rate 2, last step 2
    f = fe.naive_forecasts(history[:, -81:], (1, 10), window=5)
    assert f["persistence"].tolist() == [[80.0, 80.0]]
    assert f["drift"].tolist() == [[82.0, 100.0]]
    assert f["mean_increment"].tolist() == [[82.0, 100.0]]
    # 40 known rows: the 60-minute rate uses the 39 steps it has
    assert f["mean_increment_60"][0] == pytest.approx([82.0, 100.0])


def test_report_is_per_horizon_scale_free_and_against_the_best_naive() -> None:
    # video a is 100x bigger than video b; the model halves persistence's error on both
    actual = np.array([[110.0], [1100.0], [11.0], [12.0]])
    videos = np.array(["a", "a", "b", "b"])
    persistence = np.array([[100.0], [1000.0], [10.0], [10.0]])
    drift = actual - np.array([[4.0], [40.0], [0.4], [0.8]])
    model = actual - (actual - persistence) / 2
    report = fe.horizon_report(
        actual,
        model,
        {"persistence": persistence, "drift": drift},
        (60,),
        videos,
        lower=model - 1,
        upper=model + 1,
    )
    assert report["mase_h60"] == pytest.approx(0.5)  # each video weighs the same
    assert report["baseline_drift_mase_h60"] == pytest.approx(0.4)
    assert report["best_baseline_mae_h60"] == pytest.approx(np.mean([4, 40, 0.4, 0.8]))
    assert report["relative_mae_h60"] == pytest.approx(
        report["mae_h60"] / report["best_baseline_mae_h60"]
    )
    assert report["coverage80_h60"] == pytest.approx(0.5)
    assert report["width80_h60"] == pytest.approx(2.0)
