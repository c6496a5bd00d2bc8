"""Hyperparameter sweeps: Optuna over the search spaces in `conf/sweep/`; each trial is one
`viralab.train.train(cfg)` run, the same path as `mlflow run . -P model=...`.

    python -m viralab.sweep sweep=ridge n_trials=50 data.n_videos=300
    python -m viralab.sweep sweep=lstm n_trials=20 target=likes sweep/pruner=hyperband
    python -m viralab.sweep sweep=ridge workers=4 sweep.storage=postgresql://u:p@db/optuna
    mlflow run . -e sweep -P sweep=lstm -P n_trials=20

Everything is checked before trial 1 (`sweeps.plan`: space, keys, a test composition with a
sampled point, sampler, pruner; then the storage). Then one parent MLflow run, one nested child
run per trial (`sweeps.runs`; its `viralab.sweep.command` tag repeats the trial with
`python -m viralab.train`), and the best trial and the plots on the parent.

`workers=N` starts N processes of this same command against the same storage
(`sweeps.workers`); separate machines do the same by hand (README). This module opens the
study and the parent run and ties the pieces together; `viralab.sweep` forwards to it.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import hydra
import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from viralab.config import (
    check_group_choices,
    expand_override_args,
    redact_text,
    redact_url,
    to_safe_container,
)
from viralab.config_search import PACKAGED_CONFIG, use_project_layers
from viralab.entrypoint import (
    hydra_errors_as_config_errors,
    refuse_secret_overrides,
    user_errors_exit,
)
from viralab.errors import ConfigError
from viralab.settings import apply_schemas
from viralab.sweeps import runs
from viralab.sweeps.objective import Objective, TrialFn
from viralab.sweeps.plan import APP_CONFIG, SweepPlan, compose_app, plan_sweep
from viralab.sweeps.progress import optimize
from viralab.sweeps.result import SweepResult, print_summary, register_best, sweep_result
from viralab.sweeps.study import (
    build_pruner,
    build_sampler,
    describe,
    fail_stale_trials,
    grace_seconds,
    open_study,
    storage_from_config,
)
from viralab.sweeps.workers import (
    INVOCATION_ENV,
    PARENT_ENV,
    SHARES_ENV,
    WORKER_ENV,
    optimize_worker,
    run_workers,
)
from viralab.tracking import configure_tracking, start_writer
from viralab.tracking.tags import (
    SWEEP,
    SWEEP_DIRECTION,
    SWEEP_FAMILY,
    SWEEP_INVOCATION,
    SWEEP_METRIC,
    SWEEP_MODEL,
    SWEEP_PRUNER,
    SWEEP_RESUMED,
    SWEEP_SAMPLER,
    SWEEP_STORAGE,
    SWEEP_STUDY,
)
from viralab.training import train_family as train


def _start_params(plan: SweepPlan) -> dict[str, Any]:
    return {
        "sweep.name": plan.name,
        "sweep.study_name": plan.study_name,
        "sweep.metric": plan.metric,
        "sweep.direction": plan.direction,
        "sweep.n_trials": plan.n_trials,
        "sweep.workers": plan.workers,
        "sweep.sampler": describe(plan.cfg.sweep.sampler),
        "sweep.pruner": describe(plan.cfg.sweep.pruner),
        "sweep.base_overrides": redact_text(shlex.join(plan.base_overrides)),
        **{f"sweep.space.{p.name}": p.describe() for p in plan.space.params},
    }


def run_plan(
    plan: SweepPlan, *, trial_fn: TrialFn | None = None, track_trials: bool = True
) -> SweepResult:
    """Run a checked sweep: open the study, the parent run, the trials; log the summary.

    ``trial_fn`` defaults to `viralab.training.train_family` (what `viralab.train`
    runs); ``track_trials=False`` runs without any MLflow run (the benchmark's baseline for
    the cost of tracking).
    """
    if trial_fn is None:
        trial_fn = train
    if runs.has_active_run():
        raise ConfigError(
            "an MLflow run is active in this thread: end it first (a sweep opens its own parent "
            "run, and each trial's train() must start with no active run)"
        )
    worker = os.environ.get(WORKER_ENV)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress lines say it all
    space = plan.space
    sampler = build_sampler(plan.cfg.sweep.sampler, space)
    pruner = build_pruner(plan.cfg.sweep.pruner)
    storage = storage_from_config(plan.storage_url, plan.cfg.sweep)
    opened = open_study(
        storage,
        name=plan.study_name,
        direction=plan.direction,
        metric=plan.metric,
        sweep=plan.name,
        sampler=sampler,
        pruner=pruner,
    )
    study = opened.study
    tracking_uri = configure_tracking(plan.base_cfg)
    safe_storage = redact_url(plan.storage_url) or ""

    if worker:  # a process started by a coordinator: trials only, under its parent run
        parent = os.environ.get(PARENT_ENV) or None
        invocation = os.environ.get(INVOCATION_ENV) or uuid.uuid4().hex[:12]
        objective = Objective(plan, trial_fn, parent, invocation, worker)
        raw = os.environ.get(SHARES_ENV, "")
        shares = [int(x) for x in raw.split(",")] if raw else None
        optimize_worker(plan, study, objective, shares, prefix=f"[w{worker}] ")
        return sweep_result(plan, study, parent, invocation, 0.0, {})

    invocation = uuid.uuid4().hex[:12]
    if opened.resumed:
        print(
            f"resuming study {plan.study_name!r} ({opened.trials_before} trials so far) in "
            f"{safe_storage}",
            flush=True,
        )
    else:
        print(f"new study {plan.study_name!r} in {safe_storage}", flush=True)
    print(
        f"sweep {plan.name}: {plan.n_trials} trials of {plan.metric} ({plan.direction}), "
        f"{describe(plan.cfg.sweep.sampler)}, {describe(plan.cfg.sweep.pruner)}, "
        f"{plan.workers} worker(s)",
        flush=True,
    )
    started = time.perf_counter()
    if not track_trials:
        objective = Objective(plan, trial_fn, None, invocation, None)
        optimize(plan, study, objective, plan.n_trials)
        return sweep_result(plan, study, None, invocation, time.perf_counter() - started, {})

    tags = {
        SWEEP: plan.name,
        SWEEP_STUDY: plan.study_name,
        SWEEP_SAMPLER: describe(plan.cfg.sweep.sampler),
        SWEEP_PRUNER: describe(plan.cfg.sweep.pruner),
        SWEEP_STORAGE: safe_storage,
        SWEEP_METRIC: plan.metric,
        SWEEP_DIRECTION: plan.direction,
        SWEEP_RESUMED: str(opened.resumed).lower(),
        SWEEP_INVOCATION: invocation,
        # not viralab.family / viralab.model: queries for a family's trained runs must not
        # find the parent, which holds no model
        SWEEP_FAMILY: plan.base_cfg.task.family,
        SWEEP_MODEL: plan.base_cfg.model.name,
    }
    run_name = f"sweep-{plan.study_name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with runs.parent_run(
        experiment=plan.base_cfg.task.experiment, run_name=run_name, tags=tags
    ) as parent_id:
        experiment_id = _close_orphans(study, parent_id)
        runs.log_sweep_start(
            parent_id,
            _start_params(plan),
            OmegaConf.to_yaml(OmegaConf.create(to_safe_container(plan.cfg))),
            OmegaConf.to_yaml(plan.cfg.sweep.params),
        )
        notes: dict[str, str] = {}
        if plan.workers > 1:
            notes = run_workers(plan, study, parent_id, invocation, tracking_uri)
            _close_orphans(study, parent_id, experiment_id)  # a killed worker's trial run
        else:
            objective = Objective(plan, trial_fn, parent_id, invocation, None)
            optimize(plan, study, objective, plan.n_trials)
        seconds = time.perf_counter() - started
        result = sweep_result(plan, study, parent_id, invocation, seconds, {})
        result.notes = runs.log_sweep_summary(
            parent_id,
            study,
            metric=plan.metric,
            key_values=space.key_values(result.best_params),
            counts=result.counts,
            seconds=seconds,
            seed=plan.seed,
        )
        result.notes.update(notes)
        if plan.register_best:
            result.registered_version = register_best(plan, result, parent_id)
    print_summary(plan, result)
    return result


def _close_orphans(study: optuna.Study, parent_id: str, experiment_id: str | None = None) -> str:
    """Fail stale trials (dead workers) and end the runs killed sweeps left RUNNING."""
    if experiment_id is None:
        experiment_id = runs.run_experiment_id(parent_id)
    grace = grace_seconds(study._storage)
    if grace is not None:
        fail_stale_trials(study)
        closed = runs.close_orphans(study, experiment_id, grace_s=grace, current_parent=parent_id)
        if closed:
            print(f"closed {len(closed)} run(s) left RUNNING by killed sweep processes: "
                  + ", ".join(closed), flush=True)  # fmt: skip
    return experiment_id


def run_sweep(
    overrides: Sequence[str] = (),
    *,
    trial_fn: TrialFn | None = None,
    track_trials: bool = True,
) -> SweepResult:
    """`python -m viralab.sweep <overrides>` as a function (tests, the CLI, benchmarks)."""
    overrides = expand_override_args(list(overrides))
    check_group_choices(overrides)
    cfg, choices = compose_app(overrides)
    plan = plan_sweep(cfg, choices, overrides)
    return run_plan(plan, trial_fn=trial_fn, track_trials=track_trials)


@hydra.main(config_path=PACKAGED_CONFIG, config_name=APP_CONFIG, version_base="1.3")
@user_errors_exit
def _hydra_main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    choices = dict(hc.runtime.choices)
    overrides = list(hc.overrides.task)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    apply_schemas(cfg)  # as `viralab.config.compose` does
    result = run_plan(plan_sweep(cfg, choices, overrides))
    return result.best_value


def _interrupt_on_sigterm(signum: int, frame: Any) -> None:
    # Unwind as Ctrl-C does: the running trial is marked FAIL in the study (Optuna handles
    # KeyboardInterrupt, not SystemExit) and the MLflow runs end KILLED.
    raise KeyboardInterrupt(f"signal {signum}")


@user_errors_exit
def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)  # `timeout`, a stopped worker, ...
    overrides = expand_override_args(sys.argv[1:])
    refuse_secret_overrides(overrides)  # before Hydra writes or MLflow logs anything
    check_group_choices(overrides)
    # against a server: the tracking writer's imports overlap the config and data loading
    start_writer(os.environ.get("MLFLOW_TRACKING_URI", ""))
    sys.argv = [sys.argv[0], *overrides]
    use_project_layers()  # the project's conf/ before the packaged tree
    try:
        hydra_errors_as_config_errors(_hydra_main)
    except KeyboardInterrupt:
        print("error: interrupted; the study keeps every finished trial", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
