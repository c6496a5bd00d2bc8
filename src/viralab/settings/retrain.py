"""Schema of the `retrain` group (`conf/retrain/default.yaml`): retrain triggers.

`models` is a map keyed by registered model name, parsed per model by
`viralab.monitor.settings.RetrainSettings`; its schema default is empty for the reason given
in `viralab.settings.registry` (a merge adds keys, it never removes one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RetrainSection:
    """`conf/retrain/default.yaml`."""

    experiment: str = "retraining"
    auto_promote: bool = False
    reference_bins: int = 10
    allowed_targets: list[str] = field(
        default_factory=lambda: [
            "sklearn.linear_model.Ridge",
            "sklearn.ensemble.RandomForestRegressor",
            "sklearn.ensemble.GradientBoostingRegressor",
            "sklearn.neural_network.MLPRegressor",
            "viralab.models.peers.NaivePeer",
            "viralab.models.peers.StatsPeer",
            "viralab.models.peers.BoostingPeer",
        ]
    )
    models: dict[str, Any] = field(default_factory=dict)
