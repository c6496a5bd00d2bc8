"""The stats forecasters' one load -> clean -> split -> scale -> window -> fit -> evaluate ->
log -> register path (spec 002).

`train_forecast(cfg)` is what `python -m viralab.train model=lstm target=views` and `mlflow
run . -P model=lstm` reach. `target=all` opens one parent run (`LSTM_all_<timestamp>`) with
the data and config, and one child run per target (`LSTM_views_<timestamp>`, ...), each with
its own registered model `youtube-lstm-<target>`; a single target logs into one run.

Issue 16: every family (the LSTM here; naive, boosting, ETS, Theta peers from `conf/model/`,
whose ``_target_`` is instantiated) forecasts each of `task.horizons` directly and is judged
per horizon on the same test origins with 80 % conformal intervals (`forecast_multi`,
`forecast_eval`, `features.horizons`); the next-step figures below predate that (one output).
The raw stats frame is loaded in one place, `prepare`, before cleaning.

Computing lives in `features.sequence` (cleaning, split, scaler, windows), `models.lstm`
(network, fit loop, permutation importance), `models.baselines` (naive forecasts and the
metrics report) and `monitor.training_alerts`; this module calls them and is the only one that
talks to MLflow for the forecasters.

What the network predicts is `task.predict`:

- `level`: the next scaled count, the spec's recipe (inputs: levels). A cumulative count
  leaves the training range on later rows, so this is the worst choice;
- `increment`: the next per-minute increment (inputs: increments);
- `residual` (default): the next increment minus the window's mean increment, i.e. the network
  learns a correction to the mean-increment baseline (inputs: increments).

Measured on the bundled sample (seed 42, batch 256, test windows, MAE in original counts;
best naive baseline: views 7.699 and likes 0.921 mean increment, comments 0.0817 persistence):

    predict    loss   views     likes    comments
    level      mse    1477.5    0.998    0.0817   (floored at the last count = persistence)
    increment  mse    7.749     0.904    0.159
    increment  mae    7.700     0.890    0.0817
    residual   mse    7.684     0.906    0.164
    residual   mae    7.629     0.887    0.0847
    residual   mae    7.610     0.844    0.0817   + rounded to whole counts (default); the
                                                   rounded baselines: 7.693, 0.890, 0.0817

Hence the defaults: `task.predict=residual`, `model.loss=mae` (the spec's `mse` predicts the
mean; forecasts are judged by MAE, whose best constant is the median, and for a sparse counter
such as comments, mostly 0 a minute, the mean loses to "next = last"), and
`task.round_forecasts=true` (counts are whole numbers; the baselines are rounded alike, so
neither side gains from rounding alone). Comments tie with persistence: the median next
increment is 0, which nothing beats in MAE.

Speed (2 shared cores, 4,874 training windows): an epoch takes 2.2 s at the spec's batch 32,
1.2 s at batch 32 with the recurrence unrolled, 0.5-0.8 s at batch 256 (unrolled);
`jit_compile` made it 2-3x slower. Batch 32 was also less accurate (views 7.727 vs 7.700,
increment/mae), so the default is batch 256, unrolled; `model.batch_size=32` restores the spec.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
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
from matplotlib.figure import Figure
from mlflow.entities import Metric
from omegaconf import DictConfig, OmegaConf
from sklearn.preprocessing import MinMaxScaler

import viralab
from viralab import forecast_multi as fm
from viralab.data.sources import load_stats
from viralab.errors import ConfigError, DataError
from viralab.features import sequence as seq
from viralab.models import baselines, lstm
from viralab.monitor.training_alerts import AlertThresholds, alert_tags, training_alerts
from viralab.registry.evidence import record_registration
from viralab.registry.holdout import hold_out_gate_stretch
from viralab.serve.forecast_model import (
    NETWORK_ARTIFACT,
    PEER_ARTIFACT,
    PREPROCESSING_ARTIFACT,
    SCALER_ARTIFACT,
    forecast_series,
    model_signature,
)
from viralab.tracking import log_config, tracked_run

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


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def resolve_targets(target: str) -> list[str]:
    """`all` -> the three targets; one valid name -> itself.

    Raises:
        ConfigError: an unknown target.
    """
    if str(target) == "all":
        return list(seq.TARGETS)
    seq.target_column(str(target))
    return [str(target)]


def counts_as(predict: str) -> str:
    """Inputs follow the target: levels for `level`, increments otherwise."""
    if predict not in seq.PREDICT_MODES:
        raise ConfigError(f"task.predict must be one of {seq.PREDICT_MODES}, got {predict!r}")
    return "level" if predict == "level" else "increment"


@dataclass
class Prepared:
    """Cleaned rows, their split, the training-only scaler and the windows of each part."""

    clean: pd.DataFrame
    report: seq.CleaningReport
    parts: pd.Series
    inputs: pd.DataFrame
    scaler: MinMaxScaler
    windows: dict[str, seq.Windows]
    settings: dict[str, Any]

    def input_index(self, target: str) -> int:
        return seq.COUNT_COLUMNS.index(seq.target_column(target))

    def level_range(self, target: str, parts: pd.Series | None = None) -> float:
        """The target count's range on the fit rows: the spec's "scaled units"."""
        parts = self.parts if parts is None else parts
        values = self.clean.loc[parts == "fit", seq.target_column(target)]
        return float(values.max() - values.min()) or 1.0


def settings_from(cfg: DictConfig) -> dict[str, Any]:
    """The preprocessing settings shared by training and the logged model."""
    predict = str(cfg.task.get("predict", "residual"))
    return {
        "sequence_length": int(cfg.features.sequence_length),
        "time_features": bool(cfg.features.get("time_features", False)),
        "frequency": str(cfg.features.get("frequency", "1min")),
        "max_gap_steps": int(cfg.features.get("max_gap_steps", 5)),
        "predict": predict,
        "counts_as": counts_as(predict),
        "round_forecasts": bool(cfg.task.get("round_forecasts", True)),
        "horizons": list(fm.horizons_of(cfg)),
    }


def scale_and_window(
    clean: pd.DataFrame, inputs: pd.DataFrame, parts: pd.Series, sequence_length: int
) -> tuple[MinMaxScaler, dict[str, seq.Windows]]:
    """Fit the scaler on the `fit` rows only, then cut every part's windows."""
    scaler = seq.fit_scaler(inputs, parts == "fit")
    scaled = seq.scale_inputs(inputs, scaler)
    return scaler, seq.make_windows(clean, scaled, parts, sequence_length)


