"""Spec 000 §2 extraction rules: owner ratings of v3 analyses with >= 100 features.

Applied in Python to records from the sample or files; the SQL source runs the same filter in
the database. Either way the counts of what was kept and why rows were dropped are reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExtractionReport:
    """What extraction kept and dropped, by reason (first failing rule wins)."""

    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def as_metrics(self) -> dict[str, float]:
        out = {"extract_total": float(self.total), "extract_kept": float(self.kept)}
        out.update({f"extract_dropped_{k}": float(v) for k, v in self.dropped.items()})
        return out

    def summary(self) -> str:
        reasons = ", ".join(f"{v} {k}" for k, v in sorted(self.dropped.items())) or "none"
        return f"kept {self.kept} of {self.total} ratings (dropped: {reasons})"


def analysis_of(record: Mapping[str, Any]) -> Any:
    video = record.get("video") or {}
    return video.get("visual_analysis") if isinstance(video, Mapping) else None


def drop_reason(
    record: Mapping[str, Any],
    *,
    rater_type: str = "owner",
    min_feature_count: int = 100,
    version_key: str = "comedyStyle",
) -> str | None:
    """Why a record is not training data, or None when it is."""
    if rater_type and record.get("rater_type") != rater_type:
        return "not_owner"
    score = record.get("overall_score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        return "bad_score"
    analysis = analysis_of(record)
    if not isinstance(analysis, Mapping):
        return "no_analysis"
    count = analysis.get("feature_count")
    try:
        count = int(count)
    except (TypeError, ValueError):
        return "no_feature_count"
    if count < min_feature_count:
        return "few_features"
    if version_key and version_key not in analysis:
        return "not_v3"
    return None


def extract_training_records(
    records: Iterable[Mapping[str, Any]],
    *,
    rater_type: str = "owner",
    min_feature_count: int = 100,
    version_key: str = "comedyStyle",
) -> tuple[list[dict[str, Any]], ExtractionReport]:
    """Keep the usable ratings (ordered by rated_at, as the spec's query) and count the rest."""
    report = ExtractionReport()
    kept: list[dict[str, Any]] = []
    for record in records:
        report.total += 1
        reason = drop_reason(
            record,
            rater_type=rater_type,
            min_feature_count=min_feature_count,
            version_key=version_key,
        )
        if reason:
            report.dropped[reason] += 1
        else:
            kept.append(dict(record))
    kept.sort(key=lambda r: str(r.get("rated_at") or ""))
    report.kept = len(kept)
    return kept, report
