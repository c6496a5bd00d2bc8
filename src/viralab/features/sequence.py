"""Forecaster features (spec 002): clean per-video series, inputs, split, scaler, windows.

Training and the logged pyfunc both call this module, so the rules below hold in both places.

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

Leakage fixes against spec 002 (which scaled each whole video before splitting, kept only the
last video's scaler and split by concatenation order, so later videos were the test set):

- the split is chronological *per video*: each video's first ``1 - test_fraction`` of rows
  (by time) trains and the rest tests; the validation rows for early stopping are the last
  ``validation_fraction`` of each training part, never test rows;
- one scaler per run is fitted on the *fit* rows only (training part minus validation), of
  all videos, and is saved with the model; test rows are transformed, never fitted;
- a window belongs to the part of its *target* row; its inputs are earlier rows of the same
  segment (known at prediction time), so no target is ever inside a training window.

Inputs: the spec's six per-minute features (three counts, three growth rates). When the
network predicts increments (``task.predict`` ``increment`` or ``residual``, ``counts_as``
here) the three counts enter as their per-minute increments: a cumulative level keeps rising
past anything seen in training, so a level scaled on training rows leaves [0, 1] on test rows.
With ``task.predict=level`` they enter as levels, as in the spec. Optional time features (hour,
day_of_week, is_weekend, minute_of_hour) are scaled by their fixed ranges, not fitted.

Targets (``window_targets``) use the scale of the matching input column: ``level`` the next
count, ``increment`` the next increment, ``residual`` the next increment minus the window's
mean increment (the network corrects the mean-increment baseline). ``predictions_to_counts``
maps outputs back to counts and floors them at the last count (a cleaned counter never falls).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from viralab.errors import ConfigError, DataError

COUNT_COLUMNS: tuple[str, ...] = ("view_count", "like_count", "comment_count")
GROWTH_COLUMNS: tuple[str, ...] = ("views_growth_rate", "likes_growth_rate", "comments_growth_rate")
TIME_FEATURES: tuple[str, ...] = ("hour", "day_of_week", "is_weekend", "minute_of_hour")
TARGETS: dict[str, str] = {
    "views": "view_count",
    "likes": "like_count",
    "comments": "comment_count",
}
COUNT_MODES = ("level", "increment")
PREDICT_MODES = ("level", "increment", "residual")
PARTS = ("fit", "val", "test")

# Fixed ranges of the time features: scaled to [0, 1] without fitting anything.
_TIME_RANGES = {"hour": 23.0, "day_of_week": 6.0, "is_weekend": 1.0, "minute_of_hour": 59.0}


def target_column(target: str) -> str:
    """The count column a target forecasts (`views` -> `view_count`)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; valid: {', '.join(TARGETS)}, all")
    return TARGETS[target]


def input_columns(counts_as: str = "increment", time_features: bool = False) -> list[str]:
    """Names of the network's inputs, in order (the spec's six, then time features)."""
    if counts_as not in COUNT_MODES:
        raise ConfigError(f"features.counts_as must be one of {COUNT_MODES}, got {counts_as!r}")
    suffix = "_increment" if counts_as == "increment" else ""
    names = [f"{c}{suffix}" for c in COUNT_COLUMNS] + list(GROWTH_COLUMNS)
    return names + (list(TIME_FEATURES) if time_features else [])


# ------------------------------------------------------------------------------------------
# Cleaning
# ------------------------------------------------------------------------------------------


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

    The first row, and a row after a zero count, gets 0.0 (as `data.sample.add_growth_rates`).
    """
    out = {}
    for count, rate in zip(COUNT_COLUMNS, GROWTH_COLUMNS, strict=True):
        current = counts[count].astype("float64")
        previous = current.shift(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = (current - previous) / previous * 100.0
        out[rate] = growth.where(np.isfinite(growth), 0.0)
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


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------


def time_features(timestamps: pd.Series) -> pd.DataFrame:
    """Spec 002's `create_time_features`, each divided by its fixed range (so in [0, 1])."""
    ts = pd.to_datetime(timestamps, utc=True)
    raw = {
        "hour": ts.dt.hour,
        "day_of_week": ts.dt.dayofweek,
        "is_weekend": (ts.dt.dayofweek >= 5).astype(int),
        "minute_of_hour": ts.dt.minute,
    }
    return pd.DataFrame(
        {k: v.astype("float64") / _TIME_RANGES[k] for k, v in raw.items()}, index=timestamps.index
    )


