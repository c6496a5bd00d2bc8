"""What a row of ``predictions`` is: its columns in order, the defaults a row gets, and the
column-wise chunk a scored batch stays as until the writer builds its rows.

Shared by the thread writer (`buffer`), the process client (`process_log`) and the row
builders (`records`), so that a row means the same whichever path wrote it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from viralab.serve.input_digest import document_digest

#: The columns of ``predictions`` a row carries, in the order rows are bound.
COLUMNS = (
    "request_id", "model", "version", "marker", "input_digest", "video_id", "prediction",
    "score", "confidence", "target_at", "latency_ms", "at",
)  # fmt: skip
#: The columns whose values the dialect converts before binding (SQLite stores text).
TIME_COLUMNS = frozenset({"at", "target_at"})
#: What a document held as an object (a dict, digested later as JSON, or pickled as is for
#: a writer process) counts against the text budget: about a typical analysis document.
OBJECT_BYTES = 4096

_ID_PREFIX = uuid.uuid4().hex[:20]  # per process; a counter makes each request's id unique
_ID_COUNTER = itertools.count()


def new_request_id() -> str:
    """Unique per request without a system call each (`uuid4` reads the OS's randomness: tens
    of microseconds here, more than logging a whole request costs otherwise)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def now_utc() -> datetime:
    return datetime.now(UTC)


def text_size(documents: Sequence[Any]) -> int:
    """The bytes `documents` count against a log's text budget."""
    return sum(len(d) if isinstance(d, str | bytes) else OBJECT_BYTES for d in documents)


def complete(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every column present (an executemany needs the same keys in each row)."""
    out = {c: row.get(c) for c in COLUMNS}
    if out["at"] is None:
        out["at"] = now_utc()
    if out["request_id"] is None:
        out["request_id"] = ""
    if out["marker"] is None:
        out["marker"] = "explicit"
    if out["input_digest"] is None:
        out["input_digest"] = ""
    if out["version"] is not None:
        try:
            out["version"] = int(out["version"])
        except (TypeError, ValueError):
            out["version"] = None
    return out


def row_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """One row as bound: its values in `COLUMNS` order, defaults filled in."""
    out = complete(row)
    return tuple(out[c] for c in COLUMNS)


class Chunk:
    """Rows kept as columns until the writer takes them (see `PredictionLog.record_columns`)."""

    __slots__ = ("columns", "common", "documents", "n", "size")

    def __init__(
        self,
        common: dict[str, Any],
        columns: dict[str, list[Any]],
        documents: list[Any] | None,
        size: int,
    ) -> None:
        self.common = common
        self.columns = columns
        self.documents = documents
        self.size = size
        self.n = len(next(iter(columns.values())))

    def split(self, k: int) -> tuple[Chunk, Chunk]:
        docs = self.documents

        def part(sl: slice) -> Chunk:
            sub = None if docs is None else docs[sl]
            size = 0 if sub is None else text_size(sub)
            return Chunk(self.common, {c: v[sl] for c, v in self.columns.items()}, sub, size)

        return part(slice(0, k)), part(slice(k, None))

    def tuples(self) -> list[tuple[Any, ...]]:
        """The rows in `COLUMNS` order, built column by column (no dict per row)."""
        n = self.n
        columns = dict(self.columns)
        if self.documents is not None:
            columns["input_digest"] = [document_digest(d) for d in self.documents]
        common = complete(self.common)
        out = [columns[c] if c in columns else [common[c]] * n for c in COLUMNS]
        return list(zip(*out, strict=True))
