"""The preference family's data contract: which ratings it uses and the frame it trains on.

The columns (`LABEL`, `ANALYSIS_COLUMN`, `dim_<name>`) and the values of the run tags a later
retrain check reads (`tracking.tags.DATA_MAX_RATED_AT`, `DATA_N_RATINGS`) live here, at the
bottom of the family, so the monitor and the registry can read them without pulling in
fitting, logging or registration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from viralab.data.extraction import ExtractionReport
from viralab.data.sources import extract_records
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.features.flatten import finite_json
from viralab.tracking.tags import DATA_MAX_RATED_AT, DATA_N_RATINGS

LABEL = "overall_score"
DIMENSION_PREFIX = "dim_"


def extract_usable(cfg: DictConfig) -> tuple[list[dict[str, Any]], ExtractionReport]:
    """The configured source's ratings through the §2 extraction rules (owner, v3, >= 100
    features), with the counts of what was kept and dropped, by reason."""
    feats = cfg.features
    return extract_records(
        cfg.data,
        rater_type=feats.get("rater_type", "owner"),
        min_feature_count=int(feats.get("min_feature_count", 100)),
        version_key=feats.get("require_version_key", "comedyStyle"),
    )


def dimension_names(cfg: DictConfig) -> list[str]:
    return [str(d) for d in (cfg.task.dimensions or [])]


def _dimension_values(raw: Any, names: Sequence[str]) -> dict[str, float]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = None
    out = {}
    for name in names:
        value = raw.get(name) if isinstance(raw, Mapping) else None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        out[f"{DIMENSION_PREFIX}{name}"] = float(value) if ok else float("nan")
    return out


def records_frame(records: list[dict[str, Any]], dimensions: Sequence[str] = ()) -> pd.DataFrame:
    """Rating records -> one row per rating: ids, the analysis as JSON text, label, extras.

    The analysis is stored as standard JSON text (NaN/inf become null), the form the logged
    model takes; `dim_<name>` columns hold the rating's dimension scores (NaN when absent).
    """
    rows = []
    for r in records:
        analysis = (r.get("video") or {}).get("visual_analysis")
        rows.append(
            {
                "rating_id": str(r.get("id")),
                "video_id": str(r.get("video_id")),
                ANALYSIS_COLUMN: json.dumps(finite_json(analysis), sort_keys=True, allow_nan=False)
                if analysis is not None
                else "{}",
                LABEL: float(r[LABEL]),
                "notes": r.get("notes") or "",
                "rated_at": str(r.get("rated_at") or ""),
                **_dimension_values(r.get("dimensions"), dimensions),
            }
        )
    return pd.DataFrame(rows)


def newest_rated_at(values: pd.Series) -> str | None:
    """The latest parseable `rated_at` as ISO-8601 UTC, or None when none parses."""
    stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    newest = stamps.max()
    return None if pd.isna(newest) else newest.isoformat()


def retrain_basis_tags(frame: pd.DataFrame) -> dict[str, str]:
    """The data cutoff and size a later retrain check compares the current data with."""
    tags = {DATA_N_RATINGS: str(len(frame))}
    newest = newest_rated_at(frame["rated_at"])
    if newest is not None:
        tags[DATA_MAX_RATED_AT] = newest
    return tags
