"""How the monitor scores a saved preference model and encodes rows with it.

Both reach into the saved model (`unwrap_python_model()`, its pipeline's `features` step):
kept here, in one place, until the families offer a scoring interface of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from viralab.analysis.drift import DriftReport, DriftSettings, compare
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.promotion.evaluation import predictions
from viralab.serve.prediction_log import suppressed


def preference_predictions(pyfunc: Any, frame: pd.DataFrame) -> np.ndarray:
    """0-1 predictions of a preference pyfunc for the analysis column of `frame` (no SHAP)."""

    documents = frame[[ANALYSIS_COLUMN]].reset_index(drop=True)
    inner = pyfunc.unwrap_python_model()
    if hasattr(inner, "score"):
        return inner.score(documents, with_factors=False)["prediction"].to_numpy(dtype=float)

    with suppressed():  # re-scoring after the fact is not serving: keep it out of the log
        return predictions(pyfunc.predict(documents))


def drift_of(
    pyfunc: Any, reference: Mapping[str, Any], recent: pd.DataFrame, settings: DriftSettings
) -> DriftReport | None:
    """The drift report of the new ratings, encoded by the champion's own `features` step;
    None when the champion is not a preference pipeline."""

    try:
        encoder = pyfunc.unwrap_python_model().pipeline.named_steps["features"]
    except (AttributeError, KeyError):
        return None
    return compare(reference, encoder, recent[[ANALYSIS_COLUMN]], settings)


__all__ = ["drift_of", "preference_predictions"]
