"""Benchmark the registry guard: p50 of an alias set on a guarded vs an unguarded model, both
through the same `mlflow server --app-name viralab` on this machine.

    .venv/bin/python benchmarks/registry_guard.py            # 40 alias sets of each kind
    .venv/bin/python benchmarks/registry_guard.py --sets 100

A guarded set (`preference`, which has gates) runs the gates, the champion comparison, the
compare-and-set, one `registry_events` row, the move, a mirror sync and the evidence update;
an unguarded one (a model without gates) is MLflow's own handler. Each round moves `champion`
between two passing versions, alternating guarded and unguarded calls so machine load hits
both alike. Floor (issue 13): the guarded p50 at most 300 ms above the unguarded p50; exit
code 1 when missed. Everything runs in a temporary store and application database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
FLOOR_MS = 300.0
METRICS = {"mae": 0.11, "r2": 0.72, "rmse": 0.14, "cv_mae": 0.12}


def register(name: str, versions: int, model_uri: str, model_id: str) -> None:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_registered_model(name)
    for _ in range(versions):
        with mlflow.start_run() as run:
            mlflow.log_metrics(METRICS)
        client.create_model_version(name, model_uri, run_id=run.info.run_id, model_id=model_id)


def alias_set(url: str, name: str, version: int) -> float:
    payload = {"name": name, "alias": "champion", "version": str(version)}
    started = time.perf_counter()
    response = requests.post(
        f"{url}/ajax-api/2.0/mlflow/registered-models/alias", json=payload, timeout=120
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"alias set on {name} v{version} failed: {response.text[:300]}")
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=40, help="alias sets of each kind")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from sklearn.linear_model import LinearRegression

    from tests.support.services import start_mlflow_server

    tmp = Path(tempfile.mkdtemp(prefix="viralab-bench-guard-"))
    app_db = f"sqlite:///{tmp}/viralab.db"
    server = start_mlflow_server(
        f"sqlite:///{tmp}/mlflow.db",
        artifacts_destination=str(tmp / "artifacts"),
        extra_env={"VIRALAB_DATABASE_URL": app_db, "VIRALAB_SERVER_OVERRIDES": ""},
        app_name="viralab",
    )
    try:
        mlflow.set_tracking_uri(server.url)
        mlflow.set_registry_uri(server.url)
        mlflow.set_experiment("guard-benchmark")
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                LinearRegression().fit(np.eye(2), [0.0, 1.0]),
                name="model",
                pip_requirements=["scikit-learn"],
            )
        register("preference", 2, info.model_uri, info.model_id)
        register("unguarded-bench", 2, info.model_uri, info.model_id)
        alias_set(server.url, "preference", 1)  # warm both paths (config, engines)
        alias_set(server.url, "unguarded-bench", 1)
        guarded: list[float] = []
        unguarded: list[float] = []
        for i in range(args.sets):
            version = 2 if i % 2 == 0 else 1
            guarded.append(alias_set(server.url, "preference", version))
            unguarded.append(alias_set(server.url, "unguarded-bench", version))
    finally:
        server.stop()

    g50, u50 = statistics.median(guarded), statistics.median(unguarded)
    g90, u90 = (float(np.percentile(x, 90)) for x in (guarded, unguarded))
    print(f"alias sets through one mlflow server --app-name viralab ({args.sets} each)")
    print(f"{'':12}{'guarded':>12}{'unguarded':>12}")
    print(f"{'p50 ms':12}{g50:12.1f}{u50:12.1f}")
    print(f"{'p90 ms':12}{g90:12.1f}{u90:12.1f}")
    extra = g50 - u50
    verdict = "ok" if extra <= FLOOR_MS else "OVER FLOOR"
    print(f"guard cost p50: {extra:.1f} ms (floor {FLOOR_MS:.0f} ms): {verdict}")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0 if extra <= FLOOR_MS else 1


if __name__ == "__main__":
    sys.exit(main())
