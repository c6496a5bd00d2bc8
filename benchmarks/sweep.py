"""Benchmark sweeps: trials per minute of a ridge sweep, and the share of it spent in MLflow.

    .venv/bin/python benchmarks/sweep.py                      # 50 trials, 300 sample videos
    .venv/bin/python benchmarks/sweep.py --trials 10 --scenarios tracked,untracked

Scenarios, each a fresh study with the same seed (same compute, so the TPE proposals match):

- tracked:   the real sweep — every trial is `viralab.train.train(cfg)` in its own child run
             (params, metrics, dataset, artifacts, plots, the pyfunc model), plus the parent's
             summary and plots.
- untracked: the same trials through the same sweep machinery, but each trial only computes
             (`load_preference_data` + `fit_preference`, the compute half of train_preference)
             and no MLflow run exists. tracked - untracked = the cost of tracking.
- lean:      tracked, with model logging and figure rendering also patched out. The sweep
             already passes `log_model=false log_plots=false` to its trials (honoured by
             preference.py), so this now measures the same as `tracked`; kept for comparison.
- async:     tracked, with MLflow's asynchronous logging (`MLFLOW_ENABLE_ASYNC_LOGGING`) for
             params, metrics and tags (not run by default: --scenarios tracked,async).

Floors: 50 tracked trials in <= 90 s; tracking <= 25 % of the tracked sweep's wall time.
Exits 1 if the tracked scenario misses either. The MLflow store and the Optuna storage are a
temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from omegaconf import DictConfig

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MPLBACKEND", "Agg")

TRIALS_FLOOR_S = 90.0
OVERHEAD_FLOOR = 0.25
SCENARIOS = ("tracked", "untracked", "lean", "async")


def compute_only(cfg: DictConfig) -> dict[str, float]:
    """The compute half of `train_preference`: the same data and fit, no MLflow."""
    from viralab.preference import fit_preference, load_preference_data

    frame, _ = load_preference_data(cfg)
    return fit_preference(cfg, frame).metrics


@contextlib.contextmanager
def lean_logging() -> Iterator[None]:
    """Skip the trial's pyfunc model and figure rendering (simulates log_model/log_plots=false)."""
    import matplotlib.pyplot as plt
    import mlflow

    from viralab import preference

    saved = preference.log_model, mlflow.log_figure
    preference.log_model = lambda *args, **kwargs: None
    mlflow.log_figure = lambda figure, *args, **kwargs: plt.close(figure)
    try:
        yield
    finally:
        preference.log_model, mlflow.log_figure = saved


def run(scenario: str, trials: int, n_videos: int) -> float:
    from viralab.sweep import run_sweep

    overrides = [
        "sweep=ridge",
        f"n_trials={trials}",
        f"data.n_videos={n_videos}",
        f"sweep.study_name=bench-{scenario}",
    ]
    start = time.perf_counter()
    if scenario == "untracked":
        result = run_sweep(overrides, trial_fn=compute_only, track_trials=False)
    elif scenario == "lean":
        with lean_logging():
            result = run_sweep(overrides)
    elif scenario == "async":
        import mlflow

        mlflow.config.enable_async_logging(True)
        try:
            result = run_sweep(overrides)
        finally:
            mlflow.config.enable_async_logging(False)
    else:
        result = run_sweep(overrides)
    seconds = time.perf_counter() - start
    assert result.storage.startswith(f"sqlite:///{tempfile.gettempdir()}"), result.storage
    done = sum(result.counts.values())
    if result.counts["COMPLETE"] != trials:
        raise SystemExit(f"{scenario}: only {result.counts} of {trials} trials")
    print(
        f"== {scenario}: {done} trials in {seconds:.1f}s = {60 * done / seconds:.1f} trials/min "
        f"(best cv_mae {result.best_value:.4f})",
        flush=True,
    )
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--n-videos", type=int, default=300)
    parser.add_argument("--scenarios", default="tracked,untracked,lean")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; valid: {', '.join(SCENARIOS)}")

    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="viralab-sweep-bench-"))
    uri = f"sqlite:///{tmp}/mlruns/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("VIRALAB_OPTUNA_STORAGE", None)  # optuna.db beside the temporary store
    os.chdir(root)  # conf/ and the project's sample data
    try:
        from viralab.tracking import configure_tracking, ensure_experiment

        configure_tracking()
        ensure_experiment("preference")  # the store's one-off schema set-up is not a trial cost
        assert os.environ["MLFLOW_TRACKING_URI"] == uri, "the benchmark must not touch mlruns/"
        seconds = {s: run(s, args.trials, args.n_videos) for s in scenarios}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nridge sweep, {args.trials} trials, data.n_videos={args.n_videos}, {os.cpu_count()} "
          "CPU(s)")  # fmt: skip
    for s, t in seconds.items():
        label = " (simulated log_model/log_plots=false)" if s == "lean" else ""
        print(f"  {s:<10} {t:7.1f}s  {60 * args.trials / t:6.1f} trials/min{label}")
    ok = True
    if "tracked" in seconds:
        scaled = seconds["tracked"] * 50 / args.trials
        floor_ok = scaled <= TRIALS_FLOOR_S
        ok &= floor_ok
        print(f"  50 tracked trials: {scaled:.1f}s (floor {TRIALS_FLOOR_S:.0f}s) "
              f"{'ok' if floor_ok else 'MISSED'}")  # fmt: skip
    if {"tracked", "untracked"} <= set(seconds):
        for s in ("tracked", "lean"):
            if s not in seconds:
                continue
            share = max(0.0, 1 - seconds["untracked"] / seconds[s])
            within = share <= OVERHEAD_FLOOR
            if s == "tracked":
                ok &= within
            verdict = "ok" if within else "MISSED"
            print(f"  MLflow share of the {s} sweep: {100 * share:.0f}% "
                  f"(floor {100 * OVERHEAD_FLOOR:.0f}%) {verdict}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