def prepare(cfg: DictConfig, frame: pd.DataFrame | None = None) -> Prepared:
    """Load (unless ``frame`` is given), clean, split per video, scale and window."""
    settings = settings_from(cfg)
    raw = load_stats(cfg.data) if frame is None else frame
    raw = hold_out_gate_stretch(cfg, raw)  # the frozen gate stretch is never trained on
    clean, report = seq.clean_stats(
        raw,
        sequence_length=settings["sequence_length"],
        frequency=settings["frequency"],
        max_gap_steps=settings["max_gap_steps"],
    )
    for line in report.messages():
        log.warning("Stats cleaning: %s", line)
    parts = seq.assign_parts(
        clean,
        test_fraction=float(cfg.task.get("test_fraction", 0.2)),
        validation_fraction=float(cfg.task.get("validation_fraction", 0.2)),
        split=str(cfg.data.get("split", "by_time")),
        seed=int(cfg.seed),
    )
    inputs = seq.model_inputs(clean, settings["counts_as"], settings["time_features"])
    scaler, windows = scale_and_window(clean, inputs, parts, settings["sequence_length"])
    log.info(
        "Forecast data: %d rows of %d video(s) -> %d fit / %d val / %d test windows",
        len(clean),
        report.videos_used,
        len(windows["fit"]),
        len(windows["val"]),
        len(windows["test"]),
    )
    if len(windows["fit"]) == 0 or len(windows["test"]) == 0:
        raise DataError(
            f"too little data: {len(windows['fit'])} training and {len(windows['test'])} test "
            f"windows of {settings['sequence_length']} rows"
        )
    return Prepared(clean, report, parts, inputs, scaler, windows, settings)


# ------------------------------------------------------------------------------------------
# Fit and evaluate one target
# ------------------------------------------------------------------------------------------


@dataclass
class TargetResult:
    target: str
    network: Any
    fit: lstm.FitResult
    metrics: dict[str, float]
    tags: dict[str, str]
    predictions: np.ndarray  # test forecasts in counts, one per test window
    importance: dict[str, float] = field(default_factory=dict)
    cv: dict[str, list[float]] = field(default_factory=dict)
    judgement: fm.HorizonJudgement | None = None


