"""The registered preference model: raw analysis documents in, score 0-10 out.

An MLflow pyfunc wrapping the fitted scikit-learn pipeline (encoder + estimator), so
`models:/preference@champion` — in-process, or behind `mlflow models serve` — takes the same
raw JSON the analysis service produces. The pipeline is stored with joblib inside the model's
artifacts: MLflow >= 3.14 would otherwise save scikit-learn objects with skops, which rejects
our custom transformer unless every type is trusted by hand.
"""

from __future__ import annotations

import json
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd

from viralab.features.tabular import ANALYSIS_COLUMN

PIPELINE_ARTIFACT = "pipeline"


def documents_frame(documents: Any) -> pd.DataFrame:
    """Coerce what a caller sends (dicts, JSON strings, a frame) to the model's input frame."""
    if isinstance(documents, pd.DataFrame):
        frame = documents
    elif isinstance(documents, dict):
        frame = pd.DataFrame({ANALYSIS_COLUMN: [documents]})
    else:
        frame = pd.DataFrame({ANALYSIS_COLUMN: list(documents)})
    values = [v if isinstance(v, str) else json.dumps(v) for v in frame[ANALYSIS_COLUMN]]
    return pd.DataFrame({ANALYSIS_COLUMN: values})


class PreferenceModel(mlflow.pyfunc.PythonModel):
    """pyfunc: DataFrame[visual_analysis (JSON string)] -> prediction (0-1) and score (0-10)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.pipeline = joblib.load(context.artifacts[PIPELINE_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        frame = documents_frame(model_input)
        raw = np.asarray(self.pipeline.predict(frame), dtype=float)
        clipped = np.clip(raw, 0.0, 1.0)
        return pd.DataFrame({"prediction": clipped, "score": clipped * 10.0})
