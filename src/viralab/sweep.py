"""Hyperparameter sweeps: Optuna over the search spaces in `conf/sweep/`; each trial is one
`viralab.train.train(cfg)` run, the same path as `mlflow run . -P model=...`.

    python -m viralab.sweep sweep=ridge n_trials=50 data.n_videos=300
    python -m viralab.sweep sweep=lstm n_trials=20 target=likes sweep/pruner=hyperband
    python -m viralab.sweep sweep=ridge workers=4 sweep.storage=postgresql://u:p@db/optuna
    mlflow run . -e sweep -P sweep=lstm -P n_trials=20

Everything is checked before trial 1 (`sweeps.plan`: space, keys, a test composition with a
sampled point, sampler, pruner; then the storage). Then one parent MLflow run, one nested child
run per trial (`sweeps.tracking`; its `viralab.sweep.command` tag repeats the trial with
`python -m viralab.train`), and the best trial and the plots on the parent.

`workers=N` starts N processes of this same command against the same storage; separate
machines do the same by hand (README). Optuna's `n_jobs` threads are not offered: MLflow's
active run stack is per thread and Keras keeps one global session per process.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
import optuna
from omegaconf import DictConfig, OmegaConf, open_dict

from viralab.config import (
    check_group_choices,
    expand_override_args,
    known_safe_container,
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
from viralab.errors import ConfigError, ViralabError
from viralab.sweeps import tracking as runs
from viralab.sweeps.hooks import active_trial, sweep_parent
from viralab.sweeps.plan import (
    APP_CONFIG,
    SweepPlan,
    TrialComposer,
    compose_app,
    lean_overrides,
    override_key,
    plan_sweep,
)
from viralab.sweeps.space import hydra_value
from viralab.sweeps.study import (
    build_pruner,
    build_sampler,
    describe,
    fail_stale_trials,
    grace_seconds,
    open_study,
    storage_from_config,
)
from viralab.tracking import configure_tracking, early_writes, no_run_links

log = logging.getLogger(__name__)

#: Set by a coordinator (`workers=N`) for the processes it starts.
PARENT_ENV = "VIRALAB_SWEEP_PARENT_RUN_ID"
WORKER_ENV = "VIRALAB_SWEEP_WORKER"
INVOCATION_ENV = "VIRALAB_SWEEP_INVOCATION"
SHARES_ENV = "VIRALAB_SWEEP_SHARES"  # every worker's n_trials, for taking over a dead one's
INVOCATION_ATTR = runs.INVOCATION_ATTR
FAILED_ATTR = runs.FAILED_ATTR  # failed in its own process (not a dead worker's trial)

TrialFn = Callable[[DictConfig], Mapping[str, float]]


class SweepError(ViralabError):
    """A sweep that cannot go on (every trial failing, a worker process failing)."""


class TrialFailed(Exception):
    """A trial's training raised: recorded as FAIL, the sweep goes on."""


@dataclass
class SweepResult:
    """What one sweep invocation did (its own trials) and where the study now stands."""

    study_name: str
    storage: str  # password masked
    parent_run_id: str | None
    trial_numbers: list[int]
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_run_id: str | None
    seconds: float
    notes: dict[str, str] = field(default_factory=dict)
    registered_version: str | None = None


