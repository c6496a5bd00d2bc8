"""Schemas of the `model` group: one per `conf/model/<name>.yaml`, keyed by `model.name`.

A field typed `Any` takes what the estimator takes (sklearn's `max_features` is a float, an int
or a name); the rest are checked when the config is composed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import II


@dataclass
class RidgeModel:
    """`conf/model/ridge.yaml`: spec 000 §5.1 initial model."""

    name: str = "ridge"
    _target_: str = "sklearn.linear_model.Ridge"
    alpha: float = 1.0
    solver: str = "auto"


@dataclass
class RandomForestModel:
    """`conf/model/random_forest.yaml`."""

    name: str = "random_forest"
    _target_: str = "sklearn.ensemble.RandomForestRegressor"
    n_estimators: int = 100
    max_depth: int | None = 10
    min_samples_split: int = 5
    min_samples_leaf: int = 2
    max_features: Any = 1.0
    random_state: int | None = II("seed")
    n_jobs: int | None = -1


@dataclass
class GradientBoostingModel:
    """`conf/model/gradient_boosting.yaml`."""

    name: str = "gradient_boosting"
    _target_: str = "sklearn.ensemble.GradientBoostingRegressor"
    n_estimators: int = 300
    learning_rate: float = 0.05
    max_depth: int | None = 3
    min_samples_leaf: int = 5
    subsample: float = 0.8
    loss: str = "squared_error"
    random_state: int | None = II("seed")


@dataclass
class MlpModel:
    """`conf/model/mlp.yaml`."""

    name: str = "mlp"
    _target_: str = "sklearn.neural_network.MLPRegressor"
    hidden_layer_sizes: list[int] = field(default_factory=lambda: [64, 32])
    activation: str = "relu"
    alpha: float = 0.001
    learning_rate_init: float = 0.001
    max_iter: int = 1000
    early_stopping: bool = True
    validation_fraction: float = 0.15
    n_iter_no_change: int = 20
    random_state: int | None = II("seed")


@dataclass
class LstmModel:
    """`conf/model/lstm.yaml`: the Keras forecaster (no `_target_`: built by `models.lstm`)."""

    name: str = "lstm"
    lstm_units_1: int = 32
    lstm_units_2: int = 0
    dropout_rate: float = 0.2
    dense_units: int = 16
    learning_rate: float = 0.001
    loss: str = "mae"
    huber_delta: float = 1.0
    epochs: int = 50
    batch_size: int = 256
    shuffle: bool = True
    early_stopping_patience: int | None = 5
    restore_best_weights: bool = True
    unroll: bool = True
    jit_compile: bool = False
    threads: int | None = None


@dataclass
class BoostingModel:
    """`conf/model/boosting.yaml`: the global gradient-boosting peer."""

    name: str = "boosting"
    _target_: str = "viralab.models.peers.BoostingPeer"
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 50
    l2_regularization: float = 1.0
    loss: str = "absolute_error"
    lookback: int = 240
    daily: bool = True


@dataclass
class NaiveModel:
    """`conf/model/naive.yaml`: the naive baselines as a model."""

    name: str = "naive"
    _target_: str = "viralab.models.peers.NaivePeer"
    method: str = "best"
    lookback: int = 61


@dataclass
class EtsModel:
    """`conf/model/ets.yaml`: statsforecast AutoETS per video."""

    name: str = "ets"
    _target_: str = "viralab.models.peers.StatsPeer"
    model: str = "ets"
    history: int = 120


@dataclass
class ThetaModel:
    """`conf/model/theta.yaml`: statsforecast AutoTheta per video."""

    name: str = "theta"
    _target_: str = "viralab.models.peers.StatsPeer"
    model: str = "theta"
    history: int = 120


#: `conf/model/<name>.yaml` (= `model.name`) -> schema.
MODEL_SCHEMAS: dict[str, type] = {
    "ridge": RidgeModel,
    "random_forest": RandomForestModel,
    "gradient_boosting": GradientBoostingModel,
    "mlp": MlpModel,
    "lstm": LstmModel,
    "boosting": BoostingModel,
    "naive": NaiveModel,
    "ets": EtsModel,
    "theta": ThetaModel,
}
