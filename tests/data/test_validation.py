"""Validation at the door: each rule, its reason, and that good rows pass untouched."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from viralab.data.sample import generate_ratings, generate_stats
from viralab.data.validation import (
    parse_json_object,
    parse_timestamps,
    to_export_shape,
    validate_rating,
    validate_ratings,
    validate_stats,
)
from viralab.errors import DataError


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate_ratings(n_videos=20, seed=3)


def _reasons(record: dict) -> dict[str, str]:
    row, rejections = validate_rating(record, row=7, source="in.json")
    assert (row is None) == bool(rejections)
    assert all(r.row == 7 and r.source == "in.json" for r in rejections)
    return {r.field: r.reason for r in rejections}


# --------------------------------------------------------------------------------------------
# Ratings
# --------------------------------------------------------------------------------------------


def test_sample_records_pass_and_map_to_table_rows(records):
    good, rejected = validate_ratings(records)
    assert rejected == []
    assert len(good) == len(records)
    first, record = good[0], records[0]
    assert first.row == 1
    assert first.rating["id"] == record["id"]
    assert first.rating["overall_score"] == record["overall_score"]
    assert first.rating["dimensions"] == record["dimensions"]
    assert first.rating["rated_at"] == datetime.fromisoformat(record["rated_at"])
    assert first.rating["rated_at"].tzinfo is not None
    assert first.video == {
        "id": record["video_id"],
        "video_url": record["video"]["video_url"],
        "visual_analysis": record["video"]["visual_analysis"],
    }


@pytest.mark.parametrize(
    ("score", "fragment"),
    [
        (1.5, "less than or equal to 1"),
        (-0.1, "greater than or equal to 0"),
        (True, "boolean"),
        (float("nan"), "valid number"),  # NaN is an empty cell, as pandas writes it
        ("high", "valid number"),
        (None, "valid number"),
    ],
)
def test_score_must_be_a_number_in_0_1(records, score, fragment):
    reasons = _reasons(dict(records[0], overall_score=score))
    assert fragment in reasons["overall_score"]


def test_missing_fields_are_named(records):
    record = {k: v for k, v in records[0].items() if k not in {"overall_score", "rated_at"}}
    reasons = _reasons(record)
    assert reasons == {"overall_score": "Field required", "rated_at": "Field required"}


def test_numeric_strings_and_ids_are_accepted(records):
    row, rejections = validate_rating(dict(records[0], id=123, overall_score="0.25"), 1)
    assert rejections == []
    assert row.rating["id"] == "123"
    assert row.rating["overall_score"] == 0.25


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-09-01T10:00:00+02:00", datetime(2025, 9, 1, 8, 0, tzinfo=UTC)),
        ("2025-09-01 08:00:00", datetime(2025, 9, 1, 8, 0, tzinfo=UTC)),  # naive = UTC
        ("2025-09-01T08:00:00Z", datetime(2025, 9, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_rated_at_is_normalised_to_utc(records, value, expected):
    row, rejections = validate_rating(dict(records[0], rated_at=value), 1)
    assert rejections == []
    assert row.rating["rated_at"] == expected
    assert row.rating["rated_at"].utcoffset().total_seconds() == 0


def test_unparseable_rated_at_is_rejected_with_the_value(records):
    reasons = _reasons(dict(records[0], rated_at="last tuesday"))
    assert "valid datetime" in reasons["rated_at"]
    assert "'last tuesday'" in reasons["rated_at"]


def test_json_strings_are_parsed_and_malformed_ones_rejected(records):
    ok = dict(records[0], dimensions='{"hook": 0.5}')
    row, _ = validate_rating(ok, 1)
    assert row.rating["dimensions"] == {"hook": 0.5}

    reasons = _reasons(dict(records[0], dimensions='{"hook": 0.5'))
    assert reasons["dimensions"].startswith("not valid JSON (line 1, column 13")

    video = dict(records[0]["video"], visual_analysis="[1, 2]")
    reasons = _reasons(dict(records[0], video=video))
    assert reasons["video.visual_analysis"] == "must be a JSON object, got list"


def test_documents_must_be_strict_json(records):
    doc = copy.deepcopy(records[0]["video"]["visual_analysis"])
    doc["hook"]["strength"] = float("nan")
    reasons = _reasons(dict(records[0], video={"visual_analysis": doc}))
    assert "NaN" in reasons["video.visual_analysis"]

    reasons = _reasons(dict(records[0], dimensions={"hook": "a\x00b"}))
    assert "NUL" in reasons["dimensions"]
    assert "NUL" in _reasons(dict(records[0], notes="a\x00b"))["notes"]


@pytest.mark.parametrize(
    ("count", "stored"), [(150, 150), (150.0, 150), ("150", 150), (None, None)]
)
def test_whole_feature_counts_are_stored_as_int(records, count, stored):
    doc = dict(records[0]["video"]["visual_analysis"], feature_count=count)
    row, rejections = validate_rating(dict(records[0], video={"visual_analysis": doc}), 1)
    assert rejections == []
    assert row.video["visual_analysis"]["feature_count"] == stored
    assert type(row.video["visual_analysis"]["feature_count"]) is type(stored)


@pytest.mark.parametrize("count", [150.5, True, "many", 10**10])
def test_other_feature_counts_are_rejected(records, count):
    doc = dict(records[0]["video"]["visual_analysis"], feature_count=count)
    reasons = _reasons(dict(records[0], video={"visual_analysis": doc}))
    assert "feature_count must be a whole number" in reasons["video.visual_analysis"]


def test_missing_rater_type_means_owner_as_in_the_spec_export(records):
    record = {k: v for k, v in records[0].items() if k != "rater_type"}
    row, _ = validate_rating(record, 1)
    assert row.rating["rater_type"] == "owner"


def test_a_record_naming_only_its_video_has_no_video_row(records):
    record = {k: v for k, v in records[0].items() if k != "video"}
    row, rejections = validate_rating(record, 1)
    assert rejections == [] and row.video is None
    row, _ = validate_rating(dict(record, video={"video_url": None, "visual_analysis": None}), 1)
    assert row.video is None


def test_non_objects_and_duplicates_are_rejected(records):
    good, rejected = validate_ratings([records[0], "oops", records[1], records[0]], source="f")
    assert [g.rating["id"] for g in good] == [records[0]["id"], records[1]["id"]]
    assert [(r.row, r.field) for r in rejected] == [(2, "record"), (4, "id")]
    assert rejected[0].reason == "must be a JSON object, got str"
    assert rejected[1].reason == "duplicate rating id (first at row 1)"


def test_flat_rows_are_nested_like_the_export():
    flat = {
        "id": "r1",
        "video_id": "v1",
        "overall_score": 0.4,
        "rated_at": pd.Timestamp("2025-01-01 10:00"),
        "video_url": "https://x/v1",
        "visual_analysis": '{"feature_count": 120, "comedyStyle": {}}',
        "dimensions": float("nan"),
        "notes": pd.NA,
    }
    shaped = to_export_shape(flat)
    assert shaped["video"] == {
        "video_url": "https://x/v1",
        "visual_analysis": {"feature_count": 120, "comedyStyle": {}},
    }
    assert shaped["dimensions"] is None and shaped["notes"] is None
    assert shaped["rated_at"] == "2025-01-01T10:00:00+00:00"
    row, rejections = validate_rating(flat, 1)
    assert rejections == [] and row.video["id"] == "v1"


def test_parse_json_object_converts_numpy_values():
    parsed = parse_json_object({"a": np.int64(3), "b": np.array([1.5, 2.0]), "c": np.bool_(True)})
    assert parsed == {"a": 3, "b": [1.5, 2.0], "c": True}
    assert type(parsed["a"]) is int
    assert parse_json_object("  ") is None
    assert parse_json_object(math.nan) is None


# --------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------


def _raw_stats() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": [
                "2025-07-01T00:00:00Z",
                "2025-07-01T00:01:00Z",
                "not a time",
                "2025-07-01 00:03",
                "2025-07-01T00:00:00Z",
                "07/01/2025 00:05",
            ],
            "video_id": ["a", "a", "a", None, "a", "a"],
            "view_count": [10, 12, 13, 14, 99, "15"],
            "like_count": [1, -1, 1, 1, 1, 1],
            "comment_count": [0, 0, 0.5, 0, 0, 0],
        }
    )


def test_sample_stats_pass_unchanged():
    stats = generate_stats(videos={"a": 50, "b": 30})
    clean, rejected = validate_stats(stats)
    assert rejected == []
    assert clean["_row"].tolist() == list(range(1, 81))
    pd.testing.assert_frame_equal(clean.drop(columns="_row"), stats[clean.columns[1:]])


def test_each_bad_stats_row_gets_its_reasons():
    clean, rejected = validate_stats(_raw_stats(), source="s.csv")
    assert clean["_row"].tolist() == [1, 6]
    assert clean["view_count"].tolist() == [10, 15]
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2025-07-01T00:00:00Z"),
        pd.Timestamp("2025-07-01T00:05:00Z"),
    ]
    got = [(r.row, r.field, r.reason) for r in rejected]
    assert got == [
        (2, "like_count", "must be >= 0, got -1"),
        (3, "timestamp", "missing or not a parseable timestamp, got 'not a time'"),
        (3, "comment_count", "must be a whole number, got 0.5"),
        (4, "video_id", "missing"),
        (5, "timestamp", "duplicate (video_id, timestamp) of row 1"),
    ]
    assert {r.table for r in rejected} == {"video_stats_processed"}
    assert {r.source for r in rejected} == {"s.csv"}


def test_given_growth_rates_must_be_finite():
    stats = generate_stats(videos={"a": 5})
    stats.loc[2, "likes_growth_rate"] = np.nan
    clean, rejected = validate_stats(stats)
    assert len(clean) == 4
    assert [(r.row, r.field) for r in rejected] == [(3, "likes_growth_rate")]


def test_missing_columns_and_no_rows_are_errors_for_the_whole_input():
    with pytest.raises(DataError, match=r"s\.csv: missing column\(s\) like_count, comment_count"):
        validate_stats(_raw_stats().drop(columns=["like_count", "comment_count"]), "s.csv")
    with pytest.raises(DataError, match="no rows"):
        validate_stats(_raw_stats().iloc[:0], "s.csv")


def test_timestamps_parse_in_any_zone_and_naive_means_utc():
    parsed = parse_timestamps(pd.Series(["2025-07-01T02:00:00+02:00", "2025-07-01 00:00", None]))
    assert parsed.iloc[0] == parsed.iloc[1] == pd.Timestamp("2025-07-01T00:00:00Z")
    assert pd.isna(parsed.iloc[2])
    naive = parse_timestamps(pd.Series(pd.to_datetime(["2025-07-01 00:00"])))
    assert str(naive.dt.tz) == "UTC"


# --- counts outside int64 (issue 14 "Numbers") ---------------------------------------------------

TOO_LARGE = "too large for BIGINT (max 9223372036854775807)"


def _counts_csv(tmp_path, value: str) -> pd.DataFrame:
    path = tmp_path / "s.csv"
    path.write_text(
        "timestamp,video_id,view_count,like_count,comment_count\n"
        f"2025-07-01T00:00:00Z,a,{value},1,0\n"
        "2025-07-01T00:01:00Z,a,7,1,0\n",
        encoding="utf-8",
    )
    return pd.read_csv(path)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9223372036854775808", TOO_LARGE),  # 2^63: read as uint64, used to wrap to -2^63
        ("18446744073709551616", TOO_LARGE),  # 2^64: an object column
        ("1e19", TOO_LARGE),
        ("9223372036854775808.0", TOO_LARGE),  # float64 cannot hold 2^63 - 1 either
        ("-1", "must be >= 0"),
        ("-9223372036854775809", "must be >= 0"),
    ],
)
def test_counts_outside_int64_are_rejected_per_row(tmp_path, value, reason):
    clean, rejected = validate_stats(_counts_csv(tmp_path, value))
    assert clean["view_count"].tolist() == [7] and clean["_row"].tolist() == [2]
    assert [(r.row, r.field) for r in rejected] == [(1, "view_count")]
    assert rejected[0].reason.startswith(reason)


def test_the_largest_int64_count_is_kept_exactly(tmp_path):
    clean, rejected = validate_stats(_counts_csv(tmp_path, str(2**63 - 1)))
    assert rejected == [] and clean["view_count"].tolist() == [2**63 - 1, 7]


def test_mixed_count_columns_are_read_exactly():
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2025-07-01", periods=5, freq="min", tz="UTC"),
            "video_id": "a",
            "view_count": [2**63, "9223372036854775807", "x", 2**63 - 1, "12"],
            "like_count": pd.array([1, 2, 3, None, 5], dtype="Int64"),
            "comment_count": 0,
        }
    )
    clean, rejected = validate_stats(frame)
    assert clean["view_count"].tolist() == [2**63 - 1, 12]
    assert [(r.row, r.field, r.reason.split(",")[0]) for r in rejected] == [
        (1, "view_count", TOO_LARGE),
        (3, "view_count", "missing or not a number"),
        (4, "like_count", "missing or not a number"),
    ]


def test_training_path_refuses_a_count_beyond_int64_with_a_count(tmp_path):
    from viralab.data.files import normalize_stats

    with pytest.raises(DataError) as caught:
        normalize_stats(_counts_csv(tmp_path, "9223372036854775808"), origin="s.csv")
    message = str(caught.value)
    assert message.startswith("s.csv: 1 invalid row(s): row 1 view_count: " + TOO_LARGE)
    assert "-9223372036854775808" not in message and "\n" not in message
