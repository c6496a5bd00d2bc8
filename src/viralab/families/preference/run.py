"""The preference model's one extract -> decide -> fit -> log -> register path (spec 000 §2-8).

`train_preference(cfg)` (exported as the family's `train`) is what `python -m viralab.train
model=ridge`, `mlflow run . -P model=ridge`, sweeps and retraining all call. The callers'
compute is looked up here (`load_preference_data`, `fit_preference`): a benchmark that times
it patches this module.
"""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from viralab.analysis.correlation import CorrelationReport
from viralab.data.extraction import ExtractionReport
from viralab.errors import ConfigError, DataError
from viralab.families.preference.fit import analyze_preference, fit_preference
from viralab.families.preference.log import (
    default_run_name,
    log_correlations,
    log_dataset,
    log_preference,
)
from viralab.families.preference.milestones import (
    TrainingDecision,
    decide_training,
    milestones_from_config,
)
from viralab.families.preference.prepare import (
    LABEL,
    dimension_names,
    extract_usable,
    records_frame,
)
from viralab.families.registration import RegistrationHook, after_registration
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.registry.holdout import hold_out_gate_ratings
from viralab.tracking import (
    held_writes,
    log_config,
    log_metrics,
    set_tags,
    tracked_run,
)
from viralab.tracking.tags import EXTRACTION, FAMILY, FORCE_TRAIN, MILESTONE, MODEL, NOTE, STAGE

log = logging.getLogger(__name__)


def load_preference_data(cfg: DictConfig) -> tuple[pd.DataFrame, ExtractionReport]:
    """Extract usable ratings into a frame; fail if none."""
    kept, report = extract_usable(cfg)
    kept = hold_out_gate_ratings(cfg, kept, report)  # the frozen gate set is never trained on
    log.info("Extraction: %s", report.summary())
    if not kept:
        raise DataError(f"no usable ratings after extraction: {report.summary()}")
    return records_frame(kept, dimension_names(cfg)), report


def training_decision(cfg: DictConfig, n_ratings: int) -> TrainingDecision:
    milestones = milestones_from_config(
        OmegaConf.to_container(cfg.task.milestones) if cfg.task.milestones else None
    )
    return decide_training(n_ratings, bool(cfg.task.force_train), milestones)


def _print_correlations(report: CorrelationReport) -> None:
    s = report.summary
    print(
        f"correlations on {report.n} ratings: expected features found "
        f"{s['found']}/{s['expected']}, "
        f"sign as expected {s['sign_ok']}/{s['expected']}, significant {s['significant']}"
    )


def train_preference(
    cfg: DictConfig, on_registered: RegistrationHook | None = None
) -> dict[str, float]:
    """Extract, decide (§8), then analyse only or fit, evaluate, log and register one model.
    `on_registered`: called with the version registered (see `families.registration`).

    Returns the run's metrics (correlation counts only when no model was trained).
    """
    if cfg.get("register", True) and not cfg.get("log_model", True):
        raise ConfigError("register=true needs log_model=true (nothing to register otherwise)")
    frame, report = load_preference_data(cfg)
    decision = training_decision(cfg, len(frame) + report.held_back)  # gate rows count too
    print(f"extraction: {report.summary()}")
    print(f"milestone {decision.milestone}: {decision.reason}")
    with (
        tracked_run(
            experiment=cfg.task.experiment,
            run_name=default_run_name(cfg),
            tags={
                FAMILY: "preference",
                MODEL: cfg.model.name,
                MILESTONE: decision.milestone,
                STAGE: "trained" if decision.train else "correlation_only",
                EXTRACTION: report.summary(),
            },
        ),
        held_writes(),
    ):
        log_config(cfg)
        if decision.forced:
            set_tags({FORCE_TRAIN: "true"})
        if not decision.train:
            set_tags({NOTE: decision.reason})
            correlations = analyze_preference(
                cfg, frame[[ANALYSIS_COLUMN]], frame[LABEL].to_numpy()
            )
            log_metrics({**report.as_metrics(), "n_ratings": float(len(frame))})
            log_dataset(cfg, frame)
            log_correlations(correlations)
            _print_correlations(correlations)
            print("no model trained (correlation analysis only)")
            return {**correlations.metrics(), "n_ratings": float(len(frame))}
        log.info("Training %s on %d ratings", cfg.model.name, len(frame))
        result = fit_preference(cfg, frame)
        version = log_preference(cfg, result, frame, report)
        after_registration(cfg, str(cfg.task.registered_model), version, on_registered)
        m, v = result.metrics, result.verdict
        if result.correlations is not None:
            _print_correlations(result.correlations)
        cv = f" CV MAE={m['cv_mae']:.3f}±{m['cv_mae_std']:.3f}" if "cv_mae" in m else ""
        print(
            f"{cfg.model.name}: MAE={m['mae']:.3f} RMSE={m['rmse']:.3f} R2={m['r2']:.3f}{cv} "
            f"(mean predictor MAE={m['baseline_mae']:.3f}); verdict {v['overall']} "
            f"(MAE {v['mae']}, R2 {v['r2']})"
            + (f"; registered {cfg.task.registered_model} v{version}" if version else "")
        )
    return result.metrics
