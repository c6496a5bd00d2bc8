"""Load -> clean -> split -> scale -> window: the data every forecaster of a run shares.

`prepare` is the one place the raw stats frame is loaded before cleaning; the computing lives in
`features.sequence` (cleaning, split, scaler, windows) and `features.horizons`. What the network
predicts is `task.predict` (`level`, `increment`, `residual`: see docs/forecasting-notes.md
for why `residual` is the default).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from sklearn.preprocessing import MinMaxScaler

from viralab.data.sources import load_stats
from viralab.errors import DataError
from viralab.features import sequence as seq
from viralab.features.sequence_chain import SequenceChain
from viralab.features.sequence_chain import counts_as as counts_as
from viralab.registry.holdout import hold_out_gate_stretch

log = logging.getLogger(__name__)


def horizons_of(cfg: DictConfig) -> tuple[int, ...]:
    return SequenceChain.from_settings(cfg).horizons


def resolve_targets(target: str) -> list[str]:
    """`all` -> the three targets; one valid name -> itself.

    Raises:
        ConfigError: an unknown target.
    """
    if str(target) == "all":
        return list(seq.TARGETS)
    seq.target_column(str(target))
    return [str(target)]


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
    chain: SequenceChain = field(default=None)  # type: ignore[assignment]  # from `settings`

    def __post_init__(self) -> None:
        if self.chain is None:
            self.chain = SequenceChain.from_saved(self.settings)

    def input_index(self, target: str) -> int:
        return seq.COUNT_COLUMNS.index(seq.target_column(target))

    def level_range(self, target: str, parts: pd.Series | None = None) -> float:
        """The target count's range on the fit rows: the spec's "scaled units"."""
        parts = self.parts if parts is None else parts
        values = self.clean.loc[parts == "fit", seq.target_column(target)]
        return float(values.max() - values.min()) or 1.0


def settings_from(cfg: DictConfig) -> dict[str, Any]:
    """The preprocessing settings shared by training and the logged model."""
    return SequenceChain.from_settings(cfg).to_settings()


def prepare(cfg: DictConfig, frame: pd.DataFrame | None = None) -> Prepared:
    """Load (unless ``frame`` is given), clean, split per video, scale and window."""
    chain = SequenceChain.from_settings(cfg)
    settings = chain.to_settings()
    raw = load_stats(cfg.data) if frame is None else frame
    raw = hold_out_gate_stretch(cfg, raw)  # the frozen gate stretch is never trained on
    clean, report = chain.clean(raw)
    for line in report.messages():
        log.warning("Stats cleaning: %s", line)
    parts = seq.assign_parts(
        clean,
        test_fraction=float(cfg.task.test_fraction),
        validation_fraction=float(cfg.task.validation_fraction),
        split=str(cfg.data.split),
        seed=int(cfg.seed),
    )
    inputs = chain.inputs(clean)
    scaler, windows = chain.scale_and_window(clean, inputs, parts)
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
    return Prepared(clean, report, parts, inputs, scaler, windows, settings, chain)


__all__ = [
    "Prepared",
    "counts_as",
    "horizons_of",
    "prepare",
    "resolve_targets",
    "settings_from",
]