# ------------------------------------------------------------------------------------------
# Trials
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide a trial's own console output (its run holds everything); errors still show."""
    levels = {name: logging.getLogger(name).level for name in ("viralab", "mlflow")}
    logging.getLogger("viralab").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class _Objective:
    """Compose the trial's training config, run `train` in its own child run, return the metric."""

    def __init__(
        self,
        plan: SweepPlan,
        trial_fn: TrialFn,
        parent_run_id: str | None,
        invocation: str,
        worker: str | None,
    ) -> None:
        self.plan = plan
        self.trial_fn = trial_fn
        self.parent_run_id = parent_run_id
        self.invocation = invocation
        self.worker = worker
        self.lean = lean_overrides(plan)
        self.quiet = not bool(plan.cfg.sweep.get("show_trial_output", False))
        self.last_error = ""
        self.experiment_id = None
        if parent_run_id:
            import mlflow

            self.experiment_id = mlflow.MlflowClient().get_run(parent_run_id).info.experiment_id
        # against a tracking server, a trial's run is created while its config is composed
        self.overlap = parent_run_id is not None and early_writes()
        self._compose_pool: ThreadPoolExecutor | None = None
        # Hydra composes the trials' config once; each trial only sets its own values on a copy
        self.trial_base = TrialComposer(
            [*plan.base_overrides, *self.lean, "register=false"],
            [k for p in plan.space.params for k in p.keys],
        )

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except BaseException:  # failed here, in its own process (not a dead worker's trial)
            with contextlib.suppress(Exception):
                trial.set_user_attr(FAILED_ATTR, True)
            raise

    def _sample(self, trial: optuna.Trial, run_name: str) -> tuple[dict[str, Any], list[str]]:
        """The trial's point and its marks in the study: (values, overrides).

        On the sweep's own thread: Optuna caches the study's trials per thread and renews the
        cache only on the thread that asks for the next trial, so a sampler run on another
        thread would propose from a stale history.
        """
        plan = self.plan
        values = plan.space.suggest(trial)
        overrides = [
            *plan.base_overrides,
            *plan.space.overrides(values),
            *self.lean,
            "register=false",
            f"run_name={hydra_value(run_name)}",
        ]
        trial.set_user_attr(INVOCATION_ATTR, self.invocation)
        trial.set_user_attr("viralab.pid", os.getpid())
        if self.worker:
            trial.set_user_attr("viralab.worker", self.worker)
        return values, overrides

    def _compose(
        self, trial: optuna.Trial, run_name: str, values: dict[str, Any], overrides: list[str]
    ) -> DictConfig:
        return self.trial_base.compose(
            {**self.plan.space.key_values(values), "run_name": run_name},
            overrides,
            f"trial {trial.number} does not compose",
        )

    def _run(self, trial: optuna.Trial) -> float:
        run_name = f"{self.plan.study_name}-trial-{trial.number}"
        values, overrides = self._sample(trial, run_name)
        # A tracked trial's writes are held from its run's start and written when it ends
        # (`start_trial_run` / `finish_trial_run`); a hidden trial's run link is not even
        # fetched (a request).
        with no_run_links() if self.quiet else contextlib.nullcontext():
            if self.parent_run_id is None:
                cfg = self._compose(trial, run_name, values, overrides)
                return self._tracked(trial, cfg, None)
            if not self.overlap:
                cfg = self._compose(trial, run_name, values, overrides)
                run_id = self._start_run(trial, run_name, overrides)
            else:
                run_id, cfg = self._start_run_while_composing(trial, run_name, values, overrides)
            trial.set_user_attr(runs.RUN_ID_ATTR, run_id)
            return self._tracked(trial, cfg, run_id)

    def _start_run(self, trial: optuna.Trial, run_name: str, overrides: list[str]) -> str:
        tags = {
            runs.TRIAL_TAG: trial.number,
            "optuna.study_name": self.plan.study_name,
            "viralab.sweep": self.plan.name,
            "viralab.sweep.command": redact_text(
                "python -m viralab.train " + shlex.join(overrides)
            ),
        }
        return runs.start_trial_run(self.parent_run_id, self.experiment_id, run_name, tags)

    def _start_run_while_composing(
        self, trial: optuna.Trial, run_name: str, values: dict[str, Any], overrides: list[str]
    ) -> tuple[str, DictConfig]:
        """The trial's run created while another thread composes its config: the config does
        not need the run. Why: against a tracking server the creation is a request (~11 ms)
        the trial only waited for; the config (a copy of the base with the trial's values,
        ~5 ms) is built meanwhile. A trial whose config fails ends its run FAILED (the config
        was checked before trial 1)."""
        if self._compose_pool is None:
            self._compose_pool = ThreadPoolExecutor(1, thread_name_prefix="viralab-trial-config")
        composed = self._compose_pool.submit(
            contextvars.copy_context().run, self._compose, trial, run_name, values, overrides
        )
        try:
            run_id = self._start_run(trial, run_name, overrides)
        except BaseException:
            futures_wait([composed])
            raise
        try:
            cfg = composed.result()
        except BaseException as exc:
            futures_wait([composed])
            runs.finish_trial_run(run_id, "FAIL", error=exc)
            raise
        return run_id, cfg

    def _tracked(self, trial: optuna.Trial, cfg: DictConfig, run_id: str | None) -> float:
        plan = self.plan
        try:
            with (
                active_trial(trial),
                sweep_parent(self.parent_run_id),
                runs.adopt_run(run_id),
                _quiet() if self.quiet else contextlib.nullcontext(),
                # the config's logged form from the base's: not resolved and redacted again
                known_safe_container(cfg, self.trial_base.safe_container(cfg)),
            ):
                metrics = self.trial_fn(cfg)
        except optuna.TrialPruned as exc:
            runs.finish_trial_run(run_id, "PRUNED", step=getattr(exc, "step", None))
            raise
        except ViralabError as exc:  # the user's config or data: every trial would fail
            self.last_error = f"{type(exc).__name__}: {exc}"
            runs.finish_trial_run(run_id, "FAIL", error=exc)
            raise
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            runs.finish_trial_run(run_id, "FAIL", error=exc)
            raise TrialFailed(self.last_error) from exc
        except BaseException as exc:  # Ctrl-C: the run ends KILLED, the sweep stops
            runs.finish_trial_run(run_id, "FAIL", error=exc)
            raise
        if plan.metric not in metrics:
            error = ConfigError(
                f"sweep.metric {plan.metric!r} is not among the trial's metrics "
                f"({', '.join(sorted(metrics)) or 'none'}): pick one of them"
            )
            runs.finish_trial_run(run_id, "FAIL", error=error)
            raise error
        value = float(metrics[plan.metric])
        if not math.isfinite(value):
            self.last_error = f"{plan.metric} is {value}"
            runs.finish_trial_run(run_id, "FAIL", error=ValueError(self.last_error))
            raise TrialFailed(self.last_error)
        runs.finish_trial_run(run_id, "COMPLETE")
        return value


