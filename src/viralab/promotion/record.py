"""What a promotion leaves behind: the convenience tags on the version, the `Outcome` callers
print, and `PromotionRefused` when a gate said no.

Its own module so the CLI, the server app and the retrain can name these without the
promotion machinery (gates, events, evidence) that produces them.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Literal

from viralab.registry.client import RegistryError, set_version_tags
from viralab.registry.gates import GateReport
from viralab.registry.markers import Target
from viralab.tracking.tags import (
    FORCE_REASON,
    GATES,
    PROMOTED_AT,
    PROMOTED_BY,
    PROMOTED_TO,
    PROMOTION_FORCED,
    PROMOTION_KIND,
    PROMOTION_REASON,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

USER_ENV = "VIRALAB_USER"


Kind = Literal["promotion", "rollback"]


class PromotionRefused(RegistryError):
    """A gate failed and `--force` was not given; the message names each failed gate."""

    #: scripts tell "refused" from "broken" (`viralab.entrypoint.user_errors_exit`)
    exit_code: ClassVar[int] = 3

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
    event_id: int | None = None


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


def require_reason(force: bool, reason: str | None) -> None:
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason '...': the override is recorded with why")


def promotion_tags(
    target: Target,
    kind: Kind,
    report: GateReport,
    *,
    force: bool,
    reason: str | None,
    user: str | None,
) -> dict[str, str]:
    who = user or current_user()
    why = (reason or "").strip() or "gates passed"
    tags = {
        PROMOTED_TO: target,
        PROMOTED_BY: who,
        PROMOTED_AT: utc_now(),
        PROMOTION_REASON: why[:5000],
        PROMOTION_KIND: kind,
        PROMOTION_FORCED: "true" if force else "false",
        GATES: report.summary(),
    }
    if force:
        tags[FORCE_REASON] = why[:5000]
    return tags


def set_promotion_tags(
    client: MlflowClient, version: ModelVersion, tags: Mapping[str, str]
) -> None:
    set_version_tags(client, version.name, str(version.version), dict(tags))


__all__ = [
    "USER_ENV",
    "Kind",
    "Outcome",
    "PromotionRefused",
    "current_user",
    "promotion_tags",
    "require_reason",
    "set_promotion_tags",
    "utc_now",
]
