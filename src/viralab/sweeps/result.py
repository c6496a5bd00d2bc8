"""What a sweep invocation did: its result, the best trial's model registered on request,
and the closing summary lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna

from viralab.config import redact_url
from viralab.errors import ConfigError
from viralab.registry.client import RegistryError, register_run_model
from viralab.sweeps import runs
from viralab.sweeps.plan import SweepPlan
from viralab.sweeps.progress import SweepError
from viralab.sweeps.space import hydra_value
from viralab.tracking.tags import INVOCATION_ATTR, SWEEP_REGISTERED


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


def sweep_result(
    plan: SweepPlan,
    study: optuna.Study,
    parent_id: str | None,
    invocation: str,
    seconds: float,
    notes: dict[str, str],
) -> SweepResult:
    """This invocation's own trials by state, and the study's best trial (any invocation's:
    a resumed study's best may come from an earlier one)."""
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
    configured = plan.cfg.sweep.registered_model
    if configured:
        return str(configured)
    task = plan.base_cfg.task
    if task.get("registered_model"):
        return str(task.registered_model)
    target = plan.base_cfg.get("target")
    if task.get("registered_model_prefix") and target and target != "all":
        return f"{task.registered_model_prefix}{target}"
    raise ConfigError("register_best=true: set sweep.registered_model (no model name in task)")


def register_best(plan: SweepPlan, result: SweepResult, parent_id: str) -> str | None:
    if not result.best_run_id:
        print("register_best: no complete trial with a run to register", flush=True)
        return None
    name = _registered_name(plan)
    path = str(plan.cfg.sweep.model_artifact or "model")
    try:
        version = register_run_model(result.best_run_id, path, name)
    except RegistryError as exc:
        raise SweepError(f"cannot register the best trial's model as {name}: {exc}") from None
    runs.set_run_tag(parent_id, SWEEP_REGISTERED, f"{name} v{version}")
    return version


def print_summary(plan: SweepPlan, result: SweepResult) -> None:
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
