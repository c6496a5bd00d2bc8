"""Stats rows (spec 002 ``video_stats_processed``) checked column-wise with pandas.

A non-empty ``video_id``, a parseable ``timestamp`` (UTC), whole counts >= 0 within BIGINT,
and finite growth rates when given; a repeated ``(video_id, timestamp)`` keeps its first row.
Vectorised: 100k rows in well under a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from viralab.data.definitions import COUNT_COLUMNS, GROWTH_COLUMNS, STATS_REQUIRED
from viralab.data.validation.rejections import STATS_TABLE, Rejection, is_missing, show_value
from viralab.errors import DataError

BIGINT_MAX = 2**63 - 1


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
        return lambda i: f"{what}, got {show_value(raw.iat[i])}"

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


def _id_or_none(value: Any) -> str | None:
    return None if is_missing(value) else str(value)
