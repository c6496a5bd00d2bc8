"""Promotion, rollback and removal of the champion/challenger markers, with gates and a record.

Every move, from the CLI, a retrain or the MLflow UI (the server app), goes through
`promote` / `rollback` / `remove`, which check the gates and hand the move to
`events.record_change`: compare-and-set on the marker, one `registry_events` row, the move and
a mirror sync commit together or not at all. `rollback` reads that event history (the
version-tag trail was stale after a UI promotion). Convenience tags (`viralab.promoted_*`)
are still written on the version, inside the same transaction, for readers of the UI.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from viralab.promotion.evaluation import compare_with_champion
from viralab.promotion.events import Change, previous_holder, read_events, record_change
from viralab.promotion.evidence import write_version_evidence
from viralab.promotion.record import (
    Kind,
    Outcome,
    PromotionRefused,
    current_user,
    promotion_tags,
    require_reason,
    set_promotion_tags,
)
from viralab.registry.client import (
    RegistryError,
    registry_errors,
    require_model,
    resolve_version,
    run_data,
)
from viralab.registry.gates import GateReport, check_metrics
from viralab.registry.markers import TARGETS, RegistrySettings, Target, holder, mark
from viralab.tracking.tags import (
    PROMOTED_AT,
    PROMOTED_BY,
    PROMOTION_FLAGGED,
    PROMOTION_REASON,
    ROLLED_BACK_AT,
    ROLLED_BACK_BY,
    ROLLED_BACK_FROM,
    ROLLED_BACK_REASON,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)


def check_gates(
    client: MlflowClient,
    settings: RegistrySettings,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    *,
    compare: bool,
) -> GateReport:
    """The model's threshold/baseline gates, plus the champion comparison when `compare`."""
    run = run_data(client, candidate.run_id)
    report = check_metrics(
        run.metrics if run else {}, run.tags if run else {}, settings.gate_spec(candidate.name)
    )
    if run is None:
        report = report.extend([], [f"version {candidate.version} has no run: no metrics"])
    comparison = settings.champion_comparison
    if not compare or not comparison.enabled:
        return report
    if champion is None:
        return report.extend([], ["no current champion: nothing to compare with"])
    if str(champion.version) == str(candidate.version):
        return report
    result, notes = compare_with_champion(client, candidate, champion, comparison)
    return report.extend([result], notes)


def promote(
    client: MlflowClient,
    settings: RegistrySettings,
    model: str,
    ref: str | int,
    target: str,
    *,
    force: bool = False,
    reason: str | None = None,
    user: str | None = None,
    dry_run: bool = False,
    source: str = "cli",
    flag: bool = False,
    database_url: str | None = None,
) -> Outcome:
    """Make version `ref` (a number or an alias) of `model` the champion or the challenger.

    `flag` (the server's `warn` policy) lets failing gates through like `force`, and tags the
    version `viralab.promotion_flagged` instead of calling it an override.

    Raises:
        RegistryError: unknown model/version/alias/target, or `force` without a reason.
        PromotionRefused: a gate failed and neither `force` nor `flag` is set.
        MarkerMoved: the marker moved while the gates were checked (nothing changed).
    """
    if target not in TARGETS:
        raise RegistryError(f"unknown alias {target!r}: promote to {' or '.join(TARGETS)}")
    to = cast(Target, target)
    require_reason(force, reason)
    candidate = resolve_version(client, model, ref)
    version = str(candidate.version)
    current = holder(client, settings, model, to)
    if current is not None and str(current.version) == version:
        return Outcome(model, version, to, "promotion", version, changed=False)
    champion = current if to == "champion" else holder(client, settings, model, "champion")
    if to == "challenger" and champion is not None and str(champion.version) == version:
        raise RegistryError(
            f"{model} version {version} is the champion; it cannot also be the challenger"
        )
    report = check_gates(client, settings, candidate, champion, compare=to == "champion")
    previous = str(current.version) if current is not None else None
    overridden = (force or flag) and not report.passed
    if flag and not report.passed and not reason:
        reason = "let through with failing gates (registry.guard.policy=warn)"
    tags = promotion_tags(
        to, "promotion", report, force=force and not report.passed, reason=reason, user=user
    )
    if flag and not report.passed:
        flagged = f"{len(report.failures)} gate(s) failed: {report.summary()}"
        tags[PROMOTION_FLAGGED] = flagged[:5000]
    outcome = Outcome(
        model,
        version,
        to,
        "promotion",
        previous,
        report,
        forced=overridden,
        dry_run=dry_run,
        tags=tags,
    )
    if not report.passed and not (force or flag):
        raise PromotionRefused(model, version, to, report)
    if dry_run:
        return outcome
    change = Change(
        model=model,
        version=int(version),
        marker=settings.marker(to),
        kind="promotion",
        expected=None if previous is None else int(previous),
        to_version=int(version),
        actor=tags[PROMOTED_BY],
        source=source,
        report=report,
        reason=tags[PROMOTION_REASON],
        forced=overridden,
    )

    def move() -> None:
        mark(client, settings, candidate, to)
        set_promotion_tags(client, candidate, tags)

    event_id = record_change(client, settings, change, move, database_url=database_url)
    refresh_evidence(client, settings, model, version, report)
    return replace(outcome, event_id=event_id)


