"""Sample owner ratings of short videos, in the preference spec's export format.

Each record holds a nested v3 ``visual_analysis`` (`viralab.data.sample.v3_schema`), plus the
records the extraction has to drop (ratings by ``team``/``guest`` raters and ratings of
older ``v2`` analyses). Everything is drawn from one ``numpy.random.default_rng(seed)`` and
the timestamps derive from a fixed start, so the same seed always gives identical records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from viralab.data.sample.feature_kinds import Feature
from viralab.data.sample.taste import (
    SCORE_INTERCEPT,
    SCORE_NOISE,
    dimension_scores,
    hidden_score,
    rating_notes,
)
from viralab.data.sample.v3_schema import (
    KEYS,
    LATENTS,
    SHOT_LENGTHS,
    V2_META,
    V2_PREFIXES,
    V3_FEATURES,
)

_RATINGS_START = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
_NON_OWNER_SHARE = 0.10
_V2_SHARE = 0.08


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _signal(feature: Feature, z: np.ndarray) -> np.ndarray:
    out = np.zeros(z.shape[0])
    for name, weight in feature.loadings.items():
        out += weight * z[:, LATENTS.index(name)]
    return out


def _draw_values(feature: Feature, z: np.ndarray, rng: np.random.Generator) -> list[Any]:
    """Values of one feature for every document, as JSON-ready Python objects."""
    n = z.shape[0]
    s = _signal(feature, z)
    kind = feature.kind
    if kind == "score":
        raw = feature.center + 1.8 * (s + 0.7 * rng.standard_normal(n))
        return np.clip(np.rint(raw), 1, 10).astype(int).tolist()
    if kind == "ratio":
        raw = _sigmoid(_logit(feature.center) + s + 0.6 * rng.standard_normal(n))
        return np.round(raw, 3).tolist()
    if kind == "range":
        unit = _sigmoid(0.8 * s + 0.8 * rng.standard_normal(n))
        return np.round(feature.lo + (feature.hi - feature.lo) * unit, 2).tolist()
    if kind == "count":
        return rng.poisson(feature.center * np.exp(0.4 * s)).tolist()
    if kind == "bool":
        return (rng.random(n) < _sigmoid(_logit(feature.center) + s)).tolist()
    if kind == "cat":
        k = len(feature.choices)
        p = np.asarray(feature.weights or [1.0] * k, dtype=float)
        idx = rng.choice(k, size=n, p=p / p.sum())
        return [feature.choices[int(i)] for i in idx]
    if kind == "array":
        return _draw_arrays(feature, s, rng)
    if kind == "text" and feature.make_text is not None:
        return feature.make_text(rng, n)
    raise ValueError(f"unknown feature kind {kind!r} for {feature.path}")  # pragma: no cover


def _draw_arrays(feature: Feature, s: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    """String arrays: Poisson lengths, distinct items drawn by Zipf-like popularity."""
    n, vocab = s.shape[0], feature.choices
    lengths = np.minimum(rng.poisson(feature.center * np.exp(0.5 * s)), len(vocab))
    popularity = np.log(1.0 / np.arange(1, len(vocab) + 1))
    keys = popularity + rng.gumbel(size=(n, len(vocab)))  # Gumbel top-k = weighted sampling
    order = np.argsort(-keys, axis=1, kind="stable")
    return [[vocab[int(j)] for j in order[i, : lengths[i]]] for i in range(n)]


def _presence(
    features: Sequence[Feature], columns: dict[str, list[Any]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    n = len(next(iter(columns.values())))
    present: dict[str, np.ndarray] = {}
    for feature in features:
        if feature.when is not None:
            present[feature.path] = np.asarray(columns[feature.when], dtype=bool)
        elif feature.coverage < 1.0:
            present[feature.path] = rng.random(n) < feature.coverage
        if feature.null_rate > 0.0:
            nulls = rng.random(n) < feature.null_rate
            columns[feature.path] = [
                None if nulls[i] else v for i, v in enumerate(columns[feature.path])
            ]
    return present


def _set_path(doc: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    for key in keys[:-1]:
        doc = doc.setdefault(key, {})
    doc[keys[-1]] = value


def _count_leaves(node: Any) -> int:
    if isinstance(node, dict):
        return sum(_count_leaves(v) for v in node.values())
    return 0 if node is None else 1


def _build_document(
    i: int,
    columns: dict[str, list[Any]],
    present: dict[str, np.ndarray],
    version: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for feature in V3_FEATURES:
        path = feature.path
        if version == "v2" and not path.startswith(V2_PREFIXES):
            continue
        if path in present and not present[path][i]:
            continue
        value = V2_META.get(path, columns[path][i]) if version == "v2" else columns[path][i]
        _set_path(doc, KEYS[path], value)
        if path == "production.shotCount":
            _set_path(doc, KEYS[SHOT_LENGTHS], columns[SHOT_LENGTHS][i])
    doc["feature_count"] = _count_leaves(doc)
    doc["version"] = version
    return doc


def _shot_lengths(columns: dict[str, list[Any]], rng: np.random.Generator) -> list[list[float]]:
    """A numeric array consistent with shotCount and averageShotLengthSeconds."""
    counts = columns["production.shotCount"]
    means = columns["production.averageShotLengthSeconds"]
    draws = rng.gamma(4.0, 0.25, size=(len(counts), max(counts) + 1))
    return [np.round(draws[i, : counts[i]] * means[i], 2).tolist() for i in range(len(counts))]


def _rating_times(
    n: int, early: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Order of the ratings in time (v2 ratings tend to come first) and their minute offsets."""
    keys = np.where(early, rng.uniform(0.0, 0.35, n), rng.uniform(0.0, 1.0, n))
    order = np.argsort(keys, kind="stable")
    offsets = np.cumsum(1 + np.floor(rng.exponential(90.0, n))).astype(int)
    return order, offsets


