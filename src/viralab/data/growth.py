"""Spec 002's growth rate, defined once: the % change of a counter from the previous row.

The sample generator, the loader (stats given as raw counts), the `files` source and the
forecaster's cleaning (`viralab.features.sequence`) all compute rates with these functions,
so the stored, generated and recomputed rates can never disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from viralab.data.definitions import GROWTH_RATE_OF


def percent_growth(current: pd.Series, previous: pd.Series) -> pd.Series:
    """``(current - previous) / previous * 100``; 0.0 where that is not finite (no previous
    row, a previous count of 0 or missing)."""
    current = current.astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = (current - previous) / previous * 100.0
    return growth.where(np.isfinite(growth), 0.0)


def add_growth_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``views/likes/comments_growth_rate`` computed from the cumulative counts.

    The rate is the percentage change (x100) of each count from the previous row of the same
    ``video_id``, in timestamp order; a video's first row, and any row whose previous count is
    0 or missing, gets 0.0.  Returns a new frame sorted by ``video_id``, ``timestamp`` (when
    there is a ``timestamp`` column) with a fresh index; the input is left untouched.
    """
    missing = [c for c in ("video_id", *GROWTH_RATE_OF) if c not in df.columns]
    if missing:
        raise KeyError(f"add_growth_rates needs columns {missing}")
    keys = ["video_id", "timestamp"] if "timestamp" in df.columns else ["video_id"]
    out = df.sort_values(keys, kind="stable").reset_index(drop=True)
    for count, rate in GROWTH_RATE_OF.items():
        current = out[count].astype("float64")
        previous = current.groupby(out["video_id"], sort=False).shift(1)
        out[rate] = percent_growth(current, previous).astype("float64")
    return out
