"""`registry_events`: one row per move of champion/challenger, whoever made it and from where.

The registry's tags cannot be an audit trail: they are written after the move (a failure in
between leaves a champion with no record), read-modify-write (two writers lose entries) and a
reviewer's click in the UI wrote none. So every move, from the CLI, a retrain or the MLflow UI
(through `viralab.promotion.server_app`), goes through `record_change`:

1. take the application database's sync lock (the same lock and transaction as the mirror's
   sync, so the mirror never sees half a move),
2. re-read who holds the marker and refuse if it is no longer the holder the gates were
   checked against (compare-and-set),
3. insert the event row, move the marker in the registry, sync the mirror,
4. commit. Anything failing before the commit rolls the row back; a failure after the marker
   moved (sync or commit) puts the marker back where it was.

The table lives beside the mirror in the application database, never in MLflow's store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from viralab.data.database import describe_db_error
from viralab.errors import ViralabError
from viralab.registry.client import RegistryError
from viralab.registry.gates import GateReport
from viralab.registry.markers import RegistrySettings, marker_holder, restore_point
from viralab.registry.mirror import JSONDoc, locked_transaction, mirror_engine
from viralab.registry.sync import mirror_url, sync_in

if TYPE_CHECKING:
    from mlflow import MlflowClient

TABLE = "registry_events"
SOURCES = ("ui", "api", "cli", "retrain")

metadata = MetaData()

registry_events = Table(
    TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("version", Integer),  # the version acted on
    Column("marker", String(64), nullable=False),  # alias or stage name
    Column("kind", String(16), nullable=False),  # promotion | rollback | removal
    Column("from_version", Integer),  # holder of the marker before
    Column("to_version", Integer),  # holder after (None: the marker was removed)
    Column("actor", String(256), nullable=False),
    Column("source", String(16), nullable=False),  # ui | api | cli | retrain
    Column("forced", Boolean, nullable=False, default=False),
    Column("gates", JSONDoc),  # {"passed": bool, "results": [...], "notes": [...]}
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    comment="Every move of a registry marker, written by viralab (CLI, retrain, server app).",
)

Index("ix_registry_events_model_marker", registry_events.c.model, registry_events.c.marker)


class MarkerMoved(RegistryError):
    """Compare-and-set failed: someone moved the marker after the gates were checked."""


@dataclass(frozen=True)
class Change:
    """One intended move of a marker, with what the gates said about it."""

    model: str
    version: int | None
    marker: str
    kind: str
    expected: int | None  # holder when the gates were checked
    to_version: int | None
    actor: str
    source: str
    report: GateReport | None = None
    reason: str | None = None
    forced: bool = False


def gates_json(report: GateReport | None) -> dict[str, Any] | None:
    """The gate verdicts as a JSON document for the event row."""
    if report is None:
        return None
    return {
        "passed": report.passed,
        "results": [
            {"gate": r.gate, "passed": r.passed, "detail": r.detail} for r in report.results
        ],
        "notes": list(report.notes),
    }


def ensure_events_schema(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)


_engines: dict[str, Engine] = {}
KEEP_ENGINES = False  # the server app sets it: one long-lived engine per database


def _engine(url: str) -> Engine:
    """A fresh engine (disposed after the change) for one-off commands; in the server app one
    engine per application database for the process, since connecting per change was a large
    share of the guard's cost."""
    if not KEEP_ENGINES:
        return mirror_engine(url)
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = mirror_engine(url)
    return engine


def _holder_version(client: MlflowClient, settings: RegistrySettings, model: str, marker: str):
    found = marker_holder(client, settings, model, marker)
    return None if found is None else int(found.version)


