"""Retrain triggers: is a registered model due for retraining, and by which figure?

The triggers of spec 000 §9 (preference) and spec 002 "Retraining Triggers" (forecasters),
judged against the model's active version (the champion) and the data the configured source
holds now. Thresholds live in `conf/retrain/default.yaml`, per registered model.

preference (spec 000 `RetrainTrigger`):

- `new_ratings`: usable ratings (the training extraction) rated after the newest rating the
  version trained on (its run's `viralab.data.max_rated_at` tag; runs logged before that tag
  existed fall back to the run's start time, the spec's `trained_at`); fires at >= 50;
- `performance_degradation`: the live MAE of what the champion actually served (its logged
  predictions in the prediction log, `viralab.monitor.live`, judged by the ratings that came
  after them; at least `min_scored` of them); without such predictions the champion re-scores
  the new ratings instead, and the trigger's text (and the `viralab.retrain.live_mae_source`
  tag) says so; fires when that live MAE is more than 0.05 above the test MAE its run logged;
- `feature_drift`: population stability index (PSI) per encoded feature, the new ratings
  against the training rows' distribution saved with the version (`drift/reference.json`);
  see `viralab.monitor.drift` for why a feature must also drift significantly.

forecasters (spec 002 `retraining_conditions`):

- `new_rows`: stats rows after the newest row the version trained on; fires at > 1000;
- `performance_degradation`: the champion forecasts every window whose target row is new;
  fires when that MAE (original units) is > 50 % above the test MAE its run logged;
- `schedule`: the champion's training run is more than 7 days old (the weekly schedule).

Every model also has `manual` (`--manual`, or `viralab retrain run --force`), and any model may
set `max_age_days`. Checking trains nothing: it reads the registry and the data and loads the
champion once to score the new rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig, OmegaConf

from viralab.errors import ConfigError, ViralabError
from viralab.monitor.drift import (
    MEASURE,
    REFERENCE_ARTIFACT,
    DriftReport,
    DriftSettings,
    compare,
)
from viralab.monitor.live import logged_live_mae
from viralab.registry.client import (
    RegistryError,
    RunData,
    get_client,
    load_json_artifact,
    registry_errors,
    require_model,
    run_data,
)
from viralab.registry.markers import RegistrySettings, holder

log = logging.getLogger(__name__)

FAMILIES = ("preference", "forecast")
#: The newest stats row a forecaster run trained on (ISO-8601 UTC), on the run that logged the
#: data (the `target=all` parent, or the single-target run). Until training logs it, the
#: count falls back to the current rows minus the run's `clean.rows_in` metric.
TAG_MAX_TIMESTAMP = "viralab.data.max_timestamp"
ROWS_IN_METRIC = "clean.rows_in"
PARENT_TAG = "mlflow.parentRunId"

FIRED, QUIET, NOT_JUDGED, OFF = "fired", "quiet", "not judged", "off"


# ------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------


def _optional(section: Mapping[str, Any], key: str, kind: type) -> Any:
    value = section.get(key)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"retrain: {key} must be a number or null, got {value!r}") from None


@dataclass(frozen=True)
class ModelTriggers:
    """One model's section of `retrain.models`; a None threshold turns its trigger off."""

    model: str
    family: str
    new_ratings: int | None = None
    new_rows: int | None = None
    mae_increase: float | None = None
    mae_increase_ratio: float | None = None
    min_scored: int = 10
    max_age_days: float | None = None
    drift: DriftSettings | None = None

    @classmethod
    def from_config(cls, model: str, section: Mapping[str, Any]) -> ModelTriggers:
        family = str(section.get("family", ""))
        if family not in FAMILIES:
            raise ConfigError(
                f"retrain.models.{model}.family must be one of {', '.join(FAMILIES)}, "
                f"got {family!r}"
            )
        drift = section.get("drift")
        return cls(
            model=model,
            family=family,
            new_ratings=_optional(section, "new_ratings", int),
            new_rows=_optional(section, "new_rows", int),
            mae_increase=_optional(section, "mae_increase", float),
            mae_increase_ratio=_optional(section, "mae_increase_ratio", float),
            min_scored=int(section.get("min_scored") or 1),
            max_age_days=_optional(section, "max_age_days", float),
            drift=DriftSettings.from_config(drift) if drift is not None else None,
        )


