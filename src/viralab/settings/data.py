"""Schemas of the `data` group (`conf/data/*.yaml`): where the training rows come from."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import II, MISSING


@dataclass
class SampleData:
    """`conf/data/sample.yaml`: the bundled deterministic sample."""

    source: str = "sample"
    seed: int = II("seed")
    n_videos: int = 700
    split: str = "by_time"


@dataclass
class FilesData:
    """`conf/data/files.yaml`: exported ratings or stats files (`data.path` is required)."""

    source: str = "files"
    path: str = MISSING
    split: str = "by_time"


@dataclass
class PostgresData:
    """`conf/data/postgres.yaml`: the application database (URL from the environment)."""

    source: str = "postgres"
    url: str | None = "${oc.env:VIRALAB_DATABASE_URL,null}"
    split: str = "by_time"


#: `data.source` -> schema (`conf/data/<source>.yaml`).
DATA_SCHEMAS: dict[str, type] = {
    "sample": SampleData,
    "files": FilesData,
    "postgres": PostgresData,
}
