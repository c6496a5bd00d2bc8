"""A trigger check as MLflow records it: metrics `trigger.*`, tags `viralab.trigger.*`,
`triggers.json` and the drift report, in the active run or a small check run of its own."""

from __future__ import annotations

import math
from typing import Any

import mlflow

from viralab.analysis.drift import log_report
from viralab.monitor.retrain_settings import RetrainSettings
from viralab.monitor.trigger_results import CheckResult
from viralab.tracking import tracked_run
from viralab.tracking.tags import CHECKED_VERSION, RETRAIN_KIND


def triggers_table(result: CheckResult) -> list[dict[str, Any]]:
    return [
        {
            "trigger": t.name,
            "status": t.status,
            "figure": t.figure if t.figure is None or math.isfinite(t.figure) else None,
            "detail": t.figure_text,
            "threshold": t.threshold_text,
        }
        for t in result.triggers
    ]


def log_check(result: CheckResult) -> None:
    """The triggers (metrics, tags, `triggers.json`) and the drift report, to the active run."""
    mlflow.log_metrics(result.metrics())
    mlflow.set_tags(result.tags())
    mlflow.log_dict(
        {
            "model": result.model,
            "champion_version": str(result.champion.version),
            "checked_at": result.checked_at.isoformat(),
            "basis": result.basis,
            "fired": [t.name for t in result.fired],
            "triggers": triggers_table(result),
        },
        "triggers.json",
    )
    if result.drift is not None:
        log_report(result.drift)


def log_check_run(result: CheckResult, settings: RetrainSettings) -> str:
    """A small `retrain-check-<model>-<timestamp>` run holding the check; returns its id."""
    stamp = result.checked_at.strftime("%Y%m%d-%H%M%S")
    with tracked_run(
        experiment=settings.experiment,
        run_name=f"retrain-check-{result.model}-{stamp}",
        tags={CHECKED_VERSION: result.challenges, RETRAIN_KIND: "check"},
    ) as run:
        log_check(result)
        return run.info.run_id


__all__ = ["log_check", "log_check_run", "triggers_table"]