@dataclass(frozen=True)
class RetrainSettings:
    """`conf/retrain/*.yaml` as typed values."""

    experiment: str = "retraining"
    auto_promote: bool = False
    models: Mapping[str, ModelTriggers] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | DictConfig | None) -> RetrainSettings:
        if isinstance(section, DictConfig):
            section = OmegaConf.to_container(section, resolve=True)  # type: ignore[assignment]
        section = dict(section or {})
        models = {
            str(name): ModelTriggers.from_config(str(name), dict(body or {}))
            for name, body in (section.get("models") or {}).items()
        }
        return cls(
            experiment=str(section.get("experiment") or "retraining"),
            auto_promote=bool(section.get("auto_promote", False)),
            models=models,
        )

    def for_model(self, model: str) -> ModelTriggers:
        """Raises ConfigError naming the configured models when `model` is not one."""
        if model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(
                f"no retrain triggers configured for model {model!r} "
                f"(retrain.models in conf/retrain/); configured: {known}"
            )
        return self.models[model]


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------


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


def _judged(
    name: str, fired: bool, figure: float, text: str, threshold: str, unit: str, **metrics: float
) -> Trigger:
    return Trigger(name, FIRED if fired else QUIET, figure, text, threshold, metrics, unit)


def _not_judged(name: str, why: str, threshold: str) -> Trigger:
    return Trigger(name, NOT_JUDGED, None, why, threshold)


def _cannot_judge(name: str, exc: Exception, threshold: str) -> Trigger:
    """Not judged because the champion itself failed to score the new data."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    why = f"the champion cannot score the new rows: {detail}"[:300]
    return Trigger(name, NOT_JUDGED, None, why, threshold, cannot_judge=True)


#: What a champion that cannot score the data raises (its pyfunc is not what its name says).
SCORING_ERRORS = (ViralabError, KeyError, AttributeError, TypeError, ValueError, IndexError)


def _off(name: str) -> Trigger:
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
        tags = {f"viralab.trigger.{t.name}": t.status for t in self.triggers}
        tags.update(
            {
                "viralab.triggers_fired": ",".join(t.name for t in self.fired) or "none",
                "viralab.retrain.model": self.model,
                "viralab.retrain.champion_version": str(self.champion.version),
                "viralab.retrain.champion_run_id": self.run.run_id,
                "viralab.retrain.basis": self.basis[:500],
            }
        )
        if self.already_judged:
            tags["viralab.retrain.already_judged"] = self.already_judged[:500]
        if self.live_source:
            tags["viralab.retrain.live_mae_source"] = self.live_source
        return tags


# ------------------------------------------------------------------------------------------
# Champion and its run
# ------------------------------------------------------------------------------------------


def champion_of(
    client: MlflowClient, registry: RegistrySettings, model: str
) -> tuple[ModelVersion, RunData]:
    """The active version of `model` and its training run.

    Raises:
        RegistryError: unknown model, no champion, or a champion without a run.
    """
    require_model(client, model)
    version = holder(client, registry, model, "champion")
    if version is None:
        raise RegistryError(
            f"model {model!r} has no active version ({registry.describe('champion')}): nothing "
            f"to check against; promote one: viralab registry promote {model} <version> "
            "--to champion"
        )
    run = run_data(client, version.run_id)
    if run is None:
        raise RegistryError(
            f"{model} version {version.version} has no training run: its data cannot be known"
        )
    return version, run


def lineage(client: MlflowClient, run: RunData) -> list[RunData]:
    """The run, then its parent (a `target=all` child logs no data tags itself)."""
    runs = [run]
    parent_id = run.tags.get(PARENT_TAG)
    if parent_id:
        parent = run_data(client, parent_id)
        if parent is not None:
            runs.append(parent)
    return runs


def _first(runs: list[RunData], getter: Any) -> Any:
    for r in runs:
        value = getter(r)
        if value is not None:
            return value
    return None


def _parse_time(text: str | None) -> pd.Timestamp | None:
    if not text:
        return None
    stamp = pd.to_datetime(text, utc=True, errors="coerce")
    return None if pd.isna(stamp) else stamp


def _run_started(run: RunData) -> pd.Timestamp | None:
    return pd.Timestamp(run.start_time, unit="ms", tz="UTC") if run.start_time else None


def _parse_stamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


# ------------------------------------------------------------------------------------------
# Shared triggers
# ------------------------------------------------------------------------------------------


def schedule_trigger(mt: ModelTriggers, run: RunData, now: datetime) -> Trigger:
    name = "schedule"
    if mt.max_age_days is None:
        return _off(name)
    threshold = f"> {mt.max_age_days:g} days"
    started = _run_started(run)
    if started is None:
        return _not_judged(name, "the champion's run has no start time", threshold)
    age = (pd.Timestamp(now) - started).total_seconds() / 86400.0
    text = f"champion trained {age:.1f} days ago ({started:%Y-%m-%d %H:%M} UTC)"
    return _judged(name, age > mt.max_age_days, age, text, threshold, "days")


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
        return _not_judged(name, "the champion's run logged no mae", threshold)
    extra = {f"trigger.{name}.live_mae": live_mae, f"trigger.{name}.logged_mae": recorded}
    if relative:
        if recorded <= 0:
            return _not_judged(name, f"logged mae is {recorded:g}: no ratio", threshold)
        ratio = live_mae / recorded - 1.0
        text = f"live MAE {live_mae:.4g} vs logged {recorded:.4g} ({ratio:+.0%}) on {n} {unit}"
        return _judged(
            name, ratio > mt.mae_increase_ratio, ratio, text, threshold, "ratio", **extra
        )
    delta = live_mae - recorded
    text = f"live MAE {live_mae:.3f} vs logged {recorded:.3f} ({delta:+.3f}) on {n} {unit}"
    return _judged(name, delta > mt.mae_increase, delta, text, threshold, "delta", **extra)


# ------------------------------------------------------------------------------------------
# Preference
# ------------------------------------------------------------------------------------------


def rating_cutoff(run: RunData) -> tuple[pd.Timestamp | None, str]:
    """The newest `rated_at` the version trained on, and how it is known."""
    from viralab.families.preference.prepare import TAG_MAX_RATED_AT

    tagged = _parse_time(run.tags.get(TAG_MAX_RATED_AT))
    if tagged is not None:
        return tagged, f"rated after {tagged.isoformat()} (the champion's newest training rating)"
    started = _run_started(run)
    if started is not None:
        return started, (
            f"rated after {started.isoformat()} (the champion run's start: it has no "
            f"{TAG_MAX_RATED_AT} tag)"
        )
    return None, "no cutoff known: every usable rating counts as new"


def load_champion(version: ModelVersion) -> Any:
    """The champion's pyfunc (not cached: tests and long processes switch stores)."""
    import mlflow.pyfunc

    with registry_errors(f"loading {version.name} version {version.version}"):
        return mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")


