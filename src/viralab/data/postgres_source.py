"""`data=postgres`: rows from the application database, with spec 000's extraction in SQL.

The URL comes from `data.url` (whose default is `$VIRALAB_DATABASE_URL`), else the embedded
SQLite file (`viralab.data.database.app_database_url`); it is only ever shown with its
password masked. PostgreSQL is the production case; the embedded SQLite file that
`viralab data load` fills by default is read through the same queries, written with SQLite's
JSON functions.

:func:`extract_from_database` is spec 000 §2's extraction query run where the data lives,
parameterised (rater type, minimum `feature_count`, v3 marker key): one pass labels every
rating with its drop reason (same reasons, same precedence as
:func:`viralab.data.extraction.drop_reason`) in a `CASE`, and only the kept ratings bring
their analyses out of the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import DateTime, Float, Text, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from viralab.config import redact_url
from viralab.data.database import app_database_url, describe_db_error, make_engine, normalize_url
from viralab.data.definitions import COUNT_COLUMNS, GROWTH_COLUMNS, STATS_COLUMNS
from viralab.data.extraction import ExtractionReport, whole_number
from viralab.data.schema import JSONDocument
from viralab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
_RATING_TYPES = {
    "id": Text(),
    "video_id": Text(),
    "overall_score": Float(),
    "dimensions": JSONDocument,
    "notes": Text(),
    "rated_at": DateTime(timezone=True),
    "rater_type": Text(),
    "video_url": Text(),
    "visual_analysis": JSONDocument,
}
_RATING_SELECT = """
SELECT vr.id, vr.video_id, vr.overall_score, vr.dimensions, vr.notes, vr.rated_at,
       vr.rater_type, av.video_url, av.visual_analysis
FROM video_ratings vr
JOIN analyzed_videos av ON vr.video_id = av.id
"""


def pg_feature_count_sql(document: str = "visual_analysis") -> str:
    """The analysis' ``feature_count`` as an integer, NULL when absent or not a whole number.

    Guarded so that a stray value (``"many"``, ``true``, ``1.5``) gives NULL instead of failing
    the cast and with it the whole query; :func:`viralab.data.extraction.whole_number` is the
    same rule in Python. ``substring`` returns the whole-number part of a matching value, NULL
    otherwise, so the document is read (de-TOASTed) once, not once to test and once to cast.
    """
    return (
        f"((substring(({document} ->> 'feature_count') from '^(-?[0-9]{{1,9}})(\\.0*)?$'))"
        "::integer)"
    )


# The dialect-specific pieces of the extraction, over `analyzed_videos av`.
_PG = {
    "is_object": "jsonb_typeof(av.visual_analysis) = 'object'",
    "feature_count": pg_feature_count_sql("av.visual_analysis"),
    "has_key": "(av.visual_analysis ? :version_key)",
}
_SQLITE = {
    "is_object": "json_type(av.visual_analysis) = 'object'",
    # SQLite has no regex: the Python rule itself, registered on each connection.
    "feature_count": (
        "viralab_feature_count(json_type(av.visual_analysis, '$.feature_count'), "
        "json_extract(av.visual_analysis, '$.feature_count'))"
    ),
    "has_key": "(json_type(av.visual_analysis, :version_path) IS NOT NULL)",
}


def _sqlite_feature_count(json_type: str | None, value: Any) -> int | None:
    """`whole_number` for SQLite, where json_extract gives JSON true/false as 1/0."""
    return None if json_type in (None, "true", "false") else whole_number(value)


def _register_sqlite_functions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function(
        "viralab_feature_count", 2, _sqlite_feature_count, deterministic=True
    )


def database_url(data_cfg: Mapping[str, Any] | None = None) -> str:
    """`data.url` when set, else `$VIRALAB_DATABASE_URL`, else the embedded SQLite file.

    `conf/data/postgres.yaml` sets `url: ${oc.env:VIRALAB_DATABASE_URL,null}`, so the
    environment is the default and an explicit `data.url=...` (or `--database-url`) wins.
    """
    configured = (data_cfg or {}).get("url")
    return str(configured) if configured else app_database_url()


def open_engine(url: str, *, must_exist: bool = False) -> Engine:
    """An engine for the app database; PostgreSQL connects time out after 10 s.

    Raises:
        ConfigError: the URL does not parse, or names neither PostgreSQL nor SQLite.
        DataError: ``must_exist`` and the SQLite file is not there (reading must not create
            an empty database as a side effect).
    """
    try:
        parsed = make_url(normalize_url(url))
    except Exception:  # make_engine words the error
        return make_engine(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database
        if must_exist and db and db != ":memory:" and not Path(db).expanduser().exists():
            raise DataError(
                f"no application database at {redact_url(url)}: "
                "load data first with `viralab data load`"
            )
        engine = make_engine(url)
        event.listen(engine, "connect", _register_sqlite_functions)
        return engine
    if backend != "postgresql":
        raise ConfigError(
            f"unsupported application database {redact_url(url)!r}: use postgresql:// or sqlite://"
        )
    return make_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})


@contextmanager
def reading(data_cfg: Mapping[str, Any] | None = None) -> Iterator[Connection]:
    """A read-only snapshot of the app database; driver errors become one masked line.

    Raises:
        DataError: unreachable database, or the data tables are missing.
    """
    url = database_url(data_cfg)
    engine = open_engine(url, must_exist=True)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                present = set(inspect(conn).get_table_names())
                needed = {"analyzed_videos", "video_ratings", "video_stats_processed"}
                if not needed <= present:
                    raise DataError(
                        f"no viralab data tables in {redact_url(normalize_url(url))}: "
                        "load data first with `viralab data load`"
                    )
                log.info("Reading from %s", redact_url(normalize_url(url)))
                yield conn
    except SQLAlchemyError as exc:
        raise describe_db_error(exc, url) from None
    finally:
        engine.dispose()


def _pieces(conn: Connection) -> dict[str, str]:
    return _PG if conn.dialect.name == "postgresql" else _SQLITE


def _utc_iso(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat()
    return value


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the join in the export format (``rated_at`` as ISO-8601 UTC)."""
    return {
        "id": row["id"],
        "video_id": row["video_id"],
        "overall_score": row["overall_score"],
        "dimensions": row["dimensions"],
        "notes": row["notes"],
        "rated_at": _utc_iso(row["rated_at"]),
        "rater_type": row["rater_type"],
        "video": {"video_url": row["video_url"], "visual_analysis": row["visual_analysis"]},
    }


