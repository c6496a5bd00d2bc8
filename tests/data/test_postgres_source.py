"""`data=postgres`: spec 000's extraction in SQL agrees with the Python rules, row for row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert, text

from tests.support.services import PG_PASSWORD, PostgresServer, free_port
from viralab.data.database import make_engine
from viralab.data.extraction import extract_training_records
from viralab.data.loading import load_into_database
from viralab.data.postgres_source import (
    database_url,
    extract_from_database,
    extraction_sql,
    load_rating_records,
    load_stats,
    open_engine,
)
from viralab.data.sample import generate_ratings, generate_stats
from viralab.data.schema import analyzed_videos, create_schema, video_ratings
from viralab.errors import DataError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return generate_ratings()


@pytest.fixture(scope="module")
def sample_stats() -> pd.DataFrame:
    return generate_stats(videos={"yt_b": 120, "yt_a": 90})


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def loaded(request, sample, sample_stats, tmp_path_factory) -> Iterator[str]:
    """A database holding the whole sample (loaded once per backend for this module)."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = server.create_database()
        url = server.url(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db')}/viralab.db"
    load_into_database(url, ratings=sample, stats=sample_stats)
    yield url
    if request.param == "postgresql":
        server.drop_database(name)


def test_sql_extraction_equals_the_python_filter_on_the_sample(loaded, sample):
    in_db, db_report = extract_from_database({"url": loaded})
    in_py, py_report = extract_training_records(sample)
    assert db_report == py_report
    assert db_report.kept == 700
    assert [r["id"] for r in in_db] == [r["id"] for r in in_py]
    assert in_db == in_py  # the same records, in the export format, values and all


@pytest.mark.parametrize(
    "params",
    [
        {"min_feature_count": 150},
        {"rater_type": "team"},
        {"rater_type": None, "version_key": None},
        {"version_key": "hook", "min_feature_count": 0},
    ],
)
def test_sql_and_python_agree_for_other_parameters(loaded, sample, params):
    args = {"rater_type": "owner", "min_feature_count": 100, "version_key": "comedyStyle"}
    args.update(params)
    in_db, db_report = extract_from_database({"url": loaded}, **args)
    py_args = {
        **args,
        "rater_type": args["rater_type"] or "",
        "version_key": args["version_key"] or "",
    }
    in_py, py_report = extract_training_records(sample, **py_args)
    assert db_report == py_report
    assert [r["id"] for r in in_db] == [r["id"] for r in in_py]


ODD_DOCUMENTS = {
    "count_text": {"feature_count": "150", "comedyStyle": {}},
    "count_words": {"feature_count": "many", "comedyStyle": {}},
    "count_bool": {"feature_count": True, "comedyStyle": {}},
    "count_fraction": {"feature_count": 150.5, "comedyStyle": {}},
    "count_float": {"feature_count": 150.0, "comedyStyle": {}},
    "count_negative": {"feature_count": -4, "comedyStyle": {}},
    "count_huge": {"feature_count": 10**12, "comedyStyle": {}},
    "count_missing": {"comedyStyle": {}},
    "count_low": {"feature_count": 99, "comedyStyle": {}},
    "not_v3": {"feature_count": 120},
    "v3_null_marker": {"feature_count": 120, "comedyStyle": None},
    "array_doc": ["feature_count", 120],
    "no_doc": None,
}


def test_odd_documents_never_break_the_query_and_match_python(db_url_empty):
    """Rows written behind the loader's back: the guarded cast keeps the query working."""
    engine = make_engine(db_url_empty)
    create_schema(engine)
    when = datetime(2025, 9, 1, tzinfo=UTC)
    records = []
    with engine.begin() as conn:
        for i, (vid, doc) in enumerate(ODD_DOCUMENTS.items()):
            conn.execute(
                insert(analyzed_videos), {"id": vid, "video_url": None, "visual_analysis": doc}
            )
            rating = {
                "id": f"r_{vid}",
                "video_id": vid,
                "overall_score": 0.5,
                "dimensions": None,
                "notes": None,
                "rated_at": when + timedelta(minutes=i),
                "rater_type": "owner",
            }
            conn.execute(insert(video_ratings), rating)
            records.append(
                {
                    **rating,
                    "rated_at": rating["rated_at"].isoformat(),
                    "video": {"video_url": None, "visual_analysis": doc},
                }
            )
    engine.dispose()
    in_db, db_report = extract_from_database({"url": db_url_empty})
    in_py, py_report = extract_training_records(records)
    assert db_report == py_report
    assert [r["id"] for r in in_db] == [r["id"] for r in in_py]
    assert {r["video_id"] for r in in_db} == {"count_text", "count_float", "v3_null_marker"}


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url_empty(request, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path}/viralab.db"


def test_dropped_analyses_never_leave_the_database(loaded):
    engine = open_engine(loaded)  # registers SQLite's feature_count function
    with engine.connect() as conn:
        sql, params = extraction_sql(conn, rater_type="owner", version_key="comedyStyle")
        rows = conn.execute(text(sql), {**params, "min_feature_count": 100}).mappings().all()
    engine.dispose()
    assert {r["reason"] for r in rows} == {"kept", "not_owner", "few_features"}
    assert all((r["visual_analysis"] is None) == (r["reason"] != "kept") for r in rows)


def test_all_records_come_in_the_export_format(loaded, sample):
    records = load_rating_records({"url": loaded})
    assert len(records) == len(sample)
    by_id = {r["id"]: r for r in sample}
    assert all(r == by_id[r["id"]] for r in records)
    assert [r["id"] for r in records] == [r["id"] for r in sample]  # ordered by rated_at


def test_stats_come_ordered_by_video_then_time(loaded, sample_stats):
    stats = load_stats({"url": loaded})
    assert stats["video_id"].iloc[0] == "yt_a"
    expected = sample_stats.sort_values(["video_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(stats, expected)
    assert str(stats["timestamp"].dt.tz) == "UTC"


def test_missing_tables_and_empty_tables_say_what_to_do(pg_url, tmp_path):
    with pytest.raises(DataError, match=r"no viralab data tables in .*:\*\*\*@.*viralab data load"):
        extract_from_database({"url": pg_url})
    load_into_database(pg_url, ratings=[])
    with pytest.raises(DataError, match="no ratings in the database"):
        extract_from_database({"url": pg_url})
    with pytest.raises(DataError, match="no rows in video_stats_processed"):
        load_stats({"url": pg_url})


def test_reading_never_creates_an_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(DataError, match="no application database at"):
        load_rating_records({"url": url})
    assert not (tmp_path / "none.db").exists()


def test_data_url_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("VIRALAB_DATABASE_URL", "postgresql://env/db")
    assert database_url({"url": "sqlite:///x.db"}) == "sqlite:///x.db"
    assert database_url({"url": None}) == "postgresql://env/db"
    monkeypatch.delenv("VIRALAB_DATABASE_URL")
    assert database_url({}) == "sqlite:///data/viralab.db"


def test_a_dead_database_is_one_masked_line():
    url = f"postgresql://u:{PG_PASSWORD}@127.0.0.1:{free_port()}/db"
    with pytest.raises(DataError) as err:
        extract_from_database({"url": url})
    assert str(err.value).startswith("database error at postgresql+psycopg2://u:***@127.0.0.1:")
    assert PG_PASSWORD not in str(err.value)


@pytest.mark.slow
def test_ridge_trains_from_postgres_without_leaking_the_password(pg_url, monkeypatch):
    import json

    import mlflow

    from viralab.config import compose
    from viralab.train import train

    load_into_database(pg_url, ratings=generate_ratings(n_videos=300, seed=4))
    monkeypatch.setenv("VIRALAB_DATABASE_URL", pg_url.replace("+psycopg2", ""))
    metrics = train(compose(["data=postgres", "model=ridge"]))
    assert metrics["mae"] < metrics["baseline_mae"]

    client = mlflow.MlflowClient()
    (run,) = client.search_runs([mlflow.get_experiment_by_name("preference").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["data.source"] == "postgres"
    assert run.data.metrics["extract_kept"] == 300
    config_text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml")
    everything = json.dumps([run.data.params, run.data.tags]) + config_text
    assert PG_PASSWORD not in everything
    assert "***" in run.data.params["data.url"]
