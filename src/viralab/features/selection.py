"""Spec 000 §5.2 / §8 feature selection as a pipeline step: top-k by |r|, prune weak |r|.

The spec picks "the top 50 correlated features" before the split and prunes |r| < 0.1 at 300
ratings; done that way, the held-out rows vote on which features the model may use (leakage).
As the `select` step of the model's Pipeline the ranking is learnt in `fit`, so it only ever
sees the rows the model is trained on: the training part, or one CV fold's training rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from viralab.analysis.correlation import pearson_columns


class CorrelationSelector(SelectorMixin, BaseEstimator):
    """Keep the features most correlated (Pearson |r|) with the target.

    Args:
        k: keep the `k` features with the largest |r| (spec: 50); None or 0 keeps all.
        min_abs_corr: then drop features with |r| below this (spec §8: 0.1); None or 0 keeps
            all. At least the single strongest feature is always kept, so a strict threshold
            never leaves the model with no input.

    Ties in |r| keep the earlier column. Fitted attributes: `correlations_` (signed r per
    input column), `p_values_`, `scores_` (|r|), `support_` (bool mask).
    """

    def __init__(self, k: int | None = 50, min_abs_corr: float | None = None) -> None:
        self.k = k
        self.min_abs_corr = min_abs_corr

    def fit(self, X: Any, y: Any) -> CorrelationSelector:
        """Rank the columns of `X` by |r| with `y` and fix the kept set."""
        if self.k is not None and (not isinstance(self.k, int | np.integer) or self.k < 0):
            raise ValueError(f"k must be a non-negative int or None, got {self.k!r}")
        if self.min_abs_corr is not None and not 0 <= self.min_abs_corr <= 1:
            raise ValueError(f"min_abs_corr must lie in [0, 1], got {self.min_abs_corr!r}")
        X, y = validate_data(self, X, y, y_numeric=True)
        r, p = pearson_columns(X, y)
        self.correlations_ = r
        self.p_values_ = p
        self.scores_ = np.abs(r)
        order = np.argsort(-self.scores_, kind="stable")
        keep = np.zeros(X.shape[1], dtype=bool)
        keep[order[: self.k] if self.k else order] = True
        if self.min_abs_corr:
            keep &= self.scores_ >= self.min_abs_corr
            if not keep.any():
                keep[order[0]] = True
        self.support_ = keep
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
