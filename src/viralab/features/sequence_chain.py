"""The forecaster's preprocessing chain, in one place: its settings and its order.

clean -> inputs -> scale -> windows on the way in; network outputs -> counts -> round on the
way out. Training (`families.forecast`), the logged pyfunc (`serve.forecast_model`) and the
monitor's scoring (`families.forecast.score`) all run these steps through a `SequenceChain`,
so a window is built and a forecast converted the same way everywhere. The steps themselves
are `features.sequence` and `features.horizons` (and the network call, `models.lstm`, made
by the caller); this module only fixes their parameters and their order.

Two ways in: `from_settings` (the composed Hydra config: every key must be there) and
`from_saved` (the preprocessing settings a logged model carries, including models logged by
older versions, which lack some keys: their defaults are filled in, each with the reason).
`to_settings` gives the dict a model saves, so what is saved reads back into the same chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from viralab.errors import ConfigError
from viralab.features import horizons as hz
from viralab.features import sequence as seq

#: (config section, key) of every setting `from_settings` reads; none has a default
CONFIG_KEYS: tuple[tuple[str, str], ...] = (
    ("features", "sequence_length"),
    ("features", "time_features"),
    ("features", "frequency"),
    ("features", "max_gap_steps"),
    ("task", "predict"),
    ("task", "round_forecasts"),
    ("task", "horizons"),
)

#: what a model saved by an older version means by a key it does not carry
SAVED_DEFAULTS: dict[str, Any] = {
    # the cleaning grid and gap rule were fixed (1 minute, 5 missing rows) before they were
    # settings, so a model without them was trained with these
    "frequency": "1min",
    "max_gap_steps": 5,
    # time features came later and were off by default
    "time_features": False,
    # rounding was the serving default off until it was saved: unrounded counts
    "round_forecasts": False,
    # a model from before issue 16's direct multi-horizon forecasts has one output: H = 1
    "horizons": [1],
    # spec 002's target, before `task.predict` was a setting; a peer (it forecasts from raw
    # counts) may save none at all
    "predict": "level",
}


def counts_as(predict: str) -> str:
    """Inputs follow the target: levels for `level`, increments otherwise.

    Raises:
        ConfigError: an unknown `task.predict`.
    """
    if predict not in seq.PREDICT_MODES:
        raise ConfigError(f"task.predict must be one of {seq.PREDICT_MODES}, got {predict!r}")
    return "level" if predict == "level" else "increment"


@dataclass(frozen=True)
class SequenceChain:
    """The forecaster's preprocessing settings and the steps that use them, in order."""

    sequence_length: int
    time_features: bool
    frequency: str
    max_gap_steps: int
    predict: str
    counts_as: str
    round_forecasts: bool
    horizons: tuple[int, ...]

    @classmethod
    def from_settings(cls, cfg: Any) -> SequenceChain:
        """The chain of a composed config (`features` and `task` sections).

        Raises:
            ConfigError: a setting is missing, or `task.predict` / `task.horizons` is bad.
        """
        missing = [
            f"{section}.{key}"
            for section, key in CONFIG_KEYS
            if cfg.get(section) is None or cfg[section].get(key) is None
        ]
        if missing:
            raise ConfigError(f"the forecaster's preprocessing needs {', '.join(missing)}")
        f, t = cfg.features, cfg.task
        predict = str(t.predict)
        return cls(
            sequence_length=int(f.sequence_length),
            time_features=bool(f.time_features),
            frequency=str(f.frequency),
            max_gap_steps=int(f.max_gap_steps),
            predict=predict,
            counts_as=counts_as(predict),
            round_forecasts=bool(t.round_forecasts),
            horizons=hz.check_horizons(t.horizons),
        )

    @classmethod
    def from_saved(cls, saved: Mapping[str, Any]) -> SequenceChain:
        """The chain a logged model was trained with, from its saved settings.

        Keys that models logged by older versions lack take `SAVED_DEFAULTS`.

        Raises:
            ConfigError: `sequence_length` is missing, or `predict` is unknown.
        """
        if "sequence_length" not in saved:
            raise ConfigError("the model's preprocessing settings lack sequence_length")
        s = {**SAVED_DEFAULTS, **saved}
        predict = str(s["predict"])
        return cls(
            sequence_length=int(s["sequence_length"]),
            time_features=bool(s["time_features"]),
            frequency=str(s["frequency"]),
            max_gap_steps=int(s["max_gap_steps"]),
            predict=predict,
            counts_as=str(s.get("counts_as", counts_as(predict))),
            round_forecasts=bool(s["round_forecasts"]),
            horizons=tuple(int(h) for h in s["horizons"]),
        )

    def to_settings(self) -> dict[str, Any]:
        """The settings a logged model saves (JSON-ready; `from_saved` reads them back)."""
        return {
            "sequence_length": self.sequence_length,
            "time_features": self.time_features,
            "frequency": self.frequency,
            "max_gap_steps": self.max_gap_steps,
            "predict": self.predict,
            "counts_as": self.counts_as,
            "round_forecasts": self.round_forecasts,
            "horizons": list(self.horizons),
        }

    # -- in: raw rows -> windows -------------------------------------------------------------

    def clean(
        self, raw: pd.DataFrame, min_rows: int | None = None
    ) -> tuple[pd.DataFrame, seq.CleaningReport]:
        """The messy-row rules (`seq.clean_stats`) at this chain's grid and gap rule."""
        return seq.clean_stats(
            raw,
            sequence_length=self.sequence_length,
            frequency=self.frequency,
            max_gap_steps=self.max_gap_steps,
            min_rows=min_rows,
        )

    def last_segment(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The newest segment of one video's cleaned rows (every segment kept: a forecast
        starts from the newest one, however short).

        Raises:
            DataError: no usable row, or columns missing.
        """
        clean, _ = self.clean(raw, min_rows=1)
        last = clean["segment"].iloc[-1]
        return clean[clean["segment"] == last].reset_index(drop=True)

    def inputs(self, clean: pd.DataFrame) -> pd.DataFrame:
        """Unscaled network inputs per cleaned row (`seq.model_inputs`)."""
        return seq.model_inputs(clean, self.counts_as, self.time_features)

    def fit_scaler(self, inputs: pd.DataFrame, parts: pd.Series) -> MinMaxScaler:
        """The scaler, fitted on the `fit` rows only."""
        return seq.fit_scaler(inputs, parts == "fit")

    def scale(self, inputs: pd.DataFrame, scaler: MinMaxScaler) -> np.ndarray:
        return seq.scale_inputs(inputs, scaler)

    def windows(
        self, clean: pd.DataFrame, scaled: np.ndarray, parts: pd.Series
    ) -> dict[str, seq.Windows]:
        """Every part's windows of `sequence_length` rows."""
        return seq.make_windows(clean, scaled, parts, self.sequence_length)

    def scale_and_window(
        self, clean: pd.DataFrame, inputs: pd.DataFrame, parts: pd.Series
    ) -> tuple[MinMaxScaler, dict[str, seq.Windows]]:
        """Fit the scaler on the `fit` rows only, then cut every part's windows."""
        scaler = self.fit_scaler(inputs, parts)
        return scaler, self.windows(clean, self.scale(inputs, scaler), parts)

    def recent_window(
        self, history: pd.DataFrame, scaler: MinMaxScaler
    ) -> tuple[np.ndarray, np.ndarray]:
        """The newest window of one segment's rows (``timestamp`` and counts; growth rates
        recomputed): its scaled inputs (1, L, f) and raw levels (L, 3)."""
        L = self.sequence_length
        recent = history.tail(L + 1).reset_index(drop=True)
        recent = pd.concat([recent, seq.growth_rates(recent)], axis=1).assign(segment="s")
        X = self.scale(self.inputs(recent).tail(L), scaler)[None, :, :]
        return X, recent[list(seq.COUNT_COLUMNS)].tail(L).to_numpy(dtype="float64")

    # -- out: network outputs -> counts ----------------------------------------------------

    def targets(
        self, windows: seq.Windows, target: str, scaler: MinMaxScaler, input_index: int
    ) -> np.ndarray:
        """The next-step training targets of ``windows`` (`seq.window_targets`)."""
        return seq.window_targets(windows, target, self.predict, scaler, input_index)

    def direct_targets(
        self, hw: hz.HorizonWindows, k: int, scaler: MinMaxScaler, input_index: int
    ) -> np.ndarray:
        """The direct multi-horizon training targets (`hz.direct_targets`)."""
        lo, rng = seq.column_scale(scaler, input_index)
        return hz.direct_targets(hw, k, self.predict, lo, rng)

    def counts(
        self, scaled: np.ndarray, levels: np.ndarray, scaler: MinMaxScaler, input_index: int
    ) -> np.ndarray:
        """Next-step network outputs back to counts, given each window's levels (n, L)."""
        return seq.predictions_to_counts(scaled, levels, self.predict, scaler, input_index)

    def direct_counts(
        self,
        outputs: np.ndarray,
        levels: np.ndarray,
        horizons: Sequence[int],
        scaler: MinMaxScaler,
        input_index: int,
    ) -> np.ndarray:
        """Direct outputs (n, n_h) back to counts at each horizon (`hz.direct_to_counts`)."""
        lo, rng = seq.column_scale(scaler, input_index)
        return hz.direct_to_counts(outputs, levels, horizons, self.predict, lo, rng)

    def round(self, counts: np.ndarray) -> np.ndarray:
        """Whole counts when the model rounds its forecasts."""
        return np.round(counts) if self.round_forecasts else counts

    def next_step_counts(
        self,
        outputs: np.ndarray,
        windows: seq.Windows,
        scaler: MinMaxScaler,
        k: int,
        input_index: int | None = None,
    ) -> np.ndarray:
        """A network's outputs for ``windows`` (n, n_h; column 0 is the next step, H = 1) as
        next-step counts of count column ``k``, rounded as the model rounds.

        The network is called by the caller (`models.lstm.predict_scaled`): features import
        no model code."""
        scaled = np.asarray(outputs, dtype="float64").reshape(len(windows), -1)[:, 0]
        index = k if input_index is None else input_index
        return self.round(self.counts(scaled, windows.levels[:, :, k], scaler, index))


__all__ = ["CONFIG_KEYS", "SAVED_DEFAULTS", "SequenceChain", "counts_as"]
