"""Benchmark inference: single-document latency in-process and through `mlflow models serve`,
and batch throughput, for a ridge preference model trained on the bundled sample.

    .venv/bin/python benchmarks/predict.py               # 10,000 documents, 300 single calls
    .venv/bin/python benchmarks/predict.py --docs 2000 --no-serve

Floors (issue: inference): in-process p50 <= 10 ms per document after load, batch >= 5,000
documents/s. Everything runs in a temporary MLflow store; the figures are printed, and the
exit code is 1 when an in-process floor is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents for the batch run")
    parser.add_argument("--singles", type=int, default=300, help="single-document calls")
    parser.add_argument("--no-serve", action="store_true", help="skip mlflow models serve")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="viralab-bench-predict-"))
    uri = f"sqlite:///{tmp}/mlflow.db"
    os.environ.update(
        {
            "MLFLOW_TRACKING_URI": uri,
            "VIRALAB_DATABASE_URL": f"sqlite:///{tmp}/viralab.db",  # not data/viralab.db
            "VIRALAB_GATE_SETS_URL": f"sqlite:///{tmp}/viralab.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
    )
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))

    import mlflow

    from viralab.config import compose
    from viralab.data.sample import generate_ratings
    from viralab.serve import predict as serving
    from viralab.train import train

    print("training ridge on the bundled sample ...", flush=True)
    train(compose(["model=ridge", "log_plots=false"]))
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "1")

    records = generate_ratings(n_videos=max(args.docs, args.singles), seed=2024)
    docs = [r["video"]["visual_analysis"] for r in records][: args.docs]
    texts = [json.dumps(d) for d in docs]

    # warm up: load once (one load per process per version), explainer built
    t0 = time.perf_counter()
    serving.predict_virality_score(docs[0])
    load_s = time.perf_counter() - t0

    singles = []
    for text in texts[: args.singles]:
        t = time.perf_counter()
        serving.predict_virality_score(text)
        singles.append(time.perf_counter() - t)
    p50, p99 = percentiles(singles)

    t = time.perf_counter()
    scored = serving.score_documents(texts)
    batch_s = time.perf_counter() - t
    throughput = len(texts) / batch_s
    assert len(scored) == len(texts)

    print(f"\nridge preference model, {os.cpu_count()} CPU(s)")
    print(f"  first call (load + explainer)   {load_s * 1000:8.1f} ms")
    print(
        f"  in-process single document     p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
        f"   (floor p50 <= 10 ms) {'ok' if p50 <= 10 else 'MISSED'}"
    )
    print(
        f"  in-process batch of {len(texts):,}      {batch_s:6.2f} s   {throughput:8.0f} docs/s"
        f"   (floor >= 5,000/s) {'ok' if throughput >= 5000 else 'MISSED'}"
    )

    if not args.no_serve:
        import requests

        from tests.support.services import start_model_server

        server = start_model_server("models:/preference@champion", uri)
        try:
            url = f"{server.url}/invocations"
            session = requests.Session()

            def call(batch: list[str]) -> None:
                payload = {
                    "dataframe_split": {
                        "columns": ["visual_analysis"],
                        "data": [[t] for t in batch],
                    }
                }
                res = session.post(url, json=payload, timeout=300)
                res.raise_for_status()

            call(texts[:1])
            rest = []
            for text in texts[: min(args.singles, 200)]:
                t = time.perf_counter()
                call([text])
                rest.append(time.perf_counter() - t)
            r50, r99 = percentiles(rest)
            chunk = texts[:2000]
            t = time.perf_counter()
            call(chunk)
            rest_tp = len(chunk) / (time.perf_counter() - t)
            print(f"  mlflow models serve, single    p50 {r50:6.2f} ms   p99 {r99:6.2f} ms")
            print(f"  mlflow models serve, batch of {len(chunk):,}  {rest_tp:8.0f} docs/s")
        finally:
            server.stop()
    return 0 if (p50 <= 10 and throughput >= 5000) else 1


if __name__ == "__main__":
    raise SystemExit(main())
