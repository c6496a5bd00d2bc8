"""Spec 000 §6.3: which held-out videos the model got badly wrong, and in which direction.

A video is overestimated when predicted - actual > threshold (the owner liked it less than the
model thought) and underestimated when < -threshold (spec: 0.2). Each comes with its notes,
so the owner's words sit beside the miss. Where the ratings carry dimension scores, the mean
of each dimension among the misses is set beside its mean over all test videos: the spec's
"patterns" (e.g. overestimated videos with a weak payoff).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def _text(value: Any) -> str:
    """A cell as text; missing (None, NaN, pandas NA) as ""."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _video(row: Mapping[str, Any], actual: float, predicted: float) -> dict[str, Any]:
    return {
        "video_id": _text(row.get("video_id")),
        "actual": float(actual),
        "predicted": float(predicted),
        "error": float(predicted - actual),
        "notes": _text(row.get("notes")),
    }


def _dimension_patterns(
    dimensions: pd.DataFrame, masks: Mapping[str, np.ndarray]
) -> dict[str, dict[str, dict[str, float]]]:
    overall = dimensions.mean()
    patterns: dict[str, dict[str, dict[str, float]]] = {}
    for group, mask in masks.items():
        if not mask.any():
            continue
        means = dimensions[mask].mean()
        patterns[group] = {
            str(name): {
                "mean": float(means[name]),
                "all_mean": float(overall[name]),
                "difference": float(means[name] - overall[name]),
            }
            for name in dimensions.columns
            if np.isfinite(means[name])
        }
    return patterns


def analyze_errors(
    rows: pd.DataFrame,
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    threshold: float = 0.2,
    dimension_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """Over- and underestimated videos (|error| > threshold), largest misses first.

    Args:
        rows: the test rows, aligned with `y_true`/`y_pred`; `video_id` and `notes` are
            reported, `dimension_columns` (numeric, may hold NaN) feed the patterns.
        threshold: the spec's 0.2 on the 0-1 score.
    """
    actual = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    if not len(rows) == len(actual) == len(predicted):
        raise ValueError(f"{len(rows)} rows, {len(actual)} actual, {len(predicted)} predicted")
    errors = predicted - actual
    over = errors > threshold
    under = errors < -threshold
    records = rows.reset_index(drop=True).to_dict("records")

    def listed(mask: np.ndarray) -> list[dict[str, Any]]:
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-np.abs(errors[idx]), kind="stable")]
        return [_video(records[i], actual[i], predicted[i]) for i in idx]

    present = [c for c in dimension_columns if c in rows.columns]
    dims = rows[present].reset_index(drop=True).apply(pd.to_numeric, errors="coerce")
    return {
        "threshold": float(threshold),
        "n_test": len(actual),
        "counts": {"overestimated": int(over.sum()), "underestimated": int(under.sum())},
        "overestimated": listed(over),
        "underestimated": listed(under),
        "patterns": _dimension_patterns(dims, {"overestimated": over, "underestimated": under})
        if present
        else {},
    }


def error_metrics(analysis: Mapping[str, Any]) -> dict[str, float]:
    """The counts as metrics: `errors_overestimated`, `errors_underestimated`."""
    counts = analysis["counts"]
    return {
        "errors_overestimated": float(counts["overestimated"]),
        "errors_underestimated": float(counts["underestimated"]),
    }
