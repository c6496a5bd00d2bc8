"""The application database (not MLflow's): URL from the environment, engines, clear errors.

Application tables (`analyzed_videos`, `video_ratings`, `video_stats_processed`, and the
`model_versions` registry mirror) live in their own database, never in MLflow's backend store,
whose schema already has a `model_versions` table. Embedded default: `data/viralab.db`.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from viralab.config import redact_url
from viralab.errors import ConfigError, DataError

DATABASE_URL_ENV = "VIRALAB_DATABASE_URL"
DEFAULT_SQLITE_PATH = Path("data/viralab.db")


def app_database_url(explicit: str | None = None) -> str:
    """An explicit URL (a `--database-url` flag, `data.url`), else `$VIRALAB_DATABASE_URL`,
    else the embedded SQLite file."""
    url = explicit or os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def normalize_url(url: str) -> str:
    """Pick the installed psycopg2 driver for plain `postgresql://` / `postgres://` URLs.

    SQLAlchemy 2.1 maps the plain scheme to psycopg 3, which we do not install.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """An engine for the application database; SQLite folders are created, FKs enforced.

    Raises:
        ConfigError: the URL cannot be parsed (the message shows it with the password masked).
    """
    url = normalize_url(app_database_url(url))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a raw `@`/`:` in the password; its
        # text quotes a piece of the password, so it is not shown
        raise ConfigError(
            f"invalid database URL {redact_url(url)!r}: percent-encode special characters "
            "of the password (@ is %40, : is %3A, / is %2F)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def describe_db_error(exc: Exception, url: str | None = None) -> DataError:
    """Turn a driver error into one readable line, with the password masked."""
    where = f" at {redact_url(normalize_url(url))}" if url else ""
    if isinstance(exc, OperationalError | DBAPIError):
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    else:
        detail = str(exc)
    return DataError(f"database error{where}: {detail}")
