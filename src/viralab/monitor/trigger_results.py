"""What a trigger check says: one `Trigger` verdict per trigger, and the `CheckResult` of a
model against its champion.

Shared by both families' triggers, the refusal memory (`viralab.monitor.memory`), the
retrain and the CLI, so it sits below all of them and imports none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from viralab.analysis.drift import DriftReport
from viralab.errors import ViralabError
from viralab.registry.client import RunData
from viralab.tracking.tags import (
    RETRAIN_ALREADY_JUDGED,
    RETRAIN_BASIS,
    RETRAIN_CHAMPION_RUN_ID,
    RETRAIN_CHAMPION_VERSION,
    RETRAIN_LIVE_MAE_SOURCE,
    RETRAIN_MODEL,
    TRIGGER_PREFIX,
    TRIGGERS_FIRED,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

FIRED, QUIET, NOT_JUDGED, OFF = "fired", "quiet", "not judged", "off"


@dataclass(frozen=True)
class Trigger:
    """One trigger's verdict, with the figure it was judged on and the threshold it had."""

    name: str
    status: str  # fired | quiet | not judged | off
    figure: float | None
    figure_text: str
    threshold_text: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    unit: str = "number"  # how `figure` reads: count | delta | ratio | psi | days | flag
    #: not judged because the champion itself could not be scored (not for lack of data)
    cannot_judge: bool = False

    @property
    def fired(self) -> bool:
        return self.status == FIRED

    def figure_display(self) -> str:
        """The figure as the table shows it ("60", "+0.012", "+63%", "3.514", "8.2 d")."""
        v = self.figure
        if v is None or not math.isfinite(v):
            return "-"
        formats = {
            "count": f"{v:.0f}",
            "delta": f"{v:+.3f}",
            "ratio": f"{v:+.0%}",
            "psi": f"{v:.3f}",
            "days": f"{v:.1f} d",
            "flag": "yes" if v else "no",
        }
        return formats.get(self.unit, f"{v:.4g}")


def judged(
    name: str, fired: bool, figure: float, text: str, threshold: str, unit: str, **metrics: float
) -> Trigger:
    return Trigger(name, FIRED if fired else QUIET, figure, text, threshold, metrics, unit)


def not_judged(name: str, why: str, threshold: str) -> Trigger:
    return Trigger(name, NOT_JUDGED, None, why, threshold)


def unscorable(name: str, exc: Exception, threshold: str) -> Trigger:
    """Not judged because the champion itself failed to score the new data."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    why = f"the champion cannot score the new rows: {detail}"[:300]
    return Trigger(name, NOT_JUDGED, None, why, threshold, cannot_judge=True)


#: What a champion that cannot score the data raises (its pyfunc is not what its name says).
SCORING_ERRORS = (ViralabError, KeyError, AttributeError, TypeError, ValueError, IndexError)


def off_trigger(name: str) -> Trigger:
    return Trigger(name, OFF, None, "-", "off (null in conf/retrain/)")


@dataclass
class CheckResult:
    """Every trigger of one model against its champion, and what they were judged on."""

    model: str
    family: str
    champion: ModelVersion
    run: RunData
    triggers: list[Trigger]
    basis: str  # what "new" was measured against, in words
    checked_at: datetime
    recent: pd.DataFrame = field(default_factory=pd.DataFrame)
    cutoff: pd.Timestamp | None = None
    drift: DriftReport | None = None
    champion_model: Any = None  # the loaded pyfunc, reused by the retrain comparison
    #: a refused challenger already saw this data (`viralab.monitor.memory`), in words
    already_judged: str | None = None
    #: where the live MAE came from: "prediction_log" (what was served), "re-scored" (the
    #: champion scored the new ratings after the fact: no logged predictions with outcomes)
    live_source: str | None = None

    @property
    def fired(self) -> list[Trigger]:
        return [t for t in self.triggers if t.fired]

    @property
    def due(self) -> bool:
        """A trigger fired, and the data is not what a refused challenger already saw (the
        manual trigger retrains regardless)."""
        if self.already_judged and not any(t.name == "manual" for t in self.fired):
            return False
        return bool(self.fired)

    @property
    def cannot_judge(self) -> list[str]:
        """Why the champion could not be judged (`trigger: reason`); empty when it could."""
        return [f"{t.name}: {t.figure_text}" for t in self.triggers if t.cannot_judge]

    @property
    def challenges(self) -> str:
        """`<model>/v<version>`: the version a retrain would challenge."""
        return f"{self.model}/v{self.champion.version}"

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.triggers:
            if t.figure is not None and math.isfinite(t.figure):
                out[f"trigger.{t.name}"] = float(t.figure)
            out[f"trigger.{t.name}.fired"] = 1.0 if t.fired else 0.0
            out.update({k: float(v) for k, v in t.metrics.items() if math.isfinite(float(v))})
        return out

    def tags(self) -> dict[str, str]:
        tags = {f"{TRIGGER_PREFIX}{t.name}": t.status for t in self.triggers}
        tags.update(
            {
                TRIGGERS_FIRED: ",".join(t.name for t in self.fired) or "none",
                RETRAIN_MODEL: self.model,
                RETRAIN_CHAMPION_VERSION: str(self.champion.version),
                RETRAIN_CHAMPION_RUN_ID: self.run.run_id,
                RETRAIN_BASIS: self.basis[:500],
            }
        )
        if self.already_judged:
            tags[RETRAIN_ALREADY_JUDGED] = self.already_judged[:500]
        if self.live_source:
            tags[RETRAIN_LIVE_MAE_SOURCE] = self.live_source
        return tags


__all__ = [
    "FIRED",
    "NOT_JUDGED",
    "OFF",
    "QUIET",
    "SCORING_ERRORS",
    "CheckResult",
    "Trigger",
    "judged",
    "not_judged",
    "off_trigger",
    "unscorable",
]
