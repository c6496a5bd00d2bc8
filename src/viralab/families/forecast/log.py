"""Everything the forecasters write to MLflow: params, data, curves, plots, the pyfunc model.

The only module of the family that talks to MLflow. A target's run holds the same things
for the LSTM and a peer (`fit.TargetResult` or `peer.PeerResult`); the logged model is the
models-from-code pyfunc `serve/forecast_model.py`, given the network and scaler (or the
peer) and the preprocessing settings it replays when serving.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.data.dataset_source_registry import get_registered_sources
from mlflow.entities import Metric
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from omegaconf import DictConfig, OmegaConf

import viralab
from viralab.families.forecast.fit import TargetResult
from viralab.families.forecast.judge import HorizonJudgement
from viralab.families.forecast.peer import peer_params
from viralab.families.forecast.plots import forecast_plot, learning_curve
from viralab.families.forecast.prepare import Prepared
from viralab.families.registration import RegistrationHook, after_registration
from viralab.features import sequence as seq
from viralab.models import baselines, lstm
from viralab.models.forecast_eval import LEVEL, SCALE
from viralab.serve import forecast_model
from viralab.serve.forecast_model import (
    NETWORK_ARTIFACT,
    PEER_ARTIFACT,
    PREPROCESSING_ARTIFACT,
    SCALER_ARTIFACT,
    model_signature,
)
from viralab.tracking import tags

log = logging.getLogger(__name__)

#: What the logged model imports when loaded; listed, not inferred (inference reloads the
#: model in a subprocess).
MODEL_REQUIREMENTS = (
    "mlflow",
    "keras",
    "scikit-learn",
    "pandas",
    "numpy",
    "joblib",
    "statsforecast",
)


def model_requirements() -> list[str]:
    """`MODEL_REQUIREMENTS` plus TensorFlow, pinned to the installed versions."""
    pins = []
    tf_dist = "tensorflow-cpu"
    try:
        dist_version(tf_dist)
    except PackageNotFoundError:
        tf_dist = "tensorflow"
    for dist in (*MODEL_REQUIREMENTS, tf_dist):
        try:
            pins.append(f"{dist}=={dist_version(dist)}")
        except PackageNotFoundError:
            pins.append(dist)
    return pins


def _spec_params(cfg: DictConfig, data: Prepared, target: str) -> dict[str, Any]:
    w = data.windows
    return {
        "target": target,
        "sequence_length": data.settings["sequence_length"],
        "total_sequences": sum(len(x) for x in w.values()),
        "train_sequences": len(w["fit"]),
        "val_sequences": len(w["val"]),
        "test_sequences": len(w["test"]),
        "input_features": len(data.inputs.columns),
        "batch_size": int(cfg.model.batch_size),
        "learning_rate": float(cfg.model.learning_rate),
        "lstm_units_1": int(cfg.model.lstm_units_1),
        "lstm_units_2": int(cfg.model.lstm_units_2),
        "dropout_rate": float(cfg.model.dropout_rate),
        "dense_units": int(cfg.model.dense_units),
        "predict": data.settings["predict"],
        "loss": str(cfg.model.loss),
        "max_epochs": int(cfg.model.epochs),
    }


def _log_params(params: Mapping[str, Any]) -> None:
    # under async logging the config params may still be queued: a key queued twice lands in
    # one merged log_batch, which MLflow refuses whole ("Duplicate parameter keys")
    mlflow.flush_async_logging()
    existing = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    mlflow.log_params({k: v for k, v in params.items() if k not in existing})


def log_data(data: Prepared) -> None:
    """The cleaning counts (metrics `clean.*`, `cleaning_report.json`) and the split sizes."""
    mlflow.log_metrics({f"clean.{k}": float(v) for k, v in data.report.counts().items()})
    mlflow.log_dict(data.report.to_dict(), "cleaning_report.json")
    sizes = data.parts.value_counts()
    mlflow.log_metrics({f"rows.{p}": float(sizes.get(p, 0)) for p in seq.PARTS})
    # the retrain check counts rows newer than this as new data (monitor.triggers)
    if len(data.clean):
        newest = pd.Timestamp(data.clean["timestamp"].max())
        mlflow.set_tag(tags.DATA_MAX_TIMESTAMP, newest.isoformat())


def log_history(fit: lstm.FitResult) -> None:
    """Per-epoch curves as stepped metrics (`epoch_loss`, `epoch_val_loss`, ...), one batch."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(f"epoch_{key}", float(value), now, step)
        for key, values in fit.history.items()
        for step, value in enumerate(values, start=1)
        if np.isfinite(value)
    ]
    metrics += [Metric("epoch_seconds", s, now, i) for i, s in enumerate(fit.epoch_seconds, 1)]
    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    for i in range(0, len(metrics), 900):
        client.log_batch(run_id, metrics=metrics[i : i + 900])


