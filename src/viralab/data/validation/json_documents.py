"""JSON documents at the door: strict objects PostgreSQL's JSONB will store, export shapes.

``dimensions`` and ``visual_analysis`` arrive as mappings or as JSON strings (CSV, parquet);
both become plain Python objects here, with the same strict rules (no NaN/Infinity, no NUL
characters) whatever the input format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from viralab.data.extraction import whole_number
from viralab.data.validation.rejections import is_missing, show_value


def plain_json(value: Any) -> Any:
    """Numpy scalars/arrays (parquet, pandas) turned into the Python values JSON knows."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse_json_object(value: Any) -> dict[str, Any] | None:
    """A JSON object given as a mapping or as a string; None stays None.

    Raises:
        ValueError: not an object, not parseable, or not strict JSON (NaN, Infinity, NUL).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a JSON object, got {type(value).__name__}")
    try:
        text = json.dumps(value, allow_nan=False)
    except TypeError:  # numpy values (parquet, pandas) or a Mapping that is not a dict
        value = plain_json(value)
        text = _strict_dumps(value)
    except ValueError:
        raise ValueError("holds NaN or Infinity, which JSON does not allow") from None
    if "\\u0000" in text:
        raise ValueError("holds a NUL character, which PostgreSQL does not store")
    return value


def _strict_dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("holds NaN or Infinity, which JSON does not allow") from None
    except TypeError as exc:
        raise ValueError(f"is not JSON-serialisable: {exc}") from None


def normalize_feature_count(analysis: dict[str, Any]) -> dict[str, Any]:
    """Store a whole-number ``feature_count`` as an int; anything else is an error."""
    count = analysis.get("feature_count")
    if count is None:
        return analysis
    whole = whole_number(count)
    if whole is None:
        raise ValueError(
            f"feature_count must be a whole number below 10^9, got {show_value(count)}"
        )
    return analysis if whole is count else {**analysis, "feature_count": whole}


def to_export_shape(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat rating row (CSV, parquet) nested like the export; export records pass through.

    ``dimensions``/``visual_analysis`` given as JSON strings are parsed when they parse (left
    as they are otherwise, for validation to report); pandas' NaN for an empty cell is None.
    """
    out = {k: (None if is_missing(v) else v) for k, v in row.items()}
    if "video" not in out and ("video_url" in out or "visual_analysis" in out):
        out["video"] = {
            "video_url": out.pop("video_url", None),
            "visual_analysis": out.pop("visual_analysis", None),
        }
    video = out.get("video")
    if isinstance(video, Mapping):
        video = dict(video)
        video["visual_analysis"] = _try_json(video.get("visual_analysis"))
        out["video"] = video
    out["dimensions"] = _try_json(out.get("dimensions"))
    if isinstance(out.get("rated_at"), datetime):  # parquet, pandas
        when = out["rated_at"]
        out["rated_at"] = (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    return out


def _try_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
