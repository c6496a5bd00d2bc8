"""Bundled, deterministic sample data for both model families.

viralab must train, sweep and serve out of the box, with no database and no network: this
package generates the embedded default data from a seed instead of shipping data files:
owner ratings in the preference spec's export format (`ratings`) and the stats
forecaster's ``video_stats_processed`` rows (`stats`). The same seed always gives
identical data.
"""

from viralab.data.definitions import EXPECTED_CORRELATIONS
from viralab.data.growth import add_growth_rates
from viralab.data.sample.ratings import generate_ratings
from viralab.data.sample.stats import DEFAULT_STATS_VIDEOS, generate_stats

__all__ = [
    "DEFAULT_STATS_VIDEOS",
    "EXPECTED_CORRELATIONS",
    "add_growth_rates",
    "generate_ratings",
    "generate_stats",
]
