"""Schema of the `registry` group (`conf/registry/default.yaml`): markers, gates, guard, A/B.

`gates` is a map keyed by registered model name: its schema default is empty, because a merge
adds keys, so a default listing the packaged models would bring back a model a project's own
`conf/registry/default.yaml` left out. Its entries are read by `viralab.registry.gates`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateSet:
    """The frozen rows a challenger and the champion are both scored on."""

    enabled: bool = True
    fraction: float = 0.2
    seed: int = 13
    min_members: int = 20
    max_origins: int = 300
    database_url: str | None = None


@dataclass
class ChampionComparison:
    """Non-inferiority of a challenger against the champion (paired bootstrap)."""

    enabled: bool = True
    tolerance: float = 0.02
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    gate_set: GateSet = field(default_factory=GateSet)
    eval_artifact: str = "eval/test_set.parquet"
    label_column: str = "__label__"
    fallback_metric: str = "mae"


@dataclass
class Guard:
    """What the MLflow server app does when a marker moves: enforce | warn | off."""

    policy: str = "enforce"


@dataclass
class AbSplit:
    """Champion/challenger split of in-process serving."""

    share: float = 0.0
    key: str = "video_id"


@dataclass
class RegistrySection:
    """`conf/registry/default.yaml` (parsed for use by `registry.markers.RegistrySettings`)."""

    mode: str = "alias"
    active_alias: str = "champion"
    candidate_alias: str = "challenger"
    active_stage: str = "Production"
    candidate_stage: str = "Staging"
    gates: dict[str, Any] = field(default_factory=dict)
    champion_comparison: ChampionComparison = field(default_factory=ChampionComparison)
    guard: Guard = field(default_factory=Guard)
    ab: AbSplit = field(default_factory=AbSplit)
