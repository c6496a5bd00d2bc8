"""Idempotent batched upserts, PostgreSQL or SQLite, that tell inserted from updated rows.

Writes are `INSERT ... ON CONFLICT DO UPDATE` whose update only fires when a value differs,
so a re-load is idempotent and the counts tell inserted, updated and unchanged rows apart:
PostgreSQL returns `xmax = 0` for inserted rows; SQLite returns the `rowid`, and rows above
the batch's starting `max(rowid)` are new. Multi-row statements come from SQLAlchemy's
"insertmanyvalues" executemany path, which is what makes 100k stats rows a matter of seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Boolean, Integer, Table, func, literal_column, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from viralab.data.database import describe_db_error
from viralab.errors import ConfigError, DataError

DEFAULT_BATCH_SIZE = 1000
Progress = Callable[[int], None]
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _upsert(conn: Connection, table: Table, keys: Sequence[str], columns: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE ... WHERE <a value differs> RETURNING ...``.

    Only ``columns`` (those the rows give) are updated; the others keep their stored values.
    """
    dialect = conn.dialect.name
    if dialect not in _INSERTS:
        raise ConfigError(f"unsupported application database: {dialect}")
    stmt = _INSERTS[dialect](table)
    values = [table.c[name] for name in columns if name not in keys]
    changed = or_(*(c.is_distinct_from(stmt.excluded[c.name]) for c in values))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: stmt.excluded[c.name] for c in values},
        where=changed,
    )
    if dialect == "postgresql":
        # xmax is 0 on a freshly inserted row version, the updating transaction's id otherwise.
        return stmt.returning(literal_column("(xmax = 0)", Boolean).label("inserted"))
    return stmt.returning(literal_column("rowid", Integer).label("rowid"))


def upsert_rows(
    conn: Connection, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> tuple[int, int, int]:
    """Upsert ``rows`` (keys unique within them, all with the same columns) in the open
    transaction; a column the rows leave out is not touched on existing rows.

    Returns:
        (inserted, updated, unchanged) counts.
    """
    if not rows:
        return 0, 0, 0
    stmt = _upsert(conn, table, keys, list(rows[0]))
    if conn.dialect.name == "postgresql":
        flags = [bool(v) for v in conn.execute(stmt, rows).scalars()]
        inserted = sum(flags)
        updated = len(flags) - inserted
    else:
        top = conn.execute(
            select(func.coalesce(func.max(literal_column("rowid")), 0)).select_from(table)
        ).scalar_one()
        rowids = list(conn.execute(stmt, rows).scalars())
        inserted = sum(1 for r in rowids if r > top)
        updated = len(rowids) - inserted
    return inserted, updated, len(rows) - inserted - updated


def batches(n: int, size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def batch_failed(exc: SQLAlchemyError, url: str, what: str, committed: int) -> DataError:
    detail = describe_db_error(exc, url)
    return DataError(
        f"{detail}; {what} was rolled back (nothing of it is written), {committed} earlier "
        "row(s) are saved; fix the cause and re-run (loading is idempotent)"
    )
