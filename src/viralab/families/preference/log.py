"""The MLflow edge of a preference run: metrics, tags, dataset, artifacts, retrain basis.

Everything that writes to the active run lives here; computing stays in `fit`/`evaluate`.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf

import viralab
from viralab.analysis.correlation import CorrelationReport
from viralab.analysis.drift import build_reference
from viralab.analysis.plots import correlation_bars, predicted_vs_actual, residuals
from viralab.data.extraction import ExtractionReport
from viralab.families.preference.fit import PreferenceResult
from viralab.families.preference.model import model_requirements
from viralab.families.preference.prepare import LABEL, retrain_basis_tags
from viralab.features.documents import ANALYSIS_COLUMN
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
    log_metrics,
    set_tags,
)
from viralab.tracking.tags import (
    BEATS_BASELINE,
    CORRELATIONS_PATH,
    CORRELATIONS_RUN_ID,
    DATASET_DIGEST,
    DATASET_NAME,
    DATASET_RUN_ID,
    DRIFT_REFERENCE_ARTIFACT,
    FEATURE_METADATA_PATH,
    FEATURE_METADATA_RUN_ID,
    FEATURE_WEIGHTS,
    FEATURE_WEIGHTS_ARTIFACT,
    MODEL,
    RUN_NAME,
    TEST_SET_ARTIFACT,
    VERDICT,
    VERDICT_MAE,
    VERDICT_R2,
)
from viralab.tracking.trial import share_dataset, share_json, share_text

log = logging.getLogger(__name__)


def default_run_name(cfg: DictConfig) -> str:
    if cfg.get("run_name"):
        return str(cfg.run_name)
    return f"{cfg.model.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


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
    # in a sweep, the table is logged once per content on the parent run and referenced by
    # each trial (tags `viralab.correlations.*`): it describes the training data as the trial's
    # features see it, the same in every trial of the same feature settings (an upload fewer)
    table = report.table.to_csv(index=False)
    shared = share_text(table, "correlations", ".csv")
    if shared is None:
        artifacts.text(table, "correlations.csv")
    else:
        set_tags({CORRELATIONS_RUN_ID: shared[0], CORRELATIONS_PATH: shared[1]})
    if plots:
        artifacts.figure(
            correlation_bars(report.top_positive, report.top_negative), "correlations.png"
        )
    artifacts.dict(report.snapshot(), "feature_importance_snapshot.json")  # dated: per run


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
            DATASET_DIGEST: dataset.digest,
            DATASET_NAME: dataset.name,
            DATASET_RUN_ID: holder,
        }
    )


def log_feature_metadata(metadata: dict[str, Any], artifacts: ArtifactBatch) -> None:
    """`feature_metadata.json` in the run's ``artifacts``; in a sweep, once on the parent run
    per content and referenced by each trial (tags `viralab.feature_metadata.run_id` and
    `.path`): every trial of a sweep computes the same metadata from the same ratings."""
    shared = share_json(metadata, "feature_metadata")
    if shared is None:
        artifacts.dict(metadata, "feature_metadata.json")
    else:
        set_tags({FEATURE_METADATA_RUN_ID: shared[0], FEATURE_METADATA_PATH: shared[1]})


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
        VERDICT: result.verdict["overall"],
        VERDICT_MAE: result.verdict["mae"],
        VERDICT_R2: result.verdict["r2"],
        BEATS_BASELINE: str(result.metrics["mae"] < result.metrics["baseline_mae"]),
        FEATURE_WEIGHTS: result.weights_kind,
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
        artifacts.dict(result.feature_weights, FEATURE_WEIGHTS_ARTIFACT)
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
                residuals(y_test, result.test_pred, float(cfg.task.error_threshold)),
                "plots/residuals.png",
            )
        if cfg.get("log_model", True):  # the rows the model was scored on: read only from a
            # model's run (the registry's fallback comparison, retrain's challenger check)
            result.test[[ANALYSIS_COLUMN]].assign(__label__=result.test[LABEL]).to_parquet(
                artifacts.path(TEST_SET_ARTIFACT)
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
    if tags:
        set_tags(retrain_basis_tags(frame))
    train_rows = frame[~frame["rating_id"].isin(set(result.test["rating_id"]))]
    if train_rows.empty:  # duplicate ids: fall back to every row the run saw
        train_rows = frame
    reference = build_reference(
        result.pipeline.named_steps["features"],
        train_rows[[ANALYSIS_COLUMN]],
        bins=int(cfg.retrain.reference_bins),
    )
    if artifacts is None:
        mlflow.log_dict(reference, DRIFT_REFERENCE_ARTIFACT)
    else:
        artifacts.dict(reference, DRIFT_REFERENCE_ARTIFACT)


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
        client.set_model_version_tag(registered, str(version), MODEL, cfg.model.name)
        client.set_model_version_tag(
            registered, str(version), RUN_NAME, mlflow.active_run().info.run_name
        )
        log.info("Registered %s version %s", registered, version)
    return None if version is None else str(version)
