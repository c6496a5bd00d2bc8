"""One load: ratings and/or stats into the application database, tables created first.

Every row is validated first (`viralab.data.validation`); a bad row is set aside with its
reason and the good rows go on. Rows are written in batches, each one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from viralab.config import redact_url
from viralab.data.database import describe_db_error, normalize_url
from viralab.data.loading.ratings import upsert_ratings
from viralab.data.loading.report import LoadReport
from viralab.data.loading.stats import upsert_stats
from viralab.data.loading.upsert import DEFAULT_BATCH_SIZE, Progress
from viralab.data.postgres_source import open_engine
from viralab.data.schema import create_schema
from viralab.data.validation import check_stats_columns
from viralab.errors import ConfigError

log = logging.getLogger(__name__)


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