def _forecast_counts(
    network: Any,
    windows: seq.Windows,
    data_scaler: MinMaxScaler,
    settings: Mapping[str, Any],
    k: int,
    X: np.ndarray | None = None,
) -> np.ndarray:
    scaled = lstm.predict_scaled(network, windows.X if X is None else X, n_outputs=-1)[:, 0]
    counts = seq.predictions_to_counts(
        scaled, windows.levels[:, :, k], settings["predict"], data_scaler, k
    )
    return np.round(counts) if settings["round_forecasts"] else counts


def fit_and_evaluate(
    cfg: DictConfig,
    target: str,
    clean: pd.DataFrame,
    scaler: MinMaxScaler,
    windows: dict[str, seq.Windows],
    settings: Mapping[str, Any],
    level_range: float,
    label: str | None = None,
    parts: pd.Series | None = None,
) -> tuple[Any, lstm.FitResult, dict[str, float], np.ndarray]:
    """Build, fit (early stopping on `val`) and judge one network on the `test` windows.

    With ``parts`` (the rows' split) the network has one output per `task.horizons` and
    learns the direct targets (`features.horizons`); column 0 (H = 1) is the next-step
    forecast judged here. Without, one output: the next step only.
    """
    k = seq.COUNT_COLUMNS.index(seq.target_column(target))
    if parts is None:
        y = {
            p: seq.window_targets(windows[p], target, settings["predict"], scaler, k)
            for p in ("fit", "val")
        }
        n_outputs = 1
    else:
        horizons = settings.get("horizons", [1])
        y = {
            p: fm.lstm_targets(
                fm.hz.horizon_windows(clean, parts, windows[p], p, horizons),
                k,
                settings["predict"],
                scaler,
                k,
            )
            for p in ("fit", "val")
        }
        n_outputs = len(horizons)
    network = lstm.build_lstm(
        cfg.model, windows["fit"].X.shape[1:], seed=int(cfg.seed), n_outputs=n_outputs
    )
    fit = lstm.fit_network(
        network,
        (windows["fit"].X, y["fit"]),
        (windows["val"].X, y["val"]),
        cfg.model,
        label=label or target,
    )
    test = windows["test"]
    predictions = _forecast_counts(network, test, scaler, settings, k)
    metrics = baselines.forecast_report(
        test.levels[:, :, k],
        test.next_levels[:, k],
        predictions,
        level_range,
        round_counts=settings["round_forecasts"],
    )
    return network, fit, metrics, predictions


def fit_target(cfg: DictConfig, data: Prepared, target: str) -> TargetResult:
    """Everything computed for one target: the fit, its numbers, tags and diagnostics."""
    k = data.input_index(target)
    network, fit, metrics, predictions = fit_and_evaluate(
        cfg,
        target,
        data.clean,
        data.scaler,
        data.windows,
        data.settings,
        data.level_range(target),
        parts=data.parts,
    )
    judgement = fm.judge_lstm(network, data, target, fm.origins(cfg, data))
    metrics.update(judgement.metrics)
    hist = fit.history
    best = max(fit.best_epoch, 1)
    metrics.update(
        {
            "epochs_trained": float(fit.epochs_trained),
            "convergence_epoch": float(fit.best_epoch),
            "final_train_loss": hist["loss"][-1],
            "final_val_loss": hist["val_loss"][-1],
            # the kept weights' validation loss: what a sweep minimises (`sweep.metric`)
            "val_loss": hist["val_loss"][best - 1],
            "training_time": fit.training_time,
            "seconds_per_epoch": fit.seconds_per_epoch,
            "peak_ram_percent": fit.peak_ram_percent,
        }
    )
    best_name, _ = baselines.best_baseline(
        {n: metrics[f"baseline_{n}_mae"] for n in baselines.BASELINES}
    )
    tags = {
        "viralab.target": target,
        "viralab.predict": data.settings["predict"],
        "viralab.beats_naive": str(metrics["mae"] < metrics["best_baseline_mae"]).lower(),
        "viralab.best_baseline": best_name,
        **fm.threshold_tags(cfg, metrics),
    }
    alerts = training_alerts(
        hist,
        fit.training_time,
        fit.peak_ram_percent,
        fit.best_epoch,
        AlertThresholds.from_config(cfg.task.get("alerts")),
    )
    for name, message in alerts.items():
        log.warning("Training alert (%s) %s: %s", target, name, message)
    tags.update(alert_tags(alerts))

    result = TargetResult(target, network, fit, metrics, tags, predictions, judgement=judgement)
    pi_cfg = cfg.task.get("permutation_importance", {}) or {}
    if pi_cfg.get("enabled", True):
        test = data.windows["test"]
        actual = test.next_levels[:, k]

        def test_mae(X: np.ndarray) -> float:
            pred = _forecast_counts(network, test, data.scaler, data.settings, k, X=X)
            return float(np.mean(np.abs(pred - actual)))

        result.importance = lstm.permutation_importance(
            test_mae,
            test.X,
            list(data.inputs.columns),
            int(pi_cfg.get("repeats", 3)),
            seed=int(cfg.seed),
        )
    cv_cfg = cfg.task.get("cross_validation", {}) or {}
    if cv_cfg.get("enabled", False):
        result.cv = cross_validate(cfg, data, target, int(cv_cfg.get("n_splits", 5)))
    return result


