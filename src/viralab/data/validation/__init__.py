"""Validation at the door: what may enter the application tables, and why a row may not.

A bad row never stops a load: it is set aside as a `Rejection` and the good rows go on
(`rejections`). Rating records are checked with pydantic (`ratings`, their JSON documents in
`json_documents`), stats rows column-wise with pandas (`stats`). Problems with the input as
a whole (a missing column, no rows at all) are `viralab.errors.DataError`, one line.
"""

from viralab.data.validation.json_documents import (
    normalize_feature_count,
    parse_json_object,
    plain_json,
    to_export_shape,
)
from viralab.data.validation.ratings import (
    RATING_COLUMNS,
    RatingRow,
    validate_rating,
    validate_ratings,
)
from viralab.data.validation.rejections import RATINGS_TABLE, STATS_TABLE, Rejection
from viralab.data.validation.stats import (
    BIGINT_MAX,
    check_stats_columns,
    parse_timestamps,
    validate_stats,
    whole_counts,
)

__all__ = [
    "BIGINT_MAX",
    "RATINGS_TABLE",
    "RATING_COLUMNS",
    "STATS_TABLE",
    "RatingRow",
    "Rejection",
    "check_stats_columns",
    "normalize_feature_count",
    "parse_json_object",
    "parse_timestamps",
    "plain_json",
    "to_export_shape",
    "validate_rating",
    "validate_ratings",
    "validate_stats",
    "whole_counts",
]
