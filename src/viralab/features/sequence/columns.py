"""The forecaster's names: counts, rates, time features, targets, modes and parts.

Inputs are the spec's six per-minute features (three counts, three growth rates: the stats
table's own columns, `viralab.data.definitions`), then the optional time features.
"""

from __future__ import annotations

from viralab.data.definitions import COUNT_COLUMNS, GROWTH_COLUMNS
from viralab.errors import ConfigError

__all__ = [
    "COUNT_COLUMNS",
    "COUNT_MODES",
    "GROWTH_COLUMNS",
    "PARTS",
    "PREDICT_MODES",
    "TARGETS",
    "TIME_FEATURES",
    "input_columns",
    "target_column",
]

TIME_FEATURES: tuple[str, ...] = ("hour", "day_of_week", "is_weekend", "minute_of_hour")
TARGETS: dict[str, str] = {
    "views": "view_count",
    "likes": "like_count",
    "comments": "comment_count",
}
COUNT_MODES = ("level", "increment")
PREDICT_MODES = ("level", "increment", "residual")
PARTS = ("fit", "val", "test")


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
