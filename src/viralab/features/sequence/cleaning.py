"""Forecaster rows cleaned per video; training and the logged pyfunc share these rules.

Messy rows (``clean_stats``), applied per video in this order, each counted in a
:class:`CleaningReport` that the run logs (metrics ``clean.*`` and ``cleaning_report.json``):

1. rows with a missing timestamp, video id or count are dropped (``rows_missing_values``);
2. rows out of time order are sorted (``rows_out_of_order``: rows earlier than the row before
   them as received);
3. timestamps are floored to the sampling grid (``features.frequency``, one minute by default;
   ``timestamps_realigned``) and rows that share a grid slot are duplicates: the last one
   received wins (``duplicate_timestamps``);
4. a count lower than the video's running maximum is a counter correction: it is held at that
   maximum, so every series stays non-decreasing (``counter_corrections``: values raised);
5. gaps: up to ``features.max_gap_steps`` missing slots are filled on the grid by linear
   interpolation of the counts (``gaps_filled``, ``rows_interpolated``); a longer gap splits
   the video into segments (``gaps_split``), and windows never cross a segment boundary;
6. growth rates are recomputed from the cleaned counts (the source's values would disagree
   with filled and corrected rows, and serving recomputes them the same way);
7. segments too short for one window plus its target (``sequence_length + 1`` rows) are
   dropped (``short_segments_dropped``, ``short_segment_rows_dropped``); a video left with
   none is counted in ``videos_too_short``.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from viralab.data.definitions import COUNT_COLUMNS, GROWTH_COLUMNS
from viralab.data.growth import percent_growth
from viralab.errors import ConfigError, DataError


@dataclass
class CleaningReport:
    """How many rows each messy-row rule touched (see the module docstring)."""

    rows_in: int = 0
    rows_missing_values: int = 0
    rows_out_of_order: int = 0
    timestamps_realigned: int = 0
    duplicate_timestamps: int = 0
    counter_corrections: int = 0
    gaps_filled: int = 0
    rows_interpolated: int = 0
    gaps_split: int = 0
    short_segments_dropped: int = 0
    short_segment_rows_dropped: int = 0
    videos_in: int = 0
    videos_too_short: int = 0
    videos_used: int = 0
    segments: int = 0
    rows_out: int = 0
    too_short_video_ids: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The numeric fields, for `mlflow.log_metrics`."""
        return {k: v for k, v in dataclasses.asdict(self).items() if isinstance(v, int)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def messages(self) -> list[str]:
        """One readable line per rule that fired, for the console log."""
        lines = {
            "rows_missing_values": "rows with a missing timestamp/video_id/count dropped",
            "rows_out_of_order": "rows out of time order sorted",
            "timestamps_realigned": "timestamps floored to the sampling grid",
            "duplicate_timestamps": "duplicate timestamps dropped (last reading kept)",
            "counter_corrections": "counter corrections (count went down) held at the maximum",
            "gaps_filled": "short gaps filled by interpolation",
            "rows_interpolated": "rows interpolated into short gaps",
            "gaps_split": "long gaps split a video into segments",
            "short_segments_dropped": "segments too short for one window dropped",
            "videos_too_short": "videos too short for one window",
        }
        return [f"{getattr(self, k)} {text}" for k, text in lines.items() if getattr(self, k)]


def _grid_step(frequency: str) -> pd.Timedelta:
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(frequency))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"features.frequency {frequency!r} is not a pandas frequency") from exc
    if step <= pd.Timedelta(0):
        raise ConfigError(f"features.frequency must be positive, got {frequency!r}")
    return step


