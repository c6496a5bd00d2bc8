"""One sync: inside one locked transaction, read the registry after taking the lock, write
the difference (see the package docstring), and report what changed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mlflow import MlflowClient
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from viralab.config import redact_url
from viralab.data.database import app_database_url, describe_db_error, normalize_url
from viralab.errors import ViralabError
from viralab.registry.client import get_client, store_uri
from viralab.registry.markers import RegistrySettings
from viralab.registry.mirror import ensure_schema, locked_transaction, mirror_engine
from viralab.registry.sync.reading import FeatureWeights, fetch_runs, read_registry
from viralab.registry.sync.rows import (
    Key,
    Row,
    active_versions,
    desired_row,
    plan_changes,
    run_trained_at,
    weights_reusable,
)
from viralab.registry.sync.writing import apply_plan, read_rows


@dataclass(frozen=True)
class SyncResult:
    """What one sync changed; `changed` is False for an idempotent re-run."""

    models: int = 0
    versions: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    activated: int = 0
    deactivated: int = 0
    added_columns: tuple[str, ...] = ()
    artifact_downloads: int = 0
    active: Mapping[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted or self.added_columns)

    def summary(self) -> str:
        scope = f"{self.models} model(s), {self.versions} version(s), {self.seconds:.2f} s"
        if not self.changed:
            return f"no changes ({scope})"
        counts = (
            f"inserted {self.inserted}, updated {self.updated}, deleted {self.deleted}, "
            f"activated {self.activated}, deactivated {self.deactivated}"
        )
        added = f"; added column(s) {', '.join(self.added_columns)}" if self.added_columns else ""
        return f"{counts} ({scope}){added}"


class EmptyRegistryRefused(ViralabError):
    """The registry shows no models while the mirror holds rows: probably the wrong store."""


def sync_in(
    conn: Connection, client: MlflowClient, settings: RegistrySettings, *, prune: bool = False
) -> SyncResult:
    """One sync inside an open, locked transaction (see `locked_transaction`).

    Raises:
        EmptyRegistryRefused: the registry has no models but the mirror has rows and `prune`
            is False (a cron job started elsewhere would otherwise read a fresh, empty store
            and delete every row, active ones included).
    """
    started = time.perf_counter()
    added = ensure_schema(conn)
    existing = read_rows(conn)
    models, versions = read_registry(client)
    if not models and existing and not prune:
        raise EmptyRegistryRefused(
            f"the registry at {store_uri()} has 0 models but the mirror holds "
            f"{len(existing)} row(s): refusing to delete them (wrong tracking URI?); "
            "pass --prune to empty the mirror on purpose"
        )
    runs = fetch_runs(client, (v.run_id for v in versions if v.run_id))
    active = active_versions(versions, settings)
    weights = FeatureWeights(client)
    weights.prefetch(
        run
        for v in versions
        if (run := runs.get(v.run_id or "")) is not None
        and not weights_reusable(v, existing.get((v.model, v.version)), run_trained_at(run))
    )
    now = datetime.now(UTC)
    desired: dict[Key, Row] = {}
    for v in versions:
        key = (v.model, v.version)
        is_active = active.get(v.model) == v.version
        row = desired_row(v, runs.get(v.run_id or ""), existing.get(key), weights, is_active)
        row["synced_at"] = now
        desired[key] = row
    plan = plan_changes(existing, desired)
    apply_plan(conn, plan)
    return SyncResult(
        models=len(models),
        versions=len(versions),
        inserted=len(plan.inserts),
        updated=len(plan.updates),
        deleted=len(plan.deletes),
        activated=plan.activated,
        deactivated=plan.deactivated,
        added_columns=tuple(added),
        artifact_downloads=weights.downloads,
        active={m: active.get(m) for m in models},
        seconds=time.perf_counter() - started,
    )


def mirror_url(database_url: str | None = None) -> str:
    """`--database-url`, else `$VIRALAB_DATABASE_URL`, else the embedded SQLite file."""
    return database_url or app_database_url()


def sync_registry(
    settings: RegistrySettings,
    database_url: str | None = None,
    client: MlflowClient | None = None,
    *,
    prune: bool = False,
) -> SyncResult:
    """Run one complete sync against the mirror at `database_url`.

    Raises:
        ViralabError: the registry or the database failed; nothing was written (one line,
            the database password masked).
    """
    url = mirror_url(database_url)
    engine = mirror_engine(url)
    try:
        client = client or get_client()
        with locked_transaction(engine) as conn:
            return sync_in(conn, client, settings, prune=prune)
    except ViralabError:
        raise
    except SQLAlchemyError as exc:
        error = describe_db_error(exc, url)
        raise type(error)(str(error).splitlines()[0]) from None
    finally:
        engine.dispose()


def describe_target(database_url: str | None = None) -> str:
    """The mirror's URL as it may be printed."""
    return redact_url(normalize_url(mirror_url(database_url))) or ""


__all__ = [
    "EmptyRegistryRefused",
    "SyncResult",
    "describe_target",
    "mirror_url",
    "sync_in",
    "sync_registry",
]
