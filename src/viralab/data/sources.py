"""Where rows come from, chosen by `data.source`: the bundled sample, files, or the database.

Every source implements :class:`DataSource` and returns the same shapes: rating records in
spec 000's export format (`{"id", "video_id", "overall_score", "dimensions", "notes",
"rated_at", "rater_type", "video": {"video_url", "visual_analysis"}}`) and a
`video_stats_processed` DataFrame (`viralab.data.definitions.STATS_COLUMNS`).

- `sample`: generated in memory from `data.seed` (`viralab.data.sample.source`).
- `files`: `data.path`, a JSON export, JSON Lines, CSV or parquet (`viralab.data.files`).
- `postgres`: the application database (`$VIRALAB_DATABASE_URL`, else `data.url`, else the
  embedded SQLite file), read by `viralab.data.postgres_source`, which also runs the
  extraction rules in SQL.

Callers name a source only through `data.source`; adding one means one class and one entry
in :data:`REGISTRY`, not a new branch in every function here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pandas as pd

from viralab.data.extraction import ExtractionReport
from viralab.data.files import FileSource
from viralab.data.postgres_source import PostgresSource
from viralab.data.sample.source import SampleSource
from viralab.errors import ConfigError


class DataSource(Protocol):
    """What every `data.source` gives the model families."""

    def rating_records(self, data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All rating records the source holds (extraction filters them afterwards)."""
        ...

    def training_records(
        self,
        data_cfg: Mapping[str, Any],
        *,
        rater_type: str,
        min_feature_count: int,
        version_key: str,
    ) -> tuple[list[dict[str, Any]], ExtractionReport]:
        """The records spec 000 §2 keeps for training, and why the others were dropped."""
        ...

    def stats(self, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
        """`video_stats_processed` rows with the spec's columns."""
        ...


#: Every source by its `data.source` name, in the order error messages list them.
REGISTRY: dict[str, DataSource] = {
    "sample": SampleSource(),
    "files": FileSource(),
    "postgres": PostgresSource(),
}
SOURCES = tuple(REGISTRY)


def data_source(data_cfg: Mapping[str, Any]) -> DataSource:
    """The source `data.source` names.

    Raises:
        ConfigError: no source has that name (the message lists the valid ones).
    """
    source = data_cfg.get("source")
    if source not in SOURCES:  # a tuple: an unhashable value is unknown, not a TypeError
        raise ConfigError(f"unknown data source {source!r}; valid: {', '.join(SOURCES)}")
    return REGISTRY[source]


def load_rating_records(data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All rating records the source holds (extraction filters them afterwards)."""
    return data_source(data_cfg).rating_records(data_cfg)


def extract_records(
    data_cfg: Mapping[str, Any],
    *,
    rater_type: str = "owner",
    min_feature_count: int = 100,
    version_key: str = "comedyStyle",
) -> tuple[list[dict[str, Any]], ExtractionReport]:
    """The training records of any source, filtered by spec 000 §2, and the drop counts.

    For `postgres` the filter runs in the database; otherwise in Python over all records.
    """
    return data_source(data_cfg).training_records(
        data_cfg,
        rater_type=rater_type,
        min_feature_count=min_feature_count,
        version_key=version_key,
    )


def load_stats(data_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """`video_stats_processed` rows with the spec's columns (growth rates computed if absent)."""
    return data_source(data_cfg).stats(data_cfg)
