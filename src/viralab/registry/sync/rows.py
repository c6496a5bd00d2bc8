"""The table a sync wants: one row per version (registry fields plus what applications read
from its run), and the plan that turns the mirror's rows into it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from viralab.registry.client import RunData, json_safe_metrics
from viralab.registry.markers import RegistrySettings, stage_precedence
from viralab.registry.mirror import CONTENT_COLUMNS
from viralab.registry.sync.reading import FeatureWeights, RegistryVersion
from viralab.tracking.tags import VERSION_TAG

Key = tuple[str, int]
Row = dict[str, Any]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def active_versions(
    versions: Sequence[RegistryVersion], settings: RegistrySettings
) -> dict[str, int]:
    """model -> the version holding the active marker (alias, or stage in stage mode)."""
    if settings.mode == "alias":
        return {v.model: v.version for v in versions if settings.active_alias in v.aliases}
    holders: dict[str, RegistryVersion] = {}
    for v in versions:
        held = holders.get(v.model)
        if v.stage == settings.active_stage and (
            held is None
            or stage_precedence(v.last_updated, v.version)
            > stage_precedence(held.last_updated, held.version)
        ):
            holders[v.model] = v
    return {model: v.version for model, v in holders.items()}


def desired_row(
    v: RegistryVersion,
    run: RunData | None,
    existing: Row | None,
    weights: FeatureWeights,
    is_active: bool,
) -> Row:
    """The row for one version: registry fields plus what applications read from its run."""
    metrics = json_safe_metrics(run.metrics) if run else None
    count = (metrics or {}).get("training_video_count")
    trained_at = run_trained_at(run)
    version_tag = v.tags.get(VERSION_TAG) or (run.tags.get(VERSION_TAG) if run else None)
    row: Row = {
        "model_name": v.model,
        "registry_version": v.version,
        "version_tag": (version_tag or f"v{v.version}")[:256],
        "trained_at": trained_at,
        "training_video_count": int(count) if count is not None and math.isfinite(count) else None,
        "accuracy_metrics": metrics,
        "notes": v.description,
        "is_active": is_active,
        "run_id": v.run_id,
        "model_uri": f"models:/{v.model}/{v.version}",
        "source": v.source,
        "aliases": list(v.aliases),
        "stage": v.stage,
        "registry_updated_at": v.last_updated,
    }
    if weights_reusable(v, existing, trained_at):
        row["feature_weights"] = existing["feature_weights"]  # type: ignore[index]
    elif run is not None:
        row["feature_weights"] = weights.get(run)
    else:
        row["feature_weights"] = None
    return row


def weights_reusable(v: RegistryVersion, existing: Row | None, trained_at: datetime | None) -> bool:
    """feature_weights.json is the one artifact read per run: the stored value stands while
    the version, its run and the run's end are what they were when it was read."""
    return (
        existing is not None
        and existing["run_id"] == v.run_id
        and existing["registry_updated_at"] == v.last_updated
        and _utc(existing["trained_at"]) == trained_at
    )


def run_trained_at(run: RunData | None) -> datetime | None:
    return _from_ms((run.end_time or run.start_time) if run else None)


def _comparable(row: Row) -> dict[str, Any]:
    out = {c: row.get(c) for c in CONTENT_COLUMNS}
    out["trained_at"] = _utc(out["trained_at"])
    out["is_active"] = bool(out["is_active"])
    return out


# --- the diff and the write -----------------------------------------------------------------


@dataclass
class SyncPlan:
    inserts: list[Row] = field(default_factory=list)
    updates: list[Row] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    activated: int = 0
    deactivated: int = 0


def plan_changes(existing: Mapping[Key, Row], desired: Mapping[Key, Row]) -> SyncPlan:
    """Inserts, updates and deletes that turn `existing` into `desired` (unchanged rows are
    left alone, so a re-run writes nothing and `synced_at` keeps its value)."""
    plan = SyncPlan()
    for key, row in desired.items():
        old = existing.get(key)
        if old is None:
            plan.inserts.append(row)
            plan.activated += bool(row["is_active"])
        elif _comparable(old) != _comparable(row):
            plan.updates.append(row)
            plan.activated += bool(row["is_active"]) and not bool(old["is_active"])
            plan.deactivated += bool(old["is_active"]) and not bool(row["is_active"])
    plan.deletes = sorted(k for k in existing if k not in desired)
    return plan


__all__ = [
    "Key",
    "Row",
    "SyncPlan",
    "active_versions",
    "desired_row",
    "plan_changes",
    "run_trained_at",
    "weights_reusable",
]