class _Progress:
    """One line per finished trial; stops the study after too many failures in a row."""

    def __init__(self, plan: SweepPlan, objective: _Objective, prefix: str = "") -> None:
        self.plan = plan
        self.objective = objective
        self.prefix = prefix
        self.done = 0
        self.failed_in_a_row = 0
        self.max_failures = int(plan.cfg.sweep.get("max_consecutive_failures") or 0)
        self.stopped_for_failures = False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        state = trial.state.name
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        if state == "COMPLETE":
            what = f"{self.plan.metric}={trial.value:.6g}"
        elif state == "PRUNED":
            steps = trial.intermediate_values
            last = max(steps) if steps else None
            what = f"at epoch {last + 1} ({steps[last]:.6g})" if last is not None else "pruned"
        else:
            what = f"failed: {self.objective.last_error}"[:60]
        try:
            best = study.best_trial
            best_text = f"best={best.value:.6g} (#{best.number})"
        except ValueError:
            best_text = "best=-"
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in trial.params.items())  # fmt: skip
        print(
            f"{self.prefix}trial {trial.number:>4} {state:<8} {what:<24} {best_text:<24} "
            f"{seconds:6.1f}s  {params}",
            flush=True,
        )
        if state == "FAIL":
            self.failed_in_a_row += 1
            if self.max_failures and self.failed_in_a_row >= self.max_failures:
                self.stopped_for_failures = True
                study.stop()
        else:
            self.failed_in_a_row = 0


def _optimize(
    plan: SweepPlan,
    study: optuna.Study,
    objective: _Objective,
    n_trials: int,
    prefix: str = "",
    progress: _Progress | None = None,
) -> _Progress:
    progress = progress or _Progress(plan, objective, prefix)
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=plan.timeout,
        catch=(TrialFailed,),
        callbacks=[progress],
        gc_after_trial=plan.base_cfg.task.get("family") == "forecast",
    )
    if progress.stopped_for_failures:
        raise SweepError(
            f"stopped after {progress.failed_in_a_row} failed trials in a row "
            f"(sweep.max_consecutive_failures); last: {objective.last_error[:300] or 'see the log'}"
        )
    return progress


def _taken(study: optuna.Study, invocation: str) -> tuple[int, int]:
    """(trials of this invocation done, running or queued; of those, running in a process).

    A trial failed as stale (its worker died; no `viralab.failed` mark) is not counted: its
    retry, queued as WAITING with the same parameters, or a new trial takes its place.
    """
    taken = running = 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(INVOCATION_ATTR) != invocation:
            continue
        if t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get(FAILED_ATTR):
            continue
        taken += 1
        running += t.state == optuna.trial.TrialState.RUNNING
    return taken, running


