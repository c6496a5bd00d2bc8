"""Rating records checked with pydantic: per-field reasons, even for nested documents.

Rules: ``id``, ``video_id`` non-empty text (numbers are taken as text); ``overall_score`` a
number in 0..1 (not a boolean, not NaN); ``rated_at`` a parseable timestamp (no zone: UTC);
``rater_type`` text, ``owner`` when absent; ``dimensions``/``visual_analysis`` a strict JSON
object or null (`viralab.data.validation.json_documents`); a record without video details
must name a video already in the database (checked at load).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from viralab.data.extraction import EXPORT_RATER_TYPE
from viralab.data.validation.json_documents import (
    normalize_feature_count,
    parse_json_object,
    to_export_shape,
)
from viralab.data.validation.rejections import RATINGS_TABLE, Rejection, is_missing, show_value

RATING_COLUMNS = ("id", "video_id", "overall_score", "rated_at")


@dataclass
class RatingRow:
    """A rating that passed validation, ready for ``video_ratings`` (and ``analyzed_videos``)."""

    row: int
    rating: dict[str, Any]
    video: dict[str, Any] | None  # None: the record only names its video_id


_Text = Annotated[str, Field(min_length=1)]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("holds a NUL character, which PostgreSQL does not store")
    return value


class _VideoIn(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    video_url: str | None = None
    visual_analysis: dict[str, Any] | None = None

    @field_validator("video_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        return _no_nul(value)

    @field_validator("visual_analysis", mode="before")
    @classmethod
    def _analysis(cls, value: Any) -> dict[str, Any] | None:
        parsed = parse_json_object(value)
        return None if parsed is None else normalize_feature_count(parsed)


class _RatingIn(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: _Text
    video_id: _Text
    overall_score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    dimensions: dict[str, Any] | None = None
    notes: str | None = None
    rated_at: datetime
    rater_type: _Text = EXPORT_RATER_TYPE
    video: _VideoIn | None = None

    @field_validator("id", "video_id", "notes", "rater_type", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)

    @field_validator("overall_score", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, got a boolean")
        return value

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimensions(cls, value: Any) -> dict[str, Any] | None:
        return parse_json_object(value)

    @field_validator("rated_at", mode="after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _has_video_details(record: Mapping[str, Any]) -> bool:
    video = record.get("video")
    return isinstance(video, Mapping) and bool(
        video.get("video_url") is not None or video.get("visual_analysis") is not None
    )


def validate_rating(
    record: Any, row: int, source: str = ""
) -> tuple[RatingRow | None, list[Rejection]]:
    """One record checked: the rows to write, or the reasons it cannot be loaded."""
    rid = _record_id(record)
    if not isinstance(record, Mapping):
        reason = f"must be a JSON object, got {type(record).__name__}"
        return None, [Rejection(row, rid, "record", reason, RATINGS_TABLE, source)]
    shaped = to_export_shape(record)
    try:
        parsed = _RatingIn.model_validate(shaped)
    except ValidationError as exc:
        return None, [
            Rejection(row, rid, _loc(err["loc"]), _msg(err), RATINGS_TABLE, source)
            for err in exc.errors(include_url=False)
        ]
    rating = {
        "id": parsed.id,
        "video_id": parsed.video_id,
        "overall_score": parsed.overall_score,
        "dimensions": parsed.dimensions,
        "notes": parsed.notes,
        "rated_at": parsed.rated_at,
        "rater_type": parsed.rater_type,
    }
    video = None
    if parsed.video is not None and _has_video_details(shaped):
        video = {
            "id": parsed.video_id,
            "video_url": parsed.video.video_url,
            "visual_analysis": parsed.video.visual_analysis,
        }
    return RatingRow(row, rating, video), []


def validate_ratings(
    records: Iterable[Any], source: str = "", first_row: int = 1
) -> tuple[list[RatingRow], list[Rejection]]:
    """Check every record; a repeated rating id keeps its first occurrence."""
    good: list[RatingRow] = []
    rejected: list[Rejection] = []
    seen: dict[str, int] = {}
    for row, record in enumerate(records, start=first_row):
        checked, reasons = validate_rating(record, row, source)
        if checked is None:
            rejected.extend(reasons)
            continue
        first = seen.setdefault(checked.rating["id"], row)
        if first != row:
            reason = f"duplicate rating id (first at row {first})"
            rejected.append(
                Rejection(row, checked.rating["id"], "id", reason, RATINGS_TABLE, source)
            )
            continue
        good.append(checked)
    return good, rejected


def _record_id(record: Any) -> str | None:
    if isinstance(record, Mapping) and not is_missing(record.get("id")):
        return str(record.get("id"))
    return None


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "record"


def _msg(err: Mapping[str, Any]) -> str:
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if err.get("type") != "missing" and isinstance(value, str | int | float | bool):
        message += f", got {show_value(value)}"
    return message
