"""What one load did: counts per table and every rejected row with its reason."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from viralab.data.schema import analyzed_videos, video_ratings, video_stats_processed
from viralab.data.validation import Rejection
from viralab.errors import DataError

TABLES = (analyzed_videos.name, video_ratings.name, video_stats_processed.name)


@dataclass
class TableCounts:
    """What one load did to one table. ``rejected`` counts input rows, not reasons."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, inserted: int, updated: int, unchanged: int) -> None:
        self.inserted += inserted
        self.updated += updated
        self.unchanged += unchanged


@dataclass
class LoadReport:
    """Counts per table and every rejected row with its reason."""

    database: str = ""
    tables: dict[str, TableCounts] = field(
        default_factory=lambda: {name: TableCounts() for name in TABLES}
    )
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, table: str, rejections: Sequence[Rejection]) -> None:
        self.rejections.extend(rejections)
        self.tables[table].rejected += len({(r.source, r.row) for r in rejections})

    @property
    def rejected_rows(self) -> int:
        return sum(t.rejected for t in self.tables.values())

    def summary_lines(self) -> list[str]:
        return [
            f"{name}: {c.inserted} inserted, {c.updated} updated, {c.unchanged} unchanged, "
            f"{c.rejected} rejected"
            for name, c in self.tables.items()
            if c.inserted or c.updated or c.unchanged or c.rejected
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "tables": {name: asdict(c) for name, c in self.tables.items()},
            "rejected": [r.as_dict() for r in self.rejections],
        }

    def write(self, path: Path) -> Path:
        """The report as JSON (counts + rejections) or, for a ``.csv`` path, the rejections.

        Raises:
            DataError: the file cannot be written.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".csv":
                with path.open("w", newline="", encoding="utf-8") as fh:
                    columns = ["source", "row", "table", "id", "field", "reason"]
                    writer = csv.DictWriter(fh, fieldnames=columns)
                    writer.writeheader()
                    for r in self.rejections:
                        writer.writerow({c: getattr(r, c) for c in columns})
            else:
                path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot write load report {path}: {exc}") from None
        return path