def _owed(study: optuna.Study, invocation: str, shares: Sequence[int]) -> tuple[int, int]:
    """(trials dead workers still owe, trials running in other processes).

    A worker is dead once one of its trials was failed as stale (no `viralab.failed` mark).
    It owes its share less the trials it did; trials other workers ran beyond their own shares
    (taking over) are paid off. A retry queued for its dead trial (WAITING) is still owed.
    """
    done: dict[str, int] = {}
    dead: set[str] = set()
    running = 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(INVOCATION_ATTR) != invocation:
            continue
        worker = str(t.user_attrs.get("viralab.worker", ""))
        if t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get(FAILED_ATTR):
            dead.add(worker)
        elif t.state != optuna.trial.TrialState.WAITING:
            done[worker] = done.get(worker, 0) + 1
            running += t.state == optuna.trial.TrialState.RUNNING
    quota = {str(i): share for i, share in enumerate(shares, start=1)}
    owed = sum(max(0, quota.get(w, 0) - done.get(w, 0)) for w in dead)
    extra = sum(max(0, done.get(w, 0) - quota.get(w, 0)) for w in quota if w not in dead)
    return max(0, owed - extra), running


def _optimize_worker(
    plan: SweepPlan,
    study: optuna.Study,
    objective: _Objective,
    shares: Sequence[int] | None,
    prefix: str,
) -> None:
    """This worker's share of trials, then the trials of workers that died.

    After its share, a worker waits while another worker's trial runs (polling at a quarter of
    the grace period). A worker killed mid-trial leaves it RUNNING; once its heartbeat is
    stale, Optuna fails it and queues a retry with the same parameters, and the waiting worker
    runs that and the rest of the dead worker's share. Without heartbeats, a timeout or the
    shares (a worker started by hand), only its own share.
    """
    own = shares[int(objective.worker) - 1] if shares and objective.worker else plan.n_trials
    progress = _optimize(plan, study, objective, own, prefix)
    grace = grace_seconds(study._storage)
    if not shares or grace is None or plan.timeout:
        return
    poll = max(0.5, grace / 4)
    while True:
        fail_stale_trials(study)
        owed, running = _owed(study, objective.invocation, shares)
        if owed:
            _optimize(plan, study, objective, 1, prefix, progress)
        elif running:
            time.sleep(poll)
        else:
            return


# ------------------------------------------------------------------------------------------
# Workers
# ------------------------------------------------------------------------------------------


