"""Sources by config: `data=sample`, `data=files` in every format, `data=postgres`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.support.services import PG_PASSWORD
from viralab.config import compose, to_safe_container
from viralab.data.extraction import extract_training_records
from viralab.data.loading import load_into_database
from viralab.data.sample import generate_ratings, generate_stats
from viralab.data.sources import extract_records, load_rating_records, load_stats
from viralab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return generate_ratings(n_videos=60, seed=11)


@pytest.fixture(scope="module")
def stats() -> pd.DataFrame:
    return generate_stats(videos={"yt_b": 40, "yt_a": 25}, seed=11)


def _flat(records: list[dict]) -> pd.DataFrame:
    """Tabular ratings: video fields beside the rating, JSON columns as strings."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k != "video"}
        row["dimensions"] = json.dumps(r["dimensions"])
        row["video_url"] = r["video"]["video_url"]
        row["visual_analysis"] = json.dumps(r["video"]["visual_analysis"])
        rows.append(row)
    return pd.DataFrame(rows)


def _write_ratings(records: list[dict], path: Path) -> Path:
    if path.name.endswith(".records.json"):
        path.write_text(json.dumps({"records": records}))
    elif path.suffix == ".json":
        path.write_text(json.dumps(records, indent=2))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n\n" for r in records))
    elif path.suffix == ".csv":
        _flat(records).to_csv(path, index=False)
    else:
        _flat(records).to_parquet(path)
    return path


def test_sample_is_the_default(sample):
    cfg = compose([])
    assert cfg.data.source == "sample"
    records = load_rating_records({"source": "sample", "n_videos": 60, "seed": 11})
    assert records == sample
    assert len(load_stats({"source": "sample", "seed": 42})) == 7708


@pytest.mark.parametrize(
    "name", ["export.json", "export.records.json", "r.jsonl", "r.csv", "r.parquet"]
)
def test_files_in_every_format_give_the_sample_back(sample, tmp_path, name):
    path = _write_ratings(sample, tmp_path / name)
    records = load_rating_records({"source": "files", "path": str(path)})
    assert [r["id"] for r in records] == [r["id"] for r in sample]
    for got, want in zip(records, sample, strict=True):
        assert got["video"] == want["video"]
        assert got["dimensions"] == want["dimensions"]
        assert got["overall_score"] == want["overall_score"]
        assert got["rater_type"] == want["rater_type"]
    kept, report = extract_records({"source": "files", "path": str(path)})
    want_kept, want_report = extract_training_records(sample)
    assert report == want_report
    assert [r["id"] for r in kept] == [r["id"] for r in want_kept]


def test_ids_in_csv_stay_text(sample, tmp_path):
    frame = _flat(sample[:2]).assign(id=["007", "008"], video_id=["0012", "0013"])
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    records = load_rating_records({"source": "files", "path": str(path)})
    assert [(r["id"], r["video_id"]) for r in records] == [("007", "0012"), ("008", "0013")]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_stats_files_in_every_format(stats, tmp_path, suffix):
    path = tmp_path / f"stats{suffix}"
    if suffix == ".csv":
        stats.to_csv(path, index=False)
    elif suffix == ".parquet":
        stats.to_parquet(path)
    else:
        rows = json.loads(stats.to_json(orient="records", date_format="iso"))
        text = json.dumps(rows) if suffix == ".json" else "\n".join(map(json.dumps, rows))
        path.write_text(text)
    loaded = load_stats({"source": "files", "path": str(path)})
    expected = stats.sort_values(["video_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False, atol=1e-9)


def test_raw_counts_get_the_spec_growth_rates(stats, tmp_path):
    path = tmp_path / "raw.csv"
    stats[["timestamp", "video_id", "view_count", "like_count", "comment_count"]].sample(
        frac=1, random_state=1
    ).to_csv(path, index=False)
    loaded = load_stats({"source": "files", "path": str(path)})
    # rows keep the order they came in (the forecaster's cleaning sorts and counts them)...
    assert not loaded["timestamp"].is_monotonic_increasing
    # ...and carry the growth rates the spec computes in time order
    loaded = loaded.sort_values(["video_id", "timestamp"]).reset_index(drop=True)
    expected = stats.sort_values(["video_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)


def test_repeated_timestamps_reach_training_for_its_rules(stats, tmp_path):
    path = tmp_path / "dupes.csv"
    pd.concat([stats, stats.head(3)]).to_csv(path, index=False)
    loaded = load_stats({"source": "files", "path": str(path)})
    assert len(loaded) == len(stats) + 3


def test_training_refuses_invalid_stats_rows(stats, tmp_path):
    path = tmp_path / "bad.csv"
    stats.assign(view_count=stats["view_count"].where(stats.index != 2, -1)).to_csv(path)
    with pytest.raises(DataError, match=r"bad\.csv: 1 invalid row\(s\): row 3 view_count: must"):
        load_stats({"source": "files", "path": str(path)})


@pytest.mark.parametrize(
    ("cfg", "error", "message"),
    [
        ({"source": "s3"}, ConfigError, "unknown data source 's3'; valid: sample, files"),
        ({"source": "files"}, ConfigError, "data=files needs data.path=<file>"),
        ({"source": "files", "path": "???"}, ConfigError, "data=files needs data.path"),
        ({"source": "files", "path": "/no/such.json"}, DataError, "data file not found"),
    ],
)
def test_config_errors(cfg, error, message):
    with pytest.raises(error, match=message):
        load_rating_records(cfg)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "r.json",
            '[{"id": 1},\n {"id": }]',
            r"r\.json: invalid JSON at line 2, column 9: Expecting value",
        ),
        ("r.jsonl", '{"id": 1}\n\n{"id"\n', r"r\.jsonl: invalid JSON at line 3, column 6"),
        ("r.json", '"text"', r"r\.json: expected a JSON list of rating records"),
        ("r.json", "[1, 2]", r"r\.json: record 1 is not a JSON object"),
        ("r.csv", "id,video_id\n1,2\n", r"r\.csv: missing column\(s\) overall_score, rated_at"),
        ("r.parquet", "not parquet", r"r\.parquet: cannot read"),
    ],
)
def test_file_errors_name_the_file_and_place(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_rating_records({"source": "files", "path": str(path)})


@pytest.mark.integration
def test_data_postgres_reads_the_loaded_database(pg_url, monkeypatch, sample, stats):
    load_into_database(pg_url, ratings=sample, stats=stats)
    monkeypatch.setenv("VIRALAB_DATABASE_URL", pg_url.replace("+psycopg2", ""))
    cfg = compose(["data=postgres"])
    assert PG_PASSWORD in cfg.data.url  # resolved from the environment ...
    assert PG_PASSWORD not in json.dumps(to_safe_container(cfg))  # ... and never logged

    kept, report = extract_records(cfg.data, min_feature_count=100)
    want_kept, want_report = extract_training_records(sample)
    assert report == want_report
    assert kept == want_kept
    assert len(load_rating_records(cfg.data)) == len(sample)
    assert len(load_stats(cfg.data)) == len(stats)