def generate_ratings(n_videos: int = 700, seed: int = 42) -> list[dict[str, Any]]:
    """Owner ratings of analysed short videos, in the preference spec's export format.

    ``n_videos`` is the number of *usable* records: owner ratings of v3 analyses
    (``feature_count`` >= 100, ``comedyStyle`` present), which is what training sees.  On top
    come the records the extraction must drop: about 10% of ``n_videos`` ratings by ``team``
    or ``guest`` raters (v3 analyses, their own taste) and about 8% owner ratings of older v2
    analyses (no ``comedyStyle``, ``feature_count`` < 100, mostly rated early).  Each record
    rates its own video.

    A record is ``{"id", "video_id", "overall_score", "dimensions", "notes", "rated_at",
    "rater_type", "video": {"video_url", "visual_analysis"}}``, sorted by ``rated_at``
    (ISO-8601 with a UTC offset).  ``overall_score`` and the five ``dimensions`` lie in 0-1;
    the owner's score follows :data:`EXPECTED_CORRELATIONS` plus noise.  ``feature_count`` is
    the number of non-null leaf values of the analysis (an array counts as one leaf; the
    ``feature_count`` and ``version`` keys themselves are not counted).
    """
    if n_videos < 0:
        raise ValueError(f"n_videos must be >= 0, got {n_videos}")
    n_other = math.ceil(_NON_OWNER_SHARE * n_videos)
    n_v2 = math.ceil(_V2_SHARE * n_videos)
    n = n_videos + n_other + n_v2
    if n == 0:
        return []
    rng = np.random.default_rng(seed)

    # Roles by generation index: usable owner v3 first, then non-owner v3, then owner v2.
    rater = np.array(["owner"] * n, dtype=object)
    team = rng.random(n_other) < 0.6
    rater[n_videos : n_videos + n_other] = np.where(team, "team", "guest")
    is_v2 = np.zeros(n, dtype=bool)
    is_v2[n_videos + n_other :] = True

    z = rng.standard_normal((n, len(LATENTS)))
    columns = {feature.path: _draw_values(feature, z, rng) for feature in V3_FEATURES}
    columns[SHOT_LENGTHS] = _shot_lengths(columns, rng)
    hidden = hidden_score(columns)
    dims = dimension_scores(columns, rng)
    notes = rating_notes(dims, rng)
    present = _presence(V3_FEATURES, columns, rng)

    # Team and guest raters share part of the owner's taste, with their own bias and noise.
    is_owner = rater == "owner"
    noise_sd = np.where(is_owner, SCORE_NOISE, 0.14)
    bias = np.where(is_owner, 0.0, rng.normal(0.05, 0.05, n))
    taste = np.where(is_owner, 1.0, 0.5)
    raw = SCORE_INTERCEPT + taste * (hidden - SCORE_INTERCEPT) + bias
    overall = np.round(np.clip(raw + noise_sd * rng.standard_normal(n), 0.0, 1.0), 2)

    order, offsets = _rating_times(n, is_v2, rng)
    records = []
    for position, i in enumerate(order.tolist(), start=1):
        video_id = f"vid_{position:06d}"
        rated_at = _RATINGS_START + timedelta(minutes=int(offsets[position - 1]))
        records.append(
            {
                "id": f"rt_{position:06d}",
                "video_id": video_id,
                "overall_score": float(overall[i]),
                "dimensions": {name: float(values[i]) for name, values in dims.items()},
                "notes": notes[i],
                "rated_at": rated_at.isoformat(),
                "rater_type": str(rater[i]),
                "video": {
                    "video_url": f"https://example.com/v/{video_id}",
                    "visual_analysis": _build_document(
                        i, columns, present, "v2" if is_v2[i] else "v3"
                    ),
                },
            }
        )
    return records
