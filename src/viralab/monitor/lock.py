"""One retrain per model at a time, across processes and machines.

A cron job and a manual `viralab retrain run` overlapping would register duplicate versions
and race each other's alias moves. `retrain_lock(model)` is held for the whole retrain:

- **PostgreSQL** (the application database is PostgreSQL, `$VIRALAB_DATABASE_URL`): a session
  advisory lock, `pg_try_advisory_lock(hashtext('viralab.retrain:<model>'))`, on a dedicated
  connection named `viralab-retrain <host>:<pid>` with TCP keepalives. Every machine that
  shares the database shares the lock; it dies with its connection, so a killed process
  (or, after the keepalive timeout, a lost machine) never leaves it behind.
- **otherwise** (the embedded SQLite default): `fcntl.flock` on
  `<folder of the SQLite file>/locks/retrain-<model>.lock`, which holds the holder's
  host, pid and start time. The kernel drops the lock when the process dies (SIGKILL
  included), so a stale file is harmless: the next retrain takes it.

A second retrain does not wait: it raises :class:`RetrainLocked` naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from viralab.data.database import app_database_url, describe_db_error, normalize_url
from viralab.errors import DataError, ViralabError

LOCK_PREFIX = "viralab.retrain:"


class RetrainLocked(ViralabError):
    """Another retrain of the same model holds the lock."""

    #: EX_TEMPFAIL: cron and CI try again later (`viralab.entrypoint.user_errors_exit`)
    exit_code: ClassVar[int] = 75


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _safe(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model)


@contextlib.contextmanager
def retrain_lock(model: str, database_url: str | None = None) -> Iterator[str]:
    """Hold the retrain lock of `model` for the `with` block; yields how it is held.

    Args:
        database_url: the application database (default `app_database_url()`).

    Raises:
        RetrainLocked: another process holds it (the message says who).
        DataError: the PostgreSQL database cannot be reached.
    """
    from sqlalchemy.engine import make_url

    url = normalize_url(app_database_url(database_url))
    try:
        parsed = make_url(url)
    except Exception:  # an unparseable URL: the file lock beside the default database
        parsed = make_url(app_database_url(""))
    if parsed.get_backend_name() == "postgresql":
        with _advisory_lock(model, url) as how:
            yield how
    else:
        database = parsed.database if parsed.database not in (None, "", ":memory:") else None
        folder = Path(database).expanduser().parent if database else Path("data")
        with _file_lock(model, folder / "locks" / f"retrain-{_safe(model)}.lock") as how:
            yield how


# --- PostgreSQL --------------------------------------------------------------------------------


@contextlib.contextmanager
def _advisory_lock(model: str, url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    key = LOCK_PREFIX + model
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "application_name": f"viralab-retrain {holder_name()}"[:63],
            "connect_timeout": 10,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )
    try:
        try:
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": key}
            ).scalar_one()
        except SQLAlchemyError as exc:
            raise describe_db_error(exc, url) from None
        try:
            if not got:
                raise RetrainLocked(
                    f"another retrain of {model} is running (PostgreSQL advisory lock {key!r} "
                    f"held by {_pg_holder(conn, key)}); try again when it has finished"
                )
            yield f"PostgreSQL advisory lock {key!r}"
        finally:
            # closing the session releases the lock even if the unlock cannot be sent
            with contextlib.suppress(SQLAlchemyError):
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
    finally:
        engine.dispose()


def _pg_holder(conn: Any, key: str) -> str:
    """`viralab-retrain <host>:<pid> since <time> (from <addr>)`, or "another session"."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    query = text(
        "SELECT a.application_name, a.backend_start, a.client_addr::text "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(:key)::bigint LIMIT 1"
    )
    try:
        row = conn.execute(query, {"key": key}).first()
    except SQLAlchemyError:
        row = None
    if row is None:
        return "another session"
    name, since, addr = row
    text_ = f"{name or 'a session'} since {since:%Y-%m-%d %H:%M:%S %Z}".strip()
    return f"{text_} from {addr}" if addr else text_


# --- file lock -------------------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(model: str, path: Path) -> Iterator[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise DataError(f"cannot open the retrain lock file {path}: {exc}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainLocked(
                f"another retrain of {model} is running (lock file {path} held by "
                f"{_file_holder(path)}); try again when it has finished"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"holder": holder_name(), "since": _now(), "model": model}))
        handle.flush()
        try:
            yield f"lock file {path}"
        finally:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _file_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("holder"):
        return "another process"
    return f"{info['holder']} since {info.get('since', '?')}"


__all__ = ["RetrainLocked", "retrain_lock"]
