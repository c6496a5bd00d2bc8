"""Validation at the door: what may enter the application tables, and why a row may not.

A bad row never stops a load: it is set aside as a :class:`Rejection` (row number, id, field,
reason) and the good rows go on. Problems with the input as a whole (a missing column, no rows
at all) are :class:`~viralab.errors.DataError`, reported as one line.

Ratings arrive in spec 000's export format (``{"id", "video_id", "overall_score",
"dimensions", "notes", "rated_at", "rater_type", "video": {"video_url",
"visual_analysis"}}``) or as flat rows from CSV/parquet/JSONL, where ``video_url`` and
``visual_analysis`` sit beside the rating and ``dimensions``/``visual_analysis`` may be JSON
strings. Rules:

- ``id``, ``video_id``: non-empty text (numbers are taken as text);
- ``overall_score``: a number in 0..1 (not a boolean, not NaN);
- ``rated_at``: a parseable timestamp; one without a zone is taken as UTC;
- ``rater_type``: text, ``owner`` when the key is absent (the spec's export holds owner
  ratings only and leaves the column out);
- ``dimensions``, ``visual_analysis``: a JSON object (or a string holding one), or null;
  strict JSON (no NaN/Infinity, no NUL characters: PostgreSQL's JSONB refuses them);
- ``visual_analysis.feature_count``: absent/null or a whole number (``150``, ``150.0``,
  ``"150"`` are stored as ``150``), so the extraction query's integer cast always holds;
- a record without video details must name a video already in the database (checked at load).

Stats rows (spec 002 ``video_stats_processed``) are checked column-wise with pandas: a
non-empty ``video_id``, a parseable ``timestamp`` (UTC), whole counts >= 0 within BIGINT, and
finite growth rates when given; a repeated ``(video_id, timestamp)`` keeps its first row.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from viralab.data.extraction import EXPORT_RATER_TYPE, whole_number
from viralab.errors import DataError

RATINGS_TABLE = "video_ratings"
STATS_TABLE = "video_stats_processed"
RATING_COLUMNS = ("id", "video_id", "overall_score", "rated_at")
STATS_REQUIRED = ("timestamp", "video_id", "view_count", "like_count", "comment_count")
COUNT_COLUMNS = ("view_count", "like_count", "comment_count")
GROWTH_COLUMNS = ("views_growth_rate", "likes_growth_rate", "comments_growth_rate")
BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True)
class Rejection:
    """One reason one input row was not loaded."""

    row: int  # 1-based record number in its input (CSV: data row, header not counted)
    id: str | None
    field: str
    reason: str
    table: str
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RatingRow:
    """A rating that passed validation, ready for ``video_ratings`` (and ``analyzed_videos``)."""

    row: int
    rating: dict[str, Any]
    video: dict[str, Any] | None  # None: the record only names its video_id


# --------------------------------------------------------------------------------------------
# JSON documents
# --------------------------------------------------------------------------------------------


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
        raise ValueError(f"feature_count must be a whole number below 10^9, got {_show(count)}")
    return analysis if whole is count else {**analysis, "feature_count": whole}


def to_export_shape(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat rating row (CSV, parquet) nested like the export; export records pass through.

    ``dimensions``/``visual_analysis`` given as JSON strings are parsed when they parse (left
    as they are otherwise, for validation to report); pandas' NaN for an empty cell is None.
    """
    out = {k: (None if _is_missing(v) else v) for k, v in row.items()}
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


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
    )


# --------------------------------------------------------------------------------------------
# Ratings (pydantic: per-field reasons for nested documents)
# --------------------------------------------------------------------------------------------

_Text = Annotated[str, Field(min_length=1)]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("holds a NUL character, which PostgreSQL does not store")
    return value


