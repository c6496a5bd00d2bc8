"""Where rows come from, chosen by `data.source`: the bundled sample, files, or PostgreSQL.

Every source returns the same shapes: rating records in spec 000's export format
(`{"id", "video_id", "overall_score", "dimensions", "notes", "rated_at", "rater_type",
"video": {"video_url", "visual_analysis"}}`) and a `video_stats_processed` DataFrame.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from viralab.errors import ConfigError, DataError

SOURCES = ("sample", "files", "postgres")
STATS_COLUMNS = [
    "timestamp",
    "video_id",
    "view_count",
    "like_count",
    "comment_count",
    "views_growth_rate",
    "likes_growth_rate",
    "comments_growth_rate",
]


def _source(data_cfg: Mapping[str, Any]) -> str:
    source = data_cfg.get("source")
    if source not in SOURCES:
        raise ConfigError(f"unknown data source {source!r}; valid: {', '.join(SOURCES)}")
    return source


def _path(data_cfg: Mapping[str, Any]) -> Path:
    raw = data_cfg.get("path")
    if not raw or raw == "???":
        raise ConfigError("data=files needs data.path=<file> (JSON export, CSV or parquet)")
    path = Path(str(raw)).expanduser()
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    return path


def read_json_file(path: Path) -> Any:
    """Parse a JSON (or JSON Lines) file; a syntax error names the file, line and column."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if path.suffix == ".jsonl":
            rows = []
            for lineno, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as line_exc:
                    raise DataError(
                        f"{path}: invalid JSON at line {lineno}, column {line_exc.colno}: "
                        f"{line_exc.msg}"
                    ) from None
            return rows
        raise DataError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def load_rating_records(data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All rating records the source holds (extraction filters them afterwards)."""
    source = _source(data_cfg)
    if source == "sample":
        from viralab.data.sample import generate_ratings

        return generate_ratings(
            n_videos=int(data_cfg.get("n_videos", 700)), seed=int(data_cfg.get("seed", 42))
        )
    if source == "files":
        path = _path(data_cfg)
        if path.suffix.lower() not in {".json", ".jsonl"}:
            raise DataError(f"{path}: ratings must be a JSON export (.json or .jsonl)")
        data = read_json_file(path)
        if isinstance(data, Mapping):
            data = data.get("records", data.get("ratings", [data]))
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise DataError(f"{path}: expected a JSON list of rating records")
        return [dict(r) for r in data]
    from viralab.data.postgres_source import load_rating_records as load_from_db

    return load_from_db(data_cfg)


def load_stats(data_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """`video_stats_processed` rows with the spec's columns (growth rates computed if absent)."""
    source = _source(data_cfg)
    if source == "sample":
        from viralab.data.sample import generate_stats

        return generate_stats(seed=int(data_cfg.get("seed", 42)))
    if source == "files":
        path = _path(data_cfg)
        suffix = path.suffix.lower()
        try:
            if suffix == ".csv":
                frame = pd.read_csv(path)
            elif suffix in {".parquet", ".pq"}:
                frame = pd.read_parquet(path)
            elif suffix in {".json", ".jsonl"}:
                frame = pd.DataFrame(read_json_file(path))
            else:
                raise DataError(f"{path}: stats must be .csv, .parquet or .json")
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: cannot read: {exc}") from None
        return normalize_stats(frame, origin=str(path))
    from viralab.data.postgres_source import load_stats as load_stats_from_db

    return load_stats_from_db(data_cfg)


def normalize_stats(frame: pd.DataFrame, origin: str = "stats") -> pd.DataFrame:
    """Check the columns, parse timestamps, add growth rates when only counts are given."""
    required = ["timestamp", "video_id", "view_count", "like_count", "comment_count"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{origin}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{origin}: no rows")
    frame = frame.copy()
    try:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{origin}: unparseable timestamp: {exc}") from None
    for col in ("view_count", "like_count", "comment_count"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
        if frame[col].isna().any():
            raise DataError(f"{origin}: non-numeric values in {col}")
    frame["video_id"] = frame["video_id"].astype(str)
    if not {"views_growth_rate", "likes_growth_rate", "comments_growth_rate"} <= set(frame.columns):
        from viralab.data.sample import add_growth_rates

        frame = add_growth_rates(frame.sort_values(["video_id", "timestamp"]))
    return frame[STATS_COLUMNS].reset_index(drop=True)
