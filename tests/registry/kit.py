"""Registers versions shaped like training's: metrics, feature_weights.json, eval set, model.

Tiny scikit-learn models for tests that load and predict; `create_model_version` on one
shared logged model where only the metrics matter (much faster).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from sklearn.linear_model import LinearRegression

GOOD_PREFERENCE = {
    "mae": 0.11,
    "rmse": 0.14,
    "r2": 0.72,
    "cv_mae": 0.12,
    "cv_mae_std": 0.01,
    "baseline_mae": 0.2,
    "training_video_count": 200,
}
GOOD_FORECAST = {
    "mae_scaled": 0.004,
    "mse_scaled": 5.0e-5,
    "mae": 12.0,
    "best_baseline_mae": 15.0,
    "mase_h60": 0.5,
    "relative_mae_h60": 0.9,
}
WEIGHTS = {"script.replicability.score": 0.82, "trends.memeDependent": -0.68}


def frame(n: int = 40, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame({"a": rng.uniform(0, 1, n), "b": rng.uniform(0, 1, n)})
    label = (0.6 * features["a"] + 0.3 * features["b"]).to_numpy()
    return features, label


@dataclass
class RegistryKit:
    """Registers versions shaped like training's (metrics, feature_weights.json, eval set)."""

    client: MlflowClient
    experiment_id: str
    _shared_model: tuple[str, str] | None = field(default=None, repr=False)  # (uri, model_id)

    def _log_run_payload(
        self,
        metrics: Mapping[str, float],
        *,
        weights: Mapping[str, float] | None,
        eval_set: bool,
        run_tags: Mapping[str, str] | None,
    ) -> None:
        mlflow.log_metrics(dict(metrics))
        if run_tags:
            mlflow.set_tags(dict(run_tags))
        if weights is not None:
            mlflow.log_dict(dict(weights), "feature_weights.json")
        if eval_set:
            features, label = frame(seed=1)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "test_set.parquet"
                features.assign(__label__=label).to_parquet(path)
                mlflow.log_artifact(str(path), artifact_path="eval")

    def model_version(
        self,
        name: str,
        metrics: Mapping[str, float],
        *,
        slope: float = 1.0,
        weights: Mapping[str, float] | None = None,
        eval_set: bool = True,
        run_tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """A real scikit-learn model; `slope` != 1 makes it worse on the eval set."""
        features, label = frame()
        model = LinearRegression().fit(features, label * slope)
        with mlflow.start_run(experiment_id=self.experiment_id):
            self._log_run_payload(metrics, weights=weights, eval_set=eval_set, run_tags=run_tags)
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
            )
        return self.client.get_model_version(name, str(info.registered_model_version))

    def quick_version(
        self,
        name: str,
        metrics: Mapping[str, float],
        *,
        weights: Mapping[str, float] | None = None,
        eval_set: bool = False,
        run_tags: Mapping[str, str] | None = None,
        description: str | None = None,
        version_tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """A version with its own run and metrics, pointing at one shared logged model."""
        if self._shared_model is None:
            features, label = frame()
            with mlflow.start_run(experiment_id=self.experiment_id):
                info = mlflow.sklearn.log_model(
                    LinearRegression().fit(features, label),
                    name="model",
                    pip_requirements=["scikit-learn"],
                )
            self._shared_model = (info.model_uri, info.model_id)
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            self._log_run_payload(metrics, weights=weights, eval_set=eval_set, run_tags=run_tags)
        try:
            self.client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            self.client.create_registered_model(name)
        source, model_id = self._shared_model
        mv = self.client.create_model_version(
            name,
            source,
            run_id=run.info.run_id,
            model_id=model_id,
            description=description,
            tags=dict(version_tags or {}),
        )
        return self.client.get_model_version(name, str(mv.version))
