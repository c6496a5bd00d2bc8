"""Promotion and rollback from the CLI: check the gates, move the marker, record who/when/why.

A reviewer may move `champion` in the MLflow UI instead; the CLI path adds the gates and an
audit trail, all of it stored as version tags in the registry itself (no second database to
keep consistent): `viralab.promoted_*` for the latest promotion, `viralab.previous_champion`
so `rollback` knows where to go back to, and `viralab.promotion_history` for the whole story.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from viralab.registry.client import (
    RegistryError,
    registry_errors,
    require_model,
    resolve_version,
    run_data,
    versions_filter,
)
from viralab.registry.evaluation import compare_with_champion
from viralab.registry.gates import GateReport, check_metrics
from viralab.registry.markers import TARGETS, RegistrySettings, Target, holder, mark

USER_ENV = "VIRALAB_USER"

TAG_PROMOTED_TO = "viralab.promoted_to"
TAG_PROMOTED_BY = "viralab.promoted_by"
TAG_PROMOTED_AT = "viralab.promoted_at"
TAG_REASON = "viralab.promotion_reason"
TAG_KIND = "viralab.promotion_kind"
TAG_FORCED = "viralab.promotion_forced"
TAG_FORCE_REASON = "viralab.force_reason"
TAG_GATES = "viralab.gates"
TAG_PREVIOUS = "viralab.previous_champion"
TAG_ROLLED_BACK_FROM = "viralab.rolled_back_from"
TAG_ROLLED_BACK_AT = "viralab.rolled_back_at"
TAG_ROLLED_BACK_BY = "viralab.rolled_back_by"
TAG_ROLLED_BACK_REASON = "viralab.rolled_back_reason"
TAG_HISTORY = "viralab.promotion_history"
HISTORY_LIMIT = 4000  # characters; MLflow caps a version tag value at 5000

Kind = Literal["promotion", "rollback"]


class PromotionRefused(RegistryError):
    """A gate failed and `--force` was not given; the message names each failed gate."""

    def __init__(self, model: str, version: str, target: str, report: GateReport) -> None:
        self.report = report
        failed = "; ".join(f"{r.gate} ({r.detail})" for r in report.failures)
        super().__init__(
            f"refused to make {model} version {version} the {target}: "
            f"{len(report.failures)} gate(s) failed: {failed}. "
            "Override with --force --reason '...'"
        )


@dataclass(frozen=True)
class Outcome:
    """What `promote`/`rollback` did (or, with dry_run, would do)."""

    model: str
    version: str
    target: Target
    kind: Kind
    previous: str | None
    report: GateReport = field(default_factory=GateReport)
    forced: bool = False
    changed: bool = True
    dry_run: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


def current_user() -> str:
    """`$VIRALAB_USER`, else the login name (CI containers may have none)."""
    if os.environ.get(USER_ENV):
        return os.environ[USER_ENV]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
) -> Outcome:
    """Make version `ref` (a number or an alias) of `model` the champion or the challenger.

    Raises:
        RegistryError: unknown model/version/alias/target, or `force` without a reason.
        PromotionRefused: a gate failed and `force` is False.
    """
    if target not in TARGETS:
        raise RegistryError(f"unknown alias {target!r}: promote to {' or '.join(TARGETS)}")
    to = cast(Target, target)
    _require_reason(force, reason)
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
    tags = _promotion_tags(
        candidate,
        to,
        "promotion",
        report,
        force=force and not report.passed,
        reason=reason,
        user=user,
    )
    if to == "champion" and previous is not None:
        tags[TAG_PREVIOUS] = previous
    outcome = Outcome(
        model,
        version,
        to,
        "promotion",
        previous,
        report,
        forced=force and not report.passed,
        dry_run=dry_run,
        tags=tags,
    )
    if not report.passed and not force:
        raise PromotionRefused(model, version, to, report)
    if not dry_run:
        mark(client, settings, candidate, to)
        _set_tags(client, candidate, tags)
    return outcome


def rollback(
    client: MlflowClient,
    settings: RegistrySettings,
    model: str,
    *,
    force: bool = False,
    reason: str | None = None,
    user: str | None = None,
    dry_run: bool = False,
) -> Outcome:
    """Give `champion` back to the version that held it before the current champion.

    The threshold gates still apply (a tightened gate may now refuse the old version); the
    champion comparison does not: a rollback leaves the current champion on purpose.

    Raises:
        RegistryError: unknown model, no champion, or no recorded previous champion.
        PromotionRefused: a gate failed and `force` is False.
    """
    _require_reason(force, reason)
    require_model(client, model)
    current = holder(client, settings, model, "champion")
    if current is None:
        raise RegistryError(
            f"model {model!r} has no champion ({settings.describe('champion')}) to roll back from"
        )
    target = previous_champion(client, model, current)
    version = str(target.version)
    report = check_gates(client, settings, target, current, compare=False)
    report = report.extend([], ["champion comparison skipped: rolling back on purpose"])
    forced = force and not report.passed
    tags = _promotion_tags(
        target,
        "champion",
        "rollback",
        report,
        force=forced,
        reason=reason or f"rollback from version {current.version}",
        user=user,
    )
    tags[TAG_ROLLED_BACK_FROM] = str(current.version)
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
    if not dry_run:
        mark(client, settings, target, "champion")
        _set_tags(client, target, tags)
        _set_tags(
            client,
            current,
            {
                TAG_ROLLED_BACK_AT: tags[TAG_PROMOTED_AT],
                TAG_ROLLED_BACK_BY: tags[TAG_PROMOTED_BY],
                TAG_ROLLED_BACK_REASON: tags[TAG_REASON],
            },
        )
    return outcome


def previous_champion(client: MlflowClient, model: str, current: ModelVersion) -> ModelVersion:
    """The version `current` replaced: its `viralab.previous_champion` tag, or — when a
    reviewer made `current` champion in the UI, leaving no tags — the latest other version
    the CLI made champion and nobody rolled back from.

    Raises:
        RegistryError: nothing recorded, or the recorded version was deleted.
    """
    current_tags = current.tags or {}
    recorded = current_tags.get(TAG_PREVIOUS)
    if recorded:
        try:
            return resolve_version(client, model, recorded)
        except RegistryError:
            raise RegistryError(
                f"previous champion of {model} (version {recorded}) no longer exists; "
                "promote a version explicitly"
            ) from None
    promoted: list[ModelVersion] = []
    if current_tags.get(TAG_PROMOTED_TO) != "champion":  # made champion outside the CLI
        with registry_errors(f"reading the promotion history of {model}"):
            versions = client.search_model_versions(versions_filter(model))
        promoted = [
            v
            for v in versions
            if str(v.version) != str(current.version) and _was_cli_champion(v.tags or {})
        ]
    if not promoted:
        raise RegistryError(
            f"no previous champion recorded for {model} (version {current.version} holds "
            f"champion without a {TAG_PREVIOUS} tag); promote a version explicitly"
        )
    return max(promoted, key=lambda v: v.tags[TAG_PROMOTED_AT])


def _was_cli_champion(tags: Mapping[str, str]) -> bool:
    promoted_at = tags.get(TAG_PROMOTED_AT)
    if tags.get(TAG_PROMOTED_TO) != "champion" or not promoted_at:
        return False
    return tags.get(TAG_ROLLED_BACK_AT, "") < promoted_at


def _require_reason(force: bool, reason: str | None) -> None:
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason '...': the override is recorded with why")


def _promotion_tags(
    version: ModelVersion,
    target: Target,
    kind: Kind,
    report: GateReport,
    *,
    force: bool,
    reason: str | None,
    user: str | None,
) -> dict[str, str]:
    who = user or current_user()
    when = utc_now()
    why = (reason or "").strip() or "gates passed"
    tags = {
        TAG_PROMOTED_TO: target,
        TAG_PROMOTED_BY: who,
        TAG_PROMOTED_AT: when,
        TAG_REASON: why[:5000],
        TAG_KIND: kind,
        TAG_FORCED: "true" if force else "false",
        TAG_GATES: report.summary(),
    }
    if force:
        tags[TAG_FORCE_REASON] = why[:5000]
    entry = {"to": target, "kind": kind, "by": who, "at": when, "why": why[:200], "forced": force}
    tags[TAG_HISTORY] = _append_history((version.tags or {}).get(TAG_HISTORY), entry)
    return tags


def _append_history(existing: str | None, entry: dict) -> str:
    """The version's promotion log as JSON, oldest entries dropped to fit one tag."""
    try:
        history = json.loads(existing) if existing else []
        if not isinstance(history, list):
            history = []
    except ValueError:
        history = []
    history.append(entry)
    text = json.dumps(history, separators=(",", ":"))
    while len(text) > HISTORY_LIMIT and len(history) > 1:
        history.pop(0)
        text = json.dumps(history, separators=(",", ":"))
    return text


def _set_tags(client: MlflowClient, version: ModelVersion, tags: Mapping[str, str]) -> None:
    with registry_errors(f"tagging {version.name} version {version.version}"):
        for key, value in tags.items():
            client.set_model_version_tag(version.name, str(version.version), key, value)
