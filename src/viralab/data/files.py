"""`data=files`: ratings and stats read from a file, in any of the formats people export.

`data.path` is one of: the spec's JSON export (a list, or `{"records": [...]}`), JSON Lines,
CSV or parquet. Tabular rating files hold flat rows (`video_url`, `visual_analysis` beside
the rating; `dimensions`/`visual_analysis` as JSON strings). The readers are shared with
`viralab data load`, which sets bad rows aside instead of failing on them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from viralab.data.definitions import GROWTH_COLUMNS, STATS_COLUMNS
from viralab.data.extraction import ExtractionReport, extract_training_records
from viralab.data.growth import add_growth_rates
from viralab.data.validation import RATING_COLUMNS, to_export_shape, validate_stats
from viralab.errors import ConfigError, DataError

RATING_FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".pq")
STATS_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".json", ".jsonl")
# Text columns of tabular rating files: read as text so "00123" stays "00123".
_RATING_TEXT_COLUMNS = (
    "id",
    "video_id",
    "notes",
    "rater_type",
    "video_url",
    "dimensions",
    "visual_analysis",
)


def _path(data_cfg: Mapping[str, Any]) -> Path:
    raw = data_cfg.get("path")
    if not raw or raw == "???":
        raise ConfigError(
            "data=files needs data.path=<file> (JSON export, JSON Lines, CSV or parquet)"
        )
    return existing_file(raw)


def existing_file(raw: str | Path) -> Path:
    """The path of an input file that exists.

    Raises:
        DataError: there is no such file.
    """
    path = Path(str(raw)).expanduser()
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise DataError(f"data file {what}: {path}")
    return path


def read_json_file(path: Path) -> Any:
    """Parse a JSON (or JSON Lines) file; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if path.suffix.lower() == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: invalid JSON at line {lineno}, column {exc.colno}: {exc.msg}"
                ) from None
        return rows
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def read_rating_rows(path: Path) -> list[Any]:
    """The raw rating records of a file, one item per record, in file order.

    JSON items are returned as they are (validation reports the ones that are not objects);
    CSV/parquet rows become dicts with the column names as keys.

    Raises:
        DataError: unreadable or malformed file, a table without the rating columns, no rows.
    """
    suffix = path.suffix.lower()
    if suffix not in RATING_FILE_SUFFIXES:
        raise DataError(
            f"{path}: ratings must be a JSON export, JSON Lines, CSV or parquet file "
            f"({', '.join(RATING_FILE_SUFFIXES)})"
        )
    if suffix in {".json", ".jsonl"}:
        data = read_json_file(path)
        if isinstance(data, Mapping):
            data = data.get("records", data.get("ratings", [data]))
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of rating records")
        rows = data
    else:
        frame = _read_table(path, text_columns=_RATING_TEXT_COLUMNS)
        missing = [c for c in RATING_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = frame.to_dict("records") if suffix == ".csv" else _parquet_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def read_stats_frame(path: Path) -> pd.DataFrame:
    """The raw rows of a stats file (CSV, parquet, JSON list or JSON Lines), unchecked.

    Raises:
        DataError: unreadable or malformed file.
    """
    suffix = path.suffix.lower()
    if suffix not in STATS_FILE_SUFFIXES:
        raise DataError(f"{path}: stats must be CSV, parquet, JSON or JSON Lines")
    if suffix in {".json", ".jsonl"}:
        data = read_json_file(path)
        if isinstance(data, Mapping):
            data = data.get("records", data.get("stats", data))
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise DataError(f"{path}: expected a JSON list of stats rows")
        return pd.DataFrame(data)
    return _read_table(path, text_columns=("video_id",))


def _read_table(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            header = pd.read_csv(path, nrows=0).columns
            dtype = {c: "string" for c in text_columns if c in header}
            return pd.read_csv(path, dtype=dtype)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no rows") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read: {detail}") from None


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    """Parquet rows as plain Python values (lists stay lists, unlike pandas' arrays)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def normalize_stats(frame: pd.DataFrame, origin: str = "stats") -> pd.DataFrame:
    """Check the rows, parse timestamps (UTC), add growth rates when only counts are given.

    Training must not run on silently dropped rows, so any invalid row is an error here (the
    loader, `viralab data load`, sets such rows aside with their reasons instead). Row order
    and repeated timestamps are kept as given: the forecaster's cleaning rules sort, resolve
    and count them in the run's logs (`features.sequence`).

    Raises:
        DataError: missing columns, no rows, or invalid rows (the first reasons are named).
    """
    clean, rejections = validate_stats(frame, source=origin, allow_duplicates=True)
    if rejections:
        rows = sorted({r.row for r in rejections})
        first = "; ".join(f"row {r.row} {r.field}: {r.reason}" for r in rejections[:3])
        raise DataError(f"{origin}: {len(rows)} invalid row(s): {first}")
    if not set(GROWTH_COLUMNS) <= set(clean.columns):
        # rates follow time order; the rows go back to the order they came in
        clean = add_growth_rates(clean).set_index("_row").loc[clean["_row"]].reset_index()
    return clean[STATS_COLUMNS].reset_index(drop=True)


class FileSource:
    """`data=files`: every row of `data.path`; a malformed file or row is an error."""

    def rating_records(self, data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All rating records of the file, in the export shape (extraction filters them)."""
        path = _path(data_cfg)
        rows = read_rating_rows(path)
        bad = next((i for i, r in enumerate(rows, start=1) if not isinstance(r, Mapping)), None)
        if bad is not None:
            raise DataError(f"{path}: record {bad} is not a JSON object")
        return [to_export_shape(r) for r in rows]

    def training_records(
        self,
        data_cfg: Mapping[str, Any],
        *,
        rater_type: str,
        min_feature_count: int,
        version_key: str,
    ) -> tuple[list[dict[str, Any]], ExtractionReport]:
        """Spec 000 §2's extraction in Python over every record of the file."""
        return extract_training_records(
            self.rating_records(data_cfg),
            rater_type=rater_type,
            min_feature_count=min_feature_count,
            version_key=version_key,
        )

    def stats(self, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
        """The file's stats rows, checked, with growth rates computed when absent."""
        path = _path(data_cfg)
        return normalize_stats(read_stats_frame(path), origin=str(path))
