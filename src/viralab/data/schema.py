"""The application tables the data layer owns, as SQLAlchemy Core metadata.

- ``analyzed_videos``: one row per analysed video; ``visual_analysis`` is the nested v3
  document (JSONB on PostgreSQL, JSON text on SQLite).
- ``video_ratings``: ratings of those videos (spec 000 §2); ``overall_score`` in 0..1.
- ``video_stats_processed``: minute-level cumulative counts and growth rates (spec 002),
  one row per ``(video_id, timestamp)``.

The ``model_versions`` registry mirror lives in ``viralab.registry`` (same database, its own
metadata). None of these tables may share a database with an MLflow backend store.

Indexes follow the queries that read the tables: ratings by ``rater_type`` then ``rated_at``
(the spec's query: owner ratings in ``rated_at`` order), ratings by ``video_id`` (the join),
stats by ``video_id`` then ``timestamp`` (the unique key doubles as the index of the spec's
``ORDER BY video_id, timestamp``).

There is deliberately no expression index on the analysis' ``feature_count``: extraction
labels every rating with its drop reason in one pass (see ``postgres_source``), so it reads
all rows whatever the index, and the spec's ``feature_count >= 100`` filter keeps most rows
anyway (an index pays off when a filter keeps few), while every insert would pay for it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

# Python None is stored as SQL NULL (not the JSON literal `null`), so "no analysis" is NULL.
JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


metadata = MetaData()

analyzed_videos = Table(
    "analyzed_videos",
    metadata,
    Column("id", Text, primary_key=True),
    Column("video_url", Text),
    Column("visual_analysis", JSONDocument),
)

video_ratings = Table(
    "video_ratings",
    metadata,
    Column("id", Text, primary_key=True),
    Column("video_id", Text, ForeignKey("analyzed_videos.id"), nullable=False),
    Column("overall_score", Float, nullable=False),
    Column("dimensions", JSONDocument),
    Column("notes", Text),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    Column("rater_type", Text, nullable=False),
    CheckConstraint("overall_score >= 0 AND overall_score <= 1", name="ck_video_ratings_score_0_1"),
    Index("ix_video_ratings_rater_type_rated_at", "rater_type", "rated_at"),
    Index("ix_video_ratings_video_id", "video_id"),
)

video_stats_processed = Table(
    "video_stats_processed",
    metadata,
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("video_id", Text, nullable=False),
    Column("view_count", BigInteger, nullable=False),
    Column("like_count", BigInteger, nullable=False),
    Column("comment_count", BigInteger, nullable=False),
    Column("views_growth_rate", Float),
    Column("likes_growth_rate", Float),
    Column("comments_growth_rate", Float),
    CheckConstraint(
        "view_count >= 0 AND like_count >= 0 AND comment_count >= 0",
        name="ck_video_stats_processed_counts_nonnegative",
    ),
    UniqueConstraint("video_id", "timestamp", name="uq_video_stats_processed_video_time"),
)

APP_DATA_TABLES = (analyzed_videos, video_ratings, video_stats_processed)


def create_schema(engine: Engine) -> None:
    """Create the data tables and their indexes where missing (a no-op when they exist)."""
    metadata.create_all(engine, checkfirst=True)


def missing_tables(engine: Engine) -> list[str]:
    """Names of this module's tables that the database does not have (yet)."""
    present = set(inspect(engine).get_table_names())
    return [t.name for t in APP_DATA_TABLES if t.name not in present]
