"""Loading ratings, analyses and stats into the application database: checked, batched, upserted.

- Every row is validated first (`viralab.data.validation`); a bad row is set aside with its
  reason and the good rows go on.
- Rows are written in batches, each batch one transaction: a batch that fails leaves nothing
  behind and stops the load (earlier batches stay; a re-run is safe).
- Writes are upserts (`INSERT ... ON CONFLICT DO UPDATE`, PostgreSQL or SQLite) whose update
  only fires when a value differs, so a re-load is idempotent and the counts tell inserted,
  updated and unchanged rows apart: PostgreSQL returns `xmax = 0` for inserted rows; SQLite
  returns the `rowid`, and rows above the batch's starting `max(rowid)` are new.
- Multi-row statements come from SQLAlchemy's "insertmanyvalues" executemany path (one
  `INSERT ... VALUES (...), (...), ...` per page of rows), which is what makes 100k stats rows
  a matter of seconds.
- Stats given as raw counts get their growth rates computed as spec 002 does
  (`viralab.data.sample.add_growth_rates`), continuing from the last stored row of each video.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Boolean, Integer, Table, func, literal_column, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from viralab.config import redact_url
from viralab.data.database import describe_db_error, normalize_url
from viralab.data.schema import analyzed_videos, create_schema, video_ratings, video_stats_processed
from viralab.data.validation import (
    GROWTH_COLUMNS,
    RATINGS_TABLE,
    STATS_TABLE,
    RatingRow,
    Rejection,
    check_stats_columns,
    validate_ratings,
    validate_stats,
)
from viralab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
TABLES = (analyzed_videos.name, video_ratings.name, video_stats_processed.name)
Progress = Callable[[int], None]


@dataclass
class TableCounts:
    """What one load did to one table. ``rejected`` counts input rows, not reasons."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, inserted: int, updated: int, unchanged: int) -> None:
        self.inserted += inserted
        self.updated += updated
        self.unchanged += unchanged