def model_inputs(
    clean: pd.DataFrame, counts_as: str = "increment", time_features_on: bool = False
) -> pd.DataFrame:
    """Unscaled network inputs per cleaned row, named by `input_columns`.

    Increments are taken within a segment; a segment's first row gets 0, like its growth rate.
    """
    names = input_columns(counts_as, time_features_on)
    out = pd.DataFrame(index=clean.index)
    for count, name in zip(COUNT_COLUMNS, names[:3], strict=True):
        values = clean[count].astype("float64")
        if counts_as == "increment":
            values = values.groupby(clean["segment"], sort=False).diff().fillna(0.0)
        out[name] = values
    for rate in GROWTH_COLUMNS:
        out[rate] = clean[rate].astype("float64")
    if time_features_on:
        out = pd.concat([out, time_features(clean["timestamp"])], axis=1)
    return out[names]


def learned_columns(columns: Sequence[str]) -> list[str]:
    """The inputs the scaler is fitted on (time features have fixed ranges instead)."""
    return [c for c in columns if c not in TIME_FEATURES]


def fit_scaler(inputs: pd.DataFrame, fit_mask: np.ndarray | pd.Series) -> MinMaxScaler:
    """A MinMaxScaler fitted on the *fit* rows only (spec 002 fitted it on every row).

    Raises:
        DataError: there is no fit row.
    """
    fit_rows = inputs.loc[np.asarray(fit_mask, dtype=bool), learned_columns(inputs.columns)]
    if fit_rows.empty:
        raise DataError("no training rows to fit the scaler on")
    return MinMaxScaler().fit(fit_rows)


def scale_inputs(inputs: pd.DataFrame, scaler: MinMaxScaler) -> np.ndarray:
    """Scaled inputs as float32 (n_rows, n_inputs), columns in the frame's order."""
    learned = learned_columns(inputs.columns)
    out = inputs.to_numpy(dtype="float64", copy=True)
    idx = [list(inputs.columns).index(c) for c in learned]
    out[:, idx] = scaler.transform(inputs[learned])
    return out.astype("float32")


def column_scale(scaler: MinMaxScaler, column_index: int) -> tuple[float, float]:
    """(data_min, data_range) the scaler learned for one column (range 1 if constant)."""
    lo = float(scaler.data_min_[column_index])
    rng = float(scaler.data_range_[column_index]) or 1.0
    return lo, rng


# ------------------------------------------------------------------------------------------
# Chronological split per video
# ------------------------------------------------------------------------------------------


SPLITS = ("by_time", "by_video")


