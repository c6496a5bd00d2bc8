"""Sample ``video_stats_processed`` rows for the stats forecaster.

Minute-level cumulative views, likes and comments of freshly uploaded videos with decaying
growth, a daily cycle and count noise; the growth-rate columns come from the counts by the
one rule every loader uses (`viralab.data.growth.add_growth_rates`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from viralab.data.definitions import COUNT_COLUMNS, STATS_COLUMNS
from viralab.data.growth import add_growth_rates

#: The spec's three videos and their row counts (stats spec, "Data Distribution by Video").
DEFAULT_STATS_VIDEOS: dict[str, int] = {
    "7tbWmYUZLX4": 2880,
    "B6W-BDBL5s": 2420,
    "bu39oUbbHxc": 2408,
}


def _video_series(
    n_rows: int, start: pd.Timestamp, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Cumulative counts of one freshly uploaded video, one row a minute."""
    age0 = rng.uniform(30.0, 120.0)  # minutes since upload at the first row
    peak = rng.uniform(60.0, 250.0)  # views a minute right after upload
    tau = rng.uniform(60.0, 240.0)
    alpha = rng.uniform(0.8, 1.3)
    floor = rng.uniform(2.0, 8.0)
    like_rate = rng.uniform(0.03, 0.05)
    comment_rate = rng.uniform(0.003, 0.005)

    minutes = np.arange(n_rows, dtype=float)
    hours = start.hour + start.minute / 60.0 + minutes / 60.0
    daily = 1.0 + 0.35 * np.cos(2.0 * np.pi * (hours - 20.0) / 24.0)  # busiest around 20:00
    mean_views = (peak * (1.0 + (age0 + minutes) / tau) ** (-alpha) + floor) * daily
    dispersion = 8.0  # negative binomial: over-dispersed Poisson
    view_inc = rng.negative_binomial(dispersion, dispersion / (dispersion + mean_views))
    like_inc = rng.poisson(like_rate * view_inc * rng.gamma(10.0, 0.1, n_rows))
    comment_inc = rng.poisson(comment_rate * view_inc * rng.gamma(5.0, 0.2, n_rows))

    views0 = int(rng.integers(1500, 6000))
    view_inc[0] = like_inc[0] = comment_inc[0] = 0
    return {
        "view_count": views0 + np.cumsum(view_inc),
        "like_count": round(views0 * like_rate) + np.cumsum(like_inc),
        "comment_count": max(1, round(views0 * comment_rate)) + np.cumsum(comment_inc),
    }


def generate_stats(
    seed: int = 42,
    videos: dict[str, int] | None = None,
    start: str = "2025-07-01T00:00:00Z",
) -> pd.DataFrame:
    """``video_stats_processed`` rows: minute-level cumulative counts of a few new uploads.

    ``videos`` maps video id to its number of rows (default :data:`DEFAULT_STATS_VIDEOS`, the
    spec's three videos).  The k-th video's series starts ``k`` weeks and ``5k`` hours after
    ``start``.  Views grow with a decaying per-minute rate after upload, a daily cycle and
    negative-binomial noise; likes follow at 3-5% and comments at 0.3-0.5% of the new views.
    Columns: ``timestamp`` (UTC), ``video_id``, ``view_count``, ``like_count``,
    ``comment_count`` (int64, non-decreasing per video) and the three growth rates of
    :func:`add_growth_rates`; sorted by ``video_id``, ``timestamp``.
    """
    videos = DEFAULT_STATS_VIDEOS if videos is None else videos
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(start)
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
    frames = []
    for k, (video_id, n_rows) in enumerate(videos.items()):
        if n_rows < 1:
            raise ValueError(f"video {video_id!r} needs at least one row, got {n_rows}")
        first = origin + pd.Timedelta(days=7 * k, hours=5 * k)
        series = _video_series(n_rows, first, rng)
        frame = pd.DataFrame(
            {
                "timestamp": pd.date_range(first, periods=n_rows, freq="min"),
                "video_id": video_id,
                **{name: values.astype("int64") for name, values in series.items()},
            }
        )
        frames.append(frame)
    if not frames:
        empty = pd.DataFrame(
            {
                "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
                "video_id": pd.Series(dtype=str),
                **{name: pd.Series(dtype="int64") for name in COUNT_COLUMNS},
            }
        )
        return add_growth_rates(empty)[STATS_COLUMNS]
    return add_growth_rates(pd.concat(frames, ignore_index=True))[STATS_COLUMNS]
