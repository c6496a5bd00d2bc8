"""The pipeline and its fit (spec 000 §5): build, split, fit, cross-validate, analyse. Pure.

The model is one scikit-learn Pipeline: `features` (AnalysisEncoder: raw documents -> numbers),
`select` (CorrelationSelector, when `features.select_k` or `features.min_abs_corr` is set) and
`model` (the configured estimator). Everything learnt from data — typing, scaling, one-hot
categories, the selected features — is learnt inside `fit`, on the training rows only (and on
each fold's training rows during cross-validation). Kept apart from logging so tests and sweeps
can use the numbers without MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline

from viralab.analysis.correlation import CorrelationReport, analyze_correlations
from viralab.analysis.error_analysis import analyze_errors, error_metrics
from viralab.errors import ConfigError, DataError
from viralab.families.preference.evaluate import (
    feature_weights,
    regression_metrics,
    selected_feature_names,
    verdicts,
)
from viralab.families.preference.prepare import DIMENSION_PREFIX, LABEL, dimension_names
from viralab.features.selection import CorrelationSelector
from viralab.features.tabular import (
    ANALYSIS_COLUMN,
    MISSING_STRATEGIES,
    SCALERS,
    AnalysisEncoder,
)

log = logging.getLogger(__name__)


def build_estimator(model_cfg: DictConfig) -> Any:
    """Instantiate `model._target_` with every key but `name`."""
    params = OmegaConf.to_container(model_cfg, resolve=True)
    params.pop("name", None)
    try:
        return instantiate(params, _convert_="all")
    except Exception as exc:  # hydra wraps constructor errors in InstantiationException
        raise ConfigError(f"cannot build model {model_cfg.get('name')!r}: {exc}") from None


def build_encoder(features_cfg: DictConfig) -> AnalysisEncoder:
    """The `features` step from `conf/features/tabular.yaml`."""
    scaling = str(features_cfg.scaling)
    missing = str(features_cfg.missing)
    if scaling not in SCALERS:
        raise ConfigError(f"features.scaling={scaling!r}; valid: {', '.join(SCALERS)}")
    if missing not in MISSING_STRATEGIES:
        raise ConfigError(f"features.missing={missing!r}; valid: {', '.join(MISSING_STRATEGIES)}")
    return AnalysisEncoder(
        scaling=scaling,
        min_coverage=float(features_cfg.min_coverage),
        max_categories=int(features_cfg.max_categories),
        missing=missing,
        missing_value=float(features_cfg.missing_value),
    )


def build_selector(features_cfg: DictConfig) -> CorrelationSelector | None:
    """The `select` step, or None when both `select_k` and `min_abs_corr` are off."""
    k = features_cfg.select_k
    threshold = features_cfg.min_abs_corr
    if not k and not threshold:
        return None
    if k is not None and (not isinstance(k, int) or k < 0):
        raise ConfigError(f"features.select_k must be a whole number >= 0 or null, got {k!r}")
    if threshold is not None and not 0 <= float(threshold) <= 1:
        raise ConfigError(f"features.min_abs_corr must lie in [0, 1], got {threshold!r}")
    return CorrelationSelector(
        k=int(k) if k else None, min_abs_corr=float(threshold) if threshold else None
    )


def build_pipeline(cfg: DictConfig, estimator: Any = None) -> Pipeline:
    """features -> [select] -> model, all fitted together on the training rows."""
    steps: list[tuple[str, Any]] = [("features", build_encoder(cfg.features))]
    selector = build_selector(cfg.features)
    if selector is not None:
        steps.append(("select", selector))
    steps.append(("model", estimator if estimator is not None else build_estimator(cfg.model)))
    return Pipeline(steps)


def cross_validate_mae(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """K-fold MAE of a fresh clone on the training part (every step refitted per fold)."""
    folds = min(int(folds), len(y))
    if folds < 2:
        return np.array([])
    cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(clone(pipeline), X, y, cv=cv, scoring="neg_mean_absolute_error")
    return -scores


@dataclass
class DimensionResult:
    """The per-dimension models (spec §6.1 dimension_metrics, §8 multi-output)."""

    pipeline: Pipeline
    names: list[str]
    metrics: dict[str, float]
    weights: dict[str, dict[str, float]]


def fit_dimensions(
    cfg: DictConfig, train: pd.DataFrame, test: pd.DataFrame, names: Sequence[str]
) -> DimensionResult | None:
    """One model per rating dimension, sharing the encoder (each selects its own features).

    Rows missing any dimension score are left out of this part only. Returns None when the
    ratings carry no dimensions or too few rows have them.
    """
    cols = [f"{DIMENSION_PREFIX}{n}" for n in names]
    if not cols or any(c not in train.columns for c in cols):
        return None
    train_d = train.dropna(subset=cols)
    test_d = test.dropna(subset=cols)
    if len(train_d) < 5 or len(test_d) < 2:
        log.info("Dimensions: too few rated rows (%d train, %d test)", len(train_d), len(test_d))
        return None
    per_dimension = [("model", build_estimator(cfg.model))]
    selector = build_selector(cfg.features)
    if selector is not None:
        per_dimension.insert(0, ("select", selector))
    pipeline = Pipeline(
        [
            ("features", build_encoder(cfg.features)),
            ("model", MultiOutputRegressor(Pipeline(per_dimension))),
        ]
    )
    pipeline.fit(train_d[[ANALYSIS_COLUMN]], train_d[cols].to_numpy())
    pred = pipeline.predict(test_d[[ANALYSIS_COLUMN]])
    metrics: dict[str, float] = {}
    weights: dict[str, dict[str, float]] = {}
    encoded_names = pipeline.named_steps["features"].get_feature_names_out()
    for j, (name, col) in enumerate(zip(names, cols, strict=True)):
        metrics.update(regression_metrics(test_d[col].to_numpy(), pred[:, j], f"dim_{name}_"))
        inner = pipeline.named_steps["model"].estimators_[j]
        inner_names = (
            inner[:-1].get_feature_names_out(encoded_names) if len(inner) > 1 else encoded_names
        )
        estimator = inner[-1]
        values = getattr(estimator, "coef_", getattr(estimator, "feature_importances_", None))
        if values is not None:
            weights[name] = {
                str(n): float(v) for n, v in zip(inner_names, np.ravel(values), strict=True)
            }
    return DimensionResult(pipeline, list(names), metrics, weights)


@dataclass
class PreferenceResult:
    """What one fit produced: the fitted pipeline, its numbers and the held-out rows."""

    pipeline: Pipeline
    metrics: dict[str, float]
    test: pd.DataFrame
    test_pred: np.ndarray
    feature_weights: dict[str, float] = field(default_factory=dict)
    weights_kind: str = "none"
    correlations: CorrelationReport | None = None
    errors: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, str] = field(default_factory=dict)
    dimensions: DimensionResult | None = None


def analyze_preference(
    cfg: DictConfig, X: pd.DataFrame, y: np.ndarray, encoder: AnalysisEncoder | None = None
) -> CorrelationReport:
    """Spec §4 on the given rows: encode (fitting the encoder unless one is given), correlate,
    check the expected list. Training passes its training rows and fitted encoder."""
    if encoder is None:
        encoder = build_encoder(cfg.features).fit(X, y)
    expected = cfg.features.expected_correlations
    expected = OmegaConf.to_container(expected, resolve=True) if expected is not None else {}
    return analyze_correlations(
        encoder.transform(X),
        y,
        list(encoder.get_feature_names_out()),
        expected=expected,
        top_n=int(cfg.features.top_correlations),
    )


def fit_preference(cfg: DictConfig, frame: pd.DataFrame) -> PreferenceResult:
    """Split, fit, evaluate against a mean predictor, cross-validate, analyse. Pure: no MLflow.

    Every data-driven choice (encoding, selection, correlations) uses the training part only;
    the test part is touched once, to score the fitted model.
    """
    task = cfg.task
    if len(frame) < 5:
        raise DataError(f"only {len(frame)} usable ratings; at least 5 are needed to split")
    seed = int(task.random_state)
    train, test = train_test_split(frame, test_size=float(task.test_size), random_state=seed)
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    X_train, y_train = train[[ANALYSIS_COLUMN]], train[LABEL].to_numpy()
    X_test, y_test = test[[ANALYSIS_COLUMN]], test[LABEL].to_numpy()

    pipeline = build_pipeline(cfg)
    pipeline.fit(X_train, y_train)
    pred = pipeline.predict(X_test)
    metrics = regression_metrics(y_test, pred)
    baseline = DummyRegressor(strategy="mean")
    baseline.fit(X_train, y_train)
    metrics.update(regression_metrics(y_test, baseline.predict(X_test), prefix="baseline_"))

    cv = cross_validate_mae(pipeline, X_train, y_train, int(task.get("cv_folds") or 0), seed)
    if len(cv):
        metrics.update(cv_mae=float(cv.mean()), cv_mae_std=float(cv.std()))
        base_cv = cross_validate_mae(baseline, X_train, y_train, len(cv), seed)
        metrics.update(baseline_cv_mae=float(base_cv.mean()))

    encoder = pipeline.named_steps["features"]
    metrics.update(
        training_video_count=float(len(train)),
        test_video_count=float(len(test)),
        n_features_encoded=float(len(encoder.feature_names_out_)),
        n_features=float(len(selected_feature_names(pipeline))),
        mae_gain_vs_baseline=metrics["baseline_mae"] - metrics["mae"],
    )
    correlations = analyze_preference(cfg, X_train, y_train, encoder=encoder)
    metrics.update(correlations.metrics())

    dims = dimension_names(cfg)
    errors = analyze_errors(
        test,
        y_test,
        pred,
        threshold=float(task.error_threshold),
        dimension_columns=[f"{DIMENSION_PREFIX}{d}" for d in dims],
    )
    metrics.update(error_metrics(errors))
    weights, kind = feature_weights(pipeline, X_test, y_test, seed=seed)
    dimensions = fit_dimensions(cfg, train, test, dims) if task.multi_output else None
    if dimensions is not None:
        metrics.update(dimensions.metrics)
    thresholds = task.get("verdict")
    return PreferenceResult(
        pipeline=pipeline,
        metrics=metrics,
        test=test,
        test_pred=pred,
        feature_weights=weights,
        weights_kind=kind,
        correlations=correlations,
        errors=errors,
        verdict=verdicts(
            metrics["mae"],
            metrics["r2"],
            OmegaConf.to_container(thresholds) if thresholds is not None else None,
        ),
        dimensions=dimensions,
    )
