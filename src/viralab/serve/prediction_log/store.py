"""The prediction log's SQL: where it writes, its tables, one batch of rows into
``predictions`` and a process's running counts in ``prediction_log_stats``.

Only the writer (a thread, or the writer process) calls these, never a scoring thread.
"""

from __future__ import annotations

import itertools
import os
import socket
from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from viralab.data.database import app_database_url, make_engine, normalize_url
from viralab.redaction import redact_text
from viralab.serve.prediction_log.rows import COLUMNS, TIME_COLUMNS, now_utc
from viralab.serve.prediction_table import (
    create_prediction_tables,
    prediction_log_stats,
    predictions,
)

ENV_URL = "VIRALAB_PREDICTION_LOG_URL"
#: Rows per INSERT on SQLite (x 12 columns: far below its 32,766 bound variables).
SQLITE_ROWS = 500


def prediction_log_url(url: str | None = None) -> str:
    """`url`, else ``VIRALAB_PREDICTION_LOG_URL``, else the application database."""
    return normalize_url(url or os.environ.get(ENV_URL) or app_database_url())


def open_engine(url: str) -> Engine:
    """The log's engine; a PostgreSQL that does not answer fails within 5 s, not minutes."""
    pg = url.startswith("postgresql")
    return make_engine(url, connect_args={"connect_timeout": 5} if pg else {})


def ensure_tables(engine: Engine) -> None:
    """Create the log's tables where missing (several processes may race to)."""
    try:
        create_prediction_tables(engine)
    except Exception:
        # another process created them between our check and our CREATE
        present = set(inspect(engine).get_table_names())
        if not {"predictions", "prediction_log_stats"} <= present:
            raise


def describe(exc: BaseException) -> str:
    """One redacted line (drivers quote the DSN, password included, in some messages)."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return redact_text(detail[0] if detail else type(exc).__name__)


def insert_rows(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """One batch into ``predictions`` through the driver's own bulk path: tuples bound in C
    (SQLAlchemy's per-row dict processing cost more than scoring a document). Values pass
    through the dialect's bind processors column by column where they change the value
    (SQLite stores datetimes as text); numbers and text are bound by the driver as they are."""
    dialect = conn.dialect
    columns: list[Any] = list(zip(*rows, strict=True))
    for i, name in enumerate(COLUMNS):
        if name not in TIME_COLUMNS:  # numbers and text bind as they are
            continue
        process = predictions.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            memo: dict[Any, Any] = {}  # `at` repeats within a request
            columns[i] = [
                memo[v] if v in memo else memo.setdefault(v, process(v)) for v in columns[i]
            ]
    values = list(zip(*columns, strict=True))
    names = ", ".join(COLUMNS)
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        # lazy: only a PostgreSQL log loads the driver's extras
        from psycopg2.extras import execute_values

        cursor = conn.connection.dbapi_connection.cursor()
        execute_values(
            cursor, f"INSERT INTO predictions ({names}) VALUES %s", values, page_size=1000
        )
    elif dialect.paramstyle == "qmark":
        # multi-row VALUES: one statement (one GIL release in sqlite3) per SQLITE_ROWS rows;
        # `executemany` released and re-took the GIL for every row, and each re-take waited
        # for the scoring thread's switch interval
        marks = "(" + ", ".join("?" * len(COLUMNS)) + ")"
        for start in range(0, len(values), SQLITE_ROWS):
            part = values[start : start + SQLITE_ROWS]
            flat = tuple(itertools.chain.from_iterable(part))
            sql = f"INSERT INTO predictions ({names}) VALUES " + ", ".join([marks] * len(part))
            conn.exec_driver_sql(sql, flat)
    else:  # any other driver: SQLAlchemy's own executemany
        conn.execute(predictions.insert(), [dict(zip(COLUMNS, r, strict=True)) for r in rows])


def upsert_counts(
    conn: Any,
    *,
    process_id: str,
    pid: int,
    started_at: datetime,
    written: int,
    dropped: int,
) -> None:
    """A process's row of ``prediction_log_stats``, in the caller's transaction."""
    t = prediction_log_stats
    values = {"written": written, "dropped": dropped, "updated_at": now_utc()}
    done = conn.execute(t.update().where(t.c.process_id == process_id).values(**values))
    if done.rowcount == 0:
        conn.execute(
            t.insert().values(
                process_id=process_id,
                host=socket.gethostname()[:256],
                pid=pid,
                started_at=started_at,
                **values,
            )
        )