def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def _worker_log_dir(invocation: str) -> Path:
    """Beside the coordinator's own Hydra output folder, else in the temp folder."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir) / "workers"
    return Path(tempfile.gettempdir()) / f"viralab-sweep-{invocation}"


def _run_workers(
    plan: SweepPlan, study: optuna.Study, parent_run_id: str, invocation: str, tracking_uri: str
) -> dict[str, str]:
    """Start `workers` processes of this command on the same study; wait for all of them.

    A worker killed by a signal is survivable: the others finish its trials (heartbeats);
    returns a note for each such worker. Any other failure, or a study left short, raises.
    """
    own = {"workers", "n_trials", "sweep.storage", "sweep.study_name", "sweep.sampler.seed"}
    passthrough = [
        o
        for o in plan.user_overrides
        if override_key(o) not in own and not override_key(o).startswith("hydra")
    ]
    sampler_seed = plan.cfg.sweep.sampler.get("seed")
    logs = _worker_log_dir(invocation)
    procs: list[tuple[int, subprocess.Popen]] = []
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    env.update(
        {
            "VIRALAB_OPTUNA_STORAGE": plan.storage_url,  # env, not argv: keeps passwords off ps
            PARENT_ENV: parent_run_id,
            INVOCATION_ENV: invocation,
            SHARES_ENV: ",".join(map(str, _shares(plan.n_trials, plan.workers))),
            "MLFLOW_TRACKING_URI": tracking_uri,
        }
    )
    try:
        for i, share in enumerate(_shares(plan.n_trials, plan.workers), start=1):
            if not share:
                continue
            args = [
                sys.executable, "-m", "viralab.sweep", *passthrough,
                f"n_trials={share}", "workers=1",
                f"sweep.study_name={hydra_value(plan.study_name)}",
                f"hydra.run.dir={hydra_value(str(logs / f'worker-{i}'))}",
            ]  # fmt: skip
            if sampler_seed is not None:  # same seed in every worker = the same first points
                args.append(f"sweep.sampler.seed={int(sampler_seed) + i - 1}")
            procs.append((i, subprocess.Popen(args, env={**env, WORKER_ENV: str(i)})))
        print(f"started {len(procs)} workers (logs: {logs})", flush=True)
        failed = [(i, p.wait()) for i, p in procs]
    except BaseException:
        for _, p in procs:
            if p.poll() is None:
                p.terminate()
        for _, p in procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=30)
        raise
    bad = [(i, rc) for i, rc in failed if rc != 0]
    killed = [(i, rc) for i, rc in bad if rc < 0]
    taken, _ = _taken(study, invocation)
    if bad and (len(killed) < len(bad) or len(bad) == len(failed) or taken < plan.n_trials):
        short = f"; {plan.n_trials - taken} trial(s) not run" if taken < plan.n_trials else ""
        raise SweepError(
            "worker(s) failed: "
            + ", ".join(f"worker {i} exited with {rc}" for i, rc in bad)
            + f"{short}: run the sweep again with sweep.study_name={plan.study_name} to resume"
        )
    return {
        f"worker_{i}": f"killed by signal {-rc}; the other workers finished its trials"
        for i, rc in killed
    }


# ------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------


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

    ``trial_fn`` defaults to `viralab.train.train`; ``track_trials=False`` runs without any
    MLflow run (the benchmark's baseline for the cost of tracking).
    """
    if trial_fn is None:
        from viralab.train import train as trial_fn

    import mlflow

    if mlflow.active_run() is not None:
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
        objective = _Objective(plan, trial_fn, parent, invocation, worker)
        raw = os.environ.get(SHARES_ENV, "")
        shares = [int(x) for x in raw.split(",")] if raw else None
        _optimize_worker(plan, study, objective, shares, prefix=f"[w{worker}] ")
        return _result(plan, study, parent, invocation, 0.0, {})

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
        objective = _Objective(plan, trial_fn, None, invocation, None)
        _optimize(plan, study, objective, plan.n_trials)
        return _result(plan, study, None, invocation, time.perf_counter() - started, {})

    tags = {
        "viralab.sweep": plan.name,
        "viralab.sweep.study": plan.study_name,
        "viralab.sweep.sampler": describe(plan.cfg.sweep.sampler),
        "viralab.sweep.pruner": describe(plan.cfg.sweep.pruner),
        "viralab.sweep.storage": safe_storage,
        "viralab.sweep.metric": plan.metric,
        "viralab.sweep.direction": plan.direction,
        "viralab.sweep.resumed": str(opened.resumed).lower(),
        runs.INVOCATION_TAG: invocation,
        # not viralab.family / viralab.model: queries for a family's trained runs must not
        # find the parent, which holds no model
        "viralab.sweep.family": plan.base_cfg.task.get("family", ""),
        "viralab.sweep.model": plan.base_cfg.model.get("name", ""),
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
            notes = _run_workers(plan, study, parent_id, invocation, tracking_uri)
            _close_orphans(study, parent_id, experiment_id)  # a killed worker's trial run
        else:
            objective = _Objective(plan, trial_fn, parent_id, invocation, None)
            _optimize(plan, study, objective, plan.n_trials)
        seconds = time.perf_counter() - started
        result = _result(plan, study, parent_id, invocation, seconds, {})
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
            result.registered_version = _register_best(plan, result, parent_id)
    _print_summary(plan, result)
    return result


def _close_orphans(study: optuna.Study, parent_id: str, experiment_id: str | None = None) -> str:
    """Fail stale trials (dead workers) and end the runs killed sweeps left RUNNING."""
    import mlflow

    if experiment_id is None:
        experiment_id = mlflow.MlflowClient().get_run(parent_id).info.experiment_id
    grace = grace_seconds(study._storage)
    if grace is not None:
        fail_stale_trials(study)
        closed = runs.close_orphans(study, experiment_id, grace_s=grace, current_parent=parent_id)
        if closed:
            print(f"closed {len(closed)} run(s) left RUNNING by killed sweep processes: "
                  + ", ".join(closed), flush=True)  # fmt: skip
    return experiment_id


def _result(
    plan: SweepPlan,
    study: optuna.Study,
    parent_id: str | None,
    invocation: str,
    seconds: float,
    notes: dict[str, str],
) -> SweepResult:
    trials = study.get_trials(deepcopy=False)
    mine = [t for t in trials if t.user_attrs.get(INVOCATION_ATTR) == invocation]
    counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    for t in mine:
        if t.state.name in counts:
            counts[t.state.name] += 1
    best_value = best_trial = best_run = None
    best_params: dict[str, Any] = {}
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        best = study.best_trial
        best_value, best_trial, best_params = best.value, best.number, dict(best.params)
        best_run = best.user_attrs.get(runs.RUN_ID_ATTR)
    return SweepResult(
        study_name=plan.study_name,
        storage=redact_url(plan.storage_url) or "",
        parent_run_id=parent_id,
        trial_numbers=sorted(t.number for t in mine),
        counts=counts,
        best_value=best_value,
        best_params=best_params,
        best_trial=best_trial,
        best_run_id=best_run,
        seconds=seconds,
        notes=notes,
    )


def _registered_name(plan: SweepPlan) -> str:
    configured = plan.cfg.sweep.get("registered_model")
    if configured:
        return str(configured)
    task = plan.base_cfg.task
    if task.get("registered_model"):
        return str(task.registered_model)
    target = plan.base_cfg.get("target")
    if task.get("registered_model_prefix") and target and target != "all":
        return f"{task.registered_model_prefix}{target}"
    raise ConfigError("register_best=true: set sweep.registered_model (no model name in task)")


def _register_best(plan: SweepPlan, result: SweepResult, parent_id: str) -> str | None:
    import mlflow

    if not result.best_run_id:
        print("register_best: no complete trial with a run to register", flush=True)
        return None
    name = _registered_name(plan)
    path = str(plan.cfg.sweep.get("model_artifact") or "model")
    run = mlflow.get_run(result.best_run_id)
    # MLflow 3 keeps a logged model as a LoggedModel of its run: register that one directly
    # (runs:/<id>/<path> still resolves to it, with a warning).
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{result.best_run_id}' AND name = '{path}'",
        output_format="list",
    )
    uri = f"models:/{logged[0].model_id}" if logged else f"runs:/{result.best_run_id}/{path}"
    try:
        version = mlflow.register_model(uri, name)
    except mlflow.exceptions.MlflowException as exc:
        raise SweepError(f"cannot register the best trial's model as {name}: {exc}") from None
    mlflow.MlflowClient().set_tag(
        parent_id, "viralab.sweep.registered", f"{name} v{version.version}"
    )
    return str(version.version)