def cross_validate(
    cfg: DictConfig, data: Prepared, target: str, n_splits: int = 5
) -> dict[str, list[float]]:
    """Spec 002's expanding-window validation (see `seq.expanding_window_folds`).

    Each fold refits the scaler on its own fit rows and carves its validation rows from the
    end of its training rows. Returns per-fold MAE and best-baseline MAE (original counts).
    """
    out: dict[str, list[float]] = {"mae": [], "best_baseline_mae": [], "test_windows": []}
    val_fraction = float(cfg.task.get("validation_fraction", 0.2))
    L = data.settings["sequence_length"]
    for i, fold in enumerate(seq.expanding_window_folds(data.clean, n_splits)):
        parts = seq.carve_validation(fold, data.clean, val_fraction)
        scaler, windows = scale_and_window(data.clean, data.inputs, parts, L)
        if len(windows["fit"]) == 0 or len(windows["test"]) == 0:
            log.warning("CV fold %d of %s skipped: no training or test windows", i + 1, target)
            continue
        _, _, metrics, _ = fit_and_evaluate(
            cfg,
            target,
            data.clean,
            scaler,
            windows,
            data.settings,
            data.level_range(target, parts),
            label=f"{target} cv{i + 1}/{n_splits}",
            parts=parts,
        )
        out["mae"].append(metrics["mae"])
        out["best_baseline_mae"].append(metrics["best_baseline_mae"])
        out["test_windows"].append(float(len(windows["test"])))
    return out


# ------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------


def learning_curve(history: Mapping[str, list[float]], best_epoch: int, title: str) -> Figure:
    """Training and validation loss per epoch, with the epoch whose weights were kept."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="train loss")
    ax.plot(epochs, history["val_loss"], label="validation loss")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"kept epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel="loss (scaled)", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def forecast_plot(
    times: pd.Series,
    levels: np.ndarray,
    actual: np.ndarray,
    model: np.ndarray,
    baseline: np.ndarray,
    baseline_name: str,
    title: str,
) -> Figure:
    """Counts (top) and per-minute increments (bottom): actual, model, best baseline."""
    last = levels[:, -1]
    fig = Figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(times, actual, label="actual", color="black", linewidth=1)
    top.plot(times, model, label="LSTM", linewidth=1)
    top.set(ylabel="count", title=title)
    top.legend()
    bottom.plot(times, actual - last, label="actual", color="black", linewidth=0.6, alpha=0.6)
    bottom.plot(times, model - last, label="LSTM", linewidth=1)
    bottom.plot(times, baseline - last, label=baseline_name, linewidth=1, linestyle="--")
    bottom.set(ylabel="next increment", xlabel="time (UTC)")
    bottom.legend()
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------


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
        mlflow.set_tag("viralab.data.max_timestamp", newest.isoformat())


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
    best_name = result.tags["viralab.best_baseline"]
    baseline = baselines.FORECASTS[best_name](test.levels[:, :, k])
    if data.settings["round_forecasts"]:
        baseline = np.round(baseline)
    times = data.clean["timestamp"].to_numpy()[test.target_row]
    videos = data.clean["video_id"].to_numpy()[test.target_row]
    max_videos = int(cfg.task.get("max_plot_videos", 10))
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
    import mlflow.keras
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from viralab.serve import forecast_model

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
        "interval_level": fm.fe.LEVEL,
        "interval_scale": fm.fe.SCALE,
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
            "viralab.model": str(cfg.model.name),
            "viralab.target": target,
            "viralab.run_name": mlflow.active_run().info.run_name,
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


def log_target(cfg: DictConfig, data: Prepared, result: TargetResult) -> dict[str, float]:
    """Everything one target's run holds (LSTM or peer); returns the metrics logged."""
    lstm_run = result.fit is not None
    _log_params(
        _spec_params(cfg, data, result.target) if lstm_run else fm.peer_params(cfg, data, result)
    )
    mlflow.set_tags(result.tags)
    fm.log_dataset(cfg, data)
    if result.judgement is not None:
        fm.log_horizon_artifacts(result.judgement, tuple(data.settings["horizons"]))
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
            "test_fraction": float(cfg.task.get("test_fraction", 0.2)),
            "validation_fraction": float(cfg.task.get("validation_fraction", 0.2)),
            "seed": int(cfg.seed),
        },
        "config.json",
    )
    if result.importance:
        mlflow.log_dict(result.importance, "feature_importance.json")
    if cfg.task.get("plots", True):
        _plots(cfg, data, result)
    with tempfile.TemporaryDirectory() as tmp:
        version, size_mb = log_forecast_model(cfg, data, result, Path(tmp))
    metrics["model_size_mb"] = size_mb
    metrics = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    mlflow.log_metrics(metrics)
    record_registration(cfg, f"{cfg.task.registered_model_prefix}{result.target}", version)
    log.info(
        "%s: MAE %.4g (scaled %.3g) vs best naive %s %.4g -> beats naive: %s",
        result.target,
        metrics["mae"],
        metrics["mae_scaled"],
        result.tags["viralab.best_baseline"],
        metrics["best_baseline_mae"],
        result.tags["viralab.beats_naive"],
    )
    return metrics


