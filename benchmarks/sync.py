"""Benchmark `viralab registry sync`: 1,000 registered versions across 4 models -> PostgreSQL.

    .venv/bin/python benchmarks/sync.py                 # starts its own throwaway PostgreSQL
    VIRALAB_DATABASE_URL=postgresql://... .venv/bin/python benchmarks/sync.py
    .venv/bin/python benchmarks/sync.py --shared-run    # every version on one run

Registers versions fast (one small logged model shared by every version, each version with its
own run, metrics and feature_weights.json unless --shared-run), then times the first full sync,
a no-change re-sync, and a re-sync after moving every champion alias. Floors: first <= 15 s,
no-change <= 3 s; exits 1 if either is missed. The MLflow store is a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support.services (the throwaway PostgreSQL)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

MODELS = ["preference", "youtube-lstm-views", "youtube-lstm-likes", "youtube-lstm-comments"]
FIRST_FLOOR_S = 15.0
RESYNC_FLOOR_S = 3.0


def register_versions(total: int, shared_run: bool) -> None:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LinearRegression

    client = MlflowClient()
    experiment = mlflow.create_experiment("sync-benchmark")
    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(
            LinearRegression().fit(features, features["a"]),
            name="model",
            pip_requirements=["scikit-learn"],
        )
    metrics = {"mae": 0.11, "rmse": 0.14, "r2": 0.7, "training_video_count": 200.0}
    weights = {f"feature.{i}": i / 100 for i in range(150)}

    def new_run() -> str:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metrics(metrics)
            mlflow.log_dict(weights, "feature_weights.json")
        return run.info.run_id

    shared = new_run() if shared_run else None
    for name in MODELS:
        client.create_registered_model(name)
    for i in range(total):
        name = MODELS[i % len(MODELS)]
        client.create_model_version(
            name, info.model_uri, run_id=shared or new_run(), model_id=info.model_id
        )
    for name in MODELS:
        client.set_registered_model_alias(name, "champion", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--shared-run", action="store_true", help="all versions on one run")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="viralab-sync-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir}/mlflow.db"
    server = None
    url = os.environ.get("VIRALAB_DATABASE_URL")
    try:
        if not url:
            from tests.support.services import start_postgres

            server = start_postgres()
            url = server.url(server.create_database("sync_bench"))

        from viralab.registry.command_settings import load_settings
        from viralab.registry.sync import describe_target, sync_registry

        settings = load_settings()
        started = time.perf_counter()
        register_versions(args.versions, args.shared_run)
        print(
            f"registered {args.versions} versions across {len(MODELS)} models "
            f"({'one shared run' if args.shared_run else 'one run each'}) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        print(f"mirror: {describe_target(url)}")

        def timed(label: str) -> float:
            t0 = time.perf_counter()
            result = sync_registry(settings, url)
            seconds = time.perf_counter() - t0
            print(f"{label:<28} {seconds:6.2f} s   {result.summary()}")
            print(f"{'':<28} artifact look-ups: {result.artifact_downloads}")
            return seconds

        first = timed("first full sync")
        resync = timed("no-change re-sync")
        from mlflow import MlflowClient

        client = MlflowClient()
        for name in MODELS:
            client.set_registered_model_alias(name, "champion", "2")
        timed("re-sync after alias moves")
        verdicts = {
            f"first <= {FIRST_FLOOR_S:.0f} s": first <= FIRST_FLOOR_S,
            f"no-change <= {RESYNC_FLOOR_S:.0f} s": resync <= RESYNC_FLOOR_S,
        }
        print("floors: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in verdicts.items()))
        return 0 if all(verdicts.values()) else 1
    finally:
        if server is not None:
            server.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
