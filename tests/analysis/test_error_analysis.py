"""Spec 000 §6.3: over- and underestimated test videos."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from viralab.analysis.error_analysis import analyze_errors, error_metrics


def rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d", "e"],
            "notes": ["fine", "Strong hook, weak payoff", "", None, "loved it"],
            "dim_payoff": [0.5, 0.1, 0.9, 0.6, np.nan],
        }
    )


ACTUAL = np.array([0.5, 0.2, 0.9, 0.6, 0.4])
PREDICTED = np.array([0.55, 0.6, 0.5, 0.85, 0.6])  # errors: .05, .4, -.4, .25, .2


def test_over_and_under_estimated_with_details() -> None:
    out = analyze_errors(rows(), ACTUAL, PREDICTED, threshold=0.2, dimension_columns=["dim_payoff"])
    assert out["counts"] == {"overestimated": 2, "underestimated": 1}
    assert [v["video_id"] for v in out["overestimated"]] == ["b", "d"]  # largest miss first
    assert [v["video_id"] for v in out["underestimated"]] == ["c"]
    b = out["overestimated"][0]
    assert b == {
        "video_id": "b",
        "actual": 0.2,
        "predicted": 0.6,
        "error": pytest.approx(0.4),
        "notes": "Strong hook, weak payoff",
    }
    assert out["overestimated"][1]["notes"] == ""  # None -> ""
    # e's error is exactly 0.2 (within float noise): not beyond the threshold
    assert "e" not in {v["video_id"] for v in out["overestimated"]}
    json.dumps(out)  # a plain JSON document


def test_dimension_patterns_compare_misses_with_all() -> None:
    out = analyze_errors(rows(), ACTUAL, PREDICTED, threshold=0.2, dimension_columns=["dim_payoff"])
    over = out["patterns"]["overestimated"]["dim_payoff"]
    assert over["mean"] == pytest.approx((0.1 + 0.6) / 2)
    assert over["all_mean"] == pytest.approx(np.nanmean([0.5, 0.1, 0.9, 0.6]))
    assert over["difference"] == pytest.approx(over["mean"] - over["all_mean"])


def test_threshold_is_configurable_and_metrics() -> None:
    out = analyze_errors(rows(), ACTUAL, PREDICTED, threshold=0.5)
    assert out["counts"] == {"overestimated": 0, "underestimated": 0}
    assert out["patterns"] == {}
    assert error_metrics(out) == {"errors_overestimated": 0.0, "errors_underestimated": 0.0}


def test_lengths_must_line_up() -> None:
    with pytest.raises(ValueError):
        analyze_errors(rows(), ACTUAL[:3], PREDICTED)
