"""Names and tables the specs fix once: the stats columns and the expected correlations.

The sample generator, the loaders, validation, the sources and the forecaster's features
all read these, so a column is renamed (or a correlation added) in one place; production
code never imports the sample generator to get them.
"""

from __future__ import annotations

#: Spec 002's cumulative counters of `video_stats_processed`.
COUNT_COLUMNS: tuple[str, ...] = ("view_count", "like_count", "comment_count")
#: Their growth rates, in the same order (`viralab.data.growth` computes them).
GROWTH_COLUMNS: tuple[str, ...] = ("views_growth_rate", "likes_growth_rate", "comments_growth_rate")
#: Each counter's growth-rate column.
GROWTH_RATE_OF: dict[str, str] = dict(zip(COUNT_COLUMNS, GROWTH_COLUMNS, strict=True))
#: What every stats input must give (growth rates can be computed).
STATS_REQUIRED: tuple[str, ...] = ("timestamp", "video_id", *COUNT_COLUMNS)
#: `video_stats_processed` as every source returns it, in this order (a list: pandas
#: selects columns with a list, not a tuple).
STATS_COLUMNS: list[str] = [*STATS_REQUIRED, *GROWTH_COLUMNS]

#: The spec's expected correlations with ``overall_score`` (preference spec, section 4.2), as
#: dotted paths of the flattened analysis.  The sample's hidden score honours every sign.
EXPECTED_CORRELATIONS: dict[str, tuple[str, ...]] = {
    "strongPositive": (
        "script.replicability.score",
        "script.humor.comedyTiming",
        "standalone.worksWithoutContext",
        "comedyStyle.contrastMechanism.present",
        "flexibility.swappableCore",
        "script.structure.payoffStrength",
    ),
    "strongNegative": (
        "trends.memeDependent",
        "trends.usesPremadeSound",
        "casting.actingSkillRequired",
        "production.shotComplexity",
        "audio.soundEffects_count",
        "flexibility.industryLock",
        "casting.attractivenessDependency",
    ),
}