def rollback(
    client: MlflowClient,
    settings: RegistrySettings,
    model: str,
    *,
    force: bool = False,
    reason: str | None = None,
    user: str | None = None,
    dry_run: bool = False,
    source: str = "cli",
    database_url: str | None = None,
) -> Outcome:
    """Give `champion` back to the version the current champion replaced (event history).

    The threshold gates still apply (a tightened gate may now refuse the old version); the
    champion comparison does not: a rollback leaves the current champion on purpose.

    Raises:
        RegistryError: unknown model, no champion, or no recorded previous champion.
        PromotionRefused: a gate failed and `force` is False.
        MarkerMoved: the champion moved while the gates were checked (nothing changed).
    """
    require_reason(force, reason)
    require_model(client, model)
    current = holder(client, settings, model, "champion")
    if current is None:
        raise RegistryError(
            f"model {model!r} has no champion ({settings.describe('champion')}) to roll back from"
        )
    target = previous_champion(client, settings, model, current, database_url=database_url)
    version = str(target.version)
    report = check_gates(client, settings, target, current, compare=False)
    report = report.extend([], ["champion comparison skipped: rolling back on purpose"])
    forced = force and not report.passed
    tags = promotion_tags(
        "champion",
        "rollback",
        report,
        force=forced,
        reason=reason or f"rollback from version {current.version}",
        user=user,
    )
    tags[ROLLED_BACK_FROM] = str(current.version)
    outcome = Outcome(
        model,
        version,
        "champion",
        "rollback",
        str(current.version),
        report,
        forced=forced,
        dry_run=dry_run,
        tags=tags,
    )
    if not report.passed and not force:
        raise PromotionRefused(model, version, "champion (rollback)", report)
    if dry_run:
        return outcome
    change = Change(
        model=model,
        version=int(version),
        marker=settings.marker("champion"),
        kind="rollback",
        expected=int(current.version),
        to_version=int(version),
        actor=tags[PROMOTED_BY],
        source=source,
        report=report,
        reason=tags[PROMOTION_REASON],
        forced=forced,
    )

    def move() -> None:
        mark(client, settings, target, "champion")
        set_promotion_tags(client, target, tags)
        set_promotion_tags(
            client,
            current,
            {
                ROLLED_BACK_AT: tags[PROMOTED_AT],
                ROLLED_BACK_BY: tags[PROMOTED_BY],
                ROLLED_BACK_REASON: tags[PROMOTION_REASON],
            },
        )

    event_id = record_change(client, settings, change, move, database_url=database_url)
    refresh_evidence(client, settings, model, version, report)
    return replace(outcome, event_id=event_id)


def remove(
    client: MlflowClient,
    settings: RegistrySettings,
    model: str,
    target: Target,
    *,
    user: str | None = None,
    reason: str | None = None,
    source: str = "cli",
    database_url: str | None = None,
) -> Outcome:
    """Take the `target` marker away from its holder (no gates: nothing gets promoted), and
    record it like any other move. A model without that marker is left as it is."""
    current = holder(client, settings, model, target)
    if current is None:
        return Outcome(model, "", target, "promotion", None, changed=False)
    version = str(current.version)
    who = user or current_user()
    change = Change(
        model=model,
        version=int(version),
        marker=settings.marker(target),
        kind="removal",
        expected=int(version),
        to_version=None,
        actor=who,
        source=source,
        reason=(reason or "").strip() or f"{target} removed",
    )

    def move() -> None:
        with registry_errors(f"removing {settings.describe(target)} from {model} {version}"):
            if settings.mode == "alias":
                client.delete_registered_model_alias(model, settings.marker(target))
            else:
                client.transition_model_version_stage(model, version, "Archived")

    event_id = record_change(client, settings, change, move, database_url=database_url)
    return Outcome(model, version, target, "promotion", version, event_id=event_id)


def refresh_evidence(
    client: MlflowClient,
    settings: RegistrySettings,
    model: str,
    version: str,
    report: GateReport | None,
) -> None:
    """Rewrite the version page's evidence after a move. The move is already committed, so a
    failure here is logged, not raised: the evidence can be rewritten, the move stands."""
    try:
        write_version_evidence(client, model, version, report=report, settings=settings)
    except Exception as exc:
        log.warning("could not write the evidence of %s version %s: %s", model, version, exc)


def previous_champion(
    client: MlflowClient,
    settings: RegistrySettings,
    model: str,
    current: ModelVersion,
    *,
    database_url: str | None = None,
) -> ModelVersion:
    """The version `current` replaced as champion, from `registry_events`.

    Raises:
        RegistryError: no recorded promotion of `current` names a predecessor (e.g. it was
            made champion in a UI without the viralab server app), or that version is gone.
    """
    events = read_events(model, settings.marker("champion"), database_url=database_url)
    recorded = previous_holder(events, int(current.version))
    if recorded is None:
        raise RegistryError(
            f"no previous champion recorded for {model}: no event shows what version "
            f"{current.version} replaced; promote a version explicitly"
        )
    try:
        return resolve_version(client, model, recorded)
    except RegistryError:
        raise RegistryError(
            f"previous champion of {model} (version {recorded}) no longer exists; "
            "promote a version explicitly"
        ) from None


__all__ = [
    "Kind",
    "Outcome",
    "PromotionRefused",
    "check_gates",
    "current_user",
    "previous_champion",
    "promote",
    "refresh_evidence",
    "remove",
    "rollback",
]
