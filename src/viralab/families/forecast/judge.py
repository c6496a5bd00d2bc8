"""Judging every forecaster family alike at each horizon (issue 16), on the same origins:

- ``fit`` origins: every training window (stride 1) with its targets inside the fit rows;
- ``val`` origins: every ``task.origin_stride``-th validation window: the naive ``best``
  choice and the conformal intervals are calibrated there (symmetric, normalized by the
  recent rate and how fast it turns: ``evaluate``'s docstring says why);
- ``test`` origins: every ``task.origin_stride``-th test window: the per-horizon metrics.

The LSTM's outputs at each horizon are converted to counts by its `SequenceChain`, so the LSTM
and the peers (`peer`) meet the judge through the same counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from viralab.features import horizons as hz
from viralab.features import sequence as seq
from viralab.models.forecast_eval import (
    calibrate,
    horizon_report,
    intervals,
    naive_forecasts,
    scale,
)
from viralab.models.lstm import predict_scaled
from viralab.tracking.tags import (
    BEATS_NAIVE_H_PREFIX,
    COVERAGE80_H_PREFIX,
    MEETS_SPEC_THRESHOLDS,
    METRIC_COVERAGE80_H_PREFIX,
    METRIC_MASE_H_PREFIX,
    METRIC_RELATIVE_MAE_H_PREFIX,
    RELATIVE_MAE_H_PREFIX,
)

#: rows of history every judge reads (the 60-minute naive baseline and the interval scale)
JUDGE_LOOKBACK = 61


def origins(cfg: DictConfig, data: Any) -> dict[str, hz.HorizonWindows]:
    """The fit (stride 1), val and test (``task.origin_stride``) origins of a prepared run."""
    horizons = data.chain.horizons
    stride = int(cfg.task.origin_stride)
    return {
        part: hz.horizon_windows(
            data.clean,
            data.parts,
            data.windows[part],
            part,
            horizons,
            1 if part == "fit" else stride,
        )
        for part in seq.PARTS
    }


@dataclass
class HorizonJudgement:
    """A model's per-horizon test metrics, interval quantiles and test forecasts."""

    metrics: dict[str, float]
    quantiles: list[tuple[float, float]]
    predicted: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def judge(
    clean: pd.DataFrame,
    val: hz.HorizonWindows,
    test: hz.HorizonWindows,
    pred_val: np.ndarray,
    pred_test: np.ndarray,
    k: int,
    window: int,
    round_counts: bool,
) -> HorizonJudgement:
    """Calibrate intervals on ``val``, then judge ``pred_test`` beside the naive baselines."""
    horizons = test.horizons
    if round_counts:
        pred_val, pred_test = np.round(pred_val), np.round(pred_test)
    lookback = max(JUDGE_LOOKBACK, window)
    hist_val = hz.history_levels(clean, val.origin_row, lookback)[:, :, k]
    hist_test = hz.history_levels(clean, test.origin_row, lookback)[:, :, k]
    quantiles = calibrate(val.target_future(k), pred_val, scale(hist_val, horizons))
    lower, upper = intervals(pred_test, scale(hist_test, horizons), quantiles, hist_test[:, -1])
    naive = naive_forecasts(hist_test, horizons, window)
    if round_counts:
        naive = {n: np.round(v) for n, v in naive.items()}
    videos = clean["video_id"].to_numpy()[test.origin_row]
    metrics = horizon_report(
        test.target_future(k), pred_test, naive, horizons, videos, lower, upper
    )
    return HorizonJudgement(metrics, quantiles, pred_test, lower, upper)


def threshold_tags(cfg: DictConfig, metrics: Mapping[str, float]) -> dict[str, str]:
    """Scale-free verdict tags from ``task.thresholds`` (MASE and relative MAE at a horizon)."""
    th = cfg.task.thresholds
    h = int(th.horizon)
    mase = metrics.get(f"{METRIC_MASE_H_PREFIX}{h}", float("nan"))
    rel = metrics.get(f"{METRIC_RELATIVE_MAE_H_PREFIX}{h}", float("nan"))
    meets = bool(mase <= float(th.mase_max)) and bool(rel <= float(th.relative_mae_max))
    tags = {
        MEETS_SPEC_THRESHOLDS: str(meets).lower(),
        f"{BEATS_NAIVE_H_PREFIX}{h}": str(bool(rel < 1.0)).lower(),
        f"{RELATIVE_MAE_H_PREFIX}{h}": f"{rel:.3f}",
    }
    cov = metrics.get(f"{METRIC_COVERAGE80_H_PREFIX}{h}")
    if cov is not None and np.isfinite(cov):
        tags[f"{COVERAGE80_H_PREFIX}{h}"] = f"{cov:.3f}"
    return tags


def judge_lstm(
    network: Any, data: Any, target: str, parts: Mapping[str, hz.HorizonWindows]
) -> HorizonJudgement:
    """Judge a multi-output network: its val and test outputs as counts, then `judge`."""
    k = data.input_index(target)
    chain = data.chain
    out = {
        p: chain.direct_counts(
            predict_scaled(network, parts[p].windows.X, n_outputs=len(parts[p].horizons)),
            parts[p].windows.levels[:, :, k],
            parts[p].horizons,
            data.scaler,
            k,
        )
        for p in ("val", "test")
    }
    return judge(
        data.clean,
        parts["val"],
        parts["test"],
        out["val"],
        out["test"],
        k,
        chain.sequence_length,
        chain.round_forecasts,
    )


__all__ = [
    "JUDGE_LOOKBACK",
    "HorizonJudgement",
    "judge",
    "judge_lstm",
    "origins",
    "threshold_tags",
]
