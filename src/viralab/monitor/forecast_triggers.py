"""The forecasters' triggers (spec 002 `retraining_conditions`): new rows and performance
degradation on every window whose target row is new (plus the shared schedule/manual)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
from omegaconf import DictConfig

from viralab.data.sources import load_stats
from viralab.families import forecast
from viralab.monitor.champion import first_found, lineage, load_champion, parse_time
from viralab.monitor.retrain_settings import ModelTriggers
from viralab.monitor.shared_triggers import (
    degradation_threshold,
    degradation_trigger,
    manual_trigger,
    schedule_trigger,
)
from viralab.monitor.trigger_results import (
    SCORING_ERRORS,
    CheckResult,
    Trigger,
    judged,
    not_judged,
    off_trigger,
    unscorable,
)
from viralab.registry.client import RunData
from viralab.tracking.tags import DATA_MAX_TIMESTAMP, METRIC_CLEAN_ROWS_IN, METRIC_MAE

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def stats_cutoff(
    client: MlflowClient, run: RunData, stats: pd.DataFrame
) -> tuple[pd.Timestamp | None, int | None, str]:
    """The newest row the version trained on, the number of new rows, and how it is known."""
    runs = lineage(client, run)
    tagged = first_found(runs, lambda r: parse_time(r.tags.get(DATA_MAX_TIMESTAMP)))
    stamps = pd.to_datetime(stats["timestamp"], utc=True)
    if tagged is not None:
        n_new = int((stamps > tagged).sum())
        return tagged, n_new, f"rows after {tagged.isoformat()} ({DATA_MAX_TIMESTAMP})"
    rows_in = first_found(runs, lambda r: r.metrics.get(METRIC_CLEAN_ROWS_IN))
    if rows_in is None:
        return None, None, f"the run logged neither {DATA_MAX_TIMESTAMP} nor {METRIC_CLEAN_ROWS_IN}"
    n_new = max(0, len(stats) - int(rows_in))
    ordered = stamps.sort_values(kind="stable")
    cutoff = ordered.iloc[-n_new - 1] if 0 < n_new < len(ordered) else None
    if n_new == 0:
        cutoff = ordered.iloc[-1] if len(ordered) else None
    basis = (
        f"current rows {len(stats)} minus the {int(rows_in)} the run loaded "
        f"({METRIC_CLEAN_ROWS_IN}; no {DATA_MAX_TIMESTAMP} tag: the newest {n_new} rows are "
        "taken as the new ones)"
    )
    return cutoff, n_new, basis


def check_forecast(
    cfg: DictConfig,
    mt: ModelTriggers,
    client: MlflowClient,
    champion: ModelVersion,
    run: RunData,
    *,
    manual: bool,
    now: datetime,
) -> CheckResult:

    stats = load_stats(cfg.data)
    cutoff, n_new, basis = stats_cutoff(client, run, stats)
    triggers: list[Trigger] = []
    if mt.new_rows is None:
        triggers.append(off_trigger("new_rows"))
    elif n_new is None:
        triggers.append(not_judged("new_rows", basis, f"> {mt.new_rows}"))
    else:
        triggers.append(
            judged(
                "new_rows",
                n_new > mt.new_rows,
                float(n_new),
                f"{n_new} new rows",
                f"> {mt.new_rows}",
                "count",
            )
        )

    pyfunc = None
    threshold = degradation_threshold(mt)
    if threshold is None:
        triggers.append(off_trigger("performance_degradation"))
    elif cutoff is None or not n_new:
        triggers.append(not_judged("performance_degradation", "no new rows to score", threshold))
    else:
        try:
            pyfunc = load_champion(champion)
            live, n_windows = forecast.score_recent(pyfunc, stats, after=cutoff)
        except SCORING_ERRORS as exc:
            triggers.append(unscorable("performance_degradation", exc, threshold))
        else:
            if n_windows < mt.min_scored:
                triggers.append(
                    not_judged(
                        "performance_degradation",
                        f"{n_windows} windows end in new rows < min_scored {mt.min_scored}",
                        threshold,
                    )
                )
            else:
                recorded = run.metrics.get(METRIC_MAE)
                triggers.append(degradation_trigger(mt, live, recorded, n_windows, "new windows"))
    triggers.append(schedule_trigger(mt, run, now))
    triggers.append(manual_trigger(manual))
    recent = (
        stats if cutoff is None else stats[pd.to_datetime(stats["timestamp"], utc=True) > cutoff]
    )
    return CheckResult(
        model=mt.model,
        family="forecast",
        champion=champion,
        run=run,
        triggers=triggers,
        basis=basis,
        checked_at=now,
        recent=recent.reset_index(drop=True),
        cutoff=cutoff,
        champion_model=pyfunc,
    )


__all__ = ["check_forecast", "stats_cutoff"]
