"""Multi-horizon training and judging for every forecaster family (issue 16).

`viralab.forecasting` prepares the data once (clean, per-video split, scaler, next-step
windows); this module adds the direct targets at each horizon (`features.horizons`), fits the
peers (`models.peers`), and judges LSTM and peers alike (`forecast_eval`) on the same
origins:

- ``fit`` origins: every training window (stride 1) with its targets inside the fit rows;
- ``val`` origins: every ``task.origin_stride``-th validation window: the naive ``best``
  choice and the conformal intervals are calibrated there (symmetric, normalized by the
  recent rate and how fast it turns: ``forecast_eval``'s docstring says why);
- ``test`` origins: every ``task.origin_stride``-th test window: the per-horizon metrics.

The next-step contract metrics (``mae``, ``mase``, ``relative_mae``, ``baseline_*_mae``: what
the registry's gates and the existing pyfunc contract read) are computed for every family on
all next-step test windows, as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from viralab import forecast_eval as fe
from viralab.features import horizons as hz
from viralab.features import sequence as seq
from viralab.models import baselines
from viralab.models.peers import Peer

log = logging.getLogger(__name__)

#: rows of history every judge reads (the 60-minute naive baseline and the interval scale)
JUDGE_LOOKBACK = 61


def horizons_of(cfg: DictConfig) -> tuple[int, ...]:
    return hz.check_horizons(cfg.task.get("horizons", hz.DEFAULT_HORIZONS))


def origins(cfg: DictConfig, data: Any) -> dict[str, hz.HorizonWindows]:
    """The fit (stride 1), val and test (``task.origin_stride``) origins of a prepared run."""
    horizons = horizons_of(cfg)
    stride = int(cfg.task.get("origin_stride", 5))
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
    quantiles = fe.calibrate(val.target_future(k), pred_val, fe.scale(hist_val, horizons))
    lower, upper = fe.intervals(
        pred_test, fe.scale(hist_test, horizons), quantiles, hist_test[:, -1]
    )
    naive = fe.naive_forecasts(hist_test, horizons, window)
    if round_counts:
        naive = {n: np.round(v) for n, v in naive.items()}
    videos = clean["video_id"].to_numpy()[test.origin_row]
    metrics = fe.horizon_report(
        test.target_future(k), pred_test, naive, horizons, videos, lower, upper
    )
    return HorizonJudgement(metrics, quantiles, pred_test, lower, upper)


def threshold_tags(cfg: DictConfig, metrics: Mapping[str, float]) -> dict[str, str]:
    """Scale-free verdict tags from ``task.thresholds`` (MASE and relative MAE at a horizon)."""
    th = cfg.task.get("thresholds", {}) or {}
    h = int(th.get("horizon", 60))
    mase = metrics.get(f"mase_h{h}", float("nan"))
    rel = metrics.get(f"relative_mae_h{h}", float("nan"))
    meets = bool(mase <= float(th.get("mase_max", 1.0))) and bool(
        rel <= float(th.get("relative_mae_max", 1.0))
    )
    tags = {
        "viralab.meets_spec_thresholds": str(meets).lower(),
        f"viralab.beats_naive_h{h}": str(bool(rel < 1.0)).lower(),
        f"viralab.relative_mae_h{h}": f"{rel:.3f}",
    }
    cov = metrics.get(f"coverage80_h{h}")
    if cov is not None and np.isfinite(cov):
        tags[f"viralab.coverage80_h{h}"] = f"{cov:.3f}"
    return tags


# ------------------------------------------------------------------------------------------
# Peers
# ------------------------------------------------------------------------------------------


@dataclass
class PeerResult:
    target: str
    peer: Peer
    metrics: dict[str, float]
    tags: dict[str, str]
    predictions: np.ndarray  # next-step test forecasts (counts), one per next-step window
    judgement: HorizonJudgement
    # what an LSTM result also has (`forecasting.log_target` reads both kinds)
    network: Any = None
    fit: Any = None
    importance: dict[str, float] = field(default_factory=dict)
    cv: dict[str, list[float]] = field(default_factory=dict)


def peer_params(cfg: DictConfig, data: Any, result: PeerResult) -> dict[str, Any]:
    """The run params of a peer (the LSTM's are `forecasting._spec_params`)."""
    w = data.windows
    model = {f"peer.{k}": v for k, v in result.peer.config().items() if k not in ("k", "chosen")}
    return {
        "target": result.target,
        "sequence_length": data.settings["sequence_length"],
        "train_sequences": len(w["fit"]),
        "val_sequences": len(w["val"]),
        "test_sequences": len(w["test"]),
        "horizons": ",".join(str(h) for h in data.settings["horizons"]),
        "origin_stride": int(cfg.task.get("origin_stride", 5)),
        **{k: str(v) for k, v in model.items()},
    }


def _peer_inputs(
    data: Any, hw: hz.HorizonWindows, k: int, lookback: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    history = hz.history_levels(data.clean, hw.origin_row, lookback)
    times = data.clean["timestamp"].to_numpy()[hw.origin_row]
    return history, times, hw.target_future(k)


def fit_peer_target(cfg: DictConfig, data: Any, target: str) -> PeerResult:
    """Fit one peer for one target on the fit origins; judge it like the LSTM."""
    from hydra.utils import instantiate

    k = data.input_index(target)
    L = int(data.settings["sequence_length"])
    parts = origins(cfg, data)
    peer: Peer = instantiate(cfg.model)
    lookback = max(peer.lookback, L)
    start = time.perf_counter()
    peer.fit(
        k,
        parts["fit"].horizons,
        L,
        _peer_inputs(data, parts["fit"], k, lookback),
        _peer_inputs(data, parts["val"], k, lookback),
        seed=int(cfg.seed),
    )
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    pred_val = peer.predict(*_peer_inputs(data, parts["val"], k, lookback)[:2])
    pred_test = peer.predict(*_peer_inputs(data, parts["test"], k, lookback)[:2])
    round_counts = bool(data.settings["round_forecasts"])
    judgement = judge(
        data.clean, parts["val"], parts["test"], pred_val, pred_test, k, L, round_counts
    )
    # the next-step contract on every next-step test window, as the LSTM's
    test = data.windows["test"]
    history = hz.history_levels(data.clean, test.target_row - 1, lookback)
    times = data.clean["timestamp"].to_numpy()[test.target_row - 1]
    nxt = peer.predict(history, times, (1,))[:, 0]
    nxt = np.round(nxt) if round_counts else nxt
    predict_time = time.perf_counter() - start
    metrics = baselines.forecast_report(
        test.levels[:, :, k],
        test.next_levels[:, k],
        nxt,
        data.level_range(target),
        round_counts=round_counts,
    )
    metrics.update(judgement.metrics)
    metrics.update({"training_time": fit_time, "prediction_time": predict_time})
    best_name, _ = baselines.best_baseline(
        {n: metrics[f"baseline_{n}_mae"] for n in baselines.BASELINES}
    )
    tags = {
        "viralab.target": target,
        "viralab.predict": "direct",
        "viralab.beats_naive": str(metrics["mae"] < metrics["best_baseline_mae"]).lower(),
        "viralab.best_baseline": best_name,
        **threshold_tags(cfg, metrics),
    }
    log.info("%s %s: fit %.1fs, predict %.1fs", peer.name, target, fit_time, predict_time)
    return PeerResult(target, peer, metrics, tags, nxt, judgement)


# ------------------------------------------------------------------------------------------
# LSTM
# ------------------------------------------------------------------------------------------


def lstm_targets(
    hw: hz.HorizonWindows, k: int, predict: str, scaler: Any, input_index: int
) -> np.ndarray:
    lo, rng = seq.column_scale(scaler, input_index)
    return hz.direct_targets(hw, k, predict, lo, rng)


def lstm_counts(
    outputs: np.ndarray, hw: hz.HorizonWindows, k: int, settings: Mapping[str, Any], scaler: Any
) -> np.ndarray:
    lo, rng = seq.column_scale(scaler, int(settings["input_index"]))
    return hz.direct_to_counts(
        outputs, hw.windows.levels[:, :, k], hw.horizons, settings["predict"], lo, rng
    )


def judge_lstm(
    network: Any, data: Any, target: str, parts: Mapping[str, hz.HorizonWindows]
) -> HorizonJudgement:
    from viralab.models.lstm import predict_scaled

    k = data.input_index(target)
    settings = {**data.settings, "input_index": k}
    out = {
        p: lstm_counts(
            predict_scaled(network, parts[p].windows.X, n_outputs=len(parts[p].horizons)),
            parts[p],
            k,
            settings,
            data.scaler,
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
        int(data.settings["sequence_length"]),
        bool(data.settings["round_forecasts"]),
    )


# ------------------------------------------------------------------------------------------
# Logging shared by the families
# ------------------------------------------------------------------------------------------


def log_dataset(cfg: DictConfig, data: Any) -> None:
    """The cleaned rows as an `mlflow.data` input: source, digest, rows, videos, time range."""
    clean = data.clean
    frame = clean[["timestamp", "video_id", *seq.COUNT_COLUMNS]].assign(
        timestamp=clean["timestamp"].astype(str)
    )
    from mlflow.data.dataset_source_registry import get_registered_sources

    source = str(cfg.data.get("source", "sample"))
    where = str(cfg.data.get("path", "")) if source == "files" else source
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
            "split": str(cfg.data.get("split", "by_time")),
        },
    )


def log_horizon_artifacts(judgement: HorizonJudgement, horizons: tuple[int, ...]) -> None:
    mlflow.log_dict(
        {
            "horizons": list(horizons),
            "interval_level": fe.LEVEL,
            "interval_scale": fe.SCALE,
            "interval_quantiles": {
                str(h): list(q) for h, q in zip(horizons, judgement.quantiles, strict=True)
            },
            "metrics": {k: v for k, v in judgement.metrics.items() if np.isfinite(v)},
        },
        "horizons.json",
    )


__all__ = [
    "PeerResult",
    "fit_peer_target",
    "judge",
    "judge_lstm",
    "log_dataset",
    "origins",
    "threshold_tags",
]
