"""Data-layer benchmark: bulk loading stats and extracting ratings on a real PostgreSQL.

    python benchmarks/data.py                       # own throwaway cluster
    VIRALAB_DATABASE_URL=postgresql://... python benchmarks/data.py   # a server you run

Measures, on a fresh database (created on the server and dropped afterwards):

- loading 100,000 `video_stats_processed` rows (validation + upsert), floor <= 20 s, and the
  same rows again (all unchanged);
- loading 10,000 usable ratings (11,800 records with their analyses);
- extracting the 10,000 usable ratings with their analyses in SQL (median of 3 runs),
  floor <= 5 s.

Exits 1 when a floor is missed. Generating the data is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.support.services when run as a script

from sqlalchemy.engine import make_url  # noqa: E402

from viralab.data.database import normalize_url  # noqa: E402

STATS_FLOOR_S = 20.0
EXTRACT_FLOOR_S = 5.0


def _admin(url: str, sql: str) -> None:
    import psycopg2

    parts = make_url(normalize_url(url))
    conn = psycopg2.connect(
        host=parts.host,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def _timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"  {label:<46} {elapsed:7.2f} s", flush=True)
    return result, elapsed


def run(base_url: str, stats_rows: int, n_ratings: int, batch_size: int, repeat: int) -> bool:
    from viralab.config import redact_url
    from viralab.data.loading import load_into_database
    from viralab.data.postgres_source import extract_from_database
    from viralab.data.sample import generate_ratings, generate_stats

    name = f"viralab_bench_{uuid.uuid4().hex[:8]}"
    _admin(base_url, f'CREATE DATABASE "{name}"')
    url = str(make_url(normalize_url(base_url)).set(database=name).render_as_string(False))
    print(f"database: {redact_url(url)}  (batch size {batch_size})")
    try:
        per_video = stats_rows // 4
        stats = generate_stats(videos={f"bench_{i}": per_video for i in range(4)})
        ratings = generate_ratings(n_videos=n_ratings)

        report, stats_s = _timed(
            f"load {len(stats):,} stats rows (insert)",
            load_into_database,
            url,
            stats=stats,
            batch_size=batch_size,
        )
        assert report.tables["video_stats_processed"].inserted == len(stats), report
        report, _ = _timed(
            f"load {len(stats):,} stats rows again (unchanged)",
            load_into_database,
            url,
            stats=stats,
            batch_size=batch_size,
        )
        assert report.tables["video_stats_processed"].unchanged == len(stats), report

        report, _ = _timed(
            f"load {len(ratings):,} rating records + analyses",
            load_into_database,
            url,
            ratings=ratings,
            batch_size=batch_size,
        )
        assert report.tables["video_ratings"].inserted == len(ratings), report
        times = []
        for attempt in range(1, repeat + 1):
            (records, extraction), took = _timed(
                f"extract {n_ratings:,} ratings with analyses (SQL) #{attempt}",
                extract_from_database,
                {"url": url},
            )
            assert extraction.kept == len(records) == n_ratings, extraction.summary()
            times.append(took)
        extract_s = statistics.median(times)
        print(f"  {extraction.summary()}")
    finally:
        _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    ok = True
    for what, took, floor in (
        ("stats load", stats_s, STATS_FLOOR_S),
        (f"extraction (median of {repeat})", extract_s, EXTRACT_FLOOR_S),
    ):
        verdict = "ok" if took <= floor else "TOO SLOW"
        ok &= took <= floor
        print(f"{what}: {took:.2f} s (floor {floor:.0f} s) {verdict}")
    print(f"stats rows/s: {stats_rows / stats_s:,.0f}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats-rows", type=int, default=100_000)
    parser.add_argument("--ratings", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="extraction runs (median kept)")
    args = parser.parse_args()

    url = os.environ.get("VIRALAB_DATABASE_URL")
    server = None
    if not url:
        from tests.support.services import start_postgres

        server = start_postgres()
        url = server.url()
    try:
        ok = run(url, args.stats_rows, args.ratings, args.batch_size, args.repeat)
    finally:
        if server is not None:
            server.stop("immediate")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
