"""`viralab retrain run`: retrain a due model with its champion's logged config, register the
result as challenger through the registry's gates, compare both on the new data, and promote
only through the gates (and only when `retrain.auto_promote` is on).

Everything is recorded in MLflow, in the `retrain.experiment` ("retraining") experiment:

- a parent run `retrain-<model>-<UTC timestamp>`, tagged `viralab.challenges=<model>/v<N>`
  (the champion it challenges), holding the triggers (metrics `trigger.*`, tags
  `viralab.trigger.*`, `triggers.json`), the drift report (`drift/`), the comparison on the
  new data (`compare.*`, `comparison.json`) and the outcome (`viralab.retrain.outcome`:
  `challenger`, `champion` or `refused`, with the gate summaries);
- the training as its child run (`train()` inside an active run nests), the one training path;
- the new model version tagged `viralab.challenges` and `viralab.retrain_run_id`.

`viralab retrain check --log` records a check alone as a `retrain-check-<model>-<timestamp>`
run (triggers and drift report, no training).

Which config: the champion's logged `config.yaml` (resolved, with secrets redacted) is merged
onto a fresh compose of the current config, except `data`, `tracking`, `registry` and `retrain`,
which stay current: retraining runs on today's data and store, with secrets from today's
environment, and the redacted `***` values are dropped rather than trained with.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig, OmegaConf

from viralab.config import compose, config_file
from viralab.errors import ConfigError, ViralabError
from viralab.monitor.champion_config import check_target, parse_champion_config
from viralab.monitor.drift import log_report
from viralab.monitor.lock import retrain_lock
from viralab.monitor.memory import record_refusal
from viralab.monitor.triggers import (
    CheckResult,
    RetrainSettings,
    check,
    forecast_recent_mae,
    lineage,
    load_champion,
    preference_predictions,
)
from viralab.redaction import is_redacted
from viralab.registry.client import RunData, get_client, registry_errors
from viralab.registry.gates import GateReport
from viralab.registry.markers import RegistrySettings
from viralab.tracking import tracked_run

log = logging.getLogger(__name__)

CONFIG_ARTIFACT = "config.yaml"
#: Sections that come from the current config, not from the champion's logged one.
CURRENT_SECTIONS = ("data", "tracking", "registry", "retrain", "hydra")
TAG_CHALLENGES = "viralab.challenges"
TAG_RETRAIN_RUN = "viralab.retrain_run_id"
TAG_OUTCOME = "viralab.retrain.outcome"

SKIPPED, REFUSED, CHALLENGER, CHAMPION = "skipped", "refused", "challenger", "champion"


class RetrainError(ViralabError):
    """Retraining could not produce a version to challenge with."""


# ------------------------------------------------------------------------------------------
# The champion's config
# ------------------------------------------------------------------------------------------


def logged_config(client: MlflowClient, run: RunData) -> tuple[str, str]:
    """The champion's `config.yaml` text and the id of the run that holds it (the version's
    run, or its parent for a `target=all` child).

    Raises:
        RetrainError: neither run logged a config.
    """
    for candidate in lineage(client, run):
        with registry_errors(f"listing artifacts of run {candidate.run_id}"):
            names = {f.path for f in client.list_artifacts(candidate.run_id)}
        if CONFIG_ARTIFACT not in names:
            continue
        with (
            registry_errors(f"downloading {CONFIG_ARTIFACT} of run {candidate.run_id}"),
            tempfile.TemporaryDirectory(prefix="viralab-config-") as tmp,
        ):
            local = client.download_artifacts(candidate.run_id, CONFIG_ARTIFACT, tmp)
            return Path(local).read_text(encoding="utf-8"), candidate.run_id
    raise RetrainError(
        f"the champion's run {run.run_id} (and its parent) logged no {CONFIG_ARTIFACT}: "
        "nothing to retrain with"
    )


def without_redacted(node: Any) -> Any:
    """A copy with every redacted value (`***`, or a URL with `:***@`) dropped, so the fresh
    config's value (from today's environment) applies instead."""
    if isinstance(node, Mapping):
        return {k: without_redacted(v) for k, v in node.items() if not is_redacted(v)}
    return node


def ignored_overrides(overrides: Sequence[str]) -> list[str]:
    """Overrides `run` does not apply: anything outside the current-config sections (the
    champion's logged config decides those)."""
    out = []
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key.split(".", 1)[0] not in CURRENT_SECTIONS:
            out.append(override)
    return out


def allowed_targets(cfg: DictConfig) -> list[str]:
    """`retrain.allowed_targets`: the classes a champion's config may name as `model._target_`."""
    section = cfg.get("retrain") or {}
    targets = section.get("allowed_targets")
    if targets is None:
        return []
    return [str(t) for t in targets]


def training_config(
    overrides: Sequence[str],
    logged_yaml: str,
    *,
    model: str,
    run_name: str,
    allowed: Sequence[str] | None = None,
) -> DictConfig:
    """The champion's logged config on a fresh compose of the current one (see module doc).

    The logged text is data from the artifact store: it is parsed through a schema and its
    `model._target_` must be on `allowed` (default: the current `retrain.allowed_targets`)
    before anything is merged (`viralab.monitor.champion_config`).

    The fresh compose picks the champion's model group (`model=<model.name>`) so the groups it
    pulls in (task, features) match; `register` is on and, for a forecaster, `target` is the
    one this registered model forecasts.

    Raises:
        UntrustedConfig: the logged config is not plain data or names a foreign `_target_`.
        ConfigError: training it would register a different model than `model`.
    """
    current = [o for o in overrides if o not in ignored_overrides(overrides)]
    if allowed is None:
        allowed = allowed_targets(compose(current))
    logged = parse_champion_config(logged_yaml, allowed)
    model_name = str((logged.get("model") or {}).get("name") or "")
    if model_name and config_file("model", f"{model_name}.yaml") is not None:
        current.insert(0, f"model={model_name}")
    fresh = compose(current)
    data = OmegaConf.to_container(fresh.data, resolve=True)  # today's data, pinned
    for section in CURRENT_SECTIONS:
        logged.pop(section, None)
    OmegaConf.set_struct(fresh, False)
    merged = OmegaConf.merge(fresh, without_redacted(logged))
    merged.data = data
    check_target(OmegaConf.to_container(merged.model, resolve=False), allowed)  # type: ignore[arg-type]
    merged.run_name = run_name
    merged.register = True
    task = merged.task
    if task.family == "forecast":
        prefix = str(task.registered_model_prefix)
        if not model.startswith(prefix):
            raise ConfigError(f"{model!r} is not a forecaster name ({prefix}<target>)")
        merged.target = model.removeprefix(prefix)
    elif str(task.get("registered_model")) != model:
        raise ConfigError(
            f"the champion's config registers {task.get('registered_model')!r}, not {model!r}"
        )
    return merged


# ------------------------------------------------------------------------------------------
# The comparison on the new data
# ------------------------------------------------------------------------------------------


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
    from viralab.features.tabular import ANALYSIS_COLUMN

    with registry_errors(f"listing eval artifacts of run {run_id}"):
        listed = {f.path for f in client.list_artifacts(run_id, "eval")}
    if "eval/test_set.parquet" not in listed:
        return set()
    with tempfile.TemporaryDirectory(prefix="viralab-eval-") as tmp:
        local = client.download_artifacts(run_id, "eval/test_set.parquet", tmp)
        return set(pd.read_parquet(local)[ANALYSIS_COLUMN].astype(str))


def compare_preference(
    client: MlflowClient, result: CheckResult, challenger: ModelVersion
) -> Comparison | None:
    """Both versions score the new ratings. The challenger trained on most of them, so its
    MAE there is partly in-sample; the new ratings in its test part are new to both."""
    from viralab.families.preference.prepare import LABEL
    from viralab.features.tabular import ANALYSIS_COLUMN

    recent = result.recent
    if recent.empty:
        return None
    labels = recent[LABEL].to_numpy(dtype=float)
    champion_model = result.champion_model or load_champion(result.champion)
    champ = preference_predictions(champion_model, recent)
    chall = preference_predictions(load_champion(challenger), recent)
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
    from viralab.data.sources import load_stats

    if result.cutoff is None or result.recent.empty:
        return None
    stats = load_stats(cfg.data)
    champion_model = result.champion_model or load_champion(result.champion)
    champ, n = forecast_recent_mae(champion_model, stats, result.cutoff)
    chall, _ = forecast_recent_mae(load_champion(challenger), stats, result.cutoff)
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


# ------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------


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
        tags={"viralab.checked_version": result.challenges, "viralab.retrain.kind": "check"},
    ) as run:
        log_check(result)
        return run.info.run_id


