"""The preference model's one fit -> evaluate -> log -> register path (spec 000 §2-6).

`train_preference(cfg)` is what `python -m viralab.train model=ridge`, `mlflow run . -P
model=ridge`, sweeps and retraining all call. Computing (`fit_preference`) is kept apart from
logging (`log_preference`), so tests and sweeps can use the numbers without MLflow.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

import viralab
from viralab.data.extraction import ExtractionReport, extract_training_records
from viralab.data.sources import load_rating_records
from viralab.errors import ConfigError, DataError
from viralab.features.tabular import ANALYSIS_COLUMN, AnalysisEncoder
from viralab.serve.preference_model import PIPELINE_ARTIFACT, PreferenceModel
from viralab.tracking import log_config, tracked_run

log = logging.getLogger(__name__)

LABEL = "overall_score"


@dataclass
class PreferenceResult:
    """What one fit produced: the fitted pipeline, its numbers and the held-out rows."""

    pipeline: Pipeline
    metrics: dict[str, float]
    test: pd.DataFrame
    test_pred: np.ndarray
    feature_weights: dict[str, float] = field(default_factory=dict)


def load_preference_data(cfg: DictConfig) -> tuple[pd.DataFrame, ExtractionReport]:
    """Extract usable ratings (owner, v3, >= 100 features) into a frame; fail if none."""
    feats = cfg.features
    records = load_rating_records(cfg.data)
    kept, report = extract_training_records(
        records,
        rater_type=feats.get("rater_type", "owner"),
        min_feature_count=int(feats.get("min_feature_count", 100)),
        version_key=feats.get("require_version_key", "comedyStyle"),
    )
    log.info("Extraction: %s", report.summary())
    if not kept:
        raise DataError(f"no usable ratings after extraction: {report.summary()}")
    frame = records_frame(kept)
    return frame, report


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Rating records -> one row per rating: ids, the analysis as JSON text, label, extras."""
    rows = []
    for r in records:
        analysis = (r.get("video") or {}).get("visual_analysis")
        rows.append(
            {
                "rating_id": str(r.get("id")),
                "video_id": str(r.get("video_id")),
                ANALYSIS_COLUMN: json.dumps(analysis, sort_keys=True, allow_nan=False)
                if analysis is not None
                else "{}",
                LABEL: float(r[LABEL]),
                "notes": r.get("notes") or "",
                "rated_at": str(r.get("rated_at") or ""),
            }
        )
    return pd.DataFrame(rows)


def build_estimator(model_cfg: DictConfig) -> Any:
    """Instantiate `model._target_` with every key but `name`."""
    params = OmegaConf.to_container(model_cfg, resolve=True)
    params.pop("name", None)
    try:
        return instantiate(params, _convert_="all")
    except Exception as exc:  # hydra wraps constructor errors in InstantiationException
        raise ConfigError(f"cannot build model {model_cfg.get('name')!r}: {exc}") from None


def build_pipeline(cfg: DictConfig) -> Pipeline:
    encoder = AnalysisEncoder(
        scaling=cfg.features.get("scaling", "min-max"),
        min_coverage=float(cfg.features.get("min_coverage", 0.5)),
        max_categories=int(cfg.features.get("max_categories", 20)),
        missing_value=float(cfg.features.get("missing_value", 0.0)),
    )
    return Pipeline([("features", encoder), ("model", build_estimator(cfg.model))])


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, prefix: str = ""
) -> dict[str, float]:
    return {
        f"{prefix}mae": float(mean_absolute_error(y_true, y_pred)),
        f"{prefix}rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        f"{prefix}r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }


def feature_weights(pipeline: Pipeline) -> dict[str, float]:
    """Coefficients for linear models, importances for trees, keyed by encoded feature name."""
    names = pipeline.named_steps["features"].get_feature_names_out()
    estimator = pipeline.named_steps["model"]
    if hasattr(estimator, "coef_"):
        values = np.ravel(estimator.coef_)
    elif hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_)
    else:
        return {}
    return {str(n): float(v) for n, v in zip(names, values, strict=True)}