def record_change(
    client: MlflowClient,
    settings: RegistrySettings,
    change: Change,
    move: Callable[[], None],
    *,
    database_url: str | None = None,
) -> int:
    """Move a marker and record it: both happen or neither (see the module docstring).

    Returns the event id.

    Raises:
        MarkerMoved: the marker's holder is no longer `change.expected`.
        RegistryError / ViralabError: the registry or the database failed; nothing changed.
    """
    url = mirror_url(database_url)
    engine = _engine(url)
    undo: Callable[[], None] | None = None
    try:
        with locked_transaction(engine) as conn:
            ensure_events_schema(conn)
            now = _holder_version(client, settings, change.model, change.marker)
            if now != change.expected:
                raise MarkerMoved(
                    f"{change.marker!r} of {change.model} moved from "
                    f"{_v(change.expected)} to {_v(now)} while the gates were checked; "
                    "nothing changed: run it again"
                )
            result = conn.execute(
                registry_events.insert().values(
                    model=change.model,
                    version=change.version,
                    marker=change.marker,
                    kind=change.kind,
                    from_version=change.expected,
                    to_version=change.to_version,
                    actor=change.actor[:256],
                    source=change.source,
                    forced=change.forced,
                    gates=gates_json(change.report),
                    reason=(change.reason or "")[:5000] or None,
                    at=datetime.now(UTC),
                )
            )
            event_id = int(result.inserted_primary_key[0])
            restore = restore_point(client, settings, change.model)
            undo = restore
            move()
            sync_in(conn, client, settings)
        return event_id
    except BaseException as exc:
        if undo is not None:
            try:
                undo()
            except Exception as undo_exc:  # the original failure matters more; say both
                raise RegistryError(
                    f"{_describe(exc, url)}; and putting {change.marker!r} of {change.model} "
                    f"back failed too ({type(undo_exc).__name__}): check it in the registry"
                ) from None
        if isinstance(exc, SQLAlchemyError):
            raise RegistryError(_describe(exc, url)) from None
        raise
    finally:
        if not KEEP_ENGINES:
            engine.dispose()


def _describe(exc: BaseException, url: str) -> str:
    if isinstance(exc, SQLAlchemyError):
        return str(describe_db_error(exc, url)).splitlines()[0]
    if isinstance(exc, ViralabError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _v(version: int | None) -> str:
    return "nobody" if version is None else f"version {version}"


def read_events(
    model: str | None = None,
    marker: str | None = None,
    *,
    database_url: str | None = None,
) -> list[dict[str, Any]]:
    """Events oldest first (all models, or one model and optionally one marker)."""
    url = mirror_url(database_url)
    engine = mirror_engine(url)
    try:
        with engine.connect() as conn:
            ensure_events_schema(conn)
            query = select(registry_events).order_by(registry_events.c.id)
            if model is not None:
                query = query.where(registry_events.c.model == model)
            if marker is not None:
                query = query.where(registry_events.c.marker == marker)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            conn.commit()
            return rows
    except SQLAlchemyError as exc:
        raise RegistryError(_describe(exc, url)) from None
    finally:
        engine.dispose()


def previous_holder(events: list[Mapping[str, Any]], current: int) -> int | None:
    """The version `current` replaced as holder of the marker, from the event history.

    The latest promotion that made `current` the holder names what it replaced; a rollback
    never counts as such a promotion, so rolling back twice walks further back instead of
    undoing the first rollback.
    """
    for event in reversed(events):
        if event["to_version"] == current and event["kind"] == "promotion":
            return event["from_version"]
    return None


def describe_event(event: Mapping[str, Any]) -> str:
    """One line for a log or the CLI."""
    gates = event.get("gates") or {}
    if isinstance(gates, str):
        gates = json.loads(gates)
    verdict = "" if not gates else (" gates passed" if gates.get("passed") else " gates FAILED")
    return (
        f"{event['at']:%Y-%m-%d %H:%M:%S} {event['model']} {event['marker']}: "
        f"{_v(event['from_version'])} -> {_v(event['to_version'])} ({event['kind']}) by "
        f"{event['actor']} via {event['source']}{verdict}"
        + (" FORCED" if event["forced"] else "")
        + (f": {event['reason']}" if event.get("reason") else "")
    )
