"""`viralab data load` against real PostgreSQL and the embedded SQLite: idempotent upserts,
rejected rows with reasons, whole-batch transactions, growth rates, readable errors."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.support.services import PG_PASSWORD, free_port
from viralab.cli import app
from viralab.data.database import make_engine
from viralab.data.loading import LoadReport, load_into_database
from viralab.data.sample import add_growth_rates, generate_ratings, generate_stats
from viralab.errors import DataError

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(scope="module")
def ratings() -> list[dict]:
    return generate_ratings(n_videos=40, seed=5)


@pytest.fixture(scope="module")
def stats() -> pd.DataFrame:
    return generate_stats(videos={"yt_a": 300, "yt_b": 200}, seed=5)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path}/viralab.db"


def count(url: str, table: str, where: str = "") -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one()
    finally:
        engine.dispose()


def counts(report: LoadReport, table: str) -> tuple[int, int, int, int]:
    c = report.tables[table]
    return c.inserted, c.updated, c.unchanged, c.rejected


def test_load_then_reload_is_idempotent(db_url, ratings, stats):
    n = len(ratings)
    first = load_into_database(db_url, ratings=ratings, stats=stats, batch_size=25)
    assert counts(first, "analyzed_videos") == (n, 0, 0, 0)
    assert counts(first, "video_ratings") == (n, 0, 0, 0)
    assert counts(first, "video_stats_processed") == (len(stats), 0, 0, 0)

    again = load_into_database(db_url, ratings=ratings, stats=stats, batch_size=7)
    assert counts(again, "analyzed_videos") == (0, 0, n, 0)
    assert counts(again, "video_ratings") == (0, 0, n, 0)
    assert counts(again, "video_stats_processed") == (0, 0, len(stats), 0)
    assert count(db_url, "video_ratings") == n
    assert count(db_url, "analyzed_videos") == n
    assert count(db_url, "video_stats_processed") == len(stats)


def test_changed_rows_are_updated_in_place(db_url, ratings, stats):
    load_into_database(db_url, ratings=ratings[:10], stats=stats)
    changed = copy.deepcopy(ratings[:12])
    changed[3]["overall_score"] = 0.01
    changed[4]["video"]["visual_analysis"]["hook"]["strength"] = 1
    stats2 = stats.copy()
    stats2.loc[5, "view_count"] += 1

    report = load_into_database(db_url, ratings=changed, stats=stats2)
    assert counts(report, "video_ratings") == (2, 1, 9, 0)
    assert counts(report, "analyzed_videos") == (2, 1, 9, 0)
    assert counts(report, "video_stats_processed") == (0, 1, len(stats) - 1, 0)
    assert count(db_url, "video_ratings", "WHERE overall_score = 0.01") == 1
    assert count(db_url, "video_stats_processed") == len(stats)


def test_bad_rows_are_reported_and_good_rows_still_land(db_url, ratings, stats, tmp_path):
    bad = copy.deepcopy(ratings[:6])
    bad[1]["overall_score"] = 7
    bad[2]["rated_at"] = "soon"
    bad[4]["video"]["visual_analysis"] = "{not json"
    raw = stats.drop(columns=["views_growth_rate", "likes_growth_rate", "comments_growth_rate"])
    raw = raw.astype({"view_count": object})
    raw.loc[3, "view_count"] = -4
    raw.loc[10, "view_count"] = "lots"

    report = load_into_database(
        db_url, ratings=bad, ratings_source="r.json", stats=raw, stats_source="s.csv"
    )
    assert counts(report, "video_ratings") == (3, 0, 0, 3)
    assert counts(report, "video_stats_processed") == (len(stats) - 2, 0, 0, 2)
    assert count(db_url, "video_ratings") == 3
    assert count(db_url, "analyzed_videos") == 3  # a rejected record brings no video either
    got = [(r.source, r.row, r.id, r.field) for r in report.rejections]
    assert got == [
        ("r.json", 2, bad[1]["id"], "overall_score"),
        ("r.json", 3, bad[2]["id"], "rated_at"),
        ("r.json", 5, bad[4]["id"], "video.visual_analysis"),
        ("s.csv", 4, "yt_a", "view_count"),
        ("s.csv", 11, "yt_a", "view_count"),
    ]
    assert report.rejections[3].reason == "must be >= 0, got -4"

    as_json = json.loads(report.write(tmp_path / "report.json").read_text())
    assert as_json["tables"]["video_ratings"]["rejected"] == 3
    assert as_json["rejected"][0]["reason"] == "Input should be less than or equal to 1, got 7"
    assert "viralab-test-secret" not in json.dumps(as_json)
    with report.write(tmp_path / "report.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["source"], r["row"], r["field"]) for r in rows][:2] == [
        ("r.json", "2", "overall_score"),
        ("r.json", "3", "rated_at"),
    ]


def test_a_rating_needs_its_video(db_url, ratings):
    load_into_database(db_url, ratings=ratings[:2])
    stored = {k: v for k, v in ratings[2].items() if k != "video"} | {
        "id": "again",
        "video_id": ratings[0]["video_id"],
    }
    earlier = {k: v for k, v in ratings[3].items() if k != "video"} | {
        "id": "same-file",
        "video_id": ratings[2]["video_id"],
    }
    orphan = {k: v for k, v in ratings[4].items() if k != "video"} | {"video_id": "nowhere"}
    report = load_into_database(db_url, ratings=[ratings[2], stored, earlier, orphan], batch_size=1)
    assert counts(report, "video_ratings") == (3, 0, 0, 1)
    (rejection,) = report.rejections
    assert (rejection.row, rejection.field) == (4, "video_id")
    assert rejection.reason.startswith("video 'nowhere' not found")


def test_an_empty_field_does_not_erase_a_stored_analysis(db_url, ratings):
    load_into_database(db_url, ratings=ratings[:1])
    url_only = copy.deepcopy(ratings[0])
    url_only["video"] = {"video_url": "https://example.com/moved", "visual_analysis": None}
    report = load_into_database(db_url, ratings=[url_only])
    assert counts(report, "analyzed_videos") == (0, 1, 0, 0)

    from viralab.data.postgres_source import load_rating_records

    (stored,) = load_rating_records({"url": db_url})
    assert stored["video"]["video_url"] == "https://example.com/moved"
    assert stored["video"]["visual_analysis"] == ratings[0]["video"]["visual_analysis"]


def _fail_on(url: str, rating_id: str) -> None:
    """A trigger that makes the database itself refuse one rating, mid-batch."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.id = '{rating_id}' THEN RAISE EXCEPTION 'refused %', NEW.id; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON video_ratings "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON video_ratings "
                    f"WHEN NEW.id = '{rating_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    engine.dispose()