def assign_parts(
    clean: pd.DataFrame,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    split: str = "by_time",
    seed: int = 42,
) -> pd.Series:
    """Label each cleaned row `fit`, `val` or `test`, by time within its own video.

    A video's first ``1 - test_fraction`` of rows train; the last ``validation_fraction`` of
    those are the validation rows (early stopping), the rest are the fit rows (weights and
    scaler). Split on the video, not the segment, so no training row is later than a test
    row of the same video.

    ``split="by_video"`` (``data.split``): whole videos are held out instead: a seeded
    ``test_fraction`` of the videos (at least one, and at least one left to train) is all
    `test`; the others are split into fit/val by time as above, without a test part. The
    models never see a test video: the hardest honest test.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"task.test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"task.validation_fraction must be in [0, 1), got {validation_fraction}")
    if split not in SPLITS:
        raise ConfigError(f"data.split must be one of {SPLITS}, got {split!r}")
    parts = pd.Series("fit", index=clean.index, dtype=object)
    held_out: set[str] = set()
    if split == "by_video":
        videos = sorted(clean["video_id"].astype(str).unique())
        if len(videos) < 2:
            raise ConfigError("data.split=by_video needs at least two videos")
        n_test = min(max(1, round(len(videos) * test_fraction)), len(videos) - 1)
        order = np.random.default_rng(seed).permutation(len(videos))
        held_out = {videos[i] for i in order[:n_test]}
    for video, idx in clean.groupby("video_id", sort=False).groups.items():
        if str(video) in held_out:
            parts.loc[idx] = "test"
            continue
        if split == "by_video":
            order = clean.loc[idx, "timestamp"].sort_values(kind="stable").index
            n_fit = len(order) - int(np.floor(len(order) * validation_fraction))
            parts.loc[order[n_fit:]] = "val"
            continue
        order = clean.loc[idx, "timestamp"].sort_values(kind="stable").index
        n = len(order)
        n_train = int(np.floor(n * (1.0 - test_fraction)))
        n_fit = n_train - int(np.floor(n_train * validation_fraction))
        parts.loc[order[n_train:]] = "test"
        parts.loc[order[n_fit:n_train]] = "val"
    return parts


def expanding_window_folds(clean: pd.DataFrame, n_splits: int = 5) -> list[pd.Series]:
    """Spec 002's `time_series_split_validation`, per video and without its empty last fold.

    Each video's rows are cut into ``n_splits + 1`` equal blocks by time; fold k trains on
    blocks ``0..k`` and tests on block ``k + 1`` (the spec's loop cut ``n_splits`` blocks, so
    its last fold trained on everything and tested on nothing). Returns one part labelling
    (`fit`/`test`/`unused`) per fold; validation rows are carved later by the caller.
    """
    if n_splits < 1:
        raise ConfigError(f"cross_validation.n_splits must be >= 1, got {n_splits}")
    folds = []
    for k in range(n_splits):
        parts = pd.Series("unused", index=clean.index, dtype=object)
        for _, idx in clean.groupby("video_id", sort=False).groups.items():
            order = clean.loc[idx, "timestamp"].sort_values(kind="stable").index
            block = len(order) // (n_splits + 1)
            parts.loc[order[: (k + 1) * block]] = "fit"
            parts.loc[order[(k + 1) * block : (k + 2) * block]] = "test"
        folds.append(parts)
    return folds


def carve_validation(parts: pd.Series, clean: pd.DataFrame, fraction: float) -> pd.Series:
    """Relabel the last `fraction` of each video's `fit` rows as `val`."""
    parts = parts.copy()
    for _, idx in clean.groupby("video_id", sort=False).groups.items():
        fit_idx = [
            i
            for i in clean.loc[idx, "timestamp"].sort_values(kind="stable").index
            if parts.at[i] == "fit"
        ]
        n_val = int(np.floor(len(fit_idx) * fraction))
        if n_val:
            parts.loc[fit_idx[-n_val:]] = "val"
    return parts


# ------------------------------------------------------------------------------------------
# Windows
# ------------------------------------------------------------------------------------------


@dataclass
class Windows:
    """Windows of one part: inputs, the rows they end at, and the raw levels for evaluation.

    ``X``: (n, L, n_inputs) scaled inputs of rows ``t-L .. t-1``; ``target_row``: index ``t``
    of the row each window predicts (into the cleaned frame); ``levels``: (n, L, 3) raw counts
    of the input rows; ``next_levels``: (n, 3) raw counts of row ``t``; ``segment``: its id.
    """

    X: np.ndarray
    target_row: np.ndarray
    levels: np.ndarray
    next_levels: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return len(self.target_row)


