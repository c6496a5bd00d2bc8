"""The registered preference model: raw analysis documents in, score, confidence, factors out.

An MLflow pyfunc wrapping the fitted scikit-learn pipeline (encoder [+ selector] + estimator),
so `models:/preference@champion` — in-process, or behind `mlflow models serve` — takes the same
raw JSON the analysis service produces and answers with spec 000 §7.2's structure:

- `score`: 0-10 (the 0-1 prediction clipped, times 10); `prediction`: the 0-1 value;
- `confidence`: feature coverage (share of the model's input features present in the
  document) x the model's test R2 (clipped to 0-1), as the spec defines it — an odd-shaped
  document is scored, with lower confidence, not rejected;
- `top_factors`: JSON list of {feature, contribution}, |contribution| > 0.02, top 10
  (see `serve.explain`).

The pipeline is stored with joblib inside the model's artifacts: MLflow >= 3.14 would
otherwise save scikit-learn objects with skops, which rejects our custom transformer unless
every type is trusted by hand.
"""

from __future__ import annotations

import json
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd

from viralab.features.tabular import ANALYSIS_COLUMN, flatten_rows

PIPELINE_ARTIFACT = "pipeline"
OUTPUT_COLUMNS = ["prediction", "score", "confidence", "top_factors"]


def _as_json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value)


def documents_frame(documents: Any) -> pd.DataFrame:
    """Coerce what a caller sends (dicts, JSON strings, a frame) to the model's input frame."""
    if isinstance(documents, pd.DataFrame):
        if ANALYSIS_COLUMN not in documents.columns:
            raise ValueError(
                f"input needs a {ANALYSIS_COLUMN!r} column; got {list(documents.columns)}"
            )
        values = documents[ANALYSIS_COLUMN].tolist()
    elif isinstance(documents, dict):
        values = [documents]
    else:
        values = list(documents)
    texts = pd.Series([_as_json_text(v) for v in values], dtype=object)  # no Arrow copy
    return pd.DataFrame({ANALYSIS_COLUMN: texts})


class PreferenceModel(mlflow.pyfunc.PythonModel):
    """pyfunc: DataFrame[visual_analysis (JSON text)] -> prediction, score, confidence,
    top_factors (JSON text)."""

    def __init__(self, pipeline: Any = None, r2: float | None = None) -> None:
        self.pipeline = pipeline
        self.r2 = r2
        self._explainer = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.pipeline = joblib.load(context.artifacts[PIPELINE_ARTIFACT])
        config = context.model_config or {}
        if config.get("r2") is not None:
            self.r2 = float(config["r2"])
        self._explainer = None

    @property
    def explainer(self):
        if self._explainer is None:
            from viralab.serve.explain import Explainer

            self._explainer = Explainer(self.pipeline)
        return self._explainer

    def score(self, model_input: Any, with_factors: bool = True) -> pd.DataFrame:
        """Score documents; the shared body of `predict` and `predict_virality_score`."""
        from viralab.serve.explain import top_factors

        frame = documents_frame(model_input)
        encoder = self.pipeline.named_steps["features"]
        flat = flatten_rows(frame, encoder.column)  # once: encoding and coverage share it
        encoded, coverage = encoder.encode_with_coverage(flat)
        if len(self.pipeline) > 2:  # the selection step(s) between encoder and estimator
            encoded = self.pipeline[1:-1].transform(encoded)
        raw = np.asarray(self.pipeline[-1].predict(encoded), dtype=float)
        prediction = np.clip(raw, 0.0, 1.0)
        r2 = 1.0 if self.r2 is None else float(np.clip(self.r2, 0.0, 1.0))
        confidence = coverage * r2
        factors = [[] for _ in range(len(frame))]
        if with_factors:
            contributions = self.explainer.explain(encoded)
            if contributions is not None:
                factors = [top_factors(contributions, i) for i in range(len(frame))]
        return pd.DataFrame(
            {
                "prediction": prediction,
                "score": prediction * 10.0,
                "confidence": confidence,
                "top_factors": pd.Series([json.dumps(f) for f in factors], dtype=object),
            }
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        with_factors = bool((params or {}).get("top_factors", True))
        return self.score(model_input, with_factors=with_factors)
