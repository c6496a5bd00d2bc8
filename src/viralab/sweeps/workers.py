"""`workers=N`: the coordinator starts N processes of `python -m viralab.sweep` on one study;
each worker runs its share, then the trials of workers that died (heartbeats).

Processes, not Optuna's `n_jobs` threads: MLflow's active run stack is per thread and Keras
keeps one global session per process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import optuna
from hydra.core.hydra_config import HydraConfig

from viralab.sweeps.objective import Objective
from viralab.sweeps.plan import SweepPlan, override_key
from viralab.sweeps.progress import SweepError, optimize
from viralab.sweeps.space import hydra_value
from viralab.sweeps.study import fail_stale_trials, grace_seconds
from viralab.tracking.tags import FAILED_ATTR, INVOCATION_ATTR, SWEEP, WORKER_ATTR

#: Set by a coordinator (`workers=N`) for the processes it starts.
PARENT_ENV = "VIRALAB_SWEEP_PARENT_RUN_ID"
WORKER_ENV = "VIRALAB_SWEEP_WORKER"
INVOCATION_ENV = "VIRALAB_SWEEP_INVOCATION"
SHARES_ENV = "VIRALAB_SWEEP_SHARES"  # every worker's n_trials, for taking over a dead one's


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
        worker = str(t.user_attrs.get(WORKER_ATTR, ""))
        if t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get(FAILED_ATTR):
            dead.add(worker)
        elif t.state != optuna.trial.TrialState.WAITING:
            done[worker] = done.get(worker, 0) + 1
            running += t.state == optuna.trial.TrialState.RUNNING
    quota = {str(i): share for i, share in enumerate(shares, start=1)}
    owed = sum(max(0, quota.get(w, 0) - done.get(w, 0)) for w in dead)
    extra = sum(max(0, done.get(w, 0) - quota.get(w, 0)) for w in quota if w not in dead)
    return max(0, owed - extra), running


def optimize_worker(
    plan: SweepPlan,
    study: optuna.Study,
    objective: Objective,
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
    progress = optimize(plan, study, objective, own, prefix)
    grace = grace_seconds(study._storage)
    if not shares or grace is None or plan.timeout:
        return
    poll = max(0.5, grace / 4)
    while True:
        fail_stale_trials(study)
        owed, running = _owed(study, objective.invocation, shares)
        if owed:
            optimize(plan, study, objective, 1, prefix, progress)
        elif running:
            time.sleep(poll)
        else:
            return


def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def _worker_log_dir(invocation: str) -> Path:
    """Beside the coordinator's own Hydra output folder, else in the temp folder."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir) / "workers"
    return Path(tempfile.gettempdir()) / f"viralab-sweep-{invocation}"


def run_workers(
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
                sys.executable, "-m", SWEEP, *passthrough,
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