@dataclass
class LoadReport:
    """Counts per table and every rejected row with its reason."""

    database: str = ""
    tables: dict[str, TableCounts] = field(
        default_factory=lambda: {name: TableCounts() for name in TABLES}
    )
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, table: str, rejections: Sequence[Rejection]) -> None:
        self.rejections.extend(rejections)
        self.tables[table].rejected += len({(r.source, r.row) for r in rejections})

    @property
    def rejected_rows(self) -> int:
        return sum(t.rejected for t in self.tables.values())

    def summary_lines(self) -> list[str]:
        return [
            f"{name}: {c.inserted} inserted, {c.updated} updated, {c.unchanged} unchanged, "
            f"{c.rejected} rejected"
            for name, c in self.tables.items()
            if c.inserted or c.updated or c.unchanged or c.rejected
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "tables": {name: asdict(c) for name, c in self.tables.items()},
            "rejected": [r.as_dict() for r in self.rejections],
        }

    def write(self, path: Path) -> Path:
        """The report as JSON (counts + rejections) or, for a ``.csv`` path, the rejections.

        Raises:
            DataError: the file cannot be written.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".csv":
                with path.open("w", newline="", encoding="utf-8") as fh:
                    columns = ["source", "row", "table", "id", "field", "reason"]
                    writer = csv.DictWriter(fh, fieldnames=columns)
                    writer.writeheader()
                    for r in self.rejections:
                        writer.writerow({c: getattr(r, c) for c in columns})
            else:
                path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot write load report {path}: {exc}") from None
        return path


# --------------------------------------------------------------------------------------------
# Upserts
# --------------------------------------------------------------------------------------------


def _upsert(conn: Connection, table: Table, keys: Sequence[str], columns: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE ... WHERE <a value differs> RETURNING ...``.

    Only ``columns`` (those the rows give) are updated; the others keep their stored values.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ConfigError(f"unsupported application database: {dialect}")
    stmt = insert(table)
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


def _batches(n: int, size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _batch_failed(exc: SQLAlchemyError, url: str, what: str, committed: int) -> DataError:
    detail = describe_db_error(exc, url)
    return DataError(
        f"{detail}; {what} was rolled back (nothing of it is written), {committed} earlier "
        "row(s) are saved; fix the cause and re-run (loading is idempotent)"
    )


# --------------------------------------------------------------------------------------------
# Ratings + analyses
# --------------------------------------------------------------------------------------------


def upsert_ratings(
    engine: Engine,
    records: Sequence[Any],
    *,
    report: LoadReport,
    source: str = "ratings",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> LoadReport:
    """Validate and upsert rating records (export format or flat rows) with their analyses.

    Each batch upserts its videos, then its ratings, in one transaction. A record without
    video details must name a video that is in the database or earlier in this load.

    Raises:
        DataError: a batch failed in the database (rolled back; the load stops there).
    """
    good, rejected = validate_ratings(records, source=source)
    report.reject(RATINGS_TABLE, rejected)
    if progress and rejected:
        progress(len({r.row for r in rejected}))
    known_videos: set[str] = set()
    committed = 0
    url = report.database
    for start, stop in _batches(len(good), batch_size):
        batch = good[start:stop]
        what = f"{source}: the batch of rows {batch[0].row}-{batch[-1].row}"
        try:
            with engine.begin() as conn:
                kept, missing = _with_known_videos(conn, batch, known_videos, source)
                v_counts = _upsert_videos(conn, kept)
                r_counts = upsert_rows(conn, video_ratings, ["id"], [r.rating for r in kept])
        except SQLAlchemyError as exc:
            raise _batch_failed(exc, url, what, committed) from None
        report.tables[analyzed_videos.name].add(*v_counts)
        report.tables[video_ratings.name].add(*r_counts)
        report.reject(RATINGS_TABLE, missing)
        known_videos.update(r.rating["video_id"] for r in kept)
        committed += len(kept)
        if progress:
            progress(len(batch))
    return report


def _upsert_videos(conn: Connection, batch: list[RatingRow]) -> tuple[int, int, int]:
    """Upsert the batch's videos (the last record of a video wins).

    A field a record leaves empty (no URL, no analysis) keeps its stored value rather than
    erasing it, so rows are grouped by the fields they give.
    """
    videos = {r.video["id"]: r.video for r in batch if r.video is not None}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for video in videos.values():
        given = {k: v for k, v in video.items() if v is not None}
        groups.setdefault(tuple(given), []).append(given)
    totals = [0, 0, 0]
    for rows in groups.values():
        for i, n in enumerate(upsert_rows(conn, analyzed_videos, ["id"], rows)):
            totals[i] += n
    return totals[0], totals[1], totals[2]


def _with_known_videos(
    conn: Connection, batch: list[RatingRow], known: set[str], source: str
) -> tuple[list[RatingRow], list[Rejection]]:
    """Split off the ratings whose video is neither given, loaded before, nor stored."""
    given = {r.video["id"] for r in batch if r.video is not None}
    asked = {r.rating["video_id"] for r in batch if r.video is None} - given - known
    stored: set[str] = set()
    if asked:
        query = select(analyzed_videos.c.id).where(analyzed_videos.c.id.in_(sorted(asked)))
        stored = set(conn.execute(query).scalars())
    kept, missing = [], []
    for r in batch:
        vid = r.rating["video_id"]
        if r.video is None and vid in asked and vid not in stored:
            reason = f"video {vid!r} not found: no analyzed_videos row and no video details given"
            missing.append(
                Rejection(r.row, r.rating["id"], "video_id", reason, RATINGS_TABLE, source)
            )
        else:
            kept.append(r)
    return kept, missing


# --------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------

_STATS_WRITE = [c.name for c in video_stats_processed.c]


def previous_rows(conn: Connection, frame: pd.DataFrame) -> pd.DataFrame:
    """For each video in ``frame``, its last stored row before the frame's first timestamp."""
    t = video_stats_processed
    rows = []
    for video_id, first in frame.groupby("video_id", sort=True)["timestamp"].min().items():
        query = (
            select(t.c.timestamp, t.c.video_id, t.c.view_count, t.c.like_count, t.c.comment_count)
            .where(t.c.video_id == video_id, t.c.timestamp < first.to_pydatetime())
            .order_by(t.c.timestamp.desc())
            .limit(1)
        )
        row = conn.execute(query).first()
        if row is not None:
            rows.append(dict(row._mapping))
    out = pd.DataFrame(rows, columns=["timestamp", "video_id", *_COUNTS])
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out


_COUNTS = ("view_count", "like_count", "comment_count")