def _plots(cfg: DictConfig, data: Prepared, result: TargetResult) -> None:
    target = result.target
    if result.fit is not None:
        mlflow.log_figure(
            learning_curve(result.fit.history, result.fit.best_epoch, f"LSTM {target}"),
            "plots/learning_curve.png",
        )
    test = data.windows["test"]
    k = data.input_index(target)
    best_name = result.tags[tags.BEST_BASELINE]
    baseline = baselines.FORECASTS[best_name](test.levels[:, :, k])
    if data.settings["round_forecasts"]:
        baseline = np.round(baseline)
    times = data.clean["timestamp"].to_numpy()[test.target_row]
    videos = data.clean["video_id"].to_numpy()[test.target_row]
    max_videos = int(cfg.task.max_plot_videos)
    for video in list(dict.fromkeys(videos))[:max_videos]:
        sel = videos == video
        fig = forecast_plot(
            pd.Series(times[sel]),
            test.levels[sel, :, k],
            test.next_levels[sel, k],
            result.predictions[sel],
            baseline[sel],
            best_name,
            f"{target}: forecast vs actual, video {video} (test part)",
        )
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(video))
        mlflow.log_figure(fig, f"plots/forecast_{safe}.png")


def log_forecast_model(
    cfg: DictConfig, data: Prepared, result: Any, tmp: Path
) -> tuple[str | None, float]:
    """Log the pyfunc (network + scaler, or a peer, + settings); register it if asked.

    The wrapper is models-from-code (`serve/forecast_model.py` given as a path). Returns the
    registered version (or None) and the network's (or the peer's) file size in MB.
    """
    import mlflow.keras  # heavy (Keras): only when an LSTM is logged

    target = result.target
    judgement = result.judgement
    horizons = list(data.settings["horizons"])
    settings = {
        **data.settings,
        "kind": "lstm" if getattr(result, "network", None) is not None else "peer",
        "target": target,
        "target_column": seq.target_column(target),
        "input_index": data.input_index(target),
        "input_columns": list(data.inputs.columns),
        "interval_level": LEVEL,
        "interval_scale": SCALE,
        "interval_quantiles": {}
        if judgement is None
        else {str(h): list(q) for h, q in zip(horizons, judgement.quantiles, strict=True)},
    }
    artifacts: dict[str, str] = {}
    if settings["kind"] == "lstm":
        network_dir = tmp / "network"
        shape = (-1, *data.windows["fit"].X.shape[1:])
        mlflow.keras.save_model(
            result.network,
            str(network_dir),
            signature=ModelSignature(
                inputs=Schema([TensorSpec(np.dtype("float32"), shape)]),
                outputs=Schema([TensorSpec(np.dtype("float32"), (-1, len(horizons)))]),
            ),
            pip_requirements=model_requirements(),
        )
        size_mb = sum(p.stat().st_size for p in network_dir.rglob("*.keras")) / 2**20
        scaler_path = tmp / "scaler.pkl"
        joblib.dump(data.scaler, scaler_path)
        mlflow.log_artifact(str(scaler_path))
        artifacts = {NETWORK_ARTIFACT: str(network_dir), SCALER_ARTIFACT: str(scaler_path)}
    else:
        settings["peer"] = result.peer.config()
        size_mb = 0.0
        if getattr(result.peer, "models", None):
            peer_path = tmp / "peer_models.joblib"
            joblib.dump(result.peer.models, peer_path)
            size_mb = peer_path.stat().st_size / 2**20
            artifacts[PEER_ARTIFACT] = str(peer_path)
    settings_path = tmp / "preprocessing.json"
    settings_path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    mlflow.log_artifact(str(settings_path))
    artifacts[PREPROCESSING_ARTIFACT] = str(settings_path)

    example = _input_example(data)
    registered = (
        f"{cfg.task.registered_model_prefix}{target}" if cfg.get("register", True) else None
    )
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=forecast_model.__file__,
        artifacts=artifacts,
        code_paths=[str(Path(viralab.__file__).parent)],
        signature=model_signature(multi_horizon=True),
        input_example=example,
        pip_requirements=model_requirements(),
        registered_model_name=registered,
    )
    version = getattr(info, "registered_model_version", None)
    if version is not None:
        client = mlflow.MlflowClient()
        for key, value in {
            tags.MODEL: str(cfg.model.name),
            tags.TARGET: target,
            tags.RUN_NAME: mlflow.active_run().info.run_name,
        }.items():
            client.set_model_version_tag(registered, str(version), key, value)
        log.info("Registered %s version %s", registered, version)
    return (None if version is None else str(version)), size_mb


def _input_example(data: Prepared) -> pd.DataFrame:
    """The last `sequence_length + 1` raw rows of the first test video."""
    L = data.settings["sequence_length"]
    first = data.clean["segment"].iloc[data.windows["test"].target_row[0]]
    rows = data.clean[data.clean["segment"] == first].tail(L + 1)
    cols = ["timestamp", "video_id", *seq.COUNT_COLUMNS, *seq.GROWTH_COLUMNS]
    example = rows[cols].reset_index(drop=True)
    # counts are whole numbers in the source; the model's schema types them `long`
    return example.assign(**{c: example[c].round().astype("int64") for c in seq.COUNT_COLUMNS})


