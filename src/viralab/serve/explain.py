"""Per-document contributions for the preference model's top factors.

Linear models: exact, `coef * x` for each encoded feature, with the intercept as the base, so
contributions + intercept = prediction (spec 000's inference dropped the intercept). Tree
ensembles: SHAP's TreeExplainer (exact for trees), base = the explainer's expected value.
Anything else (the MLP): no factors rather than slow, approximate ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline


@dataclass
class Contributions:
    """`values[i, j]`: feature `names[j]`'s contribution to document i; `base[i]` the rest."""

    names: np.ndarray
    values: np.ndarray
    base: np.ndarray
    method: str


def _tree_explainer(estimator):
    import shap

    return shap.TreeExplainer(estimator)


class Explainer:
    """Built once per loaded model (a TreeExplainer is worth caching)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.preprocess = pipeline[:-1]
        self.estimator = pipeline[-1]
        self.names = np.asarray(self.preprocess.get_feature_names_out(), dtype=object)
        if hasattr(self.estimator, "coef_") and hasattr(self.estimator, "intercept_"):
            self.method = "linear"
            self.coef = np.ravel(self.estimator.coef_)
            self.intercept = float(np.ravel(self.estimator.intercept_)[0])
        elif hasattr(self.estimator, "feature_importances_") or type(
            self.estimator
        ).__name__.startswith("HistGradientBoosting"):
            self.method = "tree"
            self.tree = _tree_explainer(self.estimator)
        else:
            self.method = "none"

    def explain(self, encoded: np.ndarray) -> Contributions | None:
        """Contributions for rows already transformed by every step but the estimator."""
        if self.method == "linear":
            values = encoded * self.coef
            return Contributions(
                self.names, values, np.full(len(encoded), self.intercept), "linear"
            )
        if self.method == "tree":
            values = np.asarray(self.tree.shap_values(encoded, check_additivity=False))
            base = np.ravel(self.tree.expected_value)
            base = np.full(len(encoded), float(base[0]))
            return Contributions(self.names, values, base, "tree_shap")
        return None


def top_factors(
    contributions: Contributions, row: int, threshold: float = 0.02, limit: int = 10
) -> list[dict[str, float | str]]:
    """Spec 000 §7.2: |contribution| > threshold, largest |contribution| first, at most limit."""
    values = contributions.values[row]
    keep = np.flatnonzero(np.abs(values) > threshold)
    order = keep[np.argsort(-np.abs(values[keep]), kind="stable")][:limit]
    return [
        {"feature": str(contributions.names[j]), "contribution": float(values[j])} for j in order
    ]