def fill_growth_rates(frame: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute the growth-rate columns a frame lacks, the spec's way, per video in time order.

    ``previous`` holds each video's last stored row, so a file that continues a stored series
    gets a true rate on its first row rather than 0.
    """
    from viralab.data.sample import add_growth_rates

    missing = [c for c in GROWTH_COLUMNS if c not in frame.columns]
    if not missing:
        return frame
    work = frame.drop(columns=[c for c in GROWTH_COLUMNS if c in frame.columns])
    work = work.assign(_previous=False)
    if previous is not None and not previous.empty:
        work = pd.concat([previous.assign(_previous=True, _row=-1), work], ignore_index=True)
    rates = add_growth_rates(work)
    rates = rates.loc[~rates["_previous"]].drop(columns="_previous").reset_index(drop=True)
    for col in GROWTH_COLUMNS:
        if col in frame.columns:  # keep the given ones
            rates[col] = rates["_row"].map(frame.set_index("_row")[col])
    return rates


def _stats_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python rows (drivers do not adapt numpy scalars)."""
    columns = {c: frame[c].tolist() for c in _STATS_WRITE if c != "timestamp"}
    columns["timestamp"] = [ts.to_pydatetime() for ts in frame["timestamp"]]
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def upsert_stats(
    engine: Engine,
    frame: pd.DataFrame,
    *,
    report: LoadReport,
    source: str = "stats",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> LoadReport:
    """Validate and upsert ``video_stats_processed`` rows, computing missing growth rates.

    Raises:
        DataError: missing columns, no rows, or a batch failed in the database.
    """
    clean, rejected = validate_stats(frame, source=source)
    report.reject(STATS_TABLE, rejected)
    if progress and rejected:
        progress(len({r.row for r in rejected}))
    if clean.empty:
        return report
    url = report.database
    if any(c not in clean.columns for c in GROWTH_COLUMNS):
        try:
            with engine.connect() as conn:
                previous = previous_rows(conn, clean)
        except SQLAlchemyError as exc:
            raise describe_db_error(exc, url) from None
        clean = fill_growth_rates(clean, previous)
    rows = _stats_records(clean)
    row_numbers = clean["_row"].to_numpy()
    committed = 0
    for start, stop in _batches(len(rows), batch_size):
        first, last = int(np.min(row_numbers[start:stop])), int(np.max(row_numbers[start:stop]))
        what = f"{source}: the batch of rows {first}-{last}"
        try:
            with engine.begin() as conn:
                counts = upsert_rows(
                    conn, video_stats_processed, ["video_id", "timestamp"], rows[start:stop]
                )
        except SQLAlchemyError as exc:
            raise _batch_failed(exc, url, what, committed) from None
        report.tables[video_stats_processed.name].add(*counts)
        committed += stop - start
        if progress:
            progress(stop - start)
    return report


# --------------------------------------------------------------------------------------------
# One load
# --------------------------------------------------------------------------------------------


def prepare_database(engine: Engine, url: str) -> None:
    """Create the data tables where missing; an unreachable database is one masked line.

    Raises:
        DataError: the database cannot be reached or the tables cannot be created.
    """
    try:
        create_schema(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise describe_db_error(exc, url) from None


def load_into_database(
    url: str,
    *,
    ratings: Sequence[Any] | None = None,
    ratings_source: str = "ratings",
    stats: pd.DataFrame | None = None,
    stats_source: str = "stats",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    report: LoadReport | None = None,
) -> LoadReport:
    """Load rating records and/or stats rows into the database at ``url`` (tables created).

    Counts and rejections go into ``report`` when given (several inputs, one report).

    Raises:
        ConfigError: an unusable URL or batch size.
        DataError: unreachable database, unusable input, or a failed batch.
    """
    from viralab.data.postgres_source import open_engine

    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if stats is not None:
        check_stats_columns(stats, stats_source)  # before touching the database
    report = report if report is not None else LoadReport()
    report.database = redact_url(normalize_url(url)) or ""
    engine = open_engine(url)
    try:
        prepare_database(engine, url)
        if ratings is not None:
            log.info("Loading %d rating records from %s", len(ratings), ratings_source)
            upsert_ratings(
                engine,
                ratings,
                report=report,
                source=ratings_source,
                batch_size=batch_size,
                progress=progress,
            )
        if stats is not None:
            log.info("Loading %d stats rows from %s", len(stats), stats_source)
            upsert_stats(
                engine,
                stats,
                report=report,
                source=stats_source,
                batch_size=batch_size,
                progress=progress,
            )
    finally:
        engine.dispose()
    return report