def preference_predictions(pyfunc: Any, frame: pd.DataFrame) -> np.ndarray:
    """0-1 predictions of a preference pyfunc for the analysis column of `frame` (no SHAP)."""
    from viralab.features.tabular import ANALYSIS_COLUMN

    documents = frame[[ANALYSIS_COLUMN]].reset_index(drop=True)
    inner = pyfunc.unwrap_python_model()
    if hasattr(inner, "score"):
        return inner.score(documents, with_factors=False)["prediction"].to_numpy(dtype=float)
    from viralab.registry.evaluation import predictions
    from viralab.serve.prediction_log import suppressed

    with suppressed():  # re-scoring after the fact is not serving: keep it out of the log
        return predictions(pyfunc.predict(documents))


def recent_ratings(cfg: DictConfig, cutoff: pd.Timestamp | None) -> tuple[pd.DataFrame, int]:
    """Usable ratings rated after `cutoff` (all when None), and how many had no parseable
    `rated_at` (never counted as new)."""
    from viralab.families.preference.prepare import dimension_names, extract_usable, records_frame

    records, _ = extract_usable(cfg)
    frame = records_frame(records, dimension_names(cfg))
    if frame.empty:
        return frame, 0
    stamps = _parse_stamps(frame["rated_at"])
    unknown = int(stamps.isna().sum())
    if cutoff is None:
        return frame, unknown
    return frame[stamps > cutoff].reset_index(drop=True), unknown


