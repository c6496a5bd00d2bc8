"""Spec 000 §4: which encoded features move with the owner's score, and how surely.

Pearson r and its two-sided p-value per encoded feature (`scipy.stats.pearsonr`, which has
the exact distribution the spec's `tDistributionCDF` left undefined), the spec's significance
levels, the top positive and negative features, and a check of the spec's expected
correlations (§4.2). Training computes it on the training rows only, so nothing learnt here
has seen the held-out rows; the selection step (`viralab.features.selection`) ranks features
with the same `pearson_columns`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

SIGNIFICANCE_LEVELS = ("high", "medium", "low", "none")
CORRELATION_COLUMNS = ["feature", "correlation", "p_value", "significance"]


def significance_level(correlation: float, p_value: float) -> str:
    """The spec's levels: high |r|>=0.5 & p<0.01; medium |r|>=0.3 & p<0.05; low |r|>=0.15 &
    p<0.1; else none."""
    r = abs(correlation)
    if r >= 0.5 and p_value < 0.01:
        return "high"
    if r >= 0.3 and p_value < 0.05:
        return "medium"
    if r >= 0.15 and p_value < 0.1:
        return "low"
    return "none"


def pearson_columns(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and p-value of every column of `X` against `y`.

    A constant column (or a constant `y`, or fewer than 3 rows) has no defined correlation:
    r=0, p=1, as the spec's `pearsonCorrelation` returns for a zero denominator. Non-finite
    values are not expected (the encoder fills every gap).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X {X.shape} and y {y.shape} do not line up")
    n_features = X.shape[1]
    r = np.zeros(n_features)
    p = np.ones(n_features)
    if X.shape[0] < 3 or np.ptp(y) == 0:
        return r, p
    varying = np.ptp(X, axis=0) > 0
    if varying.any():
        result = pearsonr(X[:, varying], y[:, None], axis=0)
        r[varying] = np.nan_to_num(result.statistic, nan=0.0)
        p[varying] = np.nan_to_num(result.pvalue, nan=1.0)
    return r, p


def correlation_table(X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """One row per feature: feature, correlation, p_value, significance; sorted by |r|."""
    r, p = pearson_columns(X, y)
    if len(names) != len(r):
        raise ValueError(f"{len(names)} names for {len(r)} features")
    table = pd.DataFrame(
        {
            "feature": [str(n) for n in names],
            "correlation": r,
            "p_value": p,
            "significance": [significance_level(a, b) for a, b in zip(r, p, strict=True)],
        }
    )
    order = np.argsort(-np.abs(r), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "feature": str(row["feature"]),
        "correlation": float(row["correlation"]),
        "p_value": float(row["p_value"]),
        "significance": str(row["significance"]),
    }


def top_correlations(
    table: pd.DataFrame, n: int = 20
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The `n` strongest positive and the `n` strongest negative correlations."""
    positive = table[table["correlation"] > 0].sort_values(
        "correlation", ascending=False, kind="stable"
    )
    negative = table[table["correlation"] < 0].sort_values(
        "correlation", ascending=True, kind="stable"
    )
    return (
        [_row(r) for r in positive.head(n).to_dict("records")],
        [_row(r) for r in negative.head(n).to_dict("records")],
    )


def validate_expected(
    table: pd.DataFrame, expected: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    """Check each expected feature (spec §4.2): was it encoded, what is r, is the sign right.

    `expected` maps a direction to feature names: keys containing "positive" expect r > 0,
    keys containing "negative" expect r < 0 (e.g. `strong_positive`, `strongNegative`). A
    feature that is not among the encoded features (dropped for coverage, renamed, absent
    from the data) is reported as not found with sign_ok None.
    """
    by_name = {str(r["feature"]): r for r in table.to_dict("records")}
    checks = []
    for group, names in expected.items():
        lowered = str(group).lower()
        if "positive" in lowered:
            sign = 1
        elif "negative" in lowered:
            sign = -1
        else:
            raise ValueError(f"expected-correlation group {group!r}: name it positive or negative")
        for name in names:
            row = by_name.get(str(name))
            check: dict[str, Any] = {
                "feature": str(name),
                "expected": "positive" if sign > 0 else "negative",
                "found": row is not None,
                "correlation": None,
                "p_value": None,
                "significance": None,
                "sign_ok": None,
            }
            if row is not None:
                r = float(row["correlation"])
                check.update(
                    correlation=r,
                    p_value=float(row["p_value"]),
                    significance=str(row["significance"]),
                    sign_ok=bool(np.sign(r) == sign),
                )
            checks.append(check)
    return checks


def validation_summary(checks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Counts over the expected features: how many were found, right-signed, significant."""
    return {
        "expected": len(checks),
        "found": sum(bool(c["found"]) for c in checks),
        "sign_ok": sum(c["sign_ok"] is True for c in checks),
        "significant": sum(
            c["sign_ok"] is True and c["significance"] not in (None, "none") for c in checks
        ),
    }


@dataclass
class CorrelationReport:
    """Everything §4 and the §8 `feature_importance_snapshot` ask for, from one table."""

    table: pd.DataFrame
    top_positive: list[dict[str, Any]]
    top_negative: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    n: int
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def summary(self) -> dict[str, int]:
        return validation_summary(self.validation)

    def level_counts(self) -> dict[str, int]:
        counts = self.table["significance"].value_counts()
        return {level: int(counts.get(level, 0)) for level in SIGNIFICANCE_LEVELS}

    def snapshot(self) -> dict[str, Any]:
        """The `feature_importance_snapshot.json` document."""
        return {
            "created_at": self.created_at,
            "n": self.n,
            "n_features": len(self.table),
            "significance_counts": self.level_counts(),
            "top_positive": self.top_positive,
            "top_negative": self.top_negative,
            "expected_validation": {"summary": self.summary, "features": self.validation},
        }

    def metrics(self) -> dict[str, float]:
        """Counts worth plotting across runs (prefixed `corr_`)."""
        out = {f"corr_{k}_features": float(v) for k, v in self.level_counts().items()}
        out.update({f"corr_expected_{k}": float(v) for k, v in self.summary.items()})
        return out


def analyze_correlations(
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    expected: Mapping[str, Sequence[str]] | None = None,
    top_n: int = 20,
) -> CorrelationReport:
    """Correlate every encoded feature with the target and check the expected list."""
    table = correlation_table(X, y, names)
    positive, negative = top_correlations(table, top_n)
    checks = validate_expected(table, expected or {})
    return CorrelationReport(table, positive, negative, checks, n=int(np.asarray(y).shape[0]))
