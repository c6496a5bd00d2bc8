"""What a loaded pyfunc holds and answers, asked in one place.

A model loaded with `mlflow.pyfunc.load_model` hides its wrapper (`ForecastModel`,
`PreferenceModel`, or a model of its own kind); the families' scoring (`score_recent`) and the
gates ask here for the wrapper's public methods instead of opening saved models themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from viralab.errors import DataError
from viralab.serve.forecast_model import ForecastModel
from viralab.serve.prediction_log import suppressed
from viralab.tracking.store import is_mlflow_error


def predictions(output: object) -> np.ndarray:
    """A pyfunc's output as a 1-D float array: an array/Series, or the `prediction` column."""
    if isinstance(output, pd.DataFrame):
        if "prediction" in output.columns:
            output = output["prediction"]
        elif output.shape[1] == 1:
            output = output.iloc[:, 0]
        else:
            raise ValueError(
                f"model output has columns {list(output.columns)} but no 'prediction' column"
            )
    values = np.asarray(output, dtype=float)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"model output has shape {values.shape}, expected one value per row")
    return values


def python_model(pyfunc: Any) -> Any:
    """The wrapper inside a loaded pyfunc (None for a model of another flavor)."""
    unwrap = getattr(pyfunc, "unwrap_python_model", None)
    if unwrap is None:
        return None
    try:
        return unwrap()
    except Exception as exc:
        if is_mlflow_error(exc):  # a pyfunc of another flavor holds no PythonModel
            return None
        raise


def saved_settings(pyfunc: Any) -> dict[str, Any] | None:
    """The preprocessing settings a forecaster's wrapper carries (None if it has none)."""
    return getattr(python_model(pyfunc), "settings", None)


def forecaster(pyfunc: Any) -> ForecastModel:
    """The forecaster inside a loaded pyfunc, as today's `ForecastModel`.

    A logged forecaster carries its own copy of `serve/forecast_model.py` (models-from-code)
    or a pickled reference to it, so its wrapper may be of an older version without today's
    methods; what every version holds is its ``network``, ``scaler``, ``settings`` (and
    ``peer``), and those are put back into the current class.

    Raises:
        DataError: the model is not a forecaster (a stand-in, another family).
    """
    inner = python_model(pyfunc)
    if not all(hasattr(inner, name) for name in ("network", "scaler", "settings")):
        raise DataError(
            f"the model is a {type(inner).__name__}, not a network forecaster: it cannot "
            "score windows"
        )
    return ForecastModel(inner.network, inner.scaler, inner.settings, getattr(inner, "peer", None))


def preference_scores(pyfunc: Any, documents: pd.DataFrame) -> np.ndarray:
    """0-1 predictions of a preference pyfunc for ``documents`` (no SHAP); the wrapper's
    `score` where it has one, else `predict` kept out of the prediction log."""
    inner = python_model(pyfunc)
    if hasattr(inner, "score"):
        return inner.score(documents, with_factors=False)["prediction"].to_numpy(dtype=float)
    with suppressed():  # re-scoring after the fact is not serving: keep it out of the log
        return predictions(pyfunc.predict(documents))


def feature_encoder(pyfunc: Any) -> Any | None:
    """The fitted `features` step of a preference pipeline's pyfunc; None for any other."""
    try:
        return python_model(pyfunc).pipeline.named_steps["features"]
    except (AttributeError, KeyError):
        return None


__all__ = [
    "feature_encoder",
    "forecaster",
    "predictions",
    "preference_scores",
    "python_model",
    "saved_settings",
]
