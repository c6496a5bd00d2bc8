"""`viralab registry sync`: make the `model_versions` table mirror the Model Registry.

The registry is the source of truth (aliases/stages included, so a reviewer's click in the
MLflow UI counts); the table is a read model for applications (spec 000 section 7.2). One sync
is one database transaction holding a lock (a PostgreSQL advisory lock, SQLite's
`BEGIN IMMEDIATE`), which reads the registry *after* taking the lock, so two syncs never
interleave and the later one never writes an older picture of the registry. Rows are written
deactivations first, so the partial unique index "one active row per model" never trips.
A failure anywhere rolls the whole sync back; the next run starts from the same state.

Runnable as `python -m viralab.registry.sync` (the MLproject `sync` entry point).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType
from sqlalchemy import and_, bindparam, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from viralab.config import redact_url
from viralab.data.database import app_database_url, describe_db_error, normalize_url
from viralab.errors import ViralabError
from viralab.registry.client import (
    RunData,
    get_client,
    json_safe_metrics,
    load_json_artifact,
    registry_errors,
    store_uri,
)
from viralab.registry.markers import RegistrySettings, stage_precedence
from viralab.registry.mirror import (
    CONTENT_COLUMNS,
    KEY_COLUMNS,
    ensure_schema,
    locked_transaction,
    mirror_engine,
    model_versions,
)

FEATURE_WEIGHTS_ARTIFACT = "feature_weights.json"
VERSION_TAG = "viralab.version_tag"
RUN_BATCH = 100  # run ids per batched search_runs
DOWNLOAD_WORKERS = 8
MODELS_PAGE = 1000  # the SQL store's maximum for search_registered_models
VERSIONS_PAGE = 10_000

Key = tuple[str, int]
Row = dict[str, Any]


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


# --- reading the registry -------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryVersion:
    """One model version as the registry describes it, aliases included."""

    model: str
    version: int
    run_id: str | None
    source: str | None
    stage: str | None
    description: str | None
    tags: Mapping[str, str]
    last_updated: int | None
    aliases: tuple[str, ...]


def read_registry(client: MlflowClient) -> tuple[list[str], list[RegistryVersion]]:
    """Every registered model and every version, paging through both searches.

    Aliases come from the registered models: version search results may leave them empty.
    """
    models: dict[str, dict[str, int]] = {}
    with registry_errors("listing registered models"):
        token = None
        while True:
            page = client.search_registered_models(max_results=MODELS_PAGE, page_token=token)
            for rm in page:
                models[rm.name] = {a: int(v) for a, v in (rm.aliases or {}).items()}
            token = page.token
            if not token:
                break
    versions: list[RegistryVersion] = []
    with registry_errors("listing model versions"):
        token = None
        while True:
            page = client.search_model_versions(max_results=VERSIONS_PAGE, page_token=token)
            for mv in page:
                if mv.name not in models:  # e.g. prompts, or a model created since the listing
                    continue
                number = int(mv.version)
                aliases = tuple(sorted(a for a, v in models[mv.name].items() if v == number))
                stage = mv.current_stage if mv.current_stage not in (None, "None") else None
                versions.append(
                    RegistryVersion(
                        mv.name,
                        number,
                        mv.run_id or None,
                        mv.source,
                        stage,
                        mv.description or None,
                        dict(mv.tags or {}),
                        mv.last_updated_timestamp,
                        aliases,
                    )
                )
            token = page.token
            if not token:
                break
    return sorted(models), versions


def fetch_runs(client: MlflowClient, run_ids: Iterable[str]) -> dict[str, RunData]:
    """Metrics and tags of many runs in a few batched searches (one `get_run` each would
    cost a round trip per version); runs the search cannot see are fetched one by one, and
    runs deleted for good are simply absent."""
    wanted = sorted(set(run_ids))
    found: dict[str, RunData] = {}
    if not wanted:
        return found
    with registry_errors("reading the versions' runs"):
        experiments: list[str] = []
        token = None
        while True:
            page = client.search_experiments(view_type=ViewType.ALL, page_token=token)
            experiments += [e.experiment_id for e in page]
            token = page.token
            if not token:
                break
        for start in range(0, len(wanted), RUN_BATCH):
            chunk = wanted[start : start + RUN_BATCH]
            ids = ", ".join(f"'{run_id}'" for run_id in chunk)
            runs = client.search_runs(
                experiments,
                f"attributes.run_id IN ({ids})",
                run_view_type=ViewType.ALL,
                max_results=len(chunk),
            )
            for run in runs:
                found[run.info.run_id] = RunData.from_run(run)
        for run_id in wanted:
            if run_id not in found:
                try:
                    found[run_id] = RunData.from_run(client.get_run(run_id))
                except Exception as exc:
                    if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                        raise
    return found


class FeatureWeights:
    """`feature_weights.json` per run, downloaded at most once per sync.

    `prefetch` reads many runs' files on a few threads: against S3 or a tracking server each
    read is two round trips, and a first sync of a large registry would otherwise wait on
    them one after another.
    """

    def __init__(self, client: MlflowClient, workers: int = DOWNLOAD_WORKERS) -> None:
        self._client = client
        self._workers = workers
        self._cache: dict[str, Any] = {}
        self.downloads = 0

    def _load(self, run: RunData) -> Any | None:
        return load_json_artifact(self._client, run, FEATURE_WEIGHTS_ARTIFACT)

    def prefetch(self, runs: Iterable[RunData]) -> None:
        todo = {r.run_id: r for r in runs if r.run_id not in self._cache}
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=min(self._workers, len(todo))) as pool:
            for run_id, found in zip(todo, pool.map(self._load, todo.values()), strict=True):
                self._cache[run_id] = found
        self.downloads += len(todo)

    def get(self, run: RunData) -> Any | None:
        if run.run_id not in self._cache:
            self.downloads += 1
            self._cache[run.run_id] = self._load(run)
        return self._cache[run.run_id]


# --- the desired table ----------------------------------------------------------------------


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
    trained_at = _trained_at(run)
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


def _trained_at(run: RunData | None) -> datetime | None:
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


def read_rows(conn: Connection) -> dict[Key, Row]:
    rows = conn.execute(select(model_versions)).mappings()
    return {(r["model_name"], int(r["registry_version"])): dict(r) for r in rows}


def delete_rows(conn: Connection, keys: Sequence[Key]) -> None:
    c = model_versions.c
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        conn.execute(
            model_versions.delete().where(tuple_(c.model_name, c.registry_version).in_(chunk))
        )


_UPDATE = (
    model_versions.update()
    .where(
        and_(
            model_versions.c.model_name == bindparam("k_model_name"),
            model_versions.c.registry_version == bindparam("k_registry_version"),
        )
    )
    .values({name: bindparam(name) for name in (*CONTENT_COLUMNS, "synced_at")})
)


def write_rows(conn: Connection, inserts: Sequence[Row], updates: Sequence[Row]) -> None:
    """Insert and update rows with one executemany each."""
    if inserts:
        conn.execute(model_versions.insert(), list(inserts))
    if updates:
        params = [
            {
                **{f"k_{k}": row[k] for k in KEY_COLUMNS},
                **{k: row[k] for k in (*CONTENT_COLUMNS, "synced_at")},
            }
            for row in updates
        ]
        conn.execute(_UPDATE, params)


def apply_plan(conn: Connection, plan: SyncPlan) -> None:
    """Deletes, then every row that ends inactive, then the ones that end active: a version
    is only activated once its model's previous active row is gone or deactivated."""
    if plan.deletes:
        delete_rows(conn, plan.deletes)
    write_rows(
        conn,
        [r for r in plan.inserts if not r["is_active"]],
        [r for r in plan.updates if not r["is_active"]],
    )
    write_rows(
        conn,
        [r for r in plan.inserts if r["is_active"]],
        [r for r in plan.updates if r["is_active"]],
    )


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
        and not weights_reusable(v, existing.get((v.model, v.version)), _trained_at(run))
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


def main() -> None:
    """`python -m viralab.registry.sync [--database-url URL] [--watch SECONDS] [--mode M]`."""
    from viralab.entrypoint import install_guards
    from viralab.registry.commands import sync_app

    install_guards()
    sync_app(prog_name="python -m viralab.registry.sync")


if __name__ == "__main__":
    main()
