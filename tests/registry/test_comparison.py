"""The paired bootstrap of the champion comparison, on synthetic errors with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from viralab.registry.comparison import GATE, judge_comparison, paired_bootstrap


def test_interval_matches_scipy_paired_percentile_bootstrap():
    rng = np.random.default_rng(1)
    champion = rng.exponential(0.05, 400)
    candidate = champion + rng.normal(0.004, 0.01, 400)  # truly worse by 0.004 on average
    ours = paired_bootstrap(candidate, champion, confidence=0.9, resamples=4000, seed=3)
    ref = stats.bootstrap(
        (candidate, champion),
        lambda a, b, axis: np.mean(a - b, axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=0.9,
        n_resamples=4000,
        method="percentile",
        random_state=3,
    ).confidence_interval
    assert ours.difference == pytest.approx(np.mean(candidate - champion))
    assert ours.candidate == pytest.approx(candidate.mean())
    assert ours.champion == pytest.approx(champion.mean())
    # the same estimator, different random draws: the ends agree to Monte Carlo error
    assert ours.interval[0] == pytest.approx(ref.low, abs=3e-4)
    assert ours.interval[1] == pytest.approx(ref.high, abs=3e-4)
    # and both agree with the normal approximation of a mean of 400 differences
    se = np.std(candidate - champion, ddof=1) / np.sqrt(400)
    assert ours.interval[1] - ours.interval[0] == pytest.approx(2 * 1.645 * se, rel=0.1)
    assert ours.n == 400 and ours.metric == "MAE"


def test_pairing_removes_what_both_models_share():
    """Hard rows are hard for both: pairing keeps that out of the interval."""
    rng = np.random.default_rng(0)
    shared = rng.exponential(1.0, 300)  # row difficulty, large
    champion = shared + rng.normal(0, 0.01, 300)
    candidate = shared + 0.05 + rng.normal(0, 0.01, 300)
    paired = paired_bootstrap(candidate, champion, seed=0)
    low, high = paired.interval
    assert 0.04 < low < 0.05 < high < 0.06  # a 5 % shift on rows that vary 100 % is resolved


def test_identical_models_pass_and_a_worse_one_fails():
    errors = np.random.default_rng(2).exponential(0.05, 200)
    same = paired_bootstrap(errors, errors.copy())
    assert same.interval == (0.0, 0.0)
    verdict = judge_comparison(same, 0.0, candidate="v2", champion="v1", basis="gate set x")
    assert verdict.passed and verdict.gate == GATE
    worse = paired_bootstrap(errors * 1.28, errors)  # 28 % worse everywhere
    verdict = judge_comparison(worse, 0.03, candidate="v2", champion="v1", basis="gate set x")
    assert not verdict.passed
    assert verdict.figure == pytest.approx(0.28 * errors.mean())
    assert verdict.threshold == pytest.approx(0.03 * errors.mean())
    assert verdict.n == 200 and verdict.reference == pytest.approx(errors.mean())
    assert "95% interval" in verdict.detail and "n=200" in verdict.detail


def test_tolerance_is_relative_to_the_champion_and_the_upper_end_decides():
    rng = np.random.default_rng(4)
    champion = rng.exponential(0.1, 500)
    candidate = champion * 1.01  # 1 % worse on every row: a tight interval around +1 %
    comparison = paired_bootstrap(candidate, champion)
    assert comparison.interval[0] > 0  # it IS worse...
    kw = {"candidate": "v2", "champion": "v1", "basis": "b"}
    assert judge_comparison(comparison, 0.02, **kw).passed  # ...but within 2 %
    assert not judge_comparison(comparison, 0.005, **kw).passed


def test_a_noisy_small_gate_set_does_not_promote_an_equal_model():
    """Non-inferiority: a wide interval is no evidence of "not worse"."""
    rng = np.random.default_rng(5)
    champion = rng.exponential(0.1, 12)
    candidate = rng.exponential(0.1, 12)
    comparison = paired_bootstrap(candidate, champion)
    assert comparison.interval[1] > 0.02 * comparison.champion
    assert not judge_comparison(comparison, 0.02, candidate="a", champion="b", basis="c").passed


def test_mase_is_a_ratio_of_sums_and_scale_free():
    rng = np.random.default_rng(6)
    naive = rng.exponential(10.0, 100)
    champion = naive * 0.8
    candidate = naive * 0.9
    mase = paired_bootstrap(candidate, champion, scale=naive, metric="MASE")
    assert mase.candidate == pytest.approx(0.9)
    assert mase.champion == pytest.approx(0.8)
    assert mase.difference == pytest.approx(0.1)
    big = paired_bootstrap(candidate * 1000, champion * 1000, scale=naive * 1000, metric="MASE")
    assert big.difference == pytest.approx(mase.difference)
    assert big.interval == pytest.approx(mase.interval)


@pytest.mark.parametrize(
    ("candidate", "champion", "scale", "message"),
    [
        ([], [], None, "non-empty"),
        ([1.0, 2.0], [1.0], None, "equal"),
        ([1.0, np.nan], [1.0, 1.0], None, "finite"),
        ([1.0, 2.0], [1.0, 1.0], [0.0, 0.0], "naive forecast is exact"),
    ],
)
def test_bad_inputs_are_refused(candidate, champion, scale, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(np.array(candidate), np.array(champion), scale=scale)
