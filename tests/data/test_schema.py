"""The data tables on real PostgreSQL and on the embedded SQLite: created once, constrained."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from viralab.data.database import make_engine
from viralab.data.schema import (
    analyzed_videos,
    create_schema,
    metadata,
    missing_tables,
    video_ratings,
    video_stats_processed,
)

pytestmark = pytest.mark.integration

NOW = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
EMPTY_VIDEO = {"id": "v1", "video_url": None, "visual_analysis": None}


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request, tmp_path: Path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path}/app.db"
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_metadata_has_the_data_tables_and_no_registry_mirror():
    assert set(metadata.tables) == {"analyzed_videos", "video_ratings", "video_stats_processed"}


def test_create_schema_twice_is_a_no_op(engine):
    assert missing_tables(engine) == [
        "analyzed_videos",
        "video_ratings",
        "video_stats_processed",
    ]
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(analyzed_videos), {"id": "v1", "video_url": "u", "visual_analysis": {}})
    create_schema(engine)
    assert missing_tables(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analyzed_videos")).scalar_one() == 1


def test_indexes_serve_the_spec_queries(engine):
    create_schema(engine)
    insp = inspect(engine)
    ratings = {ix["name"]: ix["column_names"] for ix in insp.get_indexes("video_ratings")}
    assert ratings["ix_video_ratings_rater_type_rated_at"] == ["rater_type", "rated_at"]
    assert ratings["ix_video_ratings_video_id"] == ["video_id"]
    uniques = insp.get_unique_constraints("video_stats_processed")
    assert [u["column_names"] for u in uniques] == [["video_id", "timestamp"]]
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            kind = conn.execute(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'analyzed_videos' AND column_name = 'visual_analysis'"
                )
            ).scalar_one()
        assert kind == "jsonb"


def _rating(**over):
    row = {
        "id": "r1",
        "video_id": "v1",
        "overall_score": 0.5,
        "dimensions": {"hook": 0.5},
        "notes": "",
        "rated_at": NOW,
        "rater_type": "owner",
    }
    return {**row, **over}


def _stat(**over):
    row = {
        "timestamp": NOW,
        "video_id": "yt1",
        "view_count": 10,
        "like_count": 1,
        "comment_count": 0,
        "views_growth_rate": 0.0,
        "likes_growth_rate": 0.0,
        "comments_growth_rate": 0.0,
    }
    return {**row, **over}


@pytest.mark.parametrize(
    ("table", "row"),
    [
        (video_ratings, _rating(overall_score=1.01)),
        (video_ratings, _rating(overall_score=-0.01)),
        (video_ratings, _rating(video_id="no-such-video")),
        (video_stats_processed, _stat(view_count=-1)),
        (video_stats_processed, _stat(comment_count=-5)),
    ],
)
def test_the_database_enforces_ranges_and_references(engine, table, row):
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(analyzed_videos), EMPTY_VIDEO)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(table), row)


def test_stats_are_unique_per_video_and_minute(engine):
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(video_stats_processed), _stat())
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(video_stats_processed), _stat(view_count=11))


def test_no_analysis_is_sql_null(engine):
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(analyzed_videos), EMPTY_VIDEO)
        nulls = conn.execute(
            text("SELECT count(*) FROM analyzed_videos WHERE visual_analysis IS NULL")
        ).scalar_one()
    assert nulls == 1
