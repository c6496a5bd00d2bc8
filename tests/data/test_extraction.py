"""Spec 000 §2 extraction rules in Python (the SQL twin is tested in test_postgres_source)."""

from __future__ import annotations

import copy

import pytest

from viralab.data.extraction import (
    DROP_REASONS,
    ExtractionReport,
    drop_reason,
    extract_training_records,
    rated_at_key,
    whole_number,
)
from viralab.data.sample import generate_ratings


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return generate_ratings()


@pytest.fixture
def record(sample) -> dict:
    return copy.deepcopy(next(r for r in sample if drop_reason(r) is None))


def test_sample_keeps_the_usable_owner_v3_ratings(sample):
    kept, report = extract_training_records(sample)
    assert report.total == len(sample)
    assert report.kept == len(kept) == 700
    assert report.kept + sum(report.dropped.values()) == report.total
    assert set(report.dropped) <= set(DROP_REASONS)
    assert report.dropped["not_owner"] == sum(r["rater_type"] != "owner" for r in sample)
    assert all(r["rater_type"] == "owner" for r in kept)
    assert all(r["video"]["visual_analysis"]["feature_count"] >= 100 for r in kept)
    assert all("comedyStyle" in r["video"]["visual_analysis"] for r in kept)
    assert [rated_at_key(r) for r in kept] == sorted(rated_at_key(r) for r in kept)


def test_report_metrics_and_summary():
    report = ExtractionReport(total=5, kept=3)
    report.dropped.update({"not_owner": 1, "few_features": 1})
    assert report.as_metrics() == {
        "extract_total": 5.0,
        "extract_kept": 3.0,
        "extract_dropped_not_owner": 1.0,
        "extract_dropped_few_features": 1.0,
    }
    assert report.summary() == "kept 3 of 5 ratings (dropped: 1 few_features, 1 not_owner)"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.update(rater_type="team"), "not_owner"),
        (lambda r: r.update(overall_score=1.2), "bad_score"),
        (lambda r: r.update(overall_score=True), "bad_score"),
        (lambda r: r.update(overall_score=float("nan")), "bad_score"),
        (lambda r: r.update(video=None), "no_analysis"),
        (lambda r: r["video"].update(visual_analysis="{}"), "no_analysis"),
        (lambda r: r["video"]["visual_analysis"].pop("feature_count"), "no_feature_count"),
        (lambda r: r["video"]["visual_analysis"].update(feature_count=True), "no_feature_count"),
        (lambda r: r["video"]["visual_analysis"].update(feature_count="many"), "no_feature_count"),
        (lambda r: r["video"]["visual_analysis"].update(feature_count=150.5), "no_feature_count"),
        (lambda r: r["video"]["visual_analysis"].update(feature_count=99), "few_features"),
        (lambda r: r["video"]["visual_analysis"].pop("comedyStyle"), "not_v3"),
        (lambda r: r["video"]["visual_analysis"].update(feature_count="150"), None),
        (lambda r: r["video"]["visual_analysis"].update(feature_count=150.0), None),
        (lambda r: r.pop("rater_type"), None),  # the spec's export: owner ratings, no column
    ],
)
def test_each_rule(record, change, reason):
    change(record)
    assert drop_reason(record) == reason


def test_first_failing_rule_wins(record):
    record["rater_type"] = "guest"
    record["video"]["visual_analysis"]["feature_count"] = 3
    assert drop_reason(record) == "not_owner"
    assert drop_reason(record, rater_type="") == "few_features"


def test_rules_follow_their_parameters(record):
    record["video"]["visual_analysis"]["feature_count"] = 120
    assert drop_reason(record, min_feature_count=150) == "few_features"
    del record["video"]["visual_analysis"]["comedyStyle"]
    assert drop_reason(record, version_key="") is None
    assert drop_reason(record, version_key="hook") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (150, 150),
        (-3, -3),
        (150.0, 150),
        ("150", 150),
        ("150.00", 150),
        (" 150", None),
        ("1e3", None),
        (150.5, None),
        (True, None),
        (None, None),
        (10**9, None),
        (float("inf"), None),
    ],
)
def test_whole_number_matches_the_sql_guard(value, expected):
    assert whole_number(value) == expected


def test_order_is_by_instant_then_id():
    records = [
        {"id": "b", "rated_at": "2025-09-01T10:00:00+02:00"},  # 08:00 UTC
        {"id": "a", "rated_at": "2025-09-01T09:00:00+00:00"},
        {"id": "c", "rated_at": "2025-09-01T08:00:00Z"},
        {"id": "d", "rated_at": None},
    ]
    assert [r["id"] for r in sorted(records, key=rated_at_key)] == ["d", "b", "c", "a"]
