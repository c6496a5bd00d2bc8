"""Loading ratings, analyses and stats into the application database: checked, batched, upserted.

Rows are validated first (a bad row is set aside with its reason), written in batches of one
transaction each (`upsert`: idempotent, counting inserted/updated/unchanged rows), ratings
with their analyses (`ratings`), stats with growth rates filled in (`stats`); `load` is one
whole load and `report` what it did.
"""

from viralab.data.loading.load import load_into_database, prepare_database
from viralab.data.loading.ratings import upsert_ratings
from viralab.data.loading.report import TABLES, LoadReport, TableCounts
from viralab.data.loading.stats import fill_growth_rates, previous_rows, upsert_stats
from viralab.data.loading.upsert import DEFAULT_BATCH_SIZE, Progress, upsert_rows

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "TABLES",
    "LoadReport",
    "Progress",
    "TableCounts",
    "fill_growth_rates",
    "load_into_database",
    "prepare_database",
    "previous_rows",
    "upsert_ratings",
    "upsert_rows",
    "upsert_stats",
]
