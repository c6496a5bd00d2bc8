"""The challenger check: champion and challenger scored on the same new data, after the
retrained version was registered (its verdict is logged beside the gates', not a gate)."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from viralab.data.sources import load_stats
from viralab.families import forecast, preference
from viralab.families.preference.prepare import LABEL
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.monitor.champion import load_champion
from viralab.monitor.trigger_results import CheckResult
from viralab.registry.client import registry_errors
from viralab.tracking.tags import TEST_SET_ARTIFACT

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger MAE on the same new data (and on the part the challenger
    held out, where there is one)."""

    n: int
    champion_mae: float
    challenger_mae: float
    n_heldout: int = 0
    champion_heldout_mae: float = float("nan")
    challenger_heldout_mae: float = float("nan")
    note: str = ""
    unit: str = "rows"

    def metrics(self) -> dict[str, float]:
        values = {
            "compare.n": float(self.n),
            "compare.champion_mae": self.champion_mae,
            "compare.challenger_mae": self.challenger_mae,
            "compare.n_heldout": float(self.n_heldout),
            "compare.heldout.champion_mae": self.champion_heldout_mae,
            "compare.heldout.challenger_mae": self.challenger_heldout_mae,
        }
        return {k: v for k, v in values.items() if math.isfinite(v)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "champion_mae": _finite(self.champion_mae),
            "challenger_mae": _finite(self.challenger_mae),
            "n_heldout": self.n_heldout,
            "heldout_champion_mae": _finite(self.champion_heldout_mae),
            "heldout_challenger_mae": _finite(self.challenger_heldout_mae),
            "unit": self.unit,
            "note": self.note,
        }

    def line(self) -> str:
        text = (
            f"on {self.n} new {self.unit}: champion MAE {self.champion_mae:.4g}, "
            f"challenger MAE {self.challenger_mae:.4g}"
        )
        if self.n_heldout:
            text += (
                f"; on the {self.n_heldout} the challenger held out: champion "
                f"{self.champion_heldout_mae:.4g}, challenger {self.challenger_heldout_mae:.4g}"
            )
        return text


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _heldout_documents(client: MlflowClient, run_id: str) -> set[str]:
    """The analysis texts of the challenger run's test part (`eval/test_set.parquet`)."""

    with registry_errors(f"listing eval artifacts of run {run_id}"):
        listed = {f.path for f in client.list_artifacts(run_id, "eval")}
    if TEST_SET_ARTIFACT not in listed:
        return set()
    with tempfile.TemporaryDirectory(prefix="viralab-eval-") as tmp:
        local = client.download_artifacts(run_id, TEST_SET_ARTIFACT, tmp)
        return set(pd.read_parquet(local)[ANALYSIS_COLUMN].astype(str))


def compare_preference(
    client: MlflowClient, result: CheckResult, challenger: ModelVersion
) -> Comparison | None:
    """Both versions score the new ratings. The challenger trained on most of them, so its
    MAE there is partly in-sample; the new ratings in its test part are new to both."""

    recent = result.recent
    if recent.empty:
        return None
    labels = recent[LABEL].to_numpy(dtype=float)
    champion_model = result.champion_model or load_champion(result.champion)
    champ = preference.score_recent(champion_model, recent)
    chall = preference.score_recent(load_champion(challenger), recent)
    heldout = (
        recent[ANALYSIS_COLUMN]
        .astype(str)
        .isin(_heldout_documents(client, challenger.run_id))
        .to_numpy()
    )
    k = int(heldout.sum())
    return Comparison(
        n=len(recent),
        champion_mae=float(np.mean(np.abs(champ - labels))),
        challenger_mae=float(np.mean(np.abs(chall - labels))),
        n_heldout=k,
        champion_heldout_mae=float(np.mean(np.abs(champ[heldout] - labels[heldout])))
        if k
        else float("nan"),
        challenger_heldout_mae=float(np.mean(np.abs(chall[heldout] - labels[heldout])))
        if k
        else float("nan"),
        note=(
            "the challenger trained on the new ratings outside its test part, so its MAE on "
            "all new ratings is optimistic; the held-out figures are new to both versions"
        ),
        unit="ratings",
    )


def compare_forecast(
    cfg: DictConfig, result: CheckResult, challenger: ModelVersion
) -> Comparison | None:
    """Both versions forecast every window whose target row is new."""

    if result.cutoff is None or result.recent.empty:
        return None
    stats = load_stats(cfg.data)
    champion_model = result.champion_model or load_champion(result.champion)
    champ, n = forecast.score_recent(champion_model, stats, after=result.cutoff)
    chall, _ = forecast.score_recent(load_champion(challenger), stats, after=result.cutoff)
    return Comparison(
        n=n,
        champion_mae=champ,
        challenger_mae=chall,
        note=(
            "windows whose target row is new; the challenger's chronological split tests on "
            "the last part of each video, so new rows are mostly outside its training part"
        ),
        unit="windows",
    )


__all__ = ["Comparison", "compare_forecast", "compare_preference"]