def _print_summary(plan: SweepPlan, result: SweepResult) -> None:
    c = result.counts
    done = sum(c.values())
    rate = 60.0 * done / result.seconds if result.seconds > 0 else 0.0
    print(
        f"sweep {plan.name}: {done} trials ({c['COMPLETE']} complete, {c['PRUNED']} pruned, "
        f"{c['FAIL']} failed) in {result.seconds:.1f}s ({rate:.1f}/min)",
        flush=True,
    )
    if result.best_value is not None:
        params = " ".join(
            f"{k}={hydra_value(v)}" for k, v in plan.space.key_values(result.best_params).items()
        )
        print(
            f"best {plan.metric}={result.best_value:.6g} (trial {result.best_trial}): {params}",
            flush=True,
        )
    for key, note in result.notes.items():
        print(f"{key}: {note}", flush=True)
    if result.registered_version:
        print(f"registered {_registered_name(plan)} v{result.registered_version}", flush=True)
    print(
        f"study {result.study_name!r} in {result.storage}; parent run {result.parent_run_id}",
        flush=True,
    )


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


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------


@hydra.main(config_path=PACKAGED_CONFIG, config_name=APP_CONFIG, version_base="1.3")
@user_errors_exit
def _hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    choices = dict(hc.runtime.choices)
    overrides = list(hc.overrides.task)
    with open_dict(cfg):
        cfg.pop("hydra", None)
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
    sys.argv = [sys.argv[0], *overrides]
    use_project_layers()  # the project's conf/ before the packaged tree
    try:
        hydra_errors_as_config_errors(_hydra_main)
    except KeyboardInterrupt:
        print("error: interrupted; the study keeps every finished trial", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
