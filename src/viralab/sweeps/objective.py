"""One trial: compose its training config, run `train` in its own child run, return the metric.

Why a module of its own: this is the per-trial hot path (the sweep benchmark profiles
`Objective.__call__`); the study loop, the workers and the parent run live elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shlex
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import wait as futures_wait
from typing import Any

import optuna
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from viralab.config import known_safe_container, redact_text
from viralab.errors import ConfigError, ViralabError
from viralab.sweeps import runs
from viralab.sweeps.plan import SweepPlan, TrialComposer, lean_overrides
from viralab.sweeps.space import hydra_value
from viralab.tracking import (
    create_run_in_background,
    early_writes,
    hold_writes,
    no_run_links,
    open_created_run,
    set_tags,
    settle_ended_runs,
    start_writer,
)
from viralab.tracking.tags import (
    FAILED_ATTR,
    INVOCATION_ATTR,
    PID_ATTR,
    SWEEP,
    SWEEP_COMMAND,
    WORKER_ATTR,
)
from viralab.tracking.trial import active_trial, sweep_parent

TrialFn = Callable[[DictConfig], Mapping[str, float]]


class TrialFailed(Exception):
    """A trial's training raised: recorded as FAIL, the sweep goes on."""


def _blas_threads(limit: int | None) -> contextlib.AbstractContextManager[Any]:
    """BLAS (OpenBLAS, MKL) held to ``limit`` threads for a trial's fit; None: untouched.

    Why 1 by default (`sweep.blas_threads`): a sweep's fits are small, and OpenBLAS's second
    thread only competed with the trial's tracking threads and a local `mlflow server` (see
    benchmarks/sweep.py). Per trial, not once per sweep: `threadpool_limits` (~1 ms) limits
    the libraries loaded when it is entered, and scipy loads its own OpenBLAS on first use
    (the first trial's scipy calls then keep the default).
    """
    if limit is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=limit, user_api="blas")


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


class Objective:
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
        self.quiet = not bool(plan.cfg.sweep.show_trial_output)
        self.last_error = ""
        self.experiment_id = None
        if parent_run_id:
            self.experiment_id = runs.run_experiment_id(parent_run_id)
        # against a tracking server, a trial's run is created while its point is sampled
        self.overlap = parent_run_id is not None and early_writes()
        if self.overlap:  # its imports (~1 s, another core) overlap the sweep's first trial
            start_writer()
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
        trial.set_user_attr(PID_ATTR, os.getpid())
        if self.worker:
            trial.set_user_attr(WORKER_ATTR, self.worker)
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
        # A tracked trial's writes are held from its run's start and written when it ends
        # (`_open` / `runs.start_trial_run`, then `runs.finish_trial_run`); a hidden trial's run
        # link is not even fetched (a request).
        with no_run_links() if self.quiet else contextlib.nullcontext():
            if self.parent_run_id is not None and self.overlap:
                run_id, cfg = self._start_run_while_sampling(trial, run_name)
                trial.set_user_attr(runs.RUN_ID_ATTR, run_id)
                return self._tracked(trial, cfg, run_id)
            values, overrides = self._sample(trial, run_name)
            cfg = self._compose(trial, run_name, values, overrides)
            if self.parent_run_id is None:
                return self._tracked(trial, cfg, None)
            run_id = runs.start_trial_run(
                self.parent_run_id,
                self.experiment_id,
                run_name,
                {**self._run_tags(trial), **self._command_tag(overrides)},
            )
            trial.set_user_attr(runs.RUN_ID_ATTR, run_id)
            return self._tracked(trial, cfg, run_id)

    def _run_tags(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's run tags known before its point is sampled."""
        return {
            runs.TRIAL_TAG: trial.number,
            "optuna.study_name": self.plan.study_name,
            SWEEP: self.plan.name,
        }

    @staticmethod
    def _command_tag(overrides: list[str]) -> dict[str, str]:
        return {SWEEP_COMMAND: redact_text("python -m viralab.train " + shlex.join(overrides))}

    def _start_run_while_sampling(
        self, trial: optuna.Trial, run_name: str
    ) -> tuple[str, DictConfig]:
        """The trial's run created in the background (in the tracking writer process) while this
        thread samples the trial's point and composes its config: neither needs the run, and the run
        needs only the trial's number. Why: against a tracking server the creation is a request (~11
        ms, ~25 ms with the client's side) the trial only waited for; sampling (Optuna's TPE and its
        storage, ~20 ms) and composing (~10 ms) are done meanwhile. Sampling stays on this thread:
        Optuna caches the study's trials per thread. The trial's command (its overrides, known once
        sampled) joins the run's held tags. A trial whose sampling or config fails ends its run
        FAILED (the config was checked before trial 1)."""
        tags = {"mlflow.parentRunId": self.parent_run_id, **self._run_tags(trial)}
        created = create_run_in_background(self.experiment_id, run_name, tags)
        try:
            values, overrides = self._sample(trial, run_name)
            cfg = self._compose(trial, run_name, values, overrides)
        except BaseException as exc:
            futures_wait([created])
            if created.exception() is None:
                runs.finish_trial_run(self._open(created.result()), "FAIL", error=exc)
            raise
        settle_ended_runs()  # the previous trial's status update (`end_run_later`)
        run_id = self._open(created.result())
        set_tags(self._command_tag(overrides))  # held: sent with the run's first batch
        return run_id, cfg

    @staticmethod
    def _open(run: Any) -> str:
        """The created run as the thread's active run, its writes held (`finish_trial_run`
        writes them in one go), as `runs.start_trial_run` opens one."""
        run_id = open_created_run(run)
        hold_writes(run_id)
        return run_id

    def _tracked(self, trial: optuna.Trial, cfg: DictConfig, run_id: str | None) -> float:
        plan = self.plan
        try:
            with (
                active_trial(trial),
                sweep_parent(self.parent_run_id),
                runs.adopt_run(run_id),
                _quiet() if self.quiet else contextlib.nullcontext(),
                _blas_threads(plan.blas_threads),
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
