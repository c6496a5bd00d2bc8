"""Stats rows into `video_stats_processed`, growth rates computed where the input lacks them.

Stats given as raw counts get their growth rates computed as spec 002 does
(`viralab.data.growth.add_growth_rates`), continuing from the last stored row of each video.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from viralab.data.database import describe_db_error
from viralab.data.definitions import COUNT_COLUMNS, GROWTH_COLUMNS
from viralab.data.growth import add_growth_rates
from viralab.data.loading.report import LoadReport
from viralab.data.loading.upsert import (
    DEFAULT_BATCH_SIZE,
    Progress,
    batch_failed,
    batches,
    upsert_rows,
)
from viralab.data.schema import video_stats_processed
from viralab.data.validation import STATS_TABLE, validate_stats

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
    out = pd.DataFrame(rows, columns=["timestamp", "video_id", *COUNT_COLUMNS])
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    return out


def fill_growth_rates(frame: pd.DataFrame, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute the growth-rate columns a frame lacks, the spec's way, per video in time order.

    ``previous`` holds each video's last stored row, so a file that continues a stored series
    gets a true rate on its first row rather than 0.
    """
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
    for start, stop in batches(len(rows), batch_size):
        first, last = int(np.min(row_numbers[start:stop])), int(np.max(row_numbers[start:stop]))
        what = f"{source}: the batch of rows {first}-{last}"
        try:
            with engine.begin() as conn:
                counts = upsert_rows(
                    conn, video_stats_processed, ["video_id", "timestamp"], rows[start:stop]
                )
        except SQLAlchemyError as exc:
            raise batch_failed(exc, url, what, committed) from None
        report.tables[video_stats_processed.name].add(*counts)
        committed += stop - start
        if progress:
            progress(stop - start)
    return report