def test_a_failing_batch_leaves_nothing_of_itself(db_url, ratings):
    load_into_database(db_url, ratings=[])  # creates the tables
    _fail_on(db_url, ratings[6]["id"])
    with pytest.raises(DataError) as err:
        load_into_database(db_url, ratings=ratings[:12], ratings_source="r.json", batch_size=4)
    message = str(err.value)
    assert "refused" in message
    assert "r.json: the batch of rows 5-8 was rolled back" in message
    assert "4 earlier row(s) are saved" in message
    assert "\n" not in message and PG_PASSWORD not in message
    # Batch 1 (rows 1-4) committed; of batch 2 neither the ratings nor the videos it upserted
    # before the failing insert remain; batch 3 never ran.
    ids = [r["video_id"] for r in ratings[:12]]
    assert count(db_url, "video_ratings") == 4
    assert count(db_url, "analyzed_videos") == 4
    assert count(db_url, "analyzed_videos", f"WHERE id IN ('{ids[4]}', '{ids[5]}')") == 0


def test_growth_rates_are_computed_from_raw_counts_across_loads(db_url, stats):
    raw = stats[["timestamp", "video_id", "view_count", "like_count", "comment_count"]]
    first_part = raw[raw["timestamp"] < raw["timestamp"].iloc[0] + pd.Timedelta(minutes=50)]
    later_part = raw.drop(first_part.index)
    load_into_database(db_url, stats=first_part)
    load_into_database(db_url, stats=later_part.sample(frac=1, random_state=0))  # any order

    from viralab.data.postgres_source import load_stats

    stored = load_stats({"url": db_url})
    expected = add_growth_rates(raw)
    pd.testing.assert_frame_equal(stored, expected[stored.columns], check_dtype=False)
    assert (stored["views_growth_rate"] != 0).sum() > len(stored) / 2


