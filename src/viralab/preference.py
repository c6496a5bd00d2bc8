"""The preference model's one fit -> evaluate -> log -> register path (spec 000 §2-8).

`train_preference(cfg)` is what `python -m viralab.train model=ridge`, `mlflow run . -P
model=ridge`, sweeps and retraining all call. Computing (`fit_preference`,
`analyze_preference`) is kept apart from logging (`log_preference`, `log_correlations`), so
tests and sweeps can use the numbers without MLflow.

The model is one scikit-learn Pipeline: `features` (AnalysisEncoder: raw documents -> numbers),
`select` (CorrelationSelector, when `features.select_k` or `features.min_abs_corr` is set) and
`model` (the configured estimator). Everything learnt from data — typing, scaling, one-hot
categories, the selected features — is learnt inside `fit`, on the training rows only (and on
each fold's training rows during cross-validation).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.inspection import permutation_importance
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline

import viralab
from viralab.analysis.correlation import CorrelationReport, analyze_correlations
from viralab.analysis.error_analysis import analyze_errors, error_metrics
from viralab.analysis.plots import correlation_bars, predicted_vs_actual, residuals
from viralab.data.extraction import ExtractionReport
from viralab.data.sources import extract_records
from viralab.errors import ConfigError, DataError
from viralab.features.flatten import finite_json
from viralab.features.selection import CorrelationSelector
from viralab.features.tabular import (
    ANALYSIS_COLUMN,
    MISSING_STRATEGIES,
    SCALERS,
    AnalysisEncoder,
)
from viralab.milestones import TrainingDecision, decide_training, milestones_from_config
from viralab.registry.evidence import record_registration
from viralab.registry.holdout import hold_out_gate_ratings
from viralab.serve import preference_model as preference_model_code
from viralab.serve.limits import ServeLimits
from viralab.serve.preference_model import (
    PARAMS_EXAMPLE,
    PIPELINE_ARTIFACT,
    PIPELINE_FILE,
    VIDEO_ID_COLUMN,
    PreferenceModel,
    save_pipeline,
)
from viralab.tracking import (
    ArtifactBatch,
    artifact_batch,
    flush_held,
    held_writes,
    log_config,
    log_metrics,
    set_tags,
    tracked_run,
)

log = logging.getLogger(__name__)

LABEL = "overall_score"
DIMENSION_PREFIX = "dim_"
#: What the logged model imports when it is loaded (pinned to this environment's versions).
#: Listed rather than inferred: MLflow's inference loads the model in a subprocess (~7 s).
MODEL_REQUIREMENTS = (
    "mlflow",
    "scikit-learn",
    "scipy",
    "pandas",
    "numpy",
    "joblib",
    "skops",  # the fitted pipeline's format (serve.preference_model)
    "shap",  # serve.explain: top factors of tree models
    "orjson",  # serve.scoring: JSON parsing on the scoring path
    "cachetools",  # features.flatten: the byte-bounded flatten cache
)
#: Spec 000 §6.2, overridable under `task.verdict`.
VERDICT_THRESHOLDS = {"mae_ready": 0.15, "mae_acceptable": 0.20, "r2_good": 0.6, "r2_moderate": 0.4}


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def extract_usable(cfg: DictConfig) -> tuple[list[dict[str, Any]], ExtractionReport]:
    """The configured source's ratings through the §2 extraction rules (owner, v3, >= 100
    features), with the counts of what was kept and dropped, by reason."""
    feats = cfg.features
    return extract_records(
        cfg.data,
        rater_type=feats.get("rater_type", "owner"),
        min_feature_count=int(feats.get("min_feature_count", 100)),
        version_key=feats.get("require_version_key", "comedyStyle"),
    )


def load_preference_data(cfg: DictConfig) -> tuple[pd.DataFrame, ExtractionReport]:
    """Extract usable ratings into a frame; fail if none."""
    kept, report = extract_usable(cfg)
    kept = hold_out_gate_ratings(cfg, kept, report)  # the frozen gate set is never trained on
    log.info("Extraction: %s", report.summary())
    if not kept:
        raise DataError(f"no usable ratings after extraction: {report.summary()}")
    return records_frame(kept, dimension_names(cfg)), report


def dimension_names(cfg: DictConfig) -> list[str]:
    return [str(d) for d in (cfg.task.get("dimensions") or [])]


def _dimension_values(raw: Any, names: Sequence[str]) -> dict[str, float]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = None
    out = {}
    for name in names:
        value = raw.get(name) if isinstance(raw, Mapping) else None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        out[f"{DIMENSION_PREFIX}{name}"] = float(value) if ok else float("nan")
    return out


def records_frame(records: list[dict[str, Any]], dimensions: Sequence[str] = ()) -> pd.DataFrame:
    """Rating records -> one row per rating: ids, the analysis as JSON text, label, extras.

    The analysis is stored as standard JSON text (NaN/inf become null), the form the logged
    model takes; `dim_<name>` columns hold the rating's dimension scores (NaN when absent).
    """
    rows = []
    for r in records:
        analysis = (r.get("video") or {}).get("visual_analysis")
        rows.append(
            {
                "rating_id": str(r.get("id")),
                "video_id": str(r.get("video_id")),
                ANALYSIS_COLUMN: json.dumps(finite_json(analysis), sort_keys=True, allow_nan=False)
                if analysis is not None
                else "{}",
                LABEL: float(r[LABEL]),
                "notes": r.get("notes") or "",
                "rated_at": str(r.get("rated_at") or ""),
                **_dimension_values(r.get("dimensions"), dimensions),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Pipeline
# ------------------------------------------------------------------------------------------


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
    scaling = str(features_cfg.get("scaling", "min-max"))
    missing = str(features_cfg.get("missing", "constant"))
    if scaling not in SCALERS:
        raise ConfigError(f"features.scaling={scaling!r}; valid: {', '.join(SCALERS)}")
    if missing not in MISSING_STRATEGIES:
        raise ConfigError(f"features.missing={missing!r}; valid: {', '.join(MISSING_STRATEGIES)}")
    return AnalysisEncoder(
        scaling=scaling,
        min_coverage=float(features_cfg.get("min_coverage", 0.5)),
        max_categories=int(features_cfg.get("max_categories", 20)),
        missing=missing,
        missing_value=float(features_cfg.get("missing_value", 0.0)),
    )


def build_selector(features_cfg: DictConfig) -> CorrelationSelector | None:
    """The `select` step, or None when both `select_k` and `min_abs_corr` are off."""
    k = features_cfg.get("select_k")
    threshold = features_cfg.get("min_abs_corr")
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


# ------------------------------------------------------------------------------------------
# Evaluation (pure)
# ------------------------------------------------------------------------------------------


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
    expected = cfg.features.get("expected_correlations")
    expected = OmegaConf.to_container(expected, resolve=True) if expected is not None else {}
    return analyze_correlations(
        encoder.transform(X),
        y,
        list(encoder.get_feature_names_out()),
        expected=expected,
        top_n=int(cfg.features.get("top_correlations", 20)),
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
        threshold=float(task.get("error_threshold", 0.2)),
        dimension_columns=[f"{DIMENSION_PREFIX}{d}" for d in dims],
    )
    metrics.update(error_metrics(errors))
    weights, kind = feature_weights(pipeline, X_test, y_test, seed=seed)
    dimensions = fit_dimensions(cfg, train, test, dims) if task.get("multi_output") else None
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


# ------------------------------------------------------------------------------------------
# Logging (the MLflow edge)
# ------------------------------------------------------------------------------------------


def default_run_name(cfg: DictConfig) -> str:
    if cfg.get("run_name"):
        return str(cfg.run_name)
    return f"{cfg.model.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def model_requirements() -> list[str]:
    """`MODEL_REQUIREMENTS` pinned to the installed versions (unpinned if not installed)."""
    pins = []
    for dist in MODEL_REQUIREMENTS:
        try:
            pins.append(f"{dist}=={dist_version(dist)}")
        except PackageNotFoundError:
            pins.append(dist)
    return pins


def log_correlations(
    report: CorrelationReport,
    plots: bool = True,
    metrics: bool = True,
    artifacts: ArtifactBatch | None = None,
) -> None:
    """`correlations.csv`, `correlations.png`, `feature_importance_snapshot.json`, counts
    (``metrics=False``: the caller logs `report.metrics()` in its own batch; ``artifacts``: the
    caller's artifact batch, uploaded with the rest of the run's files)."""
    if metrics:
        log_metrics(report.metrics())
    if artifacts is None:
        with artifact_batch() as batch:
            return log_correlations(report, plots=plots, metrics=False, artifacts=batch)
    report.table.to_csv(artifacts.path("correlations.csv"), index=False)
    if plots:
        artifacts.figure(
            correlation_bars(report.top_positive, report.top_negative), "correlations.png"
        )
    artifacts.dict(report.snapshot(), "feature_importance_snapshot.json")


#: The last training data logged per dataset name, with its `mlflow.data` dataset.
_last_dataset: dict[str, tuple[pd.DataFrame, Any]] = {}
#: Frames up to this many rows are kept to compare with the next run's (a sweep's trials).
DATASET_MEMO_ROWS = 100_000


def training_dataset(data: pd.DataFrame, name: str) -> Any:
    """`mlflow.data.from_pandas(data)`, reused when the process logged equal data last time.

    Why: every trial of a sweep loads the same ratings, and hashing them for the digest took
    ~7 ms a trial; comparing with the last frame (`DataFrame.equals`, every row and column,
    stricter than the digest's first 10,000 rows) takes well under one.
    """
    last = _last_dataset.get(name)
    if last is not None and last[0].equals(data):
        return last[1]
    dataset = mlflow.data.from_pandas(data, name=name, targets=LABEL)
    if len(data) <= DATASET_MEMO_ROWS:
        _last_dataset[name] = (data, dataset)
    return dataset


def log_dataset(cfg: DictConfig, frame: pd.DataFrame) -> None:
    """The training data as the run's dataset input; in a sweep, once on the parent run and
    referenced by each trial (`viralab.dataset.*` tags: digest, name, the parent's run id)."""
    from viralab.sweeps.hooks import (
        DATASET_DIGEST_TAG,
        DATASET_NAME_TAG,
        DATASET_RUN_TAG,
        share_dataset,
    )

    dataset = training_dataset(
        frame[["rating_id", "video_id", ANALYSIS_COLUMN, LABEL]],
        name=f"preference-ratings-{cfg.data.source}",
    )
    holder = share_dataset(dataset, context="training")
    if holder is None:
        mlflow.log_input(dataset, context="training")
        return
    set_tags(
        {
            DATASET_DIGEST_TAG: dataset.digest,
            DATASET_NAME_TAG: dataset.name,
            DATASET_RUN_TAG: holder,
        }
    )


def log_feature_metadata(metadata: dict[str, Any], artifacts: ArtifactBatch) -> None:
    """`feature_metadata.json` in the run's ``artifacts``; in a sweep, once on the parent run
    per content and referenced by each trial (tags `viralab.feature_metadata.run_id` and
    `.path`): every trial of a sweep computes the same metadata from the same ratings."""
    from viralab.sweeps.hooks import (
        FEATURE_METADATA_PATH_TAG,
        FEATURE_METADATA_RUN_TAG,
        share_json,
    )

    shared = share_json(metadata, "feature_metadata")
    if shared is None:
        artifacts.dict(metadata, "feature_metadata.json")
    else:
        set_tags({FEATURE_METADATA_RUN_TAG: shared[0], FEATURE_METADATA_PATH_TAG: shared[1]})


def log_preference(
    cfg: DictConfig, result: PreferenceResult, frame: pd.DataFrame, report: ExtractionReport
) -> str | None:
    """Log metrics, dataset, artifacts and the pyfunc model to the active run; register it.

    Returns the registered version number, or None when registration is off.
    """
    # every metric and tag of the run in one call (held with the run's other writes when
    # they are: `held_writes`), not one call per group
    metrics = {**result.metrics, **report.as_metrics()}
    if result.correlations is not None:
        metrics.update(result.correlations.metrics())
    tags = {
        "viralab.verdict": result.verdict["overall"],
        "viralab.verdict.mae": result.verdict["mae"],
        "viralab.verdict.r2": result.verdict["r2"],
        "viralab.beats_baseline": str(result.metrics["mae"] < result.metrics["baseline_mae"]),
        "viralab.feature_weights": result.weights_kind,
        **retrain_basis_tags(frame),
    }
    log_metrics(metrics)
    set_tags(tags)
    log_dataset(cfg, frame)
    # the run's files go up together when the batch ends (concurrently to a server), before
    # the model: its logging reads nothing of them
    with artifact_batch() as artifacts:
        if cfg.get("log_model", True):  # read from a model's run only (retrain's drift
            # trigger): a run without a model (a lean sweep trial) skips the binning
            log_retrain_basis(cfg, result, frame, tags=False, artifacts=artifacts)
        encoder = result.pipeline.named_steps["features"]
        artifacts.dict(result.feature_weights, "feature_weights.json")
        log_feature_metadata({k: m.as_dict() for k, m in encoder.metadata_.items()}, artifacts)
        plots = bool(cfg.get("log_plots", True))
        if result.correlations is not None:
            log_correlations(result.correlations, plots=plots, metrics=False, artifacts=artifacts)
        artifacts.dict(result.errors, "error_analysis.json")
        y_test = result.test[LABEL].to_numpy()
        if plots:
            artifacts.figure(
                predicted_vs_actual(y_test, result.test_pred), "plots/predicted_vs_actual.png"
            )
            artifacts.figure(
                residuals(y_test, result.test_pred, float(cfg.task.get("error_threshold", 0.2))),
                "plots/residuals.png",
            )
        if cfg.get("log_model", True):  # the rows the model was scored on: read only from a
            # model's run (the registry's fallback comparison, retrain's challenger check)
            result.test[[ANALYSIS_COLUMN]].assign(__label__=result.test[LABEL]).to_parquet(
                artifacts.path("eval/test_set.parquet")
            )
        if result.dimensions is not None:
            dims = result.dimensions
            artifacts.dict(dims.metrics, "dimensions/metrics.json")
            artifacts.dict(dims.weights, "dimensions/feature_weights.json")
            joblib.dump(dims.pipeline, artifacts.path("dimensions/pipeline.joblib"))
    if not cfg.get("log_model", True):  # sweep trials: numbers only, no model (and no
        return None  # scratch folder: creating and removing one took ~5 ms a trial here)
    with tempfile.TemporaryDirectory() as tmp:
        flush_held()  # registration's gates and evidence read the run's metrics and tags
        return log_model(cfg, result, Path(tmp))


def with_video_id(signature: Any) -> Any:
    """The signature plus an optional `video_id` input column: MLflow drops undeclared columns
    before `predict`, and the prediction log needs the id to join later ratings."""
    from mlflow.types.schema import ColSpec, DataType, Schema

    extra = ColSpec(DataType.string, VIDEO_ID_COLUMN, required=False)
    inputs = [*signature.inputs.inputs, extra]
    signature.inputs = Schema(inputs)
    return signature


def log_model(cfg: DictConfig, result: PreferenceResult, tmp: Path) -> str | None:
    """The pyfunc model, registered as `task.registered_model`: models-from-code (the wrapper
    is `serve/preference_model.py`, run at load time, not a pickle) with the fitted pipeline
    as a skops artifact (see `viralab.serve.preference_model` for the trusted types)."""
    pipeline_path = save_pipeline(result.pipeline, tmp / PIPELINE_FILE)
    example = result.test[[ANALYSIS_COLUMN]].head(2)
    # the test R2 scales the served confidence (spec §7.2: coverage x accuracy.r2)
    # serving limits set in the config travel with the model; unset ones stay the defaults
    # (or VIRALAB_* environment variables) of the process that serves it
    serve_cfg = OmegaConf.to_container(cfg.serve) if cfg.get("serve") else {}
    model_config = {"r2": float(result.metrics["r2"]), **serve_cfg}
    limits = ServeLimits.from_config(serve_cfg)
    model = PreferenceModel(result.pipeline, r2=model_config["r2"], limits=limits)
    signature = with_video_id(
        infer_signature(example, model.predict(None, example), params=PARAMS_EXAMPLE)
    )
    registered = cfg.task.registered_model if cfg.get("register", True) else None
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=preference_model_code.__file__,
        artifacts={PIPELINE_ARTIFACT: str(pipeline_path)},
        code_paths=[str(Path(viralab.__file__).parent)],
        signature=signature,
        input_example=example,
        pip_requirements=model_requirements(),
        model_config=model_config,
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


# ------------------------------------------------------------------------------------------
# Retraining basis (read by `viralab retrain`, viralab.monitor.triggers)
# ------------------------------------------------------------------------------------------

#: The newest `rated_at` among the ratings the run saw (ISO-8601, UTC): later ones are "new".
TAG_MAX_RATED_AT = "viralab.data.max_rated_at"
#: How many usable ratings the run saw (training and test part together).
TAG_N_RATINGS = "viralab.data.n_ratings"


def newest_rated_at(values: pd.Series) -> str | None:
    """The latest parseable `rated_at` as ISO-8601 UTC, or None when none parses."""
    stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    newest = stamps.max()
    return None if pd.isna(newest) else newest.isoformat()


def retrain_basis_tags(frame: pd.DataFrame) -> dict[str, str]:
    """The data cutoff and size a later retrain check compares the current data with."""
    tags = {TAG_N_RATINGS: str(len(frame))}
    newest = newest_rated_at(frame["rated_at"])
    if newest is not None:
        tags[TAG_MAX_RATED_AT] = newest
    return tags


def log_retrain_basis(
    cfg: DictConfig,
    result: PreferenceResult,
    frame: pd.DataFrame,
    tags: bool = True,
    artifacts: ArtifactBatch | None = None,
) -> None:
    """What a later retrain check compares the current data with: the data cutoff and size
    (run tags; ``tags=False``: the caller logs `retrain_basis_tags` in its own batch) and the
    training rows' binned feature distribution (`drift/reference.json`; in the caller's
    ``artifacts`` batch if given)."""
    from viralab.monitor.drift import REFERENCE_ARTIFACT, build_reference

    if tags:
        set_tags(retrain_basis_tags(frame))
    train_rows = frame[~frame["rating_id"].isin(set(result.test["rating_id"]))]
    if train_rows.empty:  # duplicate ids: fall back to every row the run saw
        train_rows = frame
    retrain_cfg = cfg.get("retrain") or {}
    reference = build_reference(
        result.pipeline.named_steps["features"],
        train_rows[[ANALYSIS_COLUMN]],
        bins=int(retrain_cfg.get("reference_bins", 10)),
    )
    if artifacts is None:
        mlflow.log_dict(reference, REFERENCE_ARTIFACT)
    else:
        artifacts.dict(reference, REFERENCE_ARTIFACT)


# ------------------------------------------------------------------------------------------
# Entry
# ------------------------------------------------------------------------------------------


def training_decision(cfg: DictConfig, n_ratings: int) -> TrainingDecision:
    milestones = milestones_from_config(
        OmegaConf.to_container(cfg.task.milestones) if cfg.task.get("milestones") else None
    )
    return decide_training(n_ratings, bool(cfg.task.get("force_train", False)), milestones)


def _print_correlations(report: CorrelationReport) -> None:
    s = report.summary
    print(
        f"correlations on {report.n} ratings: expected features found "
        f"{s['found']}/{s['expected']}, "
        f"sign as expected {s['sign_ok']}/{s['expected']}, significant {s['significant']}"
    )


def train_preference(cfg: DictConfig) -> dict[str, float]:
    """Extract, decide (§8), then analyse only or fit, evaluate, log and register one model.

    Returns the run's metrics (correlation counts only when no model was trained).
    """
    if cfg.get("register", True) and not cfg.get("log_model", True):
        raise ConfigError("register=true needs log_model=true (nothing to register otherwise)")
    frame, report = load_preference_data(cfg)
    decision = training_decision(cfg, len(frame) + report.held_back)  # gate rows count too
    print(f"extraction: {report.summary()}")
    print(f"milestone {decision.milestone}: {decision.reason}")
    with (
        tracked_run(
            experiment=cfg.task.experiment,
            run_name=default_run_name(cfg),
            tags={
                "viralab.family": "preference",
                "viralab.model": cfg.model.name,
                "viralab.milestone": decision.milestone,
                "viralab.stage": "trained" if decision.train else "correlation_only",
                "viralab.extraction": report.summary(),
            },
        ),
        held_writes(),
    ):
        log_config(cfg)
        if decision.forced:
            set_tags({"viralab.force_train": "true"})
        if not decision.train:
            set_tags({"viralab.note": decision.reason})
            correlations = analyze_preference(
                cfg, frame[[ANALYSIS_COLUMN]], frame[LABEL].to_numpy()
            )
            log_metrics({**report.as_metrics(), "n_ratings": float(len(frame))})
            log_dataset(cfg, frame)
            log_correlations(correlations)
            _print_correlations(correlations)
            print("no model trained (correlation analysis only)")
            return {**correlations.metrics(), "n_ratings": float(len(frame))}
        log.info("Training %s on %d ratings", cfg.model.name, len(frame))
        result = fit_preference(cfg, frame)
        version = log_preference(cfg, result, frame, report)
        record_registration(cfg, str(cfg.task.registered_model), version)  # gate set, evidence
        m, v = result.metrics, result.verdict
        if result.correlations is not None:
            _print_correlations(result.correlations)
        cv = f" CV MAE={m['cv_mae']:.3f}±{m['cv_mae_std']:.3f}" if "cv_mae" in m else ""
        print(
            f"{cfg.model.name}: MAE={m['mae']:.3f} RMSE={m['rmse']:.3f} R2={m['r2']:.3f}{cv} "
            f"(mean predictor MAE={m['baseline_mae']:.3f}); verdict {v['overall']} "
            f"(MAE {v['mae']}, R2 {v['r2']})"
            + (f"; registered {cfg.task.registered_model} v{version}" if version else "")
        )
    return result.metrics