# ------------------------------------------------------------------------------------------
# Retrain
# ------------------------------------------------------------------------------------------


@dataclass
class RetrainOutcome:
    """What `retrain` did: skipped, or trained version `version` and where it ended up."""

    check: CheckResult
    status: str = SKIPPED  # skipped | refused | challenger | champion
    run_id: str | None = None
    version: str | None = None
    challenger_gates: GateReport | None = None
    champion_gates: GateReport | None = None
    comparison: Comparison | None = None
    auto_promote: bool = False
    notes: list[str] = field(default_factory=list)


def trained_version(client: MlflowClient, model: str, parent_run_id: str) -> ModelVersion:
    """The version of `model` that a child run of `parent_run_id` registered."""
    with registry_errors(f"finding the runs of retrain run {parent_run_id}"):
        parent = client.get_run(parent_run_id)
        children = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        )
        for child in children:
            versions = client.search_model_versions(f"run_id = '{child.info.run_id}'")
            mine = [v for v in versions if v.name == model]
            if mine:
                return max(mine, key=lambda v: int(v.version))
    raise RetrainError(
        f"training registered no version of {model} (under the milestones in task.milestones "
        "a model is trained only from enough ratings; see the child run)"
    )


def retrain(
    cfg: DictConfig,
    model: str,
    *,
    overrides: Sequence[str] = (),
    force: bool = False,
    auto_promote: bool | None = None,
    now: datetime | None = None,
    client: MlflowClient | None = None,
    lock_url: str | None = None,
) -> RetrainOutcome:
    """Check the triggers; when one fired (or `force`), retrain, register a challenger, compare
    and (opt-in) promote. See the module docstring for what is logged where.

    The whole of it holds the model's retrain lock (`viralab.monitor.lock`, in the database at
    `lock_url`, default the application database); retrain runs an earlier, killed retrain
    left RUNNING are closed as KILLED first.

    Args:
        cfg: the current config (data, tracking, registry, retrain).
        model: the registered model to retrain.
        overrides: the overrides `cfg` was composed with (the training config is composed
            again from them plus the champion's logged config).
        force: retrain even if no trigger fired (the `manual` trigger).
        auto_promote: promote a challenger that passes the gates; None: `retrain.auto_promote`.

    Raises:
        RetrainLocked: another retrain of `model` holds the lock.
        ViralabError: no champion, no logged config, training registered nothing, ...
    """
    client = client or get_client()
    with retrain_lock(model, lock_url) as held:
        log.info("Holding the retrain lock of %s (%s)", model, held)
        settings = RetrainSettings.from_config(cfg.get("retrain"))
        close_orphans(client, settings.experiment, model)
        return _retrain_locked(
            cfg,
            model,
            client,
            overrides=overrides,
            force=force,
            auto_promote=auto_promote,
            now=now or datetime.now(UTC),
        )


