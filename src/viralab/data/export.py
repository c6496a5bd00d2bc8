"""Spec 000 §2 "Export Script": the training records as `exports/training_data_<date>.json`.

The file holds the owner ratings of v3 analyses that extraction keeps, ordered by `rated_at`,
each in the spec's record format::

    {"id", "video_id", "overall_score", "dimensions", "notes", "rated_at",
     "video": {"video_url", "visual_analysis"}}

written as `JSON.stringify(records, null, 2)` would (`json.dumps(indent=2)`, non-ASCII kept),
under the current UTC date. Any source works (sample, files, the database); the file reads
back as `data=files` (records without `rater_type` are owner ratings there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from viralab.data.extraction import ExtractionReport
from viralab.data.sources import extract_records
from viralab.errors import DataError

DEFAULT_EXPORT_DIR = Path("exports")
RECORD_KEYS = ("id", "video_id", "overall_score", "dimensions", "notes", "rated_at")


def export_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record in the spec's export format (only its keys, in its order)."""
    video = record.get("video") or {}
    out = {key: record.get(key) for key in RECORD_KEYS}
    if isinstance(out["rated_at"], datetime):
        out["rated_at"] = out["rated_at"].isoformat()
    out["video"] = {
        "video_url": video.get("video_url"),
        "visual_analysis": video.get("visual_analysis"),
    }
    return out


def export_path(out_dir: Path = DEFAULT_EXPORT_DIR, today: date | None = None) -> Path:
    """`<out_dir>/training_data_<YYYY-MM-DD>.json`, dated in UTC as the spec's script does."""
    today = today or datetime.now(UTC).date()
    return Path(out_dir) / f"training_data_{today.isoformat()}.json"


def write_training_data(
    records: Sequence[Mapping[str, Any]],
    out_dir: Path = DEFAULT_EXPORT_DIR,
    today: date | None = None,
) -> Path:
    """Write the export file atomically (a reader never sees half a file); returns its path.

    Raises:
        DataError: the folder or file cannot be written.
    """
    path = export_path(out_dir, today)
    payload = json.dumps([export_record(r) for r in records], indent=2, ensure_ascii=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(payload + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DataError(f"cannot write export {path}: {exc}") from None
    return path


def export_training_data(
    data_cfg: Mapping[str, Any],
    out_dir: Path = DEFAULT_EXPORT_DIR,
    *,
    rater_type: str = "owner",
    min_feature_count: int = 100,
    version_key: str = "comedyStyle",
    today: date | None = None,
) -> tuple[Path, ExtractionReport]:
    """Extract the training records of ``data_cfg``'s source and write the export file.

    Raises:
        DataError: unusable source data, or the file cannot be written.
    """
    records, report = extract_records(
        data_cfg,
        rater_type=rater_type,
        min_feature_count=min_feature_count,
        version_key=version_key,
    )
    return write_training_data(records, out_dir, today), report
