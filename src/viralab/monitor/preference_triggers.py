"""The preference model's triggers (spec 000 `RetrainTrigger`): new ratings, performance
degradation (what the champion served, else re-scored) and feature drift."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from viralab.analysis.drift import DriftReport, DriftSettings, compare
from viralab.families import preference
from viralab.families.preference.prepare import (
    LABEL,
    dimension_names,
    extract_usable,
    records_frame,
)
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.monitor.champion import load_champion, parse_stamps, parse_time, run_started
from viralab.monitor.live import logged_live_mae
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
from viralab.registry.client import RunData, load_json_artifact
from viralab.tracking.tags import DATA_MAX_RATED_AT, DRIFT_REFERENCE_ARTIFACT, METRIC_MAE

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def rating_cutoff(run: RunData) -> tuple[pd.Timestamp | None, str]:
    """The newest `rated_at` the version trained on, and how it is known."""

    tagged = parse_time(run.tags.get(DATA_MAX_RATED_AT))
    if tagged is not None:
        return tagged, f"rated after {tagged.isoformat()} (the champion's newest training rating)"
    started = run_started(run)
    if started is not None:
        return started, (
            f"rated after {started.isoformat()} (the champion run's start: it has no "
            f"{DATA_MAX_RATED_AT} tag)"
        )
    return None, "no cutoff known: every usable rating counts as new"


def recent_ratings(cfg: DictConfig, cutoff: pd.Timestamp | None) -> tuple[pd.DataFrame, int]:
    """Usable ratings rated after `cutoff` (all when None), and how many had no parseable
    `rated_at` (never counted as new)."""

    records, _ = extract_usable(cfg)
    frame = records_frame(records, dimension_names(cfg))
    if frame.empty:
        return frame, 0
    stamps = parse_stamps(frame["rated_at"])
    unknown = int(stamps.isna().sum())
    if cutoff is None:
        return frame, unknown
    return frame[stamps > cutoff].reset_index(drop=True), unknown


def drift_trigger(
    client: MlflowClient,
    run: RunData,
    pyfunc: Any,
    recent: pd.DataFrame,
    settings: DriftSettings,
) -> tuple[Trigger, DriftReport | None]:
    """`feature_drift`: PSI of the new ratings against the run's `drift/reference.json`."""
    name, threshold = "feature_drift", settings.describe()
    if len(recent) < settings.min_rows:
        why = f"{len(recent)} new ratings < min_rows {settings.min_rows}"
        return not_judged(name, why, threshold), None
    reference = load_json_artifact(client, run, DRIFT_REFERENCE_ARTIFACT)
    if not reference:
        why = f"the champion's run has no {DRIFT_REFERENCE_ARTIFACT} (trained before it was saved)"
        return not_judged(name, why, threshold), None
    encoder = preference.drift_features(pyfunc)
    if encoder is None:
        return not_judged(name, "the champion has no feature encoder to bin", threshold), None
    report = compare(reference, encoder, recent[[ANALYSIS_COLUMN]], settings)
    extra = {
        "trigger.feature_drift.n_drifting": float(len(report.drifting)),
        "trigger.feature_drift.share_drifting": report.share_drifting,
    }
    trigger = judged(
        name, report.fired, report.max_psi, report.figure_text(), threshold, "psi", **extra
    )
    return trigger, report


def check_preference(
    cfg: DictConfig,
    mt: ModelTriggers,
    client: MlflowClient,
    champion: ModelVersion,
    run: RunData,
    *,
    manual: bool,
    now: datetime,
) -> CheckResult:

    cutoff, basis = rating_cutoff(run)
    recent, unknown = recent_ratings(cfg, cutoff)
    n = len(recent)
    if unknown:
        basis += f"; {unknown} usable rating(s) without a parseable rated_at were not counted"
    triggers: list[Trigger] = []
    if mt.new_ratings is None:
        triggers.append(off_trigger("new_ratings"))
    else:
        triggers.append(
            judged(
                "new_ratings",
                n >= mt.new_ratings,
                float(n),
                f"{n} new usable ratings",
                f">= {mt.new_ratings}",
                "count",
            )
        )

    drift_settings = mt.drift
    perf_threshold = degradation_threshold(mt)
    needs_model = (perf_threshold is not None and n >= mt.min_scored) or (
        drift_settings is not None and n >= drift_settings.min_rows
    )
    pyfunc = load_champion(champion) if needs_model else None

    logged, why_not_logged = (None, "")
    if perf_threshold is not None:
        logged, why_not_logged = logged_live_mae(mt.model, champion.version)
        if logged is not None and logged[1] < mt.min_scored:
            why_not_logged = f"{logged[1]} logged predictions with ratings < min_scored"
            logged = None
    live_source = None
    if perf_threshold is None:
        triggers.append(off_trigger("performance_degradation"))
    elif logged is not None:  # what users were actually shown, judged by the ratings since
        live_source = "prediction_log"
        triggers.append(
            degradation_trigger(
                mt,
                logged[0],
                run.metrics.get(METRIC_MAE),
                logged[1],
                "logged predictions with ratings (prediction log)",
            )
        )
    elif n < mt.min_scored:
        triggers.append(
            not_judged(
                "performance_degradation",
                f"{n} new ratings < min_scored {mt.min_scored}",
                perf_threshold,
            )
        )
    else:
        try:
            pred = preference.score_recent(pyfunc, recent)
        except SCORING_ERRORS as exc:
            triggers.append(unscorable("performance_degradation", exc, perf_threshold))
        else:
            live = float(np.mean(np.abs(pred - recent[LABEL].to_numpy(dtype=float))))
            live_source = "re-scored"
            unit = f"new ratings (re-scored by the champion: {why_not_logged})"
            triggers.append(degradation_trigger(mt, live, run.metrics.get(METRIC_MAE), n, unit))

    drift_report = None
    if drift_settings is None:
        triggers.append(off_trigger("feature_drift"))
    else:
        drift, drift_report = drift_trigger(client, run, pyfunc, recent, drift_settings)
        triggers.append(drift)
    triggers.append(schedule_trigger(mt, run, now))
    triggers.append(manual_trigger(manual))
    return CheckResult(
        model=mt.model,
        family="preference",
        champion=champion,
        run=run,
        triggers=triggers,
        basis=basis,
        checked_at=now,
        recent=recent,
        cutoff=cutoff,
        drift=drift_report,
        champion_model=pyfunc,
        live_source=live_source,
    )


__all__ = ["check_preference", "drift_trigger", "rating_cutoff", "recent_ratings"]