def fit_preference(cfg: DictConfig, frame: pd.DataFrame) -> PreferenceResult:
    """Split, fit, evaluate against a mean predictor. Pure: no MLflow."""
    task = cfg.task
    if len(frame) < 5:
        raise DataError(f"only {len(frame)} usable ratings; at least 5 are needed to split")
    train, test = train_test_split(
        frame, test_size=float(task.test_size), random_state=int(task.random_state)
    )
    pipeline = build_pipeline(cfg)
    X_train, y_train = train[[ANALYSIS_COLUMN]], train[LABEL].to_numpy()
    X_test, y_test = test[[ANALYSIS_COLUMN]], test[LABEL].to_numpy()
    pipeline.fit(X_train, y_train)
    pred = pipeline.predict(X_test)
    metrics = regression_metrics(y_test, pred)
    baseline = DummyRegressor(strategy="mean").fit(X_train, y_train)
    metrics.update(regression_metrics(y_test, baseline.predict(X_test), prefix="baseline_"))
    metrics["training_video_count"] = float(len(train))
    metrics["test_video_count"] = float(len(test))
    metrics["n_features"] = float(len(pipeline.named_steps["features"].feature_names_out_))
    return PreferenceResult(
        pipeline, metrics, test.reset_index(drop=True), pred, feature_weights(pipeline)
    )


def default_run_name(cfg: DictConfig) -> str:
    if cfg.get("run_name"):
        return str(cfg.run_name)
    return f"{cfg.model.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def log_preference(
    cfg: DictConfig, result: PreferenceResult, frame: pd.DataFrame, report: ExtractionReport
) -> str | None:
    """Log metrics, dataset, artifacts and the pyfunc model to the active run; register it.

    Returns the registered version number, or None when registration is off.
    """
    mlflow.log_metrics({**result.metrics, **report.as_metrics()})
    dataset = mlflow.data.from_pandas(
        frame[["rating_id", "video_id", ANALYSIS_COLUMN, LABEL]],
        name=f"preference-ratings-{cfg.data.source}",
        targets=LABEL,
    )
    mlflow.log_input(dataset, context="training")
    mlflow.log_dict(result.feature_weights, "feature_weights.json")
    mlflow.log_dict(
        result.pipeline.named_steps["features"].metadata_
        and {k: m.as_dict() for k, m in result.pipeline.named_steps["features"].metadata_.items()},
        "feature_metadata.json",
    )
    with tempfile.TemporaryDirectory() as tmp:
        eval_path = Path(tmp) / "test_set.parquet"
        result.test[[ANALYSIS_COLUMN]].assign(__label__=result.test[LABEL]).to_parquet(eval_path)
        mlflow.log_artifact(str(eval_path), artifact_path="eval")
        pipeline_path = Path(tmp) / "pipeline.joblib"
        joblib.dump(result.pipeline, pipeline_path)
        example = result.test[[ANALYSIS_COLUMN]].head(2)
        model = PreferenceModel()
        model.pipeline = result.pipeline
        signature = infer_signature(example, model.predict(None, example))
        registered = cfg.task.registered_model if cfg.get("register", True) else None
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts={PIPELINE_ARTIFACT: str(pipeline_path)},
            code_paths=[str(Path(viralab.__file__).parent)],
            signature=signature,
            input_example=example,
            registered_model_name=registered,
        )
    version = getattr(info, "registered_model_version", None)
    if version is not None:
        client = mlflow.MlflowClient()
        client.set_model_version_tag(registered, str(version), "viralab.model", cfg.model.name)
        client.set_model_version_tag(
            registered, str(version), "viralab.run_name", mlflow.active_run().info.run_name
        )
        log.info("Registered %s version %s", registered, version)
    return None if version is None else str(version)


def train_preference(cfg: DictConfig) -> dict[str, float]:
    """Extract, fit, evaluate, log and register one preference model; returns its metrics."""
    frame, report = load_preference_data(cfg)
    run_name = default_run_name(cfg)
    with tracked_run(
        experiment=cfg.task.experiment,
        run_name=run_name,
        tags={"viralab.family": "preference", "viralab.model": cfg.model.name},
    ):
        log_config(cfg)
        log.info("Training %s on %d ratings", cfg.model.name, len(frame))
        result = fit_preference(cfg, frame)
        version = log_preference(cfg, result, frame, report)
        m = result.metrics
        print(
            f"{cfg.model.name}: MAE={m['mae']:.3f} RMSE={m['rmse']:.3f} R2={m['r2']:.3f} "
            f"(mean predictor MAE={m['baseline_mae']:.3f})"
            + (f"; registered {cfg.task.registered_model} v{version}" if version else "")
        )
    return result.metrics