def _clean_video(
    rows: pd.DataFrame, step: pd.Timedelta, max_gap_steps: int, report: CleaningReport
) -> list[pd.DataFrame]:
    """Rules 2-5 for one video; returns its segments (each on the grid, counts float)."""
    ts = rows["timestamp"]
    report.rows_out_of_order += int((ts.diff() < pd.Timedelta(0)).sum())
    rows = rows.sort_values("timestamp", kind="stable")
    slot = rows["timestamp"].dt.floor(step)
    report.timestamps_realigned += int((slot != rows["timestamp"]).sum())
    rows = rows.assign(timestamp=slot)
    before = len(rows)
    rows = rows.drop_duplicates("timestamp", keep="last")
    report.duplicate_timestamps += before - len(rows)

    counts = rows[list(COUNT_COLUMNS)].to_numpy(dtype="float64")
    held = np.maximum.accumulate(counts, axis=0)
    report.counter_corrections += int((held > counts).sum())
    rows = rows[["timestamp", "video_id"]].assign(**dict(zip(COUNT_COLUMNS, held.T, strict=True)))

    gap_steps = (rows["timestamp"].diff() / step).fillna(1).to_numpy()
    starts = np.flatnonzero(gap_steps > max_gap_steps + 1)
    report.gaps_split += len(starts)
    segments = []
    bounds = [0, *starts.tolist(), len(rows)]
    for a, b in itertools.pairwise(bounds):
        piece = rows.iloc[a:b]
        missing = (piece["timestamp"].diff() / step).fillna(1).to_numpy() - 1
        if missing.sum() > 0:
            report.gaps_filled += int((missing > 0).sum())
            report.rows_interpolated += int(missing.sum())
            grid = pd.date_range(piece["timestamp"].iloc[0], piece["timestamp"].iloc[-1], freq=step)
            piece = piece.set_index("timestamp").reindex(grid)
            piece[list(COUNT_COLUMNS)] = piece[list(COUNT_COLUMNS)].interpolate("time")
            piece["video_id"] = piece["video_id"].ffill()
            piece = piece.rename_axis("timestamp").reset_index()
        segments.append(piece.reset_index(drop=True))
    return segments


def growth_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Spec 002's growth rates of one ordered series: % change from the previous row.

    The first row, and a row after a zero count, gets 0.0 (the rule of
    `viralab.data.growth`, which the loader and the sample use too).
    """
    out = {}
    for count, rate in zip(COUNT_COLUMNS, GROWTH_COLUMNS, strict=True):
        current = counts[count].astype("float64")
        out[rate] = percent_growth(current, current.shift(1))
    return pd.DataFrame(out, index=counts.index)


def clean_stats(
    frame: pd.DataFrame,
    *,
    sequence_length: int,
    frequency: str = "1min",
    max_gap_steps: int = 5,
    min_rows: int | None = None,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Apply the messy-row rules; return the cleaned rows and what each rule touched.

    Segments shorter than ``min_rows`` (default ``sequence_length + 1``: one window and its
    target) are dropped. The result has ``timestamp``, ``video_id``, ``segment`` (``<video_id>`` or
    ``<video_id>#<k>`` after a split), float counts and recomputed growth rates, ordered by
    video, then time.

    Raises:
        DataError: columns are missing, or no video is long enough for one window.
    """
    missing = [c for c in ("timestamp", "video_id", *COUNT_COLUMNS) if c not in frame.columns]
    if missing:
        raise DataError(f"stats rows lack column(s): {', '.join(missing)}")
    if sequence_length < 1:
        raise ConfigError(f"features.sequence_length must be >= 1, got {sequence_length}")
    step = _grid_step(frequency)
    report = CleaningReport(rows_in=len(frame))
    rows = frame[["timestamp", "video_id", *COUNT_COLUMNS]].copy()
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True, errors="coerce")
    for col in COUNT_COLUMNS:
        rows[col] = pd.to_numeric(rows[col], errors="coerce")
    complete = rows.notna().all(axis=1)
    report.rows_missing_values = int((~complete).sum())
    rows = rows[complete]
    rows["video_id"] = rows["video_id"].astype(str)

    min_rows = sequence_length + 1 if min_rows is None else int(min_rows)
    kept: list[pd.DataFrame] = []
    for video_id, video_rows in rows.groupby("video_id", sort=True):
        report.videos_in += 1
        segments = _clean_video(video_rows, step, max_gap_steps, report)
        long_enough = [s for s in segments if len(s) >= min_rows]
        for s in segments:
            if len(s) < min_rows:
                report.short_segments_dropped += 1
                report.short_segment_rows_dropped += len(s)
        if not long_enough:
            report.videos_too_short += 1
            report.too_short_video_ids.append(str(video_id))
            continue
        report.videos_used += 1
        for k, seg in enumerate(long_enough):
            name = str(video_id) if len(long_enough) == 1 else f"{video_id}#{k}"
            seg = seg.assign(segment=name)
            kept.append(pd.concat([seg, growth_rates(seg)], axis=1))
    if not kept:
        raise DataError(
            f"no video has {min_rows} consecutive usable rows after cleaning (windows of "
            f"sequence_length {sequence_length}); {report.videos_in} video(s), "
            f"{report.rows_in} row(s) in"
        )
    out = pd.concat(kept, ignore_index=True)
    out = out[["timestamp", "video_id", "segment", *COUNT_COLUMNS, *GROWTH_COLUMNS]]
    report.segments = out["segment"].nunique()
    report.rows_out = len(out)
    return out, report
