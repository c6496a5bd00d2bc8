"""Small pyfunc models with the registered models' contracts, for comparisons on tiny data.

Kept in an importable module so the logged models unpickle by reference in the same process.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from viralab.features.tabular import ANALYSIS_COLUMN


def x_of(frame: pd.DataFrame) -> np.ndarray:
    return np.array([json.loads(doc)["x"] for doc in frame[ANALYSIS_COLUMN]], dtype=float)


class LinearRater(mlflow.pyfunc.PythonModel):
    """Preference contract (analysis JSON in, score out): a straight line in `x`."""

    def __init__(self, slope: float, intercept: float) -> None:
        self.slope, self.intercept = slope, intercept

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return self.slope * x_of(model_input) + self.intercept


class NearestRater(mlflow.pyfunc.PythonModel):
    """1-nearest-neighbour: it memorises every row it was fitted on (error 0 there)."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray) -> None:
        self.xs, self.ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        x = x_of(model_input)
        return self.ys[np.abs(x[:, None] - self.xs[None, :]).argmin(axis=1)]


class TrendForecaster(mlflow.pyfunc.PythonModel):
    """Forecaster contract (raw rows in, one `prediction` per video and step): the last count
    plus `factor` x the window's mean increment (0: persistence, 1: mean increment)."""

    def __init__(self, factor: float, sequence_length: int = 3) -> None:
        self.factor = factor
        self.settings = {
            "sequence_length": sequence_length,
            "target_column": "view_count",
            "frequency": "1min",
            "max_gap_steps": 5,
        }

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        rows = []
        L = self.settings["sequence_length"]
        for video, group in model_input.groupby(model_input["video_id"].astype(str), sort=False):
            counts = group["view_count"].to_numpy(dtype=float)[-(L + 1) :]
            step = np.diff(counts).mean() if len(counts) > 1 else 0.0
            nxt = counts[-1] + self.factor * step
            row = {"video_id": video, "timestamp": None, "step": 1, "target": "views"}
            rows.append({**row, "prediction": nxt})
        return pd.DataFrame(rows)
