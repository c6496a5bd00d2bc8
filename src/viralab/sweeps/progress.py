"""The study loop of one process: one line per finished trial, and a stop after too many
failures in a row (a config or data problem fails every trial; no point running them all)."""

from __future__ import annotations

import contextlib

import optuna

from viralab.errors import ViralabError
from viralab.sweeps.objective import Objective, TrialFailed
from viralab.sweeps.plan import SweepPlan
from viralab.tracking import settle_ended_runs


class SweepError(ViralabError):
    """A sweep that cannot go on (every trial failing, a worker process failing)."""


class Progress:
    """One line per finished trial; stops the study after too many failures in a row."""

    def __init__(self, plan: SweepPlan, objective: Objective, prefix: str = "") -> None:
        self.plan = plan
        self.objective = objective
        self.prefix = prefix
        self.done = 0
        self.failed_in_a_row = 0
        self.max_failures = int(plan.cfg.sweep.max_consecutive_failures or 0)
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


def optimize(
    plan: SweepPlan,
    study: optuna.Study,
    objective: Objective,
    n_trials: int,
    prefix: str = "",
    progress: Progress | None = None,
) -> Progress:
    """Run ``n_trials`` more trials in this process; a trial that raised `TrialFailed` is
    recorded and the study goes on. ``progress`` carries the failure count across calls (a
    worker taking over a dead one's trials one at a time)."""
    progress = progress or Progress(plan, objective, prefix)
    try:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=plan.timeout,
            catch=(TrialFailed,),
            callbacks=[progress],
            gc_after_trial=plan.base_cfg.task.family == "forecast",
        )
    except BaseException:
        with contextlib.suppress(Exception):
            settle_ended_runs()
        raise
    settle_ended_runs()  # the last trial's status update (`end_run_later`)
    if progress.stopped_for_failures:
        raise SweepError(
            f"stopped after {progress.failed_in_a_row} failed trials in a row "
            f"(sweep.max_consecutive_failures); last: {objective.last_error[:300] or 'see the log'}"
        )
    return progress