# ------------------------------------------------------------------------------------------
# Entry
# ------------------------------------------------------------------------------------------


def run_name_for(cfg: DictConfig, target: str, stamp: str) -> str:
    """`LSTM_<target>_<timestamp>`; a peer's runs start with its model name instead."""
    template = str(cfg.task.get("run_name_template", "LSTM_{target}_{timestamp}"))
    name = template.format(target=target, timestamp=stamp)
    if cfg.model.get("_target_") is not None and name.startswith("LSTM_"):
        name = f"{cfg.model.name}_{name[len('LSTM_') :]}"
    return name


def train_forecast(cfg: DictConfig) -> dict[str, float]:
    """Train the configured target(s); returns the metrics (`<target>.<metric>` for `all`).

    Raises:
        ConfigError: an unknown target or setting.
        DataError: no video long enough for one window.
    """
    targets = resolve_targets(cfg.get("target", "all"))
    is_peer = cfg.model.get("_target_") is not None  # conf/model/<peer>.yaml
    fit_one = fm.fit_peer_target if is_peer else fit_target
    if not is_peer:
        lstm.configure_threads(cfg.model.get("threads"))
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    experiment = str(cfg.task.experiment)
    tags = {"viralab.task": "forecast", "viralab.model": str(cfg.model.name)}
    data = prepare(cfg)
    name = cfg.get("run_name") or run_name_for(cfg, cfg.get("target", "all"), stamp)

    if len(targets) == 1:
        with tracked_run(experiment=experiment, run_name=name, tags=tags):
            log_config(cfg)
            log_data(data)
            return log_target(cfg, data, fit_one(cfg, data, targets[0]))

    summary: dict[str, float] = {}
    with tracked_run(
        experiment=experiment, run_name=name, tags={**tags, "viralab.targets": ",".join(targets)}
    ) as parent:
        # children sit beside their parent, even when `mlflow run` chose its experiment
        experiment = mlflow.get_experiment(parent.info.experiment_id).name
        log_config(cfg)
        log_data(data)
        beats = {}
        for target in targets:
            child = run_name_for(cfg, target, stamp)
            with tracked_run(
                experiment=experiment,
                run_name=child,
                nested=True,
                tags={**tags, "viralab.target": target},
            ):
                result = fit_one(cfg, data, target)
                metrics = log_target(cfg, data, result)
            beats[target] = result.tags["viralab.beats_naive"]
            summary.update(
                {f"{target}.{k}": v for k, v in metrics.items() if not k.startswith("importance.")}
            )
        mlflow.log_metrics(
            {k: v for k, v in summary.items() if k.split(".", 1)[1] in _SUMMARY_METRICS}
        )
        mlflow.set_tags({f"viralab.beats_naive.{t}": v for t, v in beats.items()})
    return summary


_SUMMARY_METRICS = (
    "mae",
    "mae_scaled",
    "best_baseline_mae",
    "mase",
    "relative_mae",
    "epochs_trained",
    "training_time",
    "seconds_per_epoch",
    "mae_h60",
    "mase_h60",
    "relative_mae_h60",
    "coverage80_h60",
)


__all__ = ["fit_target", "forecast_series", "prepare", "train_forecast"]
