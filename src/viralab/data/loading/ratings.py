"""Rating records and their analyses into `video_ratings` and `analyzed_videos`.

Each batch upserts its videos, then its ratings, in one transaction: a batch that fails
leaves nothing behind and stops the load (earlier batches stay; a re-run is safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from viralab.data.loading.report import LoadReport
from viralab.data.loading.upsert import (
    DEFAULT_BATCH_SIZE,
    Progress,
    batch_failed,
    batches,
    upsert_rows,
)
from viralab.data.schema import analyzed_videos, video_ratings
from viralab.data.validation import RATINGS_TABLE, RatingRow, Rejection, validate_ratings


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
    for start, stop in batches(len(good), batch_size):
        batch = good[start:stop]
        what = f"{source}: the batch of rows {batch[0].row}-{batch[-1].row}"
        try:
            with engine.begin() as conn:
                kept, missing = _with_known_videos(conn, batch, known_videos, source)
                v_counts = _upsert_videos(conn, kept)
                r_counts = upsert_rows(conn, video_ratings, ["id"], [r.rating for r in kept])
        except SQLAlchemyError as exc:
            raise batch_failed(exc, url, what, committed) from None
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
