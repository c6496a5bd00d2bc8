"""Live error: logged predictions joined to the outcomes that arrived after them.

A prediction is judged by the first outcome of its video that came after it was made:

- preference: the first rating of the video (by `rated_at`, of the configured rater type,
  owner by default) rated at or after the prediction (`predictions.at <= rated_at`); a rating
  given before the model answered is not an outcome of that answer (the next version trains
  on it instead);
- forecasters: the `video_stats_processed` row of the video at the minute the forecast was for
  (`target_at`), in the count the model forecasts (views, likes or comments).

The join runs at query time, on indexed columns (`predictions(video_id, at)`,
`video_ratings(video_id)`, `video_stats_processed(video_id, timestamp)`), so a rating loaded by
`viralab data load` counts the moment it is in the table: nothing to backfill, nothing that can
go stale. MAE is per prediction (a video predicted three times counts three times: it is the
error of what was served), in the model's own units (0-1 for preference, like its run's
`mae`), with a t interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from viralab.data.database import make_engine
from viralab.data.schema import video_ratings, video_stats_processed
from viralab.errors import ConfigError
from viralab.redaction import redact_text
from viralab.serve.prediction_log import prediction_log_url
from viralab.serve.prediction_table import prediction_log_stats, predictions

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
#: Forecaster name suffix -> the stats column it forecasts.
FORECAST_COLUMNS = {"views": "view_count", "likes": "like_count", "comments": "comment_count"}


def parse_since(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` (also `s`) as a duration.

    Raises:
        ConfigError: anything else, in one line saying what is expected.
    """
    match = _SINCE.match(str(text or ""))
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(
            f"--since {text!r}: expected a positive duration such as 30m, 12h, 7d or 2w"
        )
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def forecast_column(model: str) -> str | None:
    """The stats column a forecaster (`...-views|likes|comments`) forecasts, else None."""
    for suffix, column in FORECAST_COLUMNS.items():
        if model.endswith(f"-{suffix}"):
            return column
    return None