def drift_of(
    pyfunc: Any, reference: Mapping[str, Any], recent: pd.DataFrame, settings: DriftSettings
) -> DriftReport | None:
    """The drift report of the new ratings, encoded by the champion's own `features` step;
    None when the champion is not a preference pipeline."""
    from viralab.features.tabular import ANALYSIS_COLUMN

    try:
        encoder = pyfunc.unwrap_python_model().pipeline.named_steps["features"]
    except (AttributeError, KeyError):
        return None
    return compare(reference, encoder, recent[[ANALYSIS_COLUMN]], settings)


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
        return _not_judged(name, why, threshold), None
    reference = load_json_artifact(client, run, REFERENCE_ARTIFACT)
    if not reference:
        why = f"the champion's run has no {REFERENCE_ARTIFACT} (trained before it was saved)"
        return _not_judged(name, why, threshold), None
    report = drift_of(pyfunc, reference, recent, settings)
    if report is None:
        return _not_judged(name, "the champion has no feature encoder to bin", threshold), None
    extra = {
        "trigger.feature_drift.n_drifting": float(len(report.drifting)),
        "trigger.feature_drift.share_drifting": report.share_drifting,
    }
    trigger = _judged(
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
    from viralab.families.preference.prepare import LABEL

    cutoff, basis = rating_cutoff(run)
    recent, unknown = recent_ratings(cfg, cutoff)
    n = len(recent)
    if unknown:
        basis += f"; {unknown} usable rating(s) without a parseable rated_at were not counted"
    triggers: list[Trigger] = []
    if mt.new_ratings is None:
        triggers.append(_off("new_ratings"))
    else:
        triggers.append(
            _judged(
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
        triggers.append(_off("performance_degradation"))
    elif logged is not None:  # what users were actually shown, judged by the ratings since
        live_source = "prediction_log"
        triggers.append(
            degradation_trigger(
                mt,
                logged[0],
                run.metrics.get("mae"),
                logged[1],
                "logged predictions with ratings (prediction log)",
            )
        )
    elif n < mt.min_scored:
        triggers.append(
            _not_judged(
                "performance_degradation",
                f"{n} new ratings < min_scored {mt.min_scored}",
                perf_threshold,
            )
        )
    else:
        try:
            pred = preference_predictions(pyfunc, recent)
        except SCORING_ERRORS as exc:
            triggers.append(_cannot_judge("performance_degradation", exc, perf_threshold))
        else:
            live = float(np.mean(np.abs(pred - recent[LABEL].to_numpy(dtype=float))))
            live_source = "re-scored"
            unit = f"new ratings (re-scored by the champion: {why_not_logged})"
            triggers.append(degradation_trigger(mt, live, run.metrics.get("mae"), n, unit))

    drift_report = None
    if drift_settings is None:
        triggers.append(_off("feature_drift"))
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


# ------------------------------------------------------------------------------------------
# Forecasters
# ------------------------------------------------------------------------------------------


def stats_cutoff(
    client: MlflowClient, run: RunData, stats: pd.DataFrame
) -> tuple[pd.Timestamp | None, int | None, str]:
    """The newest row the version trained on, the number of new rows, and how it is known."""
    runs = lineage(client, run)
    tagged = _first(runs, lambda r: _parse_time(r.tags.get(TAG_MAX_TIMESTAMP)))
    stamps = pd.to_datetime(stats["timestamp"], utc=True)
    if tagged is not None:
        n_new = int((stamps > tagged).sum())
        return tagged, n_new, f"rows after {tagged.isoformat()} ({TAG_MAX_TIMESTAMP})"
    rows_in = _first(runs, lambda r: r.metrics.get(ROWS_IN_METRIC))
    if rows_in is None:
        return None, None, f"the run logged neither {TAG_MAX_TIMESTAMP} nor {ROWS_IN_METRIC}"
    n_new = max(0, len(stats) - int(rows_in))
    ordered = stamps.sort_values(kind="stable")
    cutoff = ordered.iloc[-n_new - 1] if 0 < n_new < len(ordered) else None
    if n_new == 0:
        cutoff = ordered.iloc[-1] if len(ordered) else None
    basis = (
        f"current rows {len(stats)} minus the {int(rows_in)} the run loaded ({ROWS_IN_METRIC}; "
        f"no {TAG_MAX_TIMESTAMP} tag: the newest {n_new} rows are taken as the new ones)"
    )
    return cutoff, n_new, basis


def forecast_recent_mae(
    pyfunc: Any, stats: pd.DataFrame, cutoff: pd.Timestamp
) -> tuple[float, int]:
    """MAE (original units) of the champion forecaster on every window whose target row is
    after `cutoff`, its inputs taken from whatever rows precede it; and the window count.

    Batched through the network the pyfunc wraps (one call per 1024 windows) rather than
    `predict` (one call per video per step): the same cleaning, inputs, scaler and count
    conversion as training's test evaluation.
    """
    from viralab.features import sequence as seq
    from viralab.models.lstm import predict_scaled

    inner = pyfunc.unwrap_python_model()
    settings = inner.settings
    L = int(settings["sequence_length"])
    clean, _ = seq.clean_stats(
        stats,
        sequence_length=L,
        frequency=settings.get("frequency", "1min"),
        max_gap_steps=int(settings.get("max_gap_steps", 5)),
    )
    inputs = seq.model_inputs(
        clean, settings["counts_as"], bool(settings.get("time_features", False))
    )
    scaled = seq.scale_inputs(inputs, inner.scaler)
    parts = pd.Series(np.where(clean["timestamp"] > cutoff, "test", "fit"), index=clean.index)
    windows = seq.make_windows(clean, scaled, parts, L)["test"]
    if len(windows) == 0:
        return float("nan"), 0
    k = seq.COUNT_COLUMNS.index(settings["target_column"])
    counts = seq.predictions_to_counts(
        # the network answers every horizon; its first output is the next step (H = 1)
        predict_scaled(inner.network, windows.X, n_outputs=1)[:, 0],
        windows.levels[:, :, k],
        settings["predict"],
        inner.scaler,
        int(settings["input_index"]),
    )
    if settings.get("round_forecasts", False):
        counts = np.round(counts)
    return float(np.mean(np.abs(counts - windows.next_levels[:, k]))), len(windows)


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
    from viralab.data.sources import load_stats

    stats = load_stats(cfg.data)
    cutoff, n_new, basis = stats_cutoff(client, run, stats)
    triggers: list[Trigger] = []
    if mt.new_rows is None:
        triggers.append(_off("new_rows"))
    elif n_new is None:
        triggers.append(_not_judged("new_rows", basis, f"> {mt.new_rows}"))
    else:
        triggers.append(
            _judged(
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
        triggers.append(_off("performance_degradation"))
    elif cutoff is None or not n_new:
        triggers.append(_not_judged("performance_degradation", "no new rows to score", threshold))
    else:
        try:
            pyfunc = load_champion(champion)
            live, n_windows = forecast_recent_mae(pyfunc, stats, cutoff)
        except SCORING_ERRORS as exc:
            triggers.append(_cannot_judge("performance_degradation", exc, threshold))
        else:
            if n_windows < mt.min_scored:
                triggers.append(
                    _not_judged(
                        "performance_degradation",
                        f"{n_windows} windows end in new rows < min_scored {mt.min_scored}",
                        threshold,
                    )
                )
            else:
                recorded = run.metrics.get("mae")
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


# ------------------------------------------------------------------------------------------
# Entry
# ------------------------------------------------------------------------------------------


def check(
    cfg: DictConfig,
    model: str,
    *,
    manual: bool = False,
    now: datetime | None = None,
    client: MlflowClient | None = None,
) -> CheckResult:
    """Judge every trigger of `model` against its champion on the configured data.

    Raises:
        ConfigError: `model` has no section in `retrain.models`, or a bad threshold.
        RegistryError: unknown model, no champion, or an unreachable store.
        DataError: the configured data cannot be read.
    """
    from viralab.tracking import configure_tracking

    configure_tracking(cfg)
    settings = RetrainSettings.from_config(cfg.get("retrain"))
    mt = settings.for_model(model)
    registry = RegistrySettings.from_config(
        OmegaConf.to_container(cfg.registry, resolve=True)  # type: ignore[arg-type]
    )
    client = client or get_client()
    champion, run = champion_of(client, registry, model)
    now = now or datetime.now(UTC)
    log.info("Checking retrain triggers of %s v%s", model, champion.version)
    judge = check_preference if mt.family == "preference" else check_forecast
    result = judge(cfg, mt, client, champion, run, manual=manual, now=now)
    from viralab.monitor.memory import judged_already

    refusal = judged_already(client, result)
    if refusal is not None:
        result.already_judged = refusal.describe()
    return result


__all__ = [
    "FIRED",
    "MEASURE",
    "NOT_JUDGED",
    "OFF",
    "QUIET",
    "CheckResult",
    "ModelTriggers",
    "RetrainSettings",
    "Trigger",
    "check",
]