def log_target(
    cfg: DictConfig,
    data: Prepared,
    result: TargetResult,
    on_registered: RegistrationHook | None = None,
) -> dict[str, float]:
    """Everything one target's run holds (LSTM or peer); returns the metrics logged."""
    lstm_run = result.fit is not None
    _log_params(
        _spec_params(cfg, data, result.target) if lstm_run else peer_params(cfg, data, result)
    )
    mlflow.set_tags(result.tags)
    log_dataset(cfg, data)
    if result.judgement is not None:
        log_horizon_artifacts(result.judgement, tuple(data.settings["horizons"]))
    if lstm_run:
        log_history(result.fit)
    metrics = dict(result.metrics)
    metrics.update({f"importance.{k}": v for k, v in result.importance.items()})
    if result.cv.get("mae"):
        cv = result.cv
        metrics.update(
            {
                "cv_mae_mean": float(np.mean(cv["mae"])),
                "cv_mae_std": float(np.std(cv["mae"])),
                "cv_best_baseline_mae_mean": float(np.mean(cv["best_baseline_mae"])),
                "cv_folds": float(len(cv["mae"])),
            }
        )
        mlflow.log_dict(cv, "cross_validation.json")
    if lstm_run:
        mlflow.log_dict(
            {
                "history": result.fit.history,
                "epoch_seconds": result.fit.epoch_seconds,
                "best_epoch": result.fit.best_epoch,
            },
            "history.json",
        )
    mlflow.log_dict(
        {
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            **data.settings,
            "target": result.target,
            "input_columns": list(data.inputs.columns),
            "test_fraction": float(cfg.task.test_fraction),
            "validation_fraction": float(cfg.task.validation_fraction),
            "seed": int(cfg.seed),
        },
        "config.json",
    )
    if result.importance:
        mlflow.log_dict(result.importance, "feature_importance.json")
    if cfg.task.plots:
        _plots(cfg, data, result)
    with tempfile.TemporaryDirectory() as tmp:
        version, size_mb = log_forecast_model(cfg, data, result, Path(tmp))
    metrics["model_size_mb"] = size_mb
    metrics = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    mlflow.log_metrics(metrics)
    after_registration(
        cfg, f"{cfg.task.registered_model_prefix}{result.target}", version, on_registered
    )
    log.info(
        "%s: MAE %.4g (scaled %.3g) vs best naive %s %.4g -> beats naive: %s",
        result.target,
        metrics["mae"],
        metrics["mae_scaled"],
        result.tags[tags.BEST_BASELINE],
        metrics["best_baseline_mae"],
        result.tags[tags.BEATS_NAIVE],
    )
    return metrics


def log_summary(metrics: Mapping[str, float], beats: Mapping[str, str]) -> None:
    """The `target=all` parent's summary: the chosen per-target metrics and, per target,
    whether it beat the naive forecast (`viralab.beats_naive.<target>`)."""
    mlflow.log_metrics(dict(metrics))
    mlflow.set_tags({f"{tags.BEATS_NAIVE_TARGET_PREFIX}{t}": v for t, v in beats.items()})


def log_dataset(cfg: DictConfig, data: Any) -> None:
    """The cleaned rows as an `mlflow.data` input: source, digest, rows, videos, time range."""
    clean = data.clean
    frame = clean[["timestamp", "video_id", *seq.COUNT_COLUMNS]].assign(
        timestamp=clean["timestamp"].astype(str)
    )
    source = str(cfg.data.source)
    where = str(cfg.data.path) if source == "files" else source
    # a path is a file source; `sample`/`postgres` are named in the tags (never a URL: secrets)
    local = next(s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource")
    origin = local(where) if source == "files" and where else None
    dataset = mlflow.data.from_pandas(frame, source=origin, name=f"video-stats-{source}")
    mlflow.log_input(
        dataset,
        context="training",
        tags={
            "source": source,
            "rows": str(len(clean)),
            "videos": str(clean["video_id"].nunique()),
            "time_min": str(clean["timestamp"].min()),
            "time_max": str(clean["timestamp"].max()),
            "split": str(cfg.data.split),
        },
    )


def log_horizon_artifacts(judgement: HorizonJudgement, horizons: tuple[int, ...]) -> None:
    mlflow.log_dict(
        {
            "horizons": list(horizons),
            "interval_level": LEVEL,
            "interval_scale": SCALE,
            "interval_quantiles": {
                str(h): list(q) for h, q in zip(horizons, judgement.quantiles, strict=True)
            },
            "metrics": {k: v for k, v in judgement.metrics.items() if np.isfinite(v)},
        },
        "horizons.json",
    )


__all__ = [
    "MODEL_REQUIREMENTS",
    "log_data",
    "log_dataset",
    "log_forecast_model",
    "log_history",
    "log_horizon_artifacts",
    "log_target",
    "model_requirements",
]