def close_orphans(client: MlflowClient, experiment: str, model: str) -> list[str]:
    """Retrain runs of `model` still RUNNING while we hold its lock were killed mid-way: mark
    them KILLED (outcome `killed`), and tag a version one of them registered but never
    finished with `viralab.retrain.abandoned`, so nothing looks half-done. Returns their ids."""
    with registry_errors(f"looking for interrupted retrains of {model}"):
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return []
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=(
                f"tags.`viralab.retrain.model` = '{model}' and attributes.status = 'RUNNING' "
                "and tags.`viralab.retrain.kind` = 'retrain'"
            ),
        )
        closed = []
        for run in runs:
            run_id = run.info.run_id
            children = client.search_runs(
                [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
            )
            for child in children:
                if child.info.status == "RUNNING":
                    client.set_terminated(child.info.run_id, "KILLED")
                for found in client.search_model_versions(f"run_id = '{child.info.run_id}'"):
                    if found.name != model:
                        continue
                    v = client.get_model_version(model, str(found.version))  # search: no aliases
                    if not v.aliases:
                        client.set_model_version_tag(
                            model, str(v.version), "viralab.retrain.abandoned", run_id
                        )
            client.set_tag(run_id, TAG_OUTCOME, "killed")
            client.set_terminated(run_id, "KILLED")
            closed.append(run_id)
            log.warning("Closed retrain run %s of %s as KILLED (interrupted)", run_id, model)
    return closed


def _retrain_locked(
    cfg: DictConfig,
    model: str,
    client: MlflowClient,
    *,
    overrides: Sequence[str],
    force: bool,
    auto_promote: bool | None,
    now: datetime,
) -> RetrainOutcome:
    from viralab.registry.promotion import PromotionRefused, promote
    from viralab.train import train

    result = check(cfg, model, manual=force, now=now, client=client)
    settings = RetrainSettings.from_config(cfg.get("retrain"))
    auto = settings.auto_promote if auto_promote is None else bool(auto_promote)
    outcome = RetrainOutcome(result, auto_promote=auto)
    if not result.due:
        return outcome
    registry = RegistrySettings.from_config(
        OmegaConf.to_container(cfg.registry, resolve=True)  # type: ignore[arg-type]
    )
    logged_yaml, config_run = logged_config(client, result.run)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    train_cfg = training_config(
        overrides,
        logged_yaml,
        model=model,
        run_name=f"{model}-retrain-{stamp}",
        allowed=allowed_targets(cfg),
    )
    fired = ",".join(t.name for t in result.fired)
    ignored = ignored_overrides(overrides)
    if ignored:
        outcome.notes.append(
            f"ignored override(s) {' '.join(ignored)}: retraining repeats the champion's config"
        )
    with tracked_run(
        experiment=settings.experiment,
        run_name=f"retrain-{model}-{stamp}",
        tags={
            TAG_CHALLENGES: result.challenges,
            "viralab.retrain.kind": "retrain",
            "viralab.retrain.model": model,
            "viralab.retrain.config_from_run": config_run,
            "viralab.retrain.forced": str(force).lower(),
        },
    ) as parent:
        outcome.run_id = parent.info.run_id
        log_check(result)
        log.info("Retraining %s (triggers: %s) with the config of run %s", model, fired, config_run)
        train(train_cfg)
        version = trained_version(client, model, parent.info.run_id)
        outcome.version = str(version.version)
        with registry_errors(f"tagging {model} version {version.version}"):
            client.set_model_version_tag(model, outcome.version, TAG_CHALLENGES, result.challenges)
            client.set_model_version_tag(
                model, outcome.version, TAG_RETRAIN_RUN, parent.info.run_id
            )
            client.set_tag(version.run_id, TAG_CHALLENGES, result.challenges)
        mlflow.set_tag("viralab.retrain.version", outcome.version)

        reason = f"retrained by {parent.info.run_name} (triggers: {fired})"
        try:
            done = promote(
                client,
                registry,
                model,
                outcome.version,
                "challenger",
                reason=reason,
                source="retrain",
            )
            outcome.challenger_gates = done.report
            outcome.status = CHALLENGER
        except PromotionRefused as exc:
            outcome.challenger_gates = exc.report
            outcome.status = REFUSED
            refusal = record_refusal(
                client, result, outcome.version, outcome.challenger_gates.summary()
            )
            mlflow.set_tag("viralab.retrain.data_digest", refusal.data_digest)
        mlflow.set_tag("viralab.retrain.challenger_gates", outcome.challenger_gates.summary())

        if result.cannot_judge:
            comparison = None
            outcome.notes.append("the champion cannot be scored: " + "; ".join(result.cannot_judge))
        elif result.family == "preference":
            comparison = compare_preference(client, result, version)
        else:
            comparison = compare_forecast(cfg, result, version)
        outcome.comparison = comparison
        if comparison is not None:
            mlflow.log_metrics(comparison.metrics())
            mlflow.log_dict(comparison.as_dict(), "comparison.json")
        else:
            outcome.notes.append("no new data: champion and challenger were not compared on it")

        if outcome.status == CHALLENGER and auto:
            try:
                done = promote(
                    client,
                    registry,
                    model,
                    outcome.version,
                    "champion",
                    reason=f"auto-promoted: {reason} (retrain.auto_promote)",
                    source="retrain",
                )
                outcome.champion_gates = done.report
                outcome.status = CHAMPION
            except PromotionRefused as exc:
                outcome.champion_gates = exc.report
            mlflow.set_tag("viralab.retrain.champion_gates", outcome.champion_gates.summary())
        mlflow.set_tags({TAG_OUTCOME: outcome.status, "viralab.retrain.auto_promote": str(auto)})
        if outcome.notes:
            mlflow.set_tag("viralab.retrain.notes", "; ".join(outcome.notes)[:5000])
    return outcome


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "REFUSED",
    "SKIPPED",
    "Comparison",
    "RetrainError",
    "RetrainOutcome",
    "log_check_run",
    "retrain",
    "training_config",
]
