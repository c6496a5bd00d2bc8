"""The run's figures: correlation bars, predicted vs actual, residuals.

Built on `matplotlib.figure.Figure` directly (Agg canvas), never `pyplot`: no global figure
state, no GUI backend, nothing to close, safe in tests and on headless machines.
`mlflow.log_figure` takes these figures as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

POSITIVE = "#2a9d8f"
NEGATIVE = "#e76f51"


def correlation_bars(
    top_positive: Sequence[Mapping[str, Any]],
    top_negative: Sequence[Mapping[str, Any]],
    title: str = "Pearson r with overall_score (training rows)",
) -> Figure:
    """Horizontal bars: strongest negative at the bottom, strongest positive at the top."""
    # barh draws the first item at the bottom: most negative first, most positive last.
    items = [
        *sorted(top_negative, key=lambda r: r["correlation"]),
        *sorted(top_positive, key=lambda r: r["correlation"]),
    ]
    names = [str(r["feature"]) for r in items]
    values = np.array([float(r["correlation"]) for r in items])
    fig = Figure(figsize=(9, max(3.0, 0.22 * len(items) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    if len(items):
        ax.barh(names, values, color=[POSITIVE if v > 0 else NEGATIVE for v in values])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("Pearson r")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=7)
    return fig


def predicted_vs_actual(y_true: np.ndarray, y_pred: np.ndarray, title: str = "") -> Figure:
    """Test-set predictions against the owner's scores, with the identity line."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    fig = Figure(figsize=(5.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(y_true, y_pred, s=14, alpha=0.7)
    lo = float(min(y_true.min(initial=0.0), y_pred.min(initial=0.0)))
    hi = float(max(y_true.max(initial=1.0), y_pred.max(initial=1.0)))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--")
    ax.set_xlabel("actual overall_score")
    ax.set_ylabel("predicted")
    ax.set_title(title or "Predicted vs actual (test set)")
    return fig


def residuals(
    y_true: np.ndarray, y_pred: np.ndarray, threshold: float | None = None, title: str = ""
) -> Figure:
    """Residuals (predicted - actual) against the prediction, with the error-analysis band."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    error = y_pred - y_true
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(y_pred, error, s=14, alpha=0.7)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if threshold is not None:
        for bound in (threshold, -threshold):
            ax.axhline(bound, color=NEGATIVE, linewidth=0.8, linestyle=":")
    ax.set_xlabel("predicted")
    ax.set_ylabel("predicted - actual")
    ax.set_title(title or "Residuals (test set)")
    return fig
