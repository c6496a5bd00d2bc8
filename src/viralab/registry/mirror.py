"""The application's `model_versions` table: a mirror of the Model Registry for applications.

Spec 000 section 7 has applications read the active model from a `model_versions` table
(`feature_weights`, `accuracy_metrics`, `is_active`, ...). The registry is now the source of
truth and `viralab registry sync` keeps this table in step with it, so those readers keep
working. The table lives in the application database, never in MLflow's backend store (whose
own schema already has a `model_versions` table).

The database enforces "at most one active row per model" with a partial unique index
(PostgreSQL and SQLite both support `WHERE` on an index), so no writer can get it wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    false,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateColumn

from viralab.data.database import make_engine
from viralab.errors import ConfigError

TABLE = "model_versions"
ACTIVE_INDEX = "uq_model_versions_one_active"

JSONDoc = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

model_versions = Table(
    TABLE,
    metadata,
    # identity in the registry
    Column("model_name", String(256), primary_key=True),
    Column("registry_version", Integer, primary_key=True, autoincrement=False),
    # spec 000 section 7.1 columns
    Column("version_tag", String(256), nullable=False),
    Column("trained_at", DateTime(timezone=True)),
    Column("training_video_count", Integer),
    Column("feature_weights", JSONDoc),
    Column("accuracy_metrics", JSONDoc),
    Column("notes", Text),
    Column("is_active", Boolean, nullable=False, server_default=false()),
    # where the version came from and how the registry marks it
    Column("run_id", String(64)),
    Column("model_uri", Text),
    Column("source", Text),
    Column("aliases", JSONDoc),
    Column("stage", String(32)),
    Column("registry_updated_at", BigInteger),  # the version's last_updated_timestamp (ms)
    Column("synced_at", DateTime(timezone=True)),
    comment="Mirror of the MLflow Model Registry, written by `viralab registry sync`.",
)

one_active_per_model = Index(
    ACTIVE_INDEX,
    model_versions.c.model_name,
    unique=True,
    postgresql_where=model_versions.c.is_active,
    sqlite_where=model_versions.c.is_active,
)

KEY_COLUMNS = ("model_name", "registry_version")
CONTENT_COLUMNS = tuple(
    c.name for c in model_versions.columns if c.name not in (*KEY_COLUMNS, "synced_at")
)

# One advisory lock id for every sync of this table, derived from a fixed name.
SYNC_LOCK_ID = int.from_bytes(
    hashlib.sha256(b"viralab.registry.sync:model_versions").digest()[:8], "big", signed=True
)


def mirror_engine(url: str | None = None) -> Engine:
    """An engine for the mirror's database whose transactions can hold the sync lock.

    On SQLite, pysqlite would only issue a deferred BEGIN before the first write; a sync must
    own the write lock from its first read, so this engine issues `BEGIN IMMEDIATE` itself.
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def locked_transaction(engine: Engine, lock_timeout_s: int = 120) -> Iterator[Connection]:
    """One transaction that holds the sync lock until it commits or rolls back.

    PostgreSQL: a transaction-scoped advisory lock (released by COMMIT/ROLLBACK, also when the
    connection dies). SQLite: `BEGIN IMMEDIATE` (see `mirror_engine`).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(lock_timeout_s)}s'"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SYNC_LOCK_ID})
        yield conn


def ensure_schema(conn: Connection) -> list[str]:
    """Create the table and its index when absent; add columns a previous release lacked.

    Creating over an existing table is a no-op. A missing nullable column (or one with a
    server default) is added with ALTER TABLE; returns the names of the added columns.

    Raises:
        ConfigError: an existing `model_versions` table this release cannot migrate by
            itself (e.g. spec 000's original table keyed by `version_tag`): rename or drop it,
            and the next sync recreates it from the registry.
    """
    metadata.create_all(conn, checkfirst=True)
    inspector = inspect(conn)
    present = {c["name"] for c in inspector.get_columns(TABLE)}
    missing_key = [c for c in KEY_COLUMNS if c not in present]
    if missing_key:
        raise ConfigError(
            f"an existing {TABLE!r} table has no {', '.join(missing_key)} column(s): it predates "
            "the registry mirror; rename or drop it and run `viralab registry sync` again"
        )
    added = []
    for column in model_versions.columns:
        if column.name in present:
            continue
        if not column.nullable and column.server_default is None:
            raise ConfigError(
                f"the {TABLE!r} table lacks the required column {column.name!r}; "
                "rename or drop it and run `viralab registry sync` again"
            )
        ddl = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN {ddl}"))
        added.append(column.name)
    if ACTIVE_INDEX not in {ix["name"] for ix in inspect(conn).get_indexes(TABLE)}:
        one_active_per_model.create(conn, checkfirst=True)
    return added
