"""`viralab retrain run`: retrain a due model with its champion's logged config, register the
result as challenger through the registry's gates, compare both on the new data, and promote
only through the gates (and only when `retrain.auto_promote` is on).

Everything is recorded in MLflow, in the `retrain.experiment` ("retraining") experiment:

- a parent run `retrain-<model>-<UTC timestamp>`, tagged `viralab.challenges=<model>/v<N>`
  (the champion it challenges), holding the triggers (metrics `trigger.*`, tags
  `viralab.trigger.*`, `triggers.json`), the drift report (`drift/`), the comparison on the
  new data (`compare.*`, `comparison.json`) and the outcome (`viralab.retrain.outcome`:
  `challenger`, `champion` or `refused`, with the gate summaries);
- the training as its child run (`train_family()` inside an active run nests: the families' own
  training, the one training path);
- the new model version tagged `viralab.challenges` and `viralab.retrain_run_id`.

`viralab retrain check --log` records a check alone as a `retrain-check-<model>-<timestamp>`
run (triggers and drift report, no training).

Which config: the champion's logged `config.yaml` (resolved, with secrets redacted) is merged
onto a fresh compose of the current config, except `data`, `tracking`, `registry` and `retrain`,
which stay current: retraining runs on today's data and store, with secrets from today's
environment, and the redacted `***` values are dropped rather than trained with.

Layout: this module runs a retrain (`retrain`); the training config is planned in
`training_config`, the lock is `lock` (with `orphans` for what a killed retrain left), the
check is logged by `check_log`, the challenger check is `challenger_check`, and the training
itself is the family's (`viralab.training`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from viralab.monitor.challenger_check import Comparison, compare_forecast, compare_preference
from viralab.monitor.check_log import log_check, log_check_run
from viralab.monitor.lock import retrain_lock
from viralab.monitor.memory import record_refusal
from viralab.monitor.orphans import close_orphans
from viralab.monitor.retrain_settings import RetrainSettings
from viralab.monitor.training_config import (
    RetrainError,
    allowed_targets,
    ignored_overrides,
    logged_config,
    training_config,
    without_redacted,
)
from viralab.monitor.trigger_results import CheckResult
from viralab.monitor.triggers import check
from viralab.promotion.promote import PromotionRefused, promote
from viralab.registry.client import get_client, registry_errors
from viralab.registry.gates import GateReport
from viralab.registry.markers import RegistrySettings
from viralab.tracking import tracked_run
from viralab.tracking.log import log_dict, log_metrics, set_tag, set_tags
from viralab.tracking.tags import (
    CHALLENGES,
    RETRAIN_AUTO_PROMOTE,
    RETRAIN_CHALLENGER_GATES,
    RETRAIN_CHAMPION_GATES,
    RETRAIN_CONFIG_FROM_RUN,
    RETRAIN_DATA_DIGEST,
    RETRAIN_FORCED,
    RETRAIN_KIND,
    RETRAIN_MODEL,
    RETRAIN_NOTES,
    RETRAIN_OUTCOME,
    RETRAIN_RUN_ID,
    RETRAIN_VERSION,
)
from viralab.training import train_family

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)


SKIPPED, REFUSED, CHALLENGER, CHAMPION = "skipped", "refused", "challenger", "champion"


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

    result = check(cfg, model, manual=force, now=now, client=client)
    settings = RetrainSettings.from_config(cfg.get("retrain"))
    auto = settings.auto_promote if auto_promote is None else bool(auto_promote)
    outcome = RetrainOutcome(result, auto_promote=auto)
    if not result.due:
        return outcome
    registry = RegistrySettings.from_config(cfg.registry)
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
            CHALLENGES: result.challenges,
            RETRAIN_KIND: "retrain",
            RETRAIN_MODEL: model,
            RETRAIN_CONFIG_FROM_RUN: config_run,
            RETRAIN_FORCED: str(force).lower(),
        },
    ) as parent:
        outcome.run_id = parent.info.run_id
        log_check(result)
        log.info("Retraining %s (triggers: %s) with the config of run %s", model, fired, config_run)
        train_family(train_cfg)
        version = trained_version(client, model, parent.info.run_id)
        outcome.version = str(version.version)
        with registry_errors(f"tagging {model} version {version.version}"):
            client.set_model_version_tag(model, outcome.version, CHALLENGES, result.challenges)
            client.set_model_version_tag(model, outcome.version, RETRAIN_RUN_ID, parent.info.run_id)
            client.set_tag(version.run_id, CHALLENGES, result.challenges)
        set_tag(RETRAIN_VERSION, outcome.version)

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
            set_tag(RETRAIN_DATA_DIGEST, refusal.data_digest)
        set_tag(RETRAIN_CHALLENGER_GATES, outcome.challenger_gates.summary())

        if result.cannot_judge:
            comparison = None
            outcome.notes.append("the champion cannot be scored: " + "; ".join(result.cannot_judge))
        elif result.family == "preference":
            comparison = compare_preference(client, result, version)
        else:
            comparison = compare_forecast(cfg, result, version)
        outcome.comparison = comparison
        if comparison is not None:
            log_metrics(comparison.metrics())
            log_dict(comparison.as_dict(), "comparison.json")
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
            set_tag(RETRAIN_CHAMPION_GATES, outcome.champion_gates.summary())
        set_tags({RETRAIN_OUTCOME: outcome.status, RETRAIN_AUTO_PROMOTE: str(auto)})
        if outcome.notes:
            set_tag(RETRAIN_NOTES, "; ".join(outcome.notes)[:5000])
    return outcome


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "REFUSED",
    "SKIPPED",
    "Comparison",
    "RetrainError",
    "RetrainOutcome",
    "allowed_targets",
    "ignored_overrides",
    "log_check_run",
    "retrain",
    "training_config",
    "without_redacted",
]
