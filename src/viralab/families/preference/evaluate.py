"""Pure numbers about a fitted pipeline (spec 000 §6): regression metrics, verdicts, weights.

No MLflow and no fitting here, so sweeps, tests and the dimension models share one definition
of "how good".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline

#: Spec 000 §6.2, overridable under `task.verdict`.
VERDICT_THRESHOLDS = {"mae_ready": 0.15, "mae_acceptable": 0.20, "r2_good": 0.6, "r2_moderate": 0.4}


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, prefix: str = ""
) -> dict[str, float]:
    return {
        f"{prefix}mae": float(mean_absolute_error(y_true, y_pred)),
        f"{prefix}rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        f"{prefix}r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }


def verdicts(
    mae: float, r2: float, thresholds: Mapping[str, float] | None = None
) -> dict[str, str]:
    """Spec §6.2: MAE < 0.15 production_ready, <= 0.20 acceptable, else needs_work; R2 > 0.6
    good, >= 0.4 moderate, else low. Overall: production_ready when both are best,
    needs_work when either is worst, else acceptable."""
    t = {**VERDICT_THRESHOLDS, **(thresholds or {})}
    if mae < t["mae_ready"]:
        by_mae = "production_ready"
    elif mae <= t["mae_acceptable"]:
        by_mae = "acceptable"
    else:
        by_mae = "needs_work"
    if not np.isfinite(r2) or r2 < t["r2_moderate"]:
        by_r2 = "low"
    elif r2 > t["r2_good"]:
        by_r2 = "good"
    else:
        by_r2 = "moderate"
    if by_mae == "production_ready" and by_r2 == "good":
        overall = "production_ready"
    elif by_mae == "needs_work" or by_r2 == "low":
        overall = "needs_work"
    else:
        overall = "acceptable"
    return {"mae": by_mae, "r2": by_r2, "overall": overall}


def selected_feature_names(pipeline: Pipeline) -> list[str]:
    """The names of the columns the final estimator sees (after `select`, if any)."""
    return [str(n) for n in pipeline[:-1].get_feature_names_out()]


def feature_weights(
    pipeline: Pipeline, X: pd.DataFrame | None = None, y: np.ndarray | None = None, seed: int = 0
) -> tuple[dict[str, float], str]:
    """Per-feature weights of the final estimator, keyed by the features it sees.

    Coefficients for linear models, `feature_importances_` for trees; for models with
    neither (MLP) the permutation importance of the estimator on `X`, `y` (held-out rows),
    computed on the encoded features. Returns the weights and which kind they are.
    """
    names = selected_feature_names(pipeline)
    estimator = pipeline[-1]
    if hasattr(estimator, "coef_"):
        values, kind = np.ravel(estimator.coef_), "coefficient"
    elif hasattr(estimator, "feature_importances_"):
        values, kind = np.asarray(estimator.feature_importances_), "importance"
    elif X is not None and y is not None and len(y) > 1:
        encoded = pipeline[:-1].transform(X)
        result = permutation_importance(
            estimator, encoded, y, n_repeats=5, random_state=seed, scoring="neg_mean_absolute_error"
        )
        values, kind = result.importances_mean, "permutation_importance"
    else:
        return {}, "none"
    return {n: float(v) for n, v in zip(names, values, strict=True)}, kind
