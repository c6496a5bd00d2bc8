"""A sweep checked before its first trial: the app config, the space, the trials' base config.

`plan_sweep` turns the composed app config (`conf/sweep_app.yaml`: the training config plus
`sweep: <space>`) into a `SweepPlan`. A trial's config is the *training* config composed from:
the app's group choices (model=..., data=...), the space's `sweep.overrides`, the user's training
overrides, then (per trial) the sampled values, `register=false` and the trial's run name — so
`python -m viralab.train <those overrides>` repeats any trial.

Checked here, before any run or trial exists: the space's distributions, that every swept key
is a value in the composed training config, one test composition with a sampled point, counts,
the sampler and the pruner. The storage is opened when the sweep starts (`sweeps.study`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from viralab.config import compose, config_file, is_config_group, to_safe_container
from viralab.errors import ConfigError, ViralabError
from viralab.redaction import redact
from viralab.sweeps.space import SearchSpace, check_keys, parse_space
from viralab.sweeps.study import DIRECTIONS, build_pruner, build_sampler, resolve_storage
from viralab.tracking import configure_tracking

log = logging.getLogger(__name__)

APP_CONFIG = "sweep_app"


@dataclass
class SweepPlan:
    """A checked sweep: what every trial is composed from and where the study lives."""

    cfg: DictConfig  # the app config (training tree + sweep), hydra node removed
    name: str  # the space (conf/sweep/<name>.yaml)
    space: SearchSpace
    base_overrides: list[str]  # training overrides every trial gets before its sampled values
    base_cfg: DictConfig  # the training config composed from base_overrides
    user_overrides: list[str]  # as given on the command line (workers get them again)
    storage_url: str
    study_name: str
    metric: str
    direction: str
    n_trials: int
    workers: int
    timeout: float | None
    register_best: bool
    seed: int | None
    blas_threads: int | None = None  # a trial's BLAS threads (`sweep.blas_threads`); None: all


def override_key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def app_keys() -> set[str]:
    """Top-level keys the sweep app adds to the training config (never passed to trials)."""
    own = OmegaConf.load(config_file(f"{APP_CONFIG}.yaml"))
    return {str(k) for k in own if k != "defaults"} | {"sweep", "hydra"}


def training_overrides(overrides: Sequence[str]) -> list[str]:
    """The user's overrides that are about training, not about the sweep app or Hydra."""
    keys = app_keys()
    return [o for o in overrides if override_key(o).split(".")[0].split("/")[0] not in keys]


def compose_app(overrides: Sequence[str]) -> tuple[DictConfig, dict[str, str | None]]:
    """The sweep app config for ``overrides`` and its group choices (outside `@hydra.main`)."""
    try:
        cfg = compose(overrides, APP_CONFIG, return_hydra_config=True)
    except Exception as exc:  # hydra's composition errors: one line for the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot compose the sweep config: {first}") from None
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def _choice_overrides(choices: Mapping[str, str | None]) -> list[str]:
    out = []
    for group, choice in choices.items():
        if group.startswith(("hydra", "sweep")) or not choice:
            continue
        if config_file(group, f"{choice}.yaml") is not None:
            out.append(f"{group}={choice}")
    return out


def compose_training(overrides: Sequence[str], what: str) -> DictConfig:
    try:
        return compose(overrides)
    except ConfigError as exc:  # composition errors, already one line
        raise ConfigError(f"{what}: {exc}") from None
    except ViralabError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{what}: {first}") from None


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def _check_same_training_config(
    cfg: DictConfig, base_cfg: DictConfig, space_overrides: Sequence[str]
) -> None:
    """The app's training part must be what the trials get (bar `sweep.overrides`).

    A space file is `@package _global_`, so a training key written at its top level would
    change the sweep app's config but never reach a trial (trials compose the training config
    from overrides): refuse it, pointing to `sweep.overrides`.
    """
    own = app_keys()
    app = _flat({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items()
                 if k not in own})  # fmt: skip
    trial = _flat(OmegaConf.to_container(base_cfg, resolve=False))
    overridden = [override_key(str(o)) for o in space_overrides]
    for key in sorted(set(app) | set(trial)):
        if app.get(key) == trial.get(key):
            continue
        if any(key == o or key.startswith(f"{o}.") for o in overridden):
            continue  # sweep.overrides: meant for the trials only
        raise ConfigError(
            f"{key} is {app.get(key)!r} in the sweep config but {trial.get(key)!r} in the "
            "trials' training config: set training keys for trials in the space's "
            "sweep.overrides, not at the top of conf/sweep/<name>.yaml"
        )