def make_windows(
    clean: pd.DataFrame,
    scaled: np.ndarray,
    parts: pd.Series,
    sequence_length: int,
) -> dict[str, Windows]:
    """Windows per part (`fit`, `val`, `test`), never crossing a segment boundary.

    A window belongs to the part of its target row; its inputs may be earlier rows of any part
    (they are known when the forecast is made).
    """
    L = sequence_length
    counts = clean[list(COUNT_COLUMNS)].to_numpy(dtype="float64")
    part_values = parts.to_numpy()
    collected: dict[str, list[tuple[np.ndarray, ...]]] = {p: [] for p in PARTS}
    positions = np.arange(len(clean))
    for seg_name, idx in clean.groupby("segment", sort=False).indices.items():
        idx = np.sort(idx)
        if len(idx) <= L:
            continue
        seg_x = scaled[idx]
        seg_counts = counts[idx]
        # (n_windows, L, f): sliding_window_view puts the window axis last
        X = np.lib.stride_tricks.sliding_window_view(seg_x[:-1], L, axis=0).transpose(0, 2, 1)
        lv = np.lib.stride_tricks.sliding_window_view(seg_counts[:-1], L, axis=0).transpose(0, 2, 1)
        rows = positions[idx][L:]
        for part in PARTS:
            sel = part_values[rows] == part
            if sel.any():
                collected[part].append(
                    (X[sel], rows[sel], lv[sel], seg_counts[L:][sel], np.full(sel.sum(), seg_name))
                )
    out = {}
    n_inputs = scaled.shape[1]
    for part, chunks in collected.items():
        if chunks:
            X, rows, lv, nxt, seg = (np.concatenate(c) for c in zip(*chunks, strict=True))
        else:
            X = np.empty((0, L, n_inputs), "float32")
            rows, seg = np.empty(0, int), np.empty(0, object)
            lv, nxt = np.empty((0, L, 3)), np.empty((0, 3))
        out[part] = Windows(np.ascontiguousarray(X, dtype="float32"), rows, lv, nxt, seg)
    return out


def window_targets(
    windows: Windows, target: str, predict: str, scaler: MinMaxScaler, input_index: int
) -> np.ndarray:
    """The network's scaled target per window (see `PREDICT_MODES`) for one count.

    The target is scaled with the column scale of the matching input, which the scaler learned
    on fit rows (levels for `level`, per-minute increments otherwise; a residual is scaled by
    the increment range only, without the offset).
    """
    k = COUNT_COLUMNS.index(target_column(target))
    levels = windows.levels[:, :, k]
    nxt = windows.next_levels[:, k]
    lo, rng = column_scale(scaler, input_index)
    if predict == "level":
        return ((nxt - lo) / rng).astype("float32")
    if predict == "increment":
        return ((nxt - levels[:, -1] - lo) / rng).astype("float32")
    if predict == "residual":
        return ((nxt - _mean_increment_forecast(levels)) / rng).astype("float32")
    raise ConfigError(f"task.predict must be one of {PREDICT_MODES}, got {predict!r}")


def _mean_increment_forecast(levels: np.ndarray) -> np.ndarray:
    if levels.shape[1] < 2:
        return levels[:, -1]
    return levels[:, -1] + (levels[:, -1] - levels[:, 0]) / (levels.shape[1] - 1)


def predictions_to_counts(
    scaled_pred: np.ndarray,
    levels: np.ndarray,
    predict: str,
    scaler: MinMaxScaler,
    input_index: int,
) -> np.ndarray:
    """Network outputs back to counts, given each window's raw levels (n, L) of the target.

    A cumulative counter never falls below its last value, so forecasts are floored there.
    """
    lo, rng = column_scale(scaler, input_index)
    raw = np.asarray(scaled_pred, dtype="float64").reshape(-1)
    levels = np.asarray(levels, dtype="float64")
    last = levels[:, -1]
    if predict == "level":
        counts = raw * rng + lo
    elif predict == "increment":
        counts = last + raw * rng + lo
    elif predict == "residual":
        counts = _mean_increment_forecast(levels) + raw * rng
    else:
        raise ConfigError(f"task.predict must be one of {PREDICT_MODES}, got {predict!r}")
    return np.maximum(counts, last)
