"""The bundled sample data: deterministic, shaped like the specs, and learnable."""

from __future__ import annotations

import json
import re
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

from viralab.data.sample import (
    DEFAULT_STATS_VIDEOS,
    EXPECTED_CORRELATIONS,
    add_growth_rates,
    generate_ratings,
    generate_stats,
)

RECORD_KEYS = {
    "id",
    "video_id",
    "overall_score",
    "dimensions",
    "notes",
    "rated_at",
    "rater_type",
    "video",
}
DIMENSIONS = {"hook", "pacing", "payoff", "originality", "rewatchable"}
COUNTS = ["view_count", "like_count", "comment_count"]
RATES = ["views_growth_rate", "likes_growth_rate", "comments_growth_rate"]


def _leaves(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf paths of a nested document (arrays stay whole)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def _flatten(analysis: dict[str, Any]) -> dict[str, Any]:
    """A throwaway flattener following the spec (section 3.1), for these checks only."""
    out: dict[str, Any] = {}
    for path, value in _leaves(analysis).items():
        if isinstance(value, list):
            out[f"{path}_count"] = len(value)
            out[f"{path}_empty"] = not value
            for item in value:
                if isinstance(item, str):
                    out[f"{path}_has_{re.sub('[^a-z0-9]', '_', item.lower())[:30]}"] = True
        else:
            out[path] = value
    return out


def _usable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spec's extraction: owner ratings, feature_count >= 100, comedyStyle present."""
    return [
        r
        for r in records
        if r["rater_type"] == "owner"
        and r["video"]["visual_analysis"].get("feature_count", 0) >= 100
        and "comedyStyle" in r["video"]["visual_analysis"]
    ]


def _design_matrix(rows: list[dict[str, Any]]) -> np.ndarray:
    """Spec-style preprocessing: coverage >= 50%, no text, min-max, one-hot, missing -> 0."""
    columns = []
    for key in sorted({k for row in rows for k in row}):
        values = [row.get(key) for row in rows]
        known = [v for v in values if v is not None]
        if len(known) < 0.5 * len(rows):
            continue
        if isinstance(known[0], bool):
            columns.append([1.0 if v else 0.0 for v in values])
        elif isinstance(known[0], int | float):
            a = np.array([np.nan if v is None else v for v in values], dtype=float)
            lo, hi = np.nanmin(a), np.nanmax(a)
            scaled = (a - lo) / (hi - lo) if hi > lo else np.full_like(a, 0.5)
            columns.append(np.nan_to_num(scaled, nan=0.0))
        elif len(set(known)) <= 20:
            columns.extend([[1.0 if v == c else 0.0 for v in values] for c in sorted(set(known))])
    return np.column_stack(columns).astype(float)


@pytest.fixture(scope="module")
def ratings() -> list[dict[str, Any]]:
    return generate_ratings()


@pytest.fixture(scope="module")
def usable(ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _usable(ratings)


@pytest.fixture(scope="module")
def usable_flat(usable: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_flatten(r["video"]["visual_analysis"]) for r in usable]


@pytest.fixture(scope="module")
def stats() -> pd.DataFrame:
    return generate_stats()


# --- determinism -----------------------------------------------------------------------------


def test_ratings_same_seed_identical_other_seed_differs(ratings: list[dict[str, Any]]) -> None:
    dump = json.dumps(ratings, sort_keys=True)
    assert json.dumps(generate_ratings(), sort_keys=True) == dump
    assert json.dumps(generate_ratings(seed=43), sort_keys=True) != dump


def test_stats_same_seed_identical_other_seed_differs(stats: pd.DataFrame) -> None:
    assert generate_stats().equals(stats)
    assert not generate_stats(seed=43).equals(stats)


# --- ratings: schema and counts --------------------------------------------------------------


def test_rating_records_follow_the_export_format(ratings: list[dict[str, Any]]) -> None:
    for r in ratings:
        assert set(r) == RECORD_KEYS
        assert isinstance(r["overall_score"], float)
        assert 0.0 <= r["overall_score"] <= 1.0
        assert set(r["dimensions"]) == DIMENSIONS
        assert all(0.0 <= v <= 1.0 for v in r["dimensions"].values())
        assert isinstance(r["notes"], str)
        assert r["rater_type"] in {"owner", "team", "guest"}
        assert set(r["video"]) == {"video_url", "visual_analysis"}
        assert r["video"]["video_url"].endswith(r["video_id"])
        assert datetime.fromisoformat(r["rated_at"]).tzinfo is not None
    assert len({r["id"] for r in ratings}) == len(ratings)
    assert len({r["video_id"] for r in ratings}) == len(ratings)
    times = [datetime.fromisoformat(r["rated_at"]) for r in ratings]
    assert all(a < b for a, b in pairwise(times))
    assert any(r["notes"] for r in ratings)


def test_defaults_give_700_usable_records_plus_records_to_filter_out(
    ratings: list[dict[str, Any]], usable: list[dict[str, Any]]
) -> None:
    assert len(usable) == 700
    others = [r for r in ratings if r["rater_type"] != "owner"]
    v2 = [r for r in ratings if r["video"]["visual_analysis"]["version"] == "v2"]
    assert {r["rater_type"] for r in others} == {"team", "guest"}
    assert 0.05 <= len(others) / len(ratings) <= 0.15
    assert 0.04 <= len(v2) / len(ratings) <= 0.12
    assert all(r["video"]["visual_analysis"]["version"] == "v3" for r in usable)


def test_small_sample_keeps_its_usable_count() -> None:
    records = generate_ratings(n_videos=20, seed=1)
    assert len(_usable(records)) == 20
    assert len(records) > 20
    assert generate_ratings(n_videos=0) == []


def test_v3_documents_have_150_plus_leaves_and_honest_feature_count(
    ratings: list[dict[str, Any]],
) -> None:
    for r in ratings:
        analysis = r["video"]["visual_analysis"]
        leaves = _leaves(
            {k: v for k, v in analysis.items() if k not in {"feature_count", "version"}}
        )
        assert analysis["feature_count"] == sum(v is not None for v in leaves.values())
        if analysis["version"] == "v3":
            assert len(leaves) >= 150
            assert analysis["feature_count"] >= 100
        else:
            assert analysis["version"] == "v2"
            assert analysis["feature_count"] < 100
            assert "comedyStyle" not in analysis


def test_expected_correlation_paths_exist(usable_flat: list[dict[str, Any]]) -> None:
    for paths in EXPECTED_CORRELATIONS.values():
        for path in paths:
            assert all(path in row for row in usable_flat), path
    assert len(EXPECTED_CORRELATIONS["strongPositive"]) == 6
    assert len(EXPECTED_CORRELATIONS["strongNegative"]) == 7


def test_analysis_mixes_every_feature_type(
    usable: list[dict[str, Any]], usable_flat: list[dict[str, Any]]
) -> None:
    docs = [_leaves(r["video"]["visual_analysis"]) for r in usable]
    n = len(docs)
    values: dict[str, list[Any]] = {}
    for doc in docs:
        for key, value in doc.items():
            values.setdefault(key, []).append(value)
    assert isinstance(values["script.replicability.score"][0], int)
    assert isinstance(values["visual.brightness"][0], float)
    assert isinstance(values["standalone.worksWithoutContext"][0], bool)
    assert 2 <= len(set(values["hook.type"])) <= 6
    assert all(isinstance(v, list) for v in values["script.replicability.requiredElements"])
    assert any(v == [] for v in values["audio.soundEffects"])
    assert all(isinstance(x, float) for v in values["production.shotLengthsSeconds"] for x in v)
    assert len(set(values["script.summary"])) > 20
    assert None in values["audio.loudnessLufs"]
    coverage = {key: len(v) / n for key, v in values.items()}
    low = {key for key, c in coverage.items() if c < 0.5}
    optional = {key for key, c in coverage.items() if 0.5 <= c < 0.9}
    assert {"trends.remixOf", "audio.instruments", "script.replicability.notes"} <= low
    assert len(optional) >= 4
    assert usable_flat[0]["script.replicability.requiredElements_count"] >= 0


def test_owner_score_follows_the_expected_correlations(
    usable: list[dict[str, Any]], usable_flat: list[dict[str, Any]]
) -> None:
    y = np.array([r["overall_score"] for r in usable])
    agreeing = 0
    for sign, paths in EXPECTED_CORRELATIONS.items():
        for path in paths:
            x = np.array([float(row[path]) for row in usable_flat])
            r, _ = pearsonr(x, y)
            agreeing += (r > 0) if sign == "strongPositive" else (r < 0)
    assert agreeing >= 11


def test_ridge_can_learn_the_owner_score(
    usable: list[dict[str, Any]], usable_flat: list[dict[str, Any]]
) -> None:
    X = _design_matrix(usable_flat)
    y = np.array([r["overall_score"] for r in usable])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    pred = Ridge(alpha=1.0).fit(X_train, y_train).predict(X_test)
    assert mean_absolute_error(y_test, pred) < 0.15
    assert r2_score(y_test, pred) > 0.6


# --- stats -----------------------------------------------------------------------------------


def test_stats_schema_and_size(stats: pd.DataFrame) -> None:
    assert list(stats.columns) == ["timestamp", "video_id", *COUNTS, *RATES]
    assert isinstance(stats["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(stats["timestamp"].dt.tz) == "UTC"
    assert all(stats[c].dtype == np.int64 for c in COUNTS)
    assert all(stats[c].dtype == np.float64 for c in RATES)
    sizes = stats.groupby("video_id").size().to_dict()
    assert sizes == DEFAULT_STATS_VIDEOS
    assert len(sizes) >= 3 and min(sizes.values()) >= 2400
    ordered = stats.sort_values(["video_id", "timestamp"], kind="stable").reset_index(drop=True)
    assert stats.equals(ordered)


def test_stats_series_are_cumulative_minutely_and_plausible(stats: pd.DataFrame) -> None:
    starts = []
    for _, video in stats.groupby("video_id"):
        assert (video["timestamp"].diff().dropna() == pd.Timedelta(minutes=1)).all()
        for column in COUNTS:
            assert video[column].is_monotonic_increasing
        first, last = video.iloc[0], video.iloc[-1]
        assert 1000 <= first["view_count"] <= 10_000
        new_views = last["view_count"] - first["view_count"]
        assert 0.025 <= (last["like_count"] - first["like_count"]) / new_views <= 0.055
        assert 0.002 <= (last["comment_count"] - first["comment_count"]) / new_views <= 0.006
        starts.append(first["timestamp"])
    assert len({t.date() for t in starts}) == len(starts)
    assert all(t.year == 2025 and t.month == 7 for t in starts)


def test_stats_growth_rates_are_percent_change_per_video(stats: pd.DataFrame) -> None:
    for _, video in stats.groupby("video_id"):
        for count, rate in zip(COUNTS, RATES, strict=True):
            expected = video[count].astype(float).pct_change().fillna(0.0) * 100.0
            np.testing.assert_allclose(video[rate].to_numpy(), expected.to_numpy())
            assert video[rate].iloc[0] == 0.0


def test_add_growth_rates_on_raw_counts() -> None:
    raw = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2025-07-01 00:01", "2025-07-01 00:00", "2025-07-01 00:00", "2025-07-01 00:01"],
                utc=True,
            ),
            "video_id": ["a", "a", "b", "b"],
            "view_count": [110, 100, 0, 5],
            "like_count": [4, 4, 1, 2],
            "comment_count": [1, 0, 0, 0],
        }
    )
    before = raw.copy()
    out = add_growth_rates(raw)
    assert raw.equals(before)
    assert out["video_id"].tolist() == ["a", "a", "b", "b"]
    assert out["view_count"].tolist() == [100, 110, 0, 5]
    assert out["views_growth_rate"].tolist() == pytest.approx([0.0, 10.0, 0.0, 0.0])
    assert out["likes_growth_rate"].tolist() == pytest.approx([0.0, 0.0, 0.0, 100.0])
    assert out["comments_growth_rate"].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0])


def test_custom_videos_and_start() -> None:
    df = generate_stats(seed=3, videos={"x": 30, "y": 40}, start="2025-07-10T06:00:00Z")
    assert df.groupby("video_id").size().to_dict() == {"x": 30, "y": 40}
    assert df["timestamp"].iloc[0] == pd.Timestamp("2025-07-10T06:00:00Z")