def has_log(engine: Engine) -> bool:
    return "predictions" in set(inspect(engine).get_table_names())


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as UTC (SQLite returns naive values: they were written as UTC)."""
    out = pd.to_datetime(values, utc=False)
    if getattr(out.dt, "tz", None) is None:
        return out.dt.tz_localize(UTC)
    return out.dt.tz_convert(UTC)


def _predictions(engine: Engine, model: str, since: datetime | None) -> pd.DataFrame:
    p = predictions

    query = select(
        p.c.id, p.c.version, p.c.marker, p.c.video_id, p.c.prediction, p.c.target_at, p.c.at
    ).where(p.c.model == model)
    if since is not None:
        query = query.where(p.c.at >= since)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all())
    if frame.empty:
        return pd.DataFrame(
            columns=["id", "version", "marker", "video_id", "prediction", "target_at", "at"]
        )
    frame["at"] = _utc(frame["at"])
    return frame


def preference_outcomes(
    engine: Engine, model: str, since: datetime | None, rater_type: str | None = "owner"
) -> pd.DataFrame:
    """Each logged prediction of `model` made since `since` that has an outcome: columns
    `id, version, marker, video_id, prediction, at, outcome, rated_at`."""
    r = video_ratings
    p = predictions

    query = (
        select(
            p.c.id,
            p.c.version,
            p.c.marker,
            p.c.video_id,
            p.c.prediction,
            p.c.at,
            r.c.overall_score.label("outcome"),
            r.c.rated_at,
        )
        .join(r, r.c.video_id == p.c.video_id)
        .where(p.c.model == model, p.c.video_id.is_not(None), p.c.prediction.is_not(None))
    )
    if since is not None:
        query = query.where(p.c.at >= since)
    if rater_type:
        query = query.where(r.c.rater_type == rater_type)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all())
    columns = ["id", "version", "marker", "video_id", "prediction", "at", "outcome", "rated_at"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["at"] = _utc(frame["at"])
    frame["rated_at"] = _utc(frame["rated_at"])
    # the timestamps compare here, not in SQL: SQLite keeps them as text, in whatever offset
    # each writer used, and "before" must mean before in time
    frame = frame[frame["rated_at"] >= frame["at"]]
    frame = frame.sort_values(["id", "rated_at"], kind="stable").drop_duplicates("id")
    return frame[columns].reset_index(drop=True)


def forecast_outcomes(engine: Engine, model: str, since: datetime | None) -> pd.DataFrame:
    """Each logged forecast step whose minute has arrived in `video_stats_processed`."""
    s = video_stats_processed

    column = forecast_column(model)
    columns = ["id", "version", "marker", "video_id", "prediction", "at", "outcome", "rated_at"]
    logged = _predictions(engine, model, since)
    logged = logged[logged["target_at"].notna() & logged["video_id"].notna()]
    if column is None or logged.empty:
        return pd.DataFrame(columns=columns)
    logged = logged.assign(target_at=_utc(logged["target_at"]).dt.floor("min"))
    videos = sorted(set(logged["video_id"]))
    rows = []
    with engine.connect() as conn:
        for start in range(0, len(videos), 500):
            query = select(s.c.video_id, s.c.timestamp, s.c[column].label("outcome")).where(
                s.c.video_id.in_(videos[start : start + 500]),
                s.c.timestamp >= logged["target_at"].min().to_pydatetime(),
            )
            rows.extend(conn.execute(query).mappings().all())
    actual = pd.DataFrame(rows, columns=["video_id", "timestamp", "outcome"])
    if actual.empty:
        return pd.DataFrame(columns=columns)
    actual["timestamp"] = _utc(actual["timestamp"]).dt.floor("min")
    joined = logged.merge(
        actual, left_on=["video_id", "target_at"], right_on=["video_id", "timestamp"]
    )
    joined = joined.rename(columns={"timestamp": "rated_at"})
    return joined[columns].reset_index(drop=True)


def outcomes(
    engine: Engine, model: str, since: datetime | None, rater_type: str | None = "owner"
) -> pd.DataFrame:
    """Logged predictions of `model` with their outcome (empty when there is no log yet)."""
    if not has_log(engine):
        return pd.DataFrame(
            columns=["id", "version", "marker", "video_id", "prediction", "at", "outcome"]
        )
    if forecast_column(model) is not None:
        return forecast_outcomes(engine, model, since)
    return preference_outcomes(engine, model, since, rater_type)


@dataclass(frozen=True)
class LiveFigure:
    """Live MAE of one version answering as one marker."""

    version: int | None
    marker: str
    n: int  # predictions with an outcome
    n_videos: int
    mae: float
    low: float | None  # t interval of the mean absolute error; None below 2 outcomes
    high: float | None


def mean_interval(errors: np.ndarray, confidence: float = 0.95) -> tuple[float | None, ...]:
    """(mean, low, high): the t interval of the mean; None bounds below 2 values."""
    n = len(errors)
    if n == 0:
        return (math.nan, None, None)
    mean = float(np.mean(errors))
    if n < 2:
        return (mean, None, None)
    sem = float(np.std(errors, ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return (mean, mean - half, mean + half)


def live_figures(joined: pd.DataFrame, confidence: float = 0.95) -> list[LiveFigure]:
    """Per (version, marker): n, MAE and its interval, newest version first."""
    if joined.empty:
        return []
    errors = (joined["prediction"].astype(float) - joined["outcome"].astype(float)).abs()
    frame = joined.assign(error=errors, version=joined["version"].astype("Int64"))
    out = []
    for (version, marker), group in frame.groupby(["version", "marker"], dropna=False):
        mae, low, high = mean_interval(group["error"].to_numpy(dtype=float), confidence)
        out.append(
            LiveFigure(
                version=None if pd.isna(version) else int(version),
                marker=str(marker),
                n=len(group),
                n_videos=int(group["video_id"].nunique()),
                mae=float(mae),
                low=low,
                high=high,
            )
        )
    return sorted(out, key=lambda f: (-(f.version or 0), f.marker))


@dataclass(frozen=True)
class LogCounts:
    """How much the prediction log holds and lost in a window."""

    logged: int  # rows of the model in the window
    with_video: int
    written: int  # by the processes active in the window (all models)
    dropped: int
    processes: int


def log_counts(engine: Engine, model: str, since: datetime | None) -> LogCounts:
    """Rows of `model` since `since`, and the written/dropped counts of the serving processes
    that reported in that window (zeros where there is no log yet)."""
    t = prediction_log_stats
    p = predictions

    if not has_log(engine):
        return LogCounts(0, 0, 0, 0, 0)
    rows = select(func.count(), func.count(p.c.video_id)).where(p.c.model == model)
    procs = select(func.count(), func.sum(t.c.written), func.sum(t.c.dropped))
    if since is not None:
        rows = rows.where(p.c.at >= since)
        procs = procs.where(t.c.updated_at >= since)
    with engine.connect() as conn:
        logged, with_video = conn.execute(rows).one()
        present = "prediction_log_stats" in set(inspect(conn).get_table_names())
        n_procs, written, dropped = conn.execute(procs).one() if present else (0, 0, 0)
    return LogCounts(
        int(logged or 0), int(with_video or 0), int(written or 0), int(dropped or 0), int(n_procs)
    )


@dataclass(frozen=True)
class LiveReport:
    model: str
    since: datetime | None
    figures: Sequence[LiveFigure]
    counts: LogCounts
    database: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "since": None if self.since is None else self.since.isoformat(),
            "database": self.database,
            "figures": [asdict(f) for f in self.figures],
            **{f"log_{k}": v for k, v in asdict(self.counts).items()},
        }


def live_report(
    engine: Engine,
    model: str,
    since: datetime | None,
    *,
    database: str = "",
    rater_type: str | None = "owner",
    confidence: float = 0.95,
) -> LiveReport:
    joined = outcomes(engine, model, since, rater_type)
    return LiveReport(
        model=model,
        since=since,
        figures=live_figures(joined, confidence),
        counts=log_counts(engine, model, since),
        database=database,
    )


def version_live_mae(
    engine: Engine, model: str, version: int | str, rater_type: str | None = "owner"
) -> tuple[float, int] | None:
    """MAE and n of every logged prediction of `version` that has an outcome; None when there
    is none (no log, or no outcome yet)."""
    joined = outcomes(engine, model, None, rater_type)
    if joined.empty:
        return None
    mine = joined[joined["version"].astype("Int64") == int(version)]
    if mine.empty:
        return None
    errors = (mine["prediction"].astype(float) - mine["outcome"].astype(float)).abs()
    return float(errors.mean()), len(mine)


def open_log_engine(url: str | None = None) -> Engine | None:
    """An engine on the prediction log's database; None for a SQLite file that does not exist
    (opening it would create an empty one)."""
    from sqlalchemy.engine import make_url

    url = prediction_log_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            return None
        from pathlib import Path

        if not Path(path).expanduser().exists():
            return None
    return make_engine(url)


def logged_live_mae(
    model: str, version: int | str, rater_type: str | None = "owner", url: str | None = None
) -> tuple[tuple[float, int] | None, str]:
    """(MAE, n) of `version`'s logged predictions that have an outcome, or None and why not
    (no log database, no predictions table, none with an outcome, or unreachable)."""
    try:
        engine = open_log_engine(url)
        if engine is None:
            return None, "no prediction log database"
        try:
            if not has_log(engine):
                return None, "no prediction log yet"
            found = version_live_mae(engine, model, version, rater_type)
        finally:
            engine.dispose()
    except Exception as exc:  # the fallback re-scores; say why in its text
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return None, redact_text(f"prediction log unreadable: {detail[0] if detail else exc}")
    if found is None:
        return None, f"no logged prediction of version {version} has an outcome yet"
    return found, "prediction log"
