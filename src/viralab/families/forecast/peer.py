"""Fitting one peer family (naive, boosting, ETS, Theta from `conf/model/`, whose ``_target_``
is instantiated) for one target, judged like the LSTM (`judge`).

The next-step contract metrics (``mae``, ``mase``, ``relative_mae``, ``baseline_*_mae``: what
the registry's gates and the pyfunc contract read) are computed on all next-step test windows,
as the LSTM's are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from viralab.families.forecast.judge import HorizonJudgement, judge, origins, threshold_tags
from viralab.features import horizons as hz
from viralab.models import baselines
from viralab.models.peers import Peer
from viralab.tracking.tags import BEATS_NAIVE, BEST_BASELINE, PREDICT, TARGET

log = logging.getLogger(__name__)


@dataclass
class PeerResult:
    target: str
    peer: Peer
    metrics: dict[str, float]
    tags: dict[str, str]
    predictions: np.ndarray  # next-step test forecasts (counts), one per next-step window
    judgement: HorizonJudgement
    # what an LSTM result also has (`log.log_target` reads both kinds)
    network: Any = None
    fit: Any = None
    importance: dict[str, float] = field(default_factory=dict)
    cv: dict[str, list[float]] = field(default_factory=dict)


def peer_params(cfg: DictConfig, data: Any, result: PeerResult) -> dict[str, Any]:
    """The run params of a peer (the LSTM's are `log._spec_params`)."""
    w = data.windows
    model = {f"peer.{k}": v for k, v in result.peer.config().items() if k not in ("k", "chosen")}
    return {
        "target": result.target,
        "sequence_length": data.settings["sequence_length"],
        "train_sequences": len(w["fit"]),
        "val_sequences": len(w["val"]),
        "test_sequences": len(w["test"]),
        "horizons": ",".join(str(h) for h in data.settings["horizons"]),
        "origin_stride": int(cfg.task.origin_stride),
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
        TARGET: target,
        PREDICT: "direct",
        BEATS_NAIVE: str(metrics["mae"] < metrics["best_baseline_mae"]).lower(),
        BEST_BASELINE: best_name,
        **threshold_tags(cfg, metrics),
    }
    log.info("%s %s: fit %.1fs, predict %.1fs", peer.name, target, fit_time, predict_time)
    return PeerResult(target, peer, metrics, tags, nxt, judgement)


__all__ = ["PeerResult", "fit_peer_target", "peer_params"]
