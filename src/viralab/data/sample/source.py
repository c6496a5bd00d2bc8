"""`data=sample`: the bundled sample as a data source, generated in memory from `data.seed`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from viralab.data.extraction import ExtractionReport, extract_training_records
from viralab.data.sample.ratings import generate_ratings
from viralab.data.sample.stats import generate_stats


class SampleSource:
    """`data=sample`: `data.n_videos` usable ratings (default 700) and the spec's three
    videos of stats, both from `data.seed` (default 42)."""

    def rating_records(self, data_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every generated record, including those the extraction drops."""
        return generate_ratings(
            n_videos=int(data_cfg.get("n_videos", 700)), seed=int(data_cfg.get("seed", 42))
        )

    def training_records(
        self,
        data_cfg: Mapping[str, Any],
        *,
        rater_type: str,
        min_feature_count: int,
        version_key: str,
    ) -> tuple[list[dict[str, Any]], ExtractionReport]:
        """Spec 000 §2's extraction in Python over the generated records."""
        return extract_training_records(
            self.rating_records(data_cfg),
            rater_type=rater_type,
            min_feature_count=min_feature_count,
            version_key=version_key,
        )

    def stats(self, data_cfg: Mapping[str, Any]) -> pd.DataFrame:
        """The generated `video_stats_processed` rows."""
        return generate_stats(seed=int(data_cfg.get("seed", 42)))