def _fetch_records(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[dict]:
    stmt = text(sql).columns(**_RATING_TYPES)
    return [_record(row) for row in conn.execute(stmt, dict(params)).mappings()]


def load_rating_records(data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every rating joined with its analysis, in the export format, ordered by rated_at."""
    with reading(data_cfg) as conn:
        records = _fetch_records(conn, _RATING_SELECT + "ORDER BY vr.rated_at, vr.id", {})
    if not records:
        raise DataError("no ratings in the database: load some with `viralab data load`")
    return records


def extraction_sql(
    conn: Connection, *, rater_type: str | None, version_key: str | None
) -> tuple[str, dict[str, Any]]:
    """The one-pass extraction query for this dialect and its parameters.

    Every rating comes back with its drop reason (``kept`` for training rows); only kept rows
    carry their analysis, so dropped documents never leave the database. The reason is
    computed once per row inside a fenced subquery (``OFFSET 0`` stops PostgreSQL from
    inlining it into both places that use it), and the ``CASE`` stops at the first failing
    rule, so the JSONB document of a non-owner rating is never even read. Only the presence
    of the optional rules changes the SQL text; values are parameters.
    """
    p = _pieces(conn)
    fc = p["feature_count"]
    params: dict[str, Any] = {}
    cases = []
    if rater_type:
        params["rater_type"] = rater_type
        cases.append("WHEN vr.rater_type IS NULL OR vr.rater_type <> :rater_type THEN 'not_owner'")
    cases += [
        "WHEN vr.overall_score IS NULL OR NOT (vr.overall_score BETWEEN 0 AND 1) THEN 'bad_score'",
        f"WHEN av.visual_analysis IS NULL OR NOT {p['is_object']} THEN 'no_analysis'",
        f"WHEN {fc} IS NULL THEN 'no_feature_count'",
        f"WHEN {fc} < :min_feature_count THEN 'few_features'",
    ]
    if version_key:
        params["version_key"] = version_key
        params["version_path"] = '$."' + version_key.replace('"', '\\"') + '"'
        cases.append(f"WHEN NOT {p['has_key']} THEN 'not_v3'")
    reason = "CASE " + "\n    ".join(cases) + "\n    ELSE 'kept' END"
    fence = "OFFSET 0" if conn.dialect.name == "postgresql" else "LIMIT -1 OFFSET 0"
    sql = f"""
SELECT id, video_id, overall_score, dimensions, notes, rated_at, rater_type, video_url,
       CASE WHEN reason = 'kept' THEN document END AS visual_analysis, reason
FROM (
  SELECT vr.id, vr.video_id, vr.overall_score, vr.dimensions, vr.notes, vr.rated_at,
         vr.rater_type, av.video_url, av.visual_analysis AS document,
    {reason} AS reason
  FROM video_ratings vr
  LEFT JOIN analyzed_videos av ON vr.video_id = av.id
  {fence}
) AS rated
ORDER BY rated_at, id"""
    used = {k: v for k, v in params.items() if f":{k}" in sql}
    return sql, used


def extract_from_database(
    data_cfg: Mapping[str, Any],
    rater_type: str | None = "owner",
    min_feature_count: int = 100,
    version_key: str | None = "comedyStyle",
) -> tuple[list[dict[str, Any]], ExtractionReport]:
    """Spec 000 §2's extraction run in the database: kept records and why the rest dropped.

    Returns what :func:`viralab.data.extraction.extract_training_records` returns for the same
    rows (same records, order and counts), without moving the dropped analyses.

    Raises:
        DataError: unreachable database, missing tables, or no ratings at all.
    """
    report = ExtractionReport()
    records: list[dict[str, Any]] = []
    with reading(data_cfg) as conn:
        sql, params = extraction_sql(conn, rater_type=rater_type, version_key=version_key)
        params["min_feature_count"] = int(min_feature_count)
        stmt = text(sql).columns(**_RATING_TYPES)
        for row in conn.execute(stmt, params).mappings():
            report.total += 1
            if row["reason"] == "kept":
                records.append(_record(row))
            else:
                report.dropped[row["reason"]] += 1
    if report.total == 0:
        raise DataError("no ratings in the database: load some with `viralab data load`")
    report.kept = len(records)
    log.info("Extracted in the database: %s", report.summary())
    return records, report


def load_stats(data_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """`video_stats_processed` as spec 002 reads it: `ORDER BY video_id, timestamp`."""
    columns = ", ".join(f'"{c}"' for c in STATS_COLUMNS)
    sql = f'SELECT {columns} FROM video_stats_processed ORDER BY video_id, "timestamp"'
    with reading(data_cfg) as conn:
        stmt = text(sql).columns(timestamp=DateTime(timezone=True))
        rows = conn.execute(stmt).fetchall()
    if not rows:
        raise DataError("no rows in video_stats_processed: load some with `viralab data load`")
    frame = pd.DataFrame.from_records(rows, columns=STATS_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    for col in COUNT_COLUMNS:
        frame[col] = frame[col].astype("int64")
    for col in GROWTH_COLUMNS:
        frame[col] = frame[col].astype("float64")
    frame["video_id"] = frame["video_id"].astype(str)
    return frame


class PostgresSource:
    """`data=postgres`: the application database, with the extraction run in SQL."""

    def rating_records(self, data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every rating joined with its analysis (extraction filters them afterwards)."""
        return load_rating_records(data_cfg)

    def training_records(
        self,
        data_cfg: Mapping[str, Any],
        *,
        rater_type: str,
        min_feature_count: int,
        version_key: str,
    ) -> tuple[list[dict[str, Any]], ExtractionReport]:
        """Spec 000 §2's extraction where the data lives (:func:`extract_from_database`)."""
        return extract_from_database(
            data_cfg,
            rater_type=rater_type,
            min_feature_count=min_feature_count,
            version_key=version_key,
        )

    def stats(self, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
        """`video_stats_processed` in the spec's order."""
        return load_stats(data_cfg)