def test_a_dead_database_is_one_masked_line():
    url = f"postgresql://viralab:{PG_PASSWORD}@127.0.0.1:{free_port()}/viralab"
    with pytest.raises(DataError) as err:
        load_into_database(url, ratings=[])
    message = str(err.value)
    assert message.startswith("database error at postgresql+psycopg2://viralab:***@127.0.0.1:")
    assert "Connection refused" in message or "connection" in message.lower()
    assert PG_PASSWORD not in message and "\n" not in message


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_loads_the_sample_twice(db_url, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIRALAB_DATABASE_URL", raising=False)
    first = runner.invoke(app, ["data", "load", "--sample", "--database-url", db_url])
    assert first.exit_code == 0, first.output
    assert "video_ratings: 826 inserted, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    assert "video_stats_processed: 7708 inserted" in first.stdout
    assert "Loading sample into " in first.stderr

    monkeypatch.setenv("VIRALAB_DATABASE_URL", db_url)  # the environment is the default
    again = runner.invoke(app, ["data", "load", "--sample", "--batch-size", "5000"])
    assert again.exit_code == 0, again.output
    assert "video_ratings: 0 inserted, 0 updated, 826 unchanged, 0 rejected" in again.stdout
    for result in (first, again):
        assert PG_PASSWORD not in result.output


def test_cli_defaults_to_the_embedded_sqlite_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIRALAB_DATABASE_URL", raising=False)
    stats_file = tmp_path / "stats.csv"
    generate_stats(videos={"yt": 30}).drop(columns=["views_growth_rate"]).to_csv(stats_file)
    result = runner.invoke(app, ["data", "load", "--stats", str(stats_file)])
    assert result.exit_code == 0, result.output
    assert "into sqlite:///data/viralab.db" in result.stderr
    assert (tmp_path / "data" / "viralab.db").is_file()
    assert "video_stats_processed: 30 inserted" in result.stdout


def test_cli_reports_rejections(pg_url, ratings, tmp_path):
    rows = copy.deepcopy(ratings[:3])
    rows[1]["overall_score"] = "high"
    source = tmp_path / "ratings.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = tmp_path / "out" / "rejected.csv"
    args = ["data", "load", "--ratings", str(source), "--database-url", pg_url]

    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "video_ratings: 2 inserted, 0 updated, 0 unchanged, 1 rejected" in shown.stdout
    assert "warning: 1 row(s) rejected" in shown.stderr
    assert f"{source} row 2 ({rows[1]['id']}) overall_score: Input should be" in shown.stderr

    written = runner.invoke(app, [*args, "--report", str(report)])
    assert written.exit_code == 0, written.output
    assert "video_ratings: 0 inserted, 0 updated, 2 unchanged, 1 rejected" in written.stdout
    lines = report.read_text().splitlines()
    assert lines[0] == "source,row,table,id,field,reason"
    assert lines[1].startswith(f"{source},2,video_ratings,{rows[1]['id']},overall_score,")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "r.json",
            '[\n  {"id": 1},\n  {"id": 2,,}\n]',
            "r.json: invalid JSON at line 3, column 12: Expecting property name",
        ),
        ("r.jsonl", '{"id": 1}\n{"id": \n', "r.jsonl: invalid JSON at line 2, column 8"),
        ("r.json", "[]", "r.json: no rows"),
        ("r.csv", "id,video_id,overall_score\n1,v,0.5\n", "r.csv: missing column(s) rated_at"),
        ("r.csv", "", "r.csv: no rows"),
        ("r.txt", "hello", "r.txt: ratings must be a JSON export"),
    ],
)
def test_cli_rejects_unusable_rating_files_in_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    url = f"sqlite:///{tmp_path}/never.db"
    result = runner.invoke(app, ["data", "load", "--ratings", str(path), "--database-url", url])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path}/{message}")
    assert "Traceback" not in result.output
    assert not (tmp_path / "never.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: nothing to load: pass --sample, --ratings FILE and/or --stats FILE"),
        (["--ratings", "missing.json"], "error: data file not found: missing.json"),
        (["--stats", "."], "error: data file is a directory, not a file: ."),
    ],
)
def test_cli_usage_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "load", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_cli_stats_without_columns(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("timestamp,video_id,view_count\n2025-07-01,a,1\n")
    url = f"sqlite:///{tmp_path}/app.db"
    result = runner.invoke(app, ["data", "load", "--stats", str(path), "--database-url", url])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: missing column(s) like_count, comment_count "
        "(need timestamp, video_id, view_count, like_count, comment_count)"
    )


def test_cli_dead_database_hides_the_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"postgresql://viralab:{PG_PASSWORD}@127.0.0.1:{free_port()}/viralab"
    result = runner.invoke(app, ["data", "load", "--sample", "--database-url", url])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Loading sample into postgresql+psycopg2://viralab:***@")
    assert lines[1].startswith("error: database error at postgresql+psycopg2://viralab:***@")
    assert len(lines) == 2
    assert PG_PASSWORD not in result.output
    assert "Traceback" not in result.output


def test_cli_reports_rows_per_input(tmp_path, ratings):
    rows = [dict(r, id=f"extra{i}", video_id=f"xv{i}") for i, r in enumerate(ratings[:2])]
    rows[1]["rated_at"] = "never"
    source = tmp_path / "extra.json"
    source.write_text(json.dumps(rows))
    url = f"sqlite:///{tmp_path}/app.db"
    args = ["data", "load", "--sample", "--ratings", str(source), "--database-url", url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"Loading sample + {source} into sqlite:///" in result.stderr
    assert "video_ratings: 827 inserted, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert f"  {source} row 2 ({rows[1]['id']}) rated_at: " in result.stderr


def test_a_count_beyond_int64_is_rejected_and_its_batch_still_loads(db_url, tmp_path):
    """2^63 used to pass validation, wrap to -2^63, fail the CHECK and roll back the batch."""
    path = tmp_path / "s.csv"
    rows = [f"2025-07-01T00:0{i}:00Z,yt_x,{10 + i},1,0" for i in range(4)]
    rows[2] = "2025-07-01T00:02:00Z,yt_x,9223372036854775808,1,0"
    path.write_text("timestamp,video_id,view_count,like_count,comment_count\n" + "\n".join(rows))
    result = runner.invoke(
        app, ["data", "load", "--stats", str(path), "--database-url", db_url, "--batch-size", "10"]
    )
    assert result.exit_code == 0, result.output
    assert "video_stats_processed: 3 inserted, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert "row 3 (yt_x) view_count: too large for BIGINT" in result.stderr
    assert count(db_url, "video_stats_processed", "WHERE view_count < 0") == 0
    assert count(db_url, "video_stats_processed") == 3
