"""Forecaster benchmark: all three targets on the bundled sample at full size.

    python benchmarks/forecast.py                          # the default config
    python benchmarks/forecast.py model.batch_size=32 model.loss=mse task.predict=level

Runs the real `train_forecast` path (data, fit, evaluation, logging, registration) for
`target=all` into a throwaway MLflow store and prints, per target: epochs run and kept,
seconds per epoch, fit time, and the MAE in original counts beside each naive baseline on the
same test windows.

Floors (exit 1 when one is missed): the whole run <= 120 s wall on the team's 2-core machine;
each target stopped early (before `model.epochs`); each target's MAE no worse than its best
naive baseline.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

WALL_FLOOR_S = 120.0


def main(overrides: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("mlflow", "alembic", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from viralab.config import compose
    from viralab.features.sequence import TARGETS
    from viralab.models.baselines import BASELINES

    with tempfile.TemporaryDirectory(prefix="viralab-bench-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        cfg = compose(["model=lstm", "data=sample", "target=all", *overrides])
        from viralab.train import train

        start = time.perf_counter()
        metrics = train(cfg)
        wall = time.perf_counter() - start

    max_epochs = int(cfg.model.epochs)
    head = (
        f"{'target':<9} {'epochs':>6} {'kept':>5} {'s/epoch':>8} {'fit s':>7} "
        f"{'LSTM MAE':>9} " + " ".join(f"{b:>14}" for b in BASELINES) + "  verdict"
    )
    print("\nForecast benchmark (bundled sample, original counts, test windows)")
    print("overrides:", " ".join(overrides) or "(none: default config)")
    print(head)
    print("-" * len(head))
    failures = []
    fit_total = 0.0
    for target in TARGETS:
        m = {k.split(".", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{target}.")}
        fit_total += m["training_time"]
        best = m["best_baseline_mae"]
        verdict = "beats" if m["mae"] < best else ("ties" if m["mae"] == best else "LOSES")
        print(
            f"{target:<9} {m['epochs_trained']:>6.0f} {m['convergence_epoch']:>5.0f} "
            f"{m['seconds_per_epoch']:>8.2f} {m['training_time']:>7.1f} {m['mae']:>9.4f} "
            + " ".join(f"{m[f'baseline_{b}_mae']:>14.4f}" for b in BASELINES)
            + f"  {verdict} ({m['mae'] / best:.3f}x best)"
        )
        if m["mae"] > best:
            failures.append(f"{target}: MAE {m['mae']:.4f} > best naive {best:.4f}")
        if m["epochs_trained"] >= max_epochs:
            failures.append(f"{target}: ran all {max_epochs} epochs without stopping early")
    print(
        f"\nfit time (3 targets): {fit_total:.1f} s; whole run wall: {wall:.1f} s "
        f"(floor {WALL_FLOOR_S:.0f} s)"
    )
    if wall > WALL_FLOOR_S:
        failures.append(f"wall {wall:.1f} s > {WALL_FLOOR_S:.0f} s")
    for line in failures:
        print("FLOOR MISSED:", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