def _study_name(sw: DictConfig, base_cfg: DictConfig) -> str:
    """`sweep.study_name`, its interpolations (`lstm-${target}`) read in the trials' config."""
    raw = OmegaConf.to_container(sw, resolve=False).get("study_name")
    if not raw:
        return ""
    node = base_cfg.copy()
    with open_dict(node):
        node["_study_name"] = raw
    return str(node["_study_name"])


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def plan_sweep(
    cfg: DictConfig, choices: Mapping[str, str | None], user_overrides: Sequence[str]
) -> SweepPlan:
    """Check the sweep and compose one trial with a sampled point; nothing runs yet.

    Raises:
        ConfigError: an invalid space, a key that matches no config entry, a swept key also
            fixed by an override, bad counts, sampler, pruner or storage.
    """
    sw = cfg.sweep
    name = str(choices.get("sweep") or "")
    space = parse_space(sw.params)
    metric = sw.metric
    if not metric or not isinstance(metric, str):
        raise ConfigError(f"sweep.metric must name a metric the trial runs return, got {metric!r}")
    direction = str(sw.direction)
    if direction not in DIRECTIONS:
        raise ConfigError(f"sweep.direction must be minimize or maximize, got {direction!r}")
    n_trials = _positive_int(cfg.n_trials if cfg.n_trials is not None else sw.n_trials, "n_trials")
    workers = _positive_int(cfg.workers, "workers")
    blas_threads = sw.get("blas_threads")
    if blas_threads is not None:
        blas_threads = _positive_int(blas_threads, "sweep.blas_threads")
    if cfg.get("n_jobs", 1) != 1:
        raise ConfigError(
            "n_jobs > 1 is not supported (MLflow's active run is per thread and Keras keeps one "
            "session per process): use workers=N for N parallel worker processes"
        )

    fixed = [*map(str, sw.overrides or []), *training_overrides(user_overrides)]
    fixed_keys = {override_key(o) for o in fixed}
    for p in space.params:
        for key in p.keys:
            if key in fixed_keys:
                raise ConfigError(
                    f"{key} is both swept (sweep.params.{p.name}) and fixed by an override; to "
                    f"fix it, drop the parameter too: '~sweep.params.{p.name}'"
                )
    base = [*_choice_overrides(choices), *fixed]
    model = choices.get("model")
    context = f" (model={model})" if model else ""
    base_cfg = compose_training(base, "cannot compose the trials' training config")
    _check_same_training_config(cfg, base_cfg, sw.overrides or [])
    check_keys(space, base_cfg, context)
    compose_training(
        [*base, *space.overrides(space.first_point()), "register=false"],
        f"the space does not compose with a sampled point{context}",
    )

    seed = cfg.get("seed")
    build_sampler(sw.sampler, space)  # fail here, not in trial 1
    build_pruner(sw.pruner)
    tracking_uri = configure_tracking(base_cfg)
    storage_url = resolve_storage(sw.storage, tracking_uri)
    study_name = _study_name(sw, base_cfg) or name
    timeout = sw.timeout
    return SweepPlan(
        cfg=cfg,
        name=name,
        space=space,
        base_overrides=base,
        base_cfg=base_cfg,
        user_overrides=list(user_overrides),
        storage_url=storage_url,
        study_name=study_name,
        metric=metric,
        direction=direction,
        n_trials=n_trials,
        workers=workers,
        timeout=float(timeout) if timeout else None,
        register_best=bool(cfg.get("register_best", False)),
        seed=int(seed) if seed is not None else None,
        blas_threads=blas_threads,
    )


