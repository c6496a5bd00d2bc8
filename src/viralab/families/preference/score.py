"""How a saved preference model is scored on new ratings: the family's `score_recent`, and
the encoder its drift check bins them with (`drift_features`).

The monitor (retrain triggers, the challenger check) calls these and nothing inside the
model; what opens the loaded pyfunc is `serve.pyfunc_output`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from viralab.features.documents import ANALYSIS_COLUMN
from viralab.serve.pyfunc_output import feature_encoder, preference_scores


def score_recent(model: Any, rows: pd.DataFrame) -> np.ndarray:
    """0-1 predictions of a loaded preference pyfunc for the analysis column of ``rows``
    (no SHAP; kept out of the prediction log: re-scoring is not serving)."""
    return preference_scores(model, rows[[ANALYSIS_COLUMN]].reset_index(drop=True))


def drift_features(model: Any) -> Any | None:
    """The loaded model's fitted `features` step, which encodes rows for the drift check
    as training's reference was encoded; None when the model is not a preference pipeline."""
    return feature_encoder(model)


__all__ = ["drift_features", "score_recent"]
