"""Schemas of the sweep app (`conf/sweep_app.yaml`'s `sweep:`), its samplers and pruners.

The spaces (`conf/sweep/<name>.yaml`, `@package _global_`) are composed into the app's typed
`sweep` node: they set its space keys (`metric`, `direction`, `n_trials`, `params`). They do
not name the schema themselves: merging it again after the app's `_self_` would put the
schema's defaults back over the app's (or a project's) values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import II


@dataclass
class SweepSettings:
    """`conf/sweep_app.yaml` `sweep:` plus the space keys each `conf/sweep/<name>.yaml` sets."""

    storage: str | None = None
    study_name: str | None = None
    timeout: float | None = None
    heartbeat_interval: int | None = 30
    grace_period: int | None = None
    max_retry: int | None = 1
    max_consecutive_failures: int | None = 3
    show_trial_output: bool = False
    blas_threads: int | None = 1
    overrides: list[str] = field(default_factory=list)
    lean_overrides: list[str] = field(
        default_factory=lambda: ["log_model=false", "log_plots=false", "task.plots=false"]
    )
    registered_model: str | None = None
    model_artifact: str = "model"
    # set by the space (conf/sweep/<name>.yaml); checked with their own messages by
    # `viralab.sweeps.plan` (a metric the runs return, minimize | maximize, the parameters)
    metric: Any = None
    direction: Any = "minimize"
    n_trials: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    # conf/sweep/sampler/*.yaml and conf/sweep/pruner/*.yaml (schemas below)
    sampler: Any = None
    pruner: Any = None


@dataclass
class TpeSampler:
    """`conf/sweep/sampler/tpe.yaml`."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = II("seed")
    n_startup_trials: int = 10
    multivariate: bool = True


@dataclass
class RandomSampler:
    """`conf/sweep/sampler/random.yaml`."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = II("seed")


@dataclass
class GridSampler:
    """`conf/sweep/sampler/grid.yaml` (`search_space` is filled from `sweep.params`)."""

    _target_: str = "optuna.samplers.GridSampler"
    search_space: Any = None
    seed: int | None = II("seed")


@dataclass
class CmaEsSampler:
    """`conf/sweep/sampler/cmaes.yaml`."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = II("seed")
    n_startup_trials: int = 1


@dataclass
class MedianPruner:
    """`conf/sweep/pruner/median.yaml`."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 2
    interval_steps: int = 1


@dataclass
class HyperbandPruner:
    """`conf/sweep/pruner/hyperband.yaml` (`max_resource`: a number of epochs or `auto`)."""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class NonePruner:
    """`conf/sweep/pruner/none.yaml`: never prune."""

    _target_: str = "optuna.pruners.NopPruner"


#: `conf/sweep/sampler/<name>.yaml` -> schema.
SAMPLER_SCHEMAS: dict[str, type] = {
    "tpe": TpeSampler,
    "random": RandomSampler,
    "grid": GridSampler,
    "cmaes": CmaEsSampler,
}

#: `conf/sweep/pruner/<name>.yaml` -> schema.
PRUNER_SCHEMAS: dict[str, type] = {
    "median": MedianPruner,
    "hyperband": HyperbandPruner,
    "none": NonePruner,
}
