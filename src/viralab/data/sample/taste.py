"""The owner's hidden taste: how the sample turns features into scores, dimensions and notes.

``overall_score`` is a mostly linear function of the features the preference spec expects
to matter (its section 4.2, `viralab.data.definitions.EXPECTED_CORRELATIONS`), so a correct
pipeline can learn it and a broken one cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from viralab.data.sample.v3_schema import FEATURES_BY_PATH

# overall_score: weights on features normalised to about 0-1 (centred at 0.5).
_SCORE_WEIGHTS: dict[str, float] = {
    "script.replicability.score": 0.17,
    "script.humor.comedyTiming": 0.13,
    "standalone.worksWithoutContext": 0.07,
    "comedyStyle.contrastMechanism.present": 0.08,
    "flexibility.swappableCore": 0.06,
    "script.structure.payoffStrength": 0.14,
    "trends.memeDependent": -0.07,
    "trends.usesPremadeSound": -0.05,
    "casting.actingSkillRequired": -0.10,
    "production.shotComplexity": -0.10,
    "audio.soundEffects_count": -0.08,
    "flexibility.industryLock": -0.06,
    "casting.attractivenessDependency": -0.09,
    "hook.strength": 0.05,
    "script.originality.score": 0.04,
    "engagement.shareability": 0.03,
    "production.durationSeconds": -0.03,
}
_SCORE_CATEGORY_BONUS = {
    ("hook.type", "pattern_interrupt"): 0.03,
    ("hook.type", "direct_address"): -0.03,
}
SCORE_INTERCEPT = 0.47
SCORE_NOISE = 0.05
_MAX_SOUND_EFFECTS = 6

_DIMENSIONS: dict[str, dict[str, float]] = {
    "hook": {"hook.strength": 0.7, "hook.curiosityGap": 0.3},
    "pacing": {"production.pacing": 0.6, "script.structure.pacing": 0.4},
    "payoff": {"script.structure.payoffStrength": 1.0},
    "originality": {"script.originality.score": 0.8, "trends.memeDependent": -0.2},
    "rewatchable": {"script.humor.rewatchValue": 0.7, "script.structure.loopable": 0.3},
}
_DIMENSION_WORDS = {
    "hook": "hook",
    "pacing": "pacing",
    "payoff": "payoff",
    "originality": "originality",
    "rewatchable": "rewatch value",
}
_NOTE_TEMPLATES = (
    "Strong {best}, weak {worst}",
    "Great {best}; {worst} needs work",
    "{Best} carries it, {worst} falls flat",
    "Loved the {best}",
    "Meh {worst}",
    "Solid {best}, {worst} could be tighter",
)


def _normalised(path: str, columns: dict[str, list[Any]]) -> np.ndarray:
    """A feature column scaled to about 0-1 for the hidden score and dimensions."""
    if path == "audio.soundEffects_count":
        counts = np.array([len(v) for v in columns["audio.soundEffects"]], dtype=float)
        return np.minimum(counts, _MAX_SOUND_EFFECTS) / _MAX_SOUND_EFFECTS
    feature = FEATURES_BY_PATH[path]
    values = np.asarray(columns[path], dtype=float)
    if feature.kind == "score":
        return (values - 1.0) / 9.0
    if feature.kind == "range":
        return (values - feature.lo) / (feature.hi - feature.lo)
    return values  # bool and ratio already 0-1


def hidden_score(columns: dict[str, list[Any]]) -> np.ndarray:
    """The owner's taste before noise: linear in the normalised features."""
    n = len(columns["hook.type"])
    score = np.full(n, SCORE_INTERCEPT)
    for path, weight in _SCORE_WEIGHTS.items():
        score += weight * (_normalised(path, columns) - 0.5)
    for (path, value), bonus in _SCORE_CATEGORY_BONUS.items():
        score += bonus * np.array([v == value for v in columns[path]], dtype=float)
    return score


def dimension_scores(
    columns: dict[str, list[Any]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The five rating dimensions (0-1, two decimals), each a noisy mix of features."""
    n = len(columns["hook.type"])
    out: dict[str, np.ndarray] = {}
    for name, parts in _DIMENSIONS.items():
        value = np.zeros(n)
        for path, weight in parts.items():
            value += weight * _normalised(path, columns)
        if name == "originality":
            value += 0.1  # keep the meme penalty from pushing the mean down
        noisy = value + 0.08 * rng.standard_normal(n)
        out[name] = np.round(np.clip(noisy, 0.0, 1.0), 2)
    return out


def rating_notes(dims: dict[str, np.ndarray], rng: np.random.Generator) -> list[str]:
    """A short note per rating naming its best and worst dimension (some left empty)."""
    names = list(dims)
    matrix = np.column_stack([dims[name] for name in names])
    best = np.argmax(matrix, axis=1)
    worst = np.argmin(matrix, axis=1)
    templates = rng.integers(0, len(_NOTE_TEMPLATES), size=matrix.shape[0])
    empty = rng.random(matrix.shape[0]) < 0.08
    notes = []
    for i in range(matrix.shape[0]):
        if empty[i]:
            notes.append("")
            continue
        b, w = _DIMENSION_WORDS[names[best[i]]], _DIMENSION_WORDS[names[worst[i]]]
        notes.append(
            _NOTE_TEMPLATES[int(templates[i])].format(best=b, Best=b.capitalize(), worst=w)
        )
    return notes
