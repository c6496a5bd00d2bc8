"""Where a sweep's Optuna study lives and how it proposes and prunes trials.

The study is kept in Optuna's RDB storage, so a sweep survives its process: run it again with
the same `sweep.study_name` and it resumes, numbering on; point several workers (processes or
machines) at one PostgreSQL storage and they share the study, each trial run by one of them.

Storage: `sweep.storage`, else `$VIRALAB_OPTUNA_STORAGE`, else `optuna.db` beside a SQLite
tracking store (by default `mlruns/optuna.db`), made absolute like the tracking URI.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from viralab.config import redact_text, redact_url
from viralab.data.database import normalize_url
from viralab.errors import ConfigError
from viralab.sweeps.space import SearchSpace
from viralab.tracking.tags import METRIC_ATTR, SWEEP

log = logging.getLogger(__name__)

STORAGE_ENV = "VIRALAB_OPTUNA_STORAGE"
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"
DIRECTIONS = ("minimize", "maximize")


def _absolute_sqlite(url: str) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path = (Path.cwd() / path).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}"
    elif url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def resolve_storage(configured: str | None, tracking_uri: str | None = None) -> str:
    """The storage URL a sweep uses (see the module docstring for the order).

    Plain `postgresql://` URLs get the installed psycopg2 driver (SQLAlchemy 2.1 would pick
    psycopg 3, which is not installed).
    """
    url = configured or os.environ.get(STORAGE_ENV)
    if not url:
        url = DEFAULT_STORAGE
        if tracking_uri and tracking_uri.startswith("sqlite:///"):
            beside = Path(tracking_uri.removeprefix("sqlite:///")).parent / "optuna.db"
            url = f"sqlite:///{beside}"
    return _absolute_sqlite(normalize_url(str(url)))


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
) -> optuna.storages.RDBStorage:
    """Connect to (and if new, initialise) the storage.

    With ``heartbeat_interval`` (seconds; the sweep config's default is on), each running
    trial's process writes a heartbeat; a trial whose heartbeat is older than ``grace_period``
    (default twice the interval) is failed by the next process that starts a trial or opens the
    study (`optuna.storages.fail_stale_trials`), and run again once (``max_retry``) as a new
    trial with the same parameters (`RetryFailedTrialCallback`). Why: a killed worker
    otherwise leaves its trial RUNNING for ever and the study one trial short.

    Raises:
        ConfigError: the URL cannot be parsed, its driver is missing or the database cannot be
            reached — one line, password masked.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # workers wait for the write lock
    elif url.startswith("postgresql"):
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    kwargs: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat_interval:
                kwargs["heartbeat_interval"] = int(heartbeat_interval)
                kwargs["grace_period"] = int(grace_period or 2 * int(heartbeat_interval))
                kwargs.update(_retry_callback(None if max_retry is None else int(max_retry)))
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except Exception as exc:  # sqlalchemy, driver and URL errors all mean the same to a user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"cannot open the Optuna storage {redact_url(url)}: {redact_text(first)}"
        ) from None


def _retry_callback(max_retry: int | None) -> dict[str, Any]:
    """Optuna >= 4.9 renamed `RetryFailedTrialCallback` / `failed_trial_callback` to
    `RetryHeartbeatStaleTrialCallback` / `heartbeat_stale_trial_callback` (same behaviour)."""
    storages = optuna.storages
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        retry = storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        return {"heartbeat_stale_trial_callback": retry}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=max_retry)}


def storage_from_config(url: str, sweep: DictConfig) -> optuna.storages.RDBStorage:
    """`open_storage` with the heartbeat settings of the `sweep` config node."""
    return open_storage(
        url,
        sweep.get("heartbeat_interval"),
        sweep.get("grace_period"),
        sweep.get("max_retry", 1),
    )


def grace_seconds(storage: optuna.storages.BaseStorage) -> float | None:
    """The storage's heartbeat grace period in seconds, or None when heartbeats are off."""
    storage = getattr(storage, "_backend", storage)  # a study wraps it in a _CachedStorage
    if not isinstance(storage, optuna.storages.RDBStorage) or not storage.heartbeat_interval:
        return None
    return float(storage.grace_period or 2 * storage.heartbeat_interval)


def fail_stale_trials(study: optuna.Study) -> None:
    """`optuna.storages.fail_stale_trials` without its "experimental" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _instantiate(node: DictConfig, what: str, **kwargs: Any) -> Any:
    from hydra.utils import instantiate

    target = node.get("_target_")
    if not target:
        raise ConfigError(f"sweep.{what} needs a _target_ (an Optuna {what} class)")
    try:
        return instantiate(node, **kwargs)
    except Exception as exc:  # hydra wraps import and constructor errors alike
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot build sweep.{what} {target}: {first}") from None


def build_sampler(node: DictConfig, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The configured sampler; `search_space: null` (grid sampler) is filled from the space."""
    target = str(node.get("_target_", ""))
    if target.endswith("CmaEsSampler") and importlib.util.find_spec("cmaes") is None:
        raise ConfigError("sweep/sampler=cmaes needs the `cmaes` package: pip install cmaes")
    kwargs: dict[str, Any] = {}
    if "search_space" in node and node.search_space is None:
        kwargs["search_space"] = space.grid()
    sampler = _instantiate(node, "sampler", **kwargs)
    if not isinstance(sampler, optuna.samplers.BaseSampler):
        raise ConfigError(f"sweep.sampler {target} is not an Optuna sampler")
    return sampler


def build_pruner(node: DictConfig) -> optuna.pruners.BasePruner:
    pruner = _instantiate(node, "pruner")
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise ConfigError(f"sweep.pruner {node.get('_target_')} is not an Optuna pruner")
    return pruner


def describe(node: DictConfig) -> str:
    """`TPESampler(seed=42, n_startup_trials=10)`-style label of a sampler or pruner config."""
    name = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
    args = ", ".join(
        f"{k}={v}"
        for k, v in OmegaConf.to_container(node, resolve=True).items()
        if k not in ("_target_", "search_space")
    )
    return f"{name}({args})"


@dataclass
class OpenedStudy:
    study: optuna.Study
    resumed: bool
    trials_before: int


def open_study(
    storage: optuna.storages.BaseStorage,
    *,
    name: str,
    direction: str,
    metric: str,
    sweep: str,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> OpenedStudy:
    """Create the study, or resume the one with this name (trial numbers continue).

    Raises:
        ConfigError: a bad direction, or an existing study that optimises another metric or in
            the other direction (its values would not be comparable).
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"sweep.direction must be minimize or maximize, got {direction!r}")
    existing = {s.study_name: s for s in storage.get_all_studies()}
    if name in existing:
        old = existing[name]
        old_direction = old.direction.name.lower()
        old_metric = old.user_attrs.get(METRIC_ATTR)
        if old_direction != direction or (old_metric and old_metric != metric):
            raise ConfigError(
                f"study {name!r} already exists and {old_direction}s {old_metric or '?'}; this "
                f"sweep {direction}s {metric}: choose another sweep.study_name"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if name not in existing:
        study.set_user_attr(METRIC_ATTR, metric)
        study.set_user_attr(SWEEP, sweep)
    return OpenedStudy(study, name in existing, len(study.get_trials(deepcopy=False)))