class _VideoIn(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    video_url: str | None = None
    visual_analysis: dict[str, Any] | None = None

    @field_validator("video_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        return _no_nul(value)

    @field_validator("visual_analysis", mode="before")
    @classmethod
    def _analysis(cls, value: Any) -> dict[str, Any] | None:
        parsed = parse_json_object(value)
        return None if parsed is None else normalize_feature_count(parsed)


class _RatingIn(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: _Text
    video_id: _Text
    overall_score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    dimensions: dict[str, Any] | None = None
    notes: str | None = None
    rated_at: datetime
    rater_type: _Text = EXPORT_RATER_TYPE
    video: _VideoIn | None = None

    @field_validator("id", "video_id", "notes", "rater_type", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)

    @field_validator("overall_score", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, got a boolean")
        return value

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimensions(cls, value: Any) -> dict[str, Any] | None:
        return parse_json_object(value)

    @field_validator("rated_at", mode="after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _has_video_details(record: Mapping[str, Any]) -> bool:
    video = record.get("video")
    return isinstance(video, Mapping) and bool(
        video.get("video_url") is not None or video.get("visual_analysis") is not None
    )


def validate_rating(
    record: Any, row: int, source: str = ""
) -> tuple[RatingRow | None, list[Rejection]]:
    """One record checked: the rows to write, or the reasons it cannot be loaded."""
    rid = _record_id(record)
    if not isinstance(record, Mapping):
        reason = f"must be a JSON object, got {type(record).__name__}"
        return None, [Rejection(row, rid, "record", reason, RATINGS_TABLE, source)]
    shaped = to_export_shape(record)
    try:
        parsed = _RatingIn.model_validate(shaped)
    except ValidationError as exc:
        return None, [
            Rejection(row, rid, _loc(err["loc"]), _msg(err), RATINGS_TABLE, source)
            for err in exc.errors(include_url=False)
        ]
    rating = {
        "id": parsed.id,
        "video_id": parsed.video_id,
        "overall_score": parsed.overall_score,
        "dimensions": parsed.dimensions,
        "notes": parsed.notes,
        "rated_at": parsed.rated_at,
        "rater_type": parsed.rater_type,
    }
    video = None
    if parsed.video is not None and _has_video_details(shaped):
        video = {
            "id": parsed.video_id,
            "video_url": parsed.video.video_url,
            "visual_analysis": parsed.video.visual_analysis,
        }
    return RatingRow(row, rating, video), []


def validate_ratings(
    records: Iterable[Any], source: str = "", first_row: int = 1
) -> tuple[list[RatingRow], list[Rejection]]:
    """Check every record; a repeated rating id keeps its first occurrence."""
    good: list[RatingRow] = []
    rejected: list[Rejection] = []
    seen: dict[str, int] = {}
    for row, record in enumerate(records, start=first_row):
        checked, reasons = validate_rating(record, row, source)
        if checked is None:
            rejected.extend(reasons)
            continue
        first = seen.setdefault(checked.rating["id"], row)
        if first != row:
            reason = f"duplicate rating id (first at row {first})"
            rejected.append(
                Rejection(row, checked.rating["id"], "id", reason, RATINGS_TABLE, source)
            )
            continue
        good.append(checked)
    return good, rejected


def _record_id(record: Any) -> str | None:
    if isinstance(record, Mapping) and not _is_missing(record.get("id")):
        return str(record.get("id"))
    return None


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "record"


def _msg(err: Mapping[str, Any]) -> str:
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if err.get("type") != "missing" and isinstance(value, str | int | float | bool):
        message += f", got {_show(value)}"
    return message


# --------------------------------------------------------------------------------------------
# Stats (pandas: vectorised, 100k rows in well under a second)
# --------------------------------------------------------------------------------------------


def check_stats_columns(frame: pd.DataFrame, origin: str) -> None:
    """The columns every stats input needs, and at least one row.

    Raises:
        DataError: a required column is missing, or there are no rows.
    """
    missing = [c for c in STATS_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {', '.join(missing)} (need {', '.join(STATS_REQUIRED)})"
        )
    if frame.empty:
        raise DataError(f"{origin}: no rows")


_ZONED = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps; NaT where a value does not parse. Naive values are taken as UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    # pandas 2.3 gives a naive value the offset of an earlier zoned one in the same call
    # ("...T02:00+02:00", "... 00:00" -> 22:00 UTC): parse the two kinds apart.
    text = values.astype(str)
    zoned = text.str.contains(_ZONED, regex=True, na=False) & values.notna()
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    for part in (zoned, ~zoned):
        if part.any():
            parsed.loc[part] = pd.to_datetime(
                values[part], utc=True, errors="coerce", format="ISO8601"
            )
    retry = parsed.isna() & values.notna()
    if retry.any():
        # Rarer formats ("07/01/2025 10:00"), parsed one by one.
        parsed.loc[retry] = pd.to_datetime(
            values[retry].astype(str), utc=True, errors="coerce", format="mixed"
        )
    return parsed


_FLOAT_INT64_END = 2.0**63  # the first float64 outside int64; every smaller one fits


def whole_counts(
    raw: pd.Series,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A count column as exact int64 values (0 where a row is bad) and its per-row problems:
    (counts, missing, negative, not whole, too large).

    Counts are checked in exact integer arithmetic where the input holds integers: 2^63 read
    as uint64, or as a Python int / digit string in an object column, is "too large", never
    wrapped to -2^63 by a cast (a float64 cannot tell 2^63 - 1 from 2^63, so integers do not
    go through floats).
    """
    n = len(raw)
    if pd.api.types.is_integer_dtype(raw.dtype) and raw.hasnans:  # nullable Int64 with NA
        raw = raw.astype(object).where(raw.notna(), None)
    if pd.api.types.is_signed_integer_dtype(raw.dtype):
        values = raw.to_numpy(dtype="int64")
        none = np.zeros(n, dtype=bool)
        return np.where(values < 0, 0, values), none, values < 0, none, none
    if pd.api.types.is_unsigned_integer_dtype(raw.dtype):
        values = raw.to_numpy(dtype="uint64")
        none = np.zeros(n, dtype=bool)
        too_large = values > np.uint64(BIGINT_MAX)
        return np.where(too_large, 0, values).astype("int64"), none, none, none, too_large
    if raw.dtype == object:
        return _object_counts(raw)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return _float_counts(values)


def _float_counts(
    values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        negative = finite & (values < 0)
        fraction = finite & ~negative & (values != np.floor(values))
        too_large = finite & ~fraction & (values >= _FLOAT_INT64_END)
    bad = ~finite | negative | fraction | too_large
    counts = np.where(bad, 0, np.nan_to_num(values)).astype("int64")
    return counts, ~finite, negative, fraction, too_large


def _object_counts(
    raw: pd.Series,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mixed columns (JSON, a CSV column with text in it): Python ints and digit strings are
    read exactly; anything else as a float."""
    n = len(raw)
    exact: list[int | None] = [None] * n
    floats = np.full(n, np.nan)
    for i, value in enumerate(raw.tolist()):
        if isinstance(value, bool):
            continue
        if isinstance(value, int | np.integer):
            exact[i] = int(value)
            continue
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            exact[i] = int(value.strip())
            continue
        with contextlib.suppress(TypeError, ValueError):
            floats[i] = float(value)
    counts, missing, negative, fraction, too_large = _float_counts(floats)
    for i, whole in enumerate(exact):
        if whole is None:
            continue
        missing[i] = False
        negative[i] = whole < 0
        too_large[i] = whole > BIGINT_MAX
        counts[i] = whole if 0 <= whole <= BIGINT_MAX else 0
    return counts, missing, negative, fraction, too_large


def validate_stats(
    frame: pd.DataFrame, source: str = "", first_row: int = 1, allow_duplicates: bool = False
) -> tuple[pd.DataFrame, list[Rejection]]:
    """Rows fit for ``video_stats_processed`` (plus a ``_row`` column) and the rejected ones.

    ``allow_duplicates`` keeps repeated (video_id, timestamp) rows: training's cleaning rules
    (``features.sequence``) resolve and count them, where the table's unique key cannot.

    Growth-rate columns are checked when all three are present; otherwise they are left for
    the loader to compute (``viralab.data.loading.fill_growth_rates``).

    Raises:
        DataError: a required column is missing or the input has no rows.
    """
    origin = source or "stats"
    check_stats_columns(frame, origin)
    frame = frame.reset_index(drop=True)
    n = len(frame)
    out = pd.DataFrame({"_row": np.arange(first_row, first_row + n)})
    bad = np.zeros(n, dtype=bool)
    problems: list[tuple[np.ndarray, str, Callable[[int], str]]] = []

    def flag(mask: Any, field: str, reason: Callable[[int], str]) -> None:
        nonlocal bad
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            problems.append((mask, field, reason))
            bad |= mask

    def got(raw: pd.Series, what: str) -> Callable[[int], str]:
        return lambda i: f"{what}, got {_show(raw.iat[i])}"

    video = frame["video_id"]
    text = video.astype(str)
    missing_video = video.isna().to_numpy() | (text.str.strip() == "").to_numpy()
    flag(missing_video, "video_id", lambda i: "missing")
    flag(text.str.contains("\x00", regex=False).to_numpy(), "video_id", got(video, "holds NUL"))
    out["video_id"] = text

    raw_ts = frame["timestamp"]
    ts = parse_timestamps(raw_ts)
    flag(ts.isna().to_numpy(), "timestamp", got(raw_ts, "missing or not a parseable timestamp"))
    out["timestamp"] = ts

    for col in COUNT_COLUMNS:
        raw = frame[col]
        counts, missing, negative, fraction, too_large = whole_counts(raw)
        flag(missing, col, got(raw, "missing or not a number"))
        flag(negative, col, got(raw, "must be >= 0"))
        flag(fraction, col, got(raw, "must be a whole number"))
        flag(too_large, col, got(raw, f"too large for BIGINT (max {BIGINT_MAX})"))
        out[col] = counts

    if all(c in frame.columns for c in GROWTH_COLUMNS):
        for col in GROWTH_COLUMNS:
            raw = frame[col]
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            flag(~np.isfinite(values), col, got(raw, "missing or not a finite number"))
            out[col] = values

    good = out.loc[~bad]
    repeated = good.duplicated(["video_id", "timestamp"], keep="first")
    if repeated.any() and not allow_duplicates:
        first = good.groupby(["video_id", "timestamp"], sort=False)["_row"].transform("first")
        mask = np.zeros(n, dtype=bool)
        mask[good.index[repeated]] = True
        flag(mask, "timestamp", lambda i: f"duplicate (video_id, timestamp) of row {first.at[i]}")

    rejections = [
        Rejection(
            int(out.at[i, "_row"]), _id_or_none(video.iat[i]), field, reason(i), STATS_TABLE, source
        )
        for mask, field, reason in problems
        for i in np.flatnonzero(mask)
    ]
    rejections.sort(key=lambda r: r.row)
    return out.loc[~bad].reset_index(drop=True), rejections


def _show(value: Any) -> str:
    if _is_missing(value):
        return "nothing"
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _id_or_none(value: Any) -> str | None:
    return None if _is_missing(value) else str(value)
