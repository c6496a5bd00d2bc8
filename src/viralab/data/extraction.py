"""Spec 000 §2 extraction rules: owner ratings of v3 analyses with >= 100 features.

Applied in Python to records from the sample or files; the SQL source runs the same filter in
the database (:func:`viralab.data.postgres_source.extract_from_database`). Either way the
counts of what was kept and why rows were dropped are reported, with the same reasons.

Two rules the spec leaves implicit, written down so both paths agree:

- a record without ``rater_type`` is an owner rating: the spec's export script selects
  ``rater_type = 'owner'`` and leaves the column out, so its files carry none;
- ``feature_count`` counts when it is a whole number (``150``, ``150.0`` or ``"150"``); any
  other value (a boolean, ``"many"``, ``150.5``) is ``no_feature_count``, as in SQL.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: The spec's export holds owner ratings only and carries no ``rater_type``.
EXPORT_RATER_TYPE = "owner"
#: Why a record is dropped, in the order the rules are checked (first failing rule wins).
DROP_REASONS = (
    "not_owner", "bad_score", "no_analysis", "no_feature_count", "few_features", "not_v3",
)  # fmt: skip

_WHOLE = re.compile(r"-?[0-9]{1,9}(\.0*)?")


@dataclass
class ExtractionReport:
    """What extraction kept and dropped, by reason (first failing rule wins)."""

    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    held_back: int = 0  # kept, but in the registry's frozen gate set: never trained on

    def as_metrics(self) -> dict[str, float]:
        out = {"extract_total": float(self.total), "extract_kept": float(self.kept)}
        out.update({f"extract_dropped_{k}": float(v) for k, v in self.dropped.items()})
        if self.held_back:
            out["extract_held_back_gate_set"] = float(self.held_back)
        return out

    def summary(self) -> str:
        reasons = ", ".join(f"{v} {k}" for k, v in sorted(self.dropped.items())) or "none"
        held = f"; {self.held_back} held back for the gate set" if self.held_back else ""
        return f"kept {self.kept} of {self.total} ratings (dropped: {reasons}){held}"


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number below 10^9 in magnitude, else None.

    The same test as the SQL source's guarded cast of ``visual_analysis->>'feature_count'``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**9 else None
    if isinstance(value, float):
        ok = math.isfinite(value) and value.is_integer() and abs(value) < 10**9
        return int(value) if ok else None
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(float(value))
    return None


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
    if rater_type and record.get("rater_type", EXPORT_RATER_TYPE) != rater_type:
        return "not_owner"
    score = record.get("overall_score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        return "bad_score"
    analysis = analysis_of(record)
    if not isinstance(analysis, Mapping):
        return "no_analysis"
    count = whole_number(analysis.get("feature_count"))
    if count is None:
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
    kept.sort(key=rated_at_key)
    report.kept = len(kept)
    return kept, report


def rated_at_key(record: Mapping[str, Any]) -> tuple[datetime, str]:
    """Sort key of the spec's ``ORDER BY rated_at`` (id breaks ties, as in SQL).

    Timestamps with different offsets compare as instants; a missing or unparseable one sorts
    first.
    """
    value = record.get("rated_at")
    when = datetime.min.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when, str(record.get("id", ""))
