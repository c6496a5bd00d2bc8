"""Fitting and judging the LSTM for one target: the fit, its numbers, tags and diagnostics.

The network, its fit loop and permutation importance are computed in `models.lstm`, the
next-step metrics in `models.baselines`, the alerts in `families.forecast.alerts`; this module
calls them and returns a `TargetResult` that `log.log_target` writes to MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.preprocessing import MinMaxScaler

from viralab.families.forecast.alerts import AlertThresholds, alert_tags, training_alerts
from viralab.families.forecast.judge import (
    HorizonJudgement,
    judge_lstm,
    origins,
    threshold_tags,
)
from viralab.families.forecast.prepare import Prepared
from viralab.features import horizons as hz
from viralab.features import sequence as seq
from viralab.features.sequence_chain import SequenceChain
from viralab.models import baselines, lstm
from viralab.tracking.tags import BEATS_NAIVE, BEST_BASELINE, PREDICT, TARGET

log = logging.getLogger(__name__)


@dataclass
class TargetResult:
    """One target's fitted LSTM with everything `log.log_target` writes for it."""

    target: str
    network: Any
    fit: lstm.FitResult
    metrics: dict[str, float]
    tags: dict[str, str]
    predictions: np.ndarray  # test forecasts in counts, one per test window
    importance: dict[str, float] = field(default_factory=dict)
    cv: dict[str, list[float]] = field(default_factory=dict)
    judgement: HorizonJudgement | None = None


def _forecast_counts(
    network: Any,
    windows: seq.Windows,
    data_scaler: MinMaxScaler,
    settings: Mapping[str, Any],
    k: int,
    X: np.ndarray | None = None,
) -> np.ndarray:
    outputs = lstm.predict_scaled(network, windows.X if X is None else X, n_outputs=-1)
    return SequenceChain.from_saved(settings).next_step_counts(outputs, windows, data_scaler, k)


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
    chain = SequenceChain.from_saved(settings)
    if parts is None:
        y = {p: chain.targets(windows[p], target, scaler, k) for p in ("fit", "val")}
        n_outputs = 1
    else:
        horizons = chain.horizons
        y = {
            p: chain.direct_targets(
                hz.horizon_windows(clean, parts, windows[p], p, horizons), k, scaler, k
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
        round_counts=chain.round_forecasts,
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
    judgement = judge_lstm(network, data, target, origins(cfg, data))
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
        TARGET: target,
        PREDICT: data.settings["predict"],
        BEATS_NAIVE: str(metrics["mae"] < metrics["best_baseline_mae"]).lower(),
        BEST_BASELINE: best_name,
        **threshold_tags(cfg, metrics),
    }
    alerts = training_alerts(
        hist,
        fit.training_time,
        fit.peak_ram_percent,
        fit.best_epoch,
        AlertThresholds.from_config(cfg.task.alerts),
    )
    for name, message in alerts.items():
        log.warning("Training alert (%s) %s: %s", target, name, message)
    tags.update(alert_tags(alerts))

    result = TargetResult(target, network, fit, metrics, tags, predictions, judgement=judgement)
    pi_cfg = cfg.task.permutation_importance
    if pi_cfg.enabled:
        test = data.windows["test"]
        actual = test.next_levels[:, k]

        def test_mae(X: np.ndarray) -> float:
            pred = _forecast_counts(network, test, data.scaler, data.settings, k, X=X)
            return float(np.mean(np.abs(pred - actual)))

        result.importance = lstm.permutation_importance(
            test_mae,
            test.X,
            list(data.inputs.columns),
            int(pi_cfg.repeats),
            seed=int(cfg.seed),
        )
    cv_cfg = cfg.task.cross_validation
    if cv_cfg.enabled:
        result.cv = cross_validate(cfg, data, target, int(cv_cfg.n_splits))
    return result


def cross_validate(
    cfg: DictConfig, data: Prepared, target: str, n_splits: int = 5
) -> dict[str, list[float]]:
    """Spec 002's expanding-window validation (see `seq.expanding_window_folds`).

    Each fold refits the scaler on its own fit rows and carves its validation rows from the
    end of its training rows. Returns per-fold MAE and best-baseline MAE (original counts).
    """
    out: dict[str, list[float]] = {"mae": [], "best_baseline_mae": [], "test_windows": []}
    val_fraction = float(cfg.task.validation_fraction)
    for i, fold in enumerate(seq.expanding_window_folds(data.clean, n_splits)):
        parts = seq.carve_validation(fold, data.clean, val_fraction)
        scaler, windows = data.chain.scale_and_window(data.clean, data.inputs, parts)
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


__all__ = ["TargetResult", "cross_validate", "fit_and_evaluate", "fit_target"]
