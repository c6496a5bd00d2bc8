"""Per-horizon judging: naive baselines, scale-free errors and intervals that mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from viralab.models import forecast_eval as fe


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


def _turning_growth(
    rng: np.random.Generator, n: int, turning: float, lean: float, horizons: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origins of videos whose growth turns (issue 16): history, forecast, actual counts.

    A share ``turning`` of the origins changed rate in their last quarter hour; the forecast
    extends the last hour's rate; the error grows with how fast growth is turning (H x the
    rate change) and leans to the sign of ``lean`` (falling vs rising stretch of the day).
    """
    r_old = rng.uniform(50.0, 300.0, n)  # views a minute: the count-noise terms are small
    turns = rng.random(n) < turning
    r_new = np.where(turns, r_old * rng.choice([0.2, 3.0], n), r_old)
    steps = np.concatenate([np.repeat(r_old[:, None], 45, 1), np.repeat(r_new[:, None], 16, 1)], 1)
    history = np.cumsum(steps, axis=1)
    r60 = (history[:, -1] - history[:, -61]) / 60
    h = np.asarray(horizons, dtype="float64")[None, :]
    point = history[:, -1:] + h * r60[:, None]
    spread = h * (r60 + np.abs(r_new - r60))[:, None]  # errors grow as growth turns
    noise = rng.normal(lean, 0.25, size=point.shape)
    return history, point, np.maximum(point + spread * noise, history[:, -1:])  # a counter


def test_intervals_stay_honest_when_growth_turns_more_and_leans_the_other_way() -> None:
    """Calibrated where growth is steady and slowing, applied where it turns and speeds up.

    The pre-fix method (signed quantiles of residuals over H x rate) covers about 20 % here:
    it carries the calibration stretch's lean into the test band and does not widen where the
    rate is changing. The fix (absolute residuals over a scale that grows with the rate
    change) keeps 80 %. Pinned with the old method too, so this test can fail.
    """
    rng = np.random.default_rng(1)
    horizons = (15, 60, 240)
    h_val, p_val, a_val = _turning_growth(rng, 4_000, turning=0.1, lean=-0.25, horizons=horizons)
    h_test, p_test, a_test = _turning_growth(rng, 8_000, turning=0.6, lean=0.25, horizons=horizons)

    def test_coverage(quantiles: list, method: str) -> list[float]:
        s_test = fe.scale(h_test, horizons, method)
        lower, upper = fe.intervals(p_test, s_test, quantiles, h_test[:, -1])
        return [fe.coverage(a_test[:, j], lower[:, j], upper[:, j]) for j in range(3)]

    new = test_coverage(fe.calibrate(a_val, p_val, fe.scale(h_val, horizons)), fe.SCALE)
    assert new == pytest.approx([0.8] * 3, abs=0.03)

    # the method before the fix: signed 10 %/90 % quantiles over H x rate
    s_old = fe.scale(h_val, horizons, "rate")
    resid = (a_val - p_val) / s_old
    signed = [(np.quantile(resid[:, j], 0.1), np.quantile(resid[:, j], 0.9)) for j in range(3)]
    assert max(test_coverage(signed, "rate")) < 0.65


def test_scale_widens_with_the_rate_change_and_reads_only_the_last_61_rows() -> None:
    steady = np.cumsum(np.full((1, 300), 4.0), axis=1)
    turning = steady.copy()
    turning[0, -15:] = turning[0, -16] + 12.0 * np.arange(1, 16)  # 4/min -> 12/min
    s_steady = fe.scale(steady, (60,))
    assert s_steady[0, 0] == pytest.approx(240 + np.sqrt(240) + 1)
    assert fe.scale(steady, (60,), "rate")[0, 0] == pytest.approx(s_steady[0, 0])
    assert fe.scale(turning, (60,))[0, 0] > 1.5 * fe.scale(turning, (60,), "rate")[0, 0]
    # what the served pyfunc has (61 rows) gives the judge's scale (any longer history)
    np.testing.assert_allclose(fe.scale(turning[:, -61:], (1, 60)), fe.scale(turning, (1, 60)))
    with pytest.raises(ValueError, match="unknown interval scale"):
        fe.scale(steady, (60,), "nope")