def lean_overrides(plan: SweepPlan) -> list[str]:
    """`sweep.lean_overrides` the training config offers (skipped with register_best=true)."""
    if plan.register_best:
        return []
    out = []
    for o in plan.cfg.sweep.lean_overrides or []:
        key = override_key(str(o))
        if OmegaConf.select(plan.base_cfg, key, default=None) is not None:
            out.append(str(o))
        else:
            log.debug("lean override %s skipped: the training config has no %s", o, key)
    return out


class TrialComposer:
    """A trial's training config without a Hydra composition per trial.

    Why: composing the training config (defaults list, config files, overrides) cost more per
    trial than all the trial's MLflow calls. Hydra composes ``base`` once; a trial copies it and
    sets its sampled values and run name with OmegaConf — the same config `compose` gives for
    the same overrides (interpolations stay live, so `${...}` follows the new values;
    tests/sweeps/test_cost.py checks the two agree). A swept key that selects a config group
    (`model=...`) or is not a plain value of the base config falls back to a full composition.
    """

    def __init__(self, base: Sequence[str], swept_keys: Sequence[str]) -> None:
        self.base_overrides = list(base)
        self.cfg = compose_training(self.base_overrides, "cannot compose the trials' config")
        self.fast = all(
            not is_config_group(key.replace(".", "/"))
            and OmegaConf.select(self.cfg, key, default=_MISSING) is not _MISSING
            and not OmegaConf.is_config(OmegaConf.select(self.cfg, key))
            for key in [*swept_keys, "run_name"]
        )
        self.keys = [*swept_keys, "run_name"]
        # the safe form (resolved, redacted) of a trial's config is the base's with the trial's
        # values set, unless an interpolation of the base could read one of them
        mentioned = " ".join(_interpolations(OmegaConf.to_container(self.cfg, resolve=False)))
        self.safe_fast = self.fast and not any(
            part in mentioned for key in self.keys for part in key.split(".")
        )
        self._safe_base: dict[str, Any] | None = None

    def compose(self, values: Mapping[str, Any], overrides: Sequence[str], what: str) -> DictConfig:
        """``values`` (key -> value) set on a copy of the base; ``overrides``, the same as
        Hydra overrides, are composed instead when the fast path does not apply."""
        if not self.fast:
            return compose_training(overrides, what)
        cfg = copy.deepcopy(self.cfg)
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False)
        return cfg

    def safe_container(self, cfg: DictConfig) -> dict[str, Any] | None:
        """``cfg`` (composed by `compose`) as `to_safe_container` gives it, built from the
        base's safe form and the trial's values; None when that shortcut does not apply."""
        if not self.safe_fast:
            return None
        if self._safe_base is None:
            self._safe_base = to_safe_container(self.cfg)
        values: dict[str, Any] = {}
        for key in self.keys:
            value = OmegaConf.select(cfg, key)
            if OmegaConf.is_config(value) or (isinstance(value, str) and "${" in value):
                return None
            node = values
            *parents, last = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        safe = copy.deepcopy(self._safe_base)
        _set_nested(safe, redact(values))  # the values' own redaction, keyed by their path
        return safe


def _interpolations(container: Any) -> Iterator[str]:
    """Every string of an unresolved container that holds an interpolation (`${...}`)."""
    if isinstance(container, Mapping):
        for value in container.values():
            yield from _interpolations(value)
    elif isinstance(container, list):
        for value in container:
            yield from _interpolations(value)
    elif isinstance(container, str) and "${" in container:
        yield container


def _set_nested(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _set_nested(target[key], value)
        else:
            target[key] = value


_MISSING = object()
