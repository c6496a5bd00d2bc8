"""Benchmark serving memory: 2,000 distinct ~1 MB documents through the preference pyfunc.

    .venv/bin/python benchmarks/serve_memory.py                 # defaults: 2,000 docs, 950 KB
    .venv/bin/python benchmarks/serve_memory.py --cache-large   # cache every document too
    .venv/bin/python benchmarks/serve_memory.py --docs 200 --unbounded  # what the bound saves

A ridge model is trained on the bundled sample in a temporary MLflow store and loaded as
`mlflow models serve` loads it (`mlflow.pyfunc.load_model`), in this process. Each document
is a real analysis plus an `extra` section of `--keys` numeric keys (each document's flat
dict holds them: what made the entry-bounded cache expensive) and a long string up to just
under the 1 MB default limit, distinct per document, scored one request at a time. RSS is
sampled after every request.

Ceiling: the process may grow by at most `--ceiling-mb` (default 256 MB) over its RSS after
the model is loaded and one document scored. Before the byte bound, 40 distinct 1.3 MB
documents grew a serving process by 535 MB (issue 14). `--cache-large` lets documents of
any size into the flatten cache, so the byte bound itself (64 MB) is what holds memory.
Exit code 1 when the ceiling is exceeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="distinct documents scored")
    parser.add_argument("--kb", type=int, default=950, help="approximate size of each document")
    parser.add_argument("--keys", type=int, default=5000, help="distinct keys per document")
    parser.add_argument("--ceiling-mb", type=float, default=256.0, help="allowed RSS growth")
    parser.add_argument(
        "--cache-large", action="store_true", help="let every document into the flatten cache"
    )
    parser.add_argument(
        "--unbounded",
        action="store_true",
        help="for comparison: cache every document with no byte bound (use few --docs)",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="viralab-bench-serve-memory-"))
    os.environ.update(
        {
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            "VIRALAB_DATABASE_URL": f"sqlite:///{tmp}/viralab.db",  # not data/viralab.db
            "VIRALAB_GATE_SETS_URL": f"sqlite:///{tmp}/viralab.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
    )
    if args.cache_large or args.unbounded:  # read when viralab.features.flatten is imported
        os.environ["VIRALAB_FLATTEN_CACHE_ITEM_BYTES"] = str(4 * 2**20)
    if args.unbounded:
        os.environ["VIRALAB_FLATTEN_CACHE_BYTES"] = str(2**40)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))

    import mlflow
    import pandas as pd
    import psutil

    from viralab.config import compose
    from viralab.data.sample import generate_ratings
    from viralab.features.flatten import flatten_cache
    from viralab.train import train

    print("training ridge on the bundled sample ...", flush=True)
    train(compose(["model=ridge", "log_plots=false", "data.n_videos=220"]))
    model = mlflow.pyfunc.load_model("models:/preference/1")
    base = generate_ratings(n_videos=1, seed=11)[0]["video"]["visual_analysis"]

    extra = {f"k{j:05d}": round(j % 997 / 997, 4) for j in range(args.keys)}
    head = {**base, "extra": extra}
    pad = max(0, args.kb * 1000 - len(json.dumps(head)) - 40)
    template = json.dumps({**head, "transcript": "x" * pad})

    def document(i: int) -> str:
        """Distinct text (the cache key) built in ~1 ms: flattening still makes a new dict."""
        return f'{{"doc_id": {i}, ' + template[1:]

    def score(i: int) -> None:
        frame = pd.DataFrame({"visual_analysis": [document(i)]})
        out = model.predict(frame)
        assert 0 <= float(out["score"].iloc[0]) <= 10

    proc = psutil.Process()
    score(0)  # warm: explainer, encoder caches, first allocation of a large document
    before = proc.memory_info().rss
    peak = before
    sizes = []
    started = time.perf_counter()
    for i in range(1, args.docs + 1):
        if i <= 3:
            sizes.append(len(document(i).encode()))
        score(i)
        peak = max(peak, proc.memory_info().rss)
        if i % 250 == 0:
            print(f"  {i:>5} documents, RSS {peak / 2**20:,.0f} MB peak", flush=True)
    elapsed = time.perf_counter() - started
    after = proc.memory_info().rss
    growth = (peak - before) / 2**20
    print(
        f"documents: {args.docs:,} distinct, ~{sum(sizes) / len(sizes) / 1e6:.2f} MB each "
        f"({args.keys:,} extra keys, the rest one long string); {elapsed:.0f} s, "
        f"{args.docs / elapsed:.1f} documents/s"
    )
    print(
        f"flatten cache: {flatten_cache.bytes / 2**20:.1f} MB in {len(flatten_cache)} entries "
        f"(bound {flatten_cache.max_bytes / 2**20:.0f} MB, items up to "
        f"{flatten_cache.max_item_bytes / 2**10:,.0f} KB)"
    )
    print(
        f"RSS before {before / 2**20:,.0f} MB, after {after / 2**20:,.0f} MB, peak "
        f"{peak / 2**20:,.0f} MB: growth {growth:,.0f} MB; ceiling {args.ceiling_mb:,.0f} MB "
        f"-> {'OK' if growth <= args.ceiling_mb else 'EXCEEDED'}"
    )
    return 0 if growth <= args.ceiling_mb else 1


if __name__ == "__main__":
    sys.exit(main())
