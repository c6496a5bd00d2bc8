"""`RowLog`: what a serving path needs of a prediction log, whichever writes it (a thread of
this process, `PredictionLog`, or a process of its own, `ProcessPredictionLog`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class RowLog(Protocol):
    """What a serving path needs of a prediction log (`PredictionLog` has it too)."""

    url: str

    @property
    def written(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def pending(self) -> int: ...
    def record(self, **row: Any) -> bool: ...
    def record_many(self, rows: Sequence[dict[str, Any]]) -> int: ...
    def record_columns(
        self,
        common: Mapping[str, Any],
        columns: Mapping[str, list[Any]],
        documents: list[Any] | None = None,
    ) -> int: ...
    def flush(self, timeout: float = ...) -> None: ...
    def close(self, timeout: float = ...) -> None: ...
    def stats(self) -> dict[str, Any]: ...
