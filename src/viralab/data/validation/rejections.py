"""What a rejected input row looks like, and how a bad value is quoted in its reason.

A bad row never stops a load: it is set aside as a :class:`Rejection` (row number, id, field,
reason) and the good rows go on. Ratings and stats are checked by different means (pydantic,
pandas) but report the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

RATINGS_TABLE = "video_ratings"
STATS_TABLE = "video_stats_processed"


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


def is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
    )


def show_value(value: Any) -> str:
    if is_missing(value):
        return "nothing"
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
