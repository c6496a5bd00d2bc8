"""Spec 000 §4: Pearson r and p per feature, significance levels, top lists, expected check."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from viralab.analysis.correlation import (
    analyze_correlations,
    correlation_table,
    pearson_columns,
    significance_level,
    top_correlations,
    validate_expected,
    validation_summary,
)


@pytest.mark.parametrize(
    ("r", "p", "level"),
    [
        (0.5, 0.0099, "high"),
        (-0.5, 0.0099, "high"),
        (0.5, 0.01, "medium"),  # p must be < 0.01 for high
        (0.49, 0.001, "medium"),
        (0.3, 0.0499, "medium"),
        (-0.3, 0.0499, "medium"),
        (0.3, 0.05, "low"),  # p must be < 0.05 for medium
        (0.29, 0.001, "low"),
        (0.15, 0.0999, "low"),
        (-0.15, 0.0999, "low"),
        (0.15, 0.1, "none"),
        (0.149, 0.0, "none"),
        (0.9, 0.5, "none"),
        (0.0, 1.0, "none"),
    ],
)
def test_significance_levels_exactly_as_the_spec(r: float, p: float, level: str) -> None:
    assert significance_level(r, p) == level


def test_pearson_matches_scipy_and_constant_columns_are_zero() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=80)
    X = np.column_stack([y + rng.normal(size=80), rng.normal(size=80), np.full(80, 2.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning leaks out
        r, p = pearson_columns(X, y)
    for j in range(2):
        expected = pearsonr(X[:, j], y)
        assert r[j] == pytest.approx(expected.statistic)
        assert p[j] == pytest.approx(expected.pvalue)
    assert (r[2], p[2]) == (0.0, 1.0)


def test_constant_target_or_too_few_rows_gives_no_correlation() -> None:
    r, p = pearson_columns(np.arange(6.0).reshape(3, 2), np.ones(3))
    assert r.tolist() == [0.0, 0.0] and p.tolist() == [1.0, 1.0]
    r, p = pearson_columns(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]))
    assert (r[0], p[0]) == (0.0, 1.0)
    with pytest.raises(ValueError):
        pearson_columns(np.ones((3, 2)), np.ones(4))


def fixture_table() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    y = rng.normal(size=300)
    cols = {
        "good": y + 0.5 * rng.normal(size=300),
        "bad": -y + rng.normal(size=300),
        "meh": 0.2 * y + rng.normal(size=300),
        "flat": np.zeros(300),
        "noise": rng.normal(size=300),
    }
    X = np.column_stack(list(cols.values()))
    return correlation_table(X, y, list(cols)), X, y, list(cols)


def test_table_sorted_by_absolute_r_with_levels() -> None:
    table, *_ = fixture_table()
    assert list(table.columns) == ["feature", "correlation", "p_value", "significance"]
    assert table["correlation"].abs().is_monotonic_decreasing
    assert table["feature"].tolist()[:2] == ["good", "bad"]
    assert table.set_index("feature").loc["good", "significance"] == "high"
    assert table.set_index("feature").loc["flat", "significance"] == "none"


def test_top_positive_and_negative() -> None:
    table, *_ = fixture_table()
    positive, negative = top_correlations(table, n=1)
    assert [r["feature"] for r in positive] == ["good"]
    assert [r["feature"] for r in negative] == ["bad"]
    positive, negative = top_correlations(table, n=20)
    assert all(r["correlation"] > 0 for r in positive)
    assert all(r["correlation"] < 0 for r in negative)
    assert "flat" not in {r["feature"] for r in positive + negative}
    assert [r["correlation"] for r in negative] == sorted(r["correlation"] for r in negative)


def test_validate_expected_reports_found_r_and_sign() -> None:
    table, *_ = fixture_table()
    checks = validate_expected(
        table, {"strong_positive": ["good", "bad", "missing"], "strongNegative": ["bad"]}
    )
    by = {(c["feature"], c["expected"]): c for c in checks}
    assert by[("good", "positive")]["found"] and by[("good", "positive")]["sign_ok"] is True
    assert by[("bad", "positive")]["sign_ok"] is False
    assert by[("bad", "negative")]["sign_ok"] is True
    assert by[("missing", "positive")] == {
        "feature": "missing",
        "expected": "positive",
        "found": False,
        "correlation": None,
        "p_value": None,
        "significance": None,
        "sign_ok": None,
    }
    assert validation_summary(checks) == {
        "expected": 4,
        "found": 3,
        "sign_ok": 2,
        "significant": 2,
    }
    with pytest.raises(ValueError):
        validate_expected(table, {"strong": ["good"]})


def test_report_snapshot_is_json_and_complete() -> None:
    _, X, y, names = fixture_table()
    report = analyze_correlations(X, y, names, {"strong_positive": ["good"]}, top_n=2)
    snap = json.loads(json.dumps(report.snapshot()))
    assert set(snap) == {
        "created_at",
        "n",
        "n_features",
        "significance_counts",
        "top_positive",
        "top_negative",
        "expected_validation",
    }
    assert snap["n"] == 300 and snap["n_features"] == 5
    assert snap["expected_validation"]["summary"]["sign_ok"] == 1
    assert sum(snap["significance_counts"].values()) == 5
    metrics = report.metrics()
    assert metrics["corr_expected_found"] == 1.0 and metrics["corr_high_features"] >= 1.0
