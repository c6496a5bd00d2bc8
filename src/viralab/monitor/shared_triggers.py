"""The triggers every family has: the schedule, the manual request, and the performance
degradation verdict (live MAE against the MAE the champion's run logged)."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd

from viralab.monitor.champion import run_started
from viralab.monitor.retrain_settings import ModelTriggers
from viralab.monitor.trigger_results import FIRED, QUIET, Trigger, judged, not_judged, off_trigger
from viralab.registry.client import RunData


def schedule_trigger(mt: ModelTriggers, run: RunData, now: datetime) -> Trigger:
    name = "schedule"
    if mt.max_age_days is None:
        return off_trigger(name)
    threshold = f"> {mt.max_age_days:g} days"
    started = run_started(run)
    if started is None:
        return not_judged(name, "the champion's run has no start time", threshold)
    age = (pd.Timestamp(now) - started).total_seconds() / 86400.0
    text = f"champion trained {age:.1f} days ago ({started:%Y-%m-%d %H:%M} UTC)"
    return judged(name, age > mt.max_age_days, age, text, threshold, "days")


def manual_trigger(manual: bool) -> Trigger:
    text = "requested (--manual / --force)" if manual else "not requested"
    status = FIRED if manual else QUIET
    return Trigger("manual", status, float(manual), text, "--manual / --force", unit="flag")


def degradation_threshold(mt: ModelTriggers) -> str | None:
    """The performance threshold in words; None when the trigger is off."""
    if mt.mae_increase_ratio is not None:
        return f"> +{mt.mae_increase_ratio:.0%} MAE"
    if mt.mae_increase is not None:
        return f"> +{mt.mae_increase:g} MAE"
    return None


def degradation_trigger(
    mt: ModelTriggers, live_mae: float, recorded: float | None, n: int, unit: str
) -> Trigger:
    """Live MAE against the run's logged `mae`: relative (`mae_increase_ratio`, when set) or
    absolute (`mae_increase`)."""
    name = "performance_degradation"
    relative = mt.mae_increase_ratio is not None
    threshold = degradation_threshold(mt) or "off"
    if recorded is None or not math.isfinite(recorded):
        return not_judged(name, "the champion's run logged no mae", threshold)
    extra = {f"trigger.{name}.live_mae": live_mae, f"trigger.{name}.logged_mae": recorded}
    if relative:
        if recorded <= 0:
            return not_judged(name, f"logged mae is {recorded:g}: no ratio", threshold)
        ratio = live_mae / recorded - 1.0
        text = f"live MAE {live_mae:.4g} vs logged {recorded:.4g} ({ratio:+.0%}) on {n} {unit}"
        return judged(name, ratio > mt.mae_increase_ratio, ratio, text, threshold, "ratio", **extra)
    delta = live_mae - recorded
    text = f"live MAE {live_mae:.3f} vs logged {recorded:.3f} ({delta:+.3f}) on {n} {unit}"
    return judged(name, delta > mt.mae_increase, delta, text, threshold, "delta", **extra)


__all__ = ["degradation_threshold", "degradation_trigger", "manual_trigger", "schedule_trigger"]
