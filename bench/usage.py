"""Benchmark: the Usage page's aggregation over 100,000 recordings of one user.

Fills the demo store (``SqliteRepository``) and, when PostgreSQL is available
(``PG_DSN``, or a throwaway cluster like the sql test tier's), a database with
``sql/`` applied, with ``--rows`` rows for one user plus a tenth as many for
another (so the per-user filter has something to skip). Rows spread over three
years, four content types, lossless and lossy, 200 subjects; nine in ten are
``ready``. Then it times the aggregation, median of ``--runs`` after a warm-up:

* demo store: ``repo.usage()`` (the grouped query plus the ten largest);
* PostgreSQL: ``select public.usage_summary()`` as role ``authenticated`` with
  the user's JWT claims, exactly as PostgREST runs the RPC (RLS applies).

Prints one JSON line: ``usage_aggregation_ms_100k`` (demo store) and
``usage_aggregation_ms_100k_postgres`` (when PostgreSQL is available), plus the
row count and the machine's load average. Goal: under 300 ms.

    .venv/bin/python bench/usage.py            # 100,000 rows
    .venv/bin/python bench/usage.py --quick    # 20,000 rows, same keys
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib.repository import SqliteRepository
from lib.repository.sqlite import register_functions

FULL_ROWS = 100_000
QUICK_ROWS = 20_000
CONTENT_TYPES = ("video/x-msvideo", "video/mp4", "video/x-matroska", "video/quicktime")
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_S = 3 * 365 * 86_400

Row = tuple[str, str, str, str, int, str, bool, str, datetime]
"""(id, user_id, s3_key, content_type, size_bytes, status, lossless, subject_id, created_at)"""


def rows(user_id: str, count: int, seed: int) -> Iterator[Row]:
    rng = random.Random(seed)
    for _ in range(count):
        record_id = str(uuid.uuid4())
        created = START + timedelta(seconds=rng.randrange(SPAN_S))
        yield (record_id, user_id, f"recordings/{user_id}/{created:%Y/%m}/{record_id}/original.avi",
               rng.choice(CONTENT_TYPES), rng.randrange(1_000_000, 4_000_000_000),
               "ready" if rng.random() < 0.9 else rng.choice(("pending", "failed")),
               rng.random() < 0.4, "" if rng.random() < 0.1 else f"S{rng.randrange(200):03d}", created)


def median_ms(run: Callable[[], object], runs: int) -> float:
    run()  # warm-up: caches, query plans
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


# --- demo store -------------------------------------------------------------------------------------


def sqlite_ms(count: int, runs: int, folder: Path) -> float:
    db = folder / "usage-bench.db"
    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    repo = SqliteRepository(db, user)  # creates the schema and its indexes
    with sqlite3.connect(db) as conn:
        register_functions(conn)  # the schema's key check calls it
        for user_id, n, seed in ((user, count, 1), (other, count // 10, 2)):
            conn.executemany(
                "insert into user_files (id, user_id, bucket, s3_key, original_name, content_type, size_bytes,"
                " status, lossless, subject_id, created_at, updated_at) values (?,?,?,?,?,?,?,?,?,?,?,?)",
                ((i, u, "bench", k, "rec.avi", ct, size, st, int(ll), subj, _iso(c), _iso(c))
                 for i, u, k, ct, size, st, ll, subj, c in rows(user_id, n, seed)),
            )
        conn.execute("analyze")
    summary = repo.usage()
    assert summary.total_count > 0.85 * count, summary.total_count
    return median_ms(repo.usage, runs)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- PostgreSQL -------------------------------------------------------------------------------------


def postgres_ms(count: int, runs: int) -> float | None:
    """The figure on PostgreSQL, or None (with a note on stderr) when none is available."""
    try:
        import psycopg  # noqa: F401

        from tests.support.postgres import prepared_database
    except ImportError as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        return None
    try:
        with prepared_database() as dsn:
            return _measure_postgres(dsn, count, runs)
    except Exception as exc:  # no server binaries, no permission...: the demo figure still counts
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _measure_postgres(dsn: str, count: int, runs: int) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        user, other = (str(conn.execute("insert into auth.users (email) values (%s) returning id",
                                        (f"bench-{uuid.uuid4()}@lab.test",)).fetchone()[0]) for _ in range(2))
        try:
            for user_id, n, seed in ((user, count, 1), (other, count // 10, 2)):
                with conn.cursor().copy(
                    "copy public.user_files (id, user_id, s3_key, content_type, size_bytes, status, lossless,"
                    " subject_id, created_at, bucket, original_name) from stdin"
                ) as copy:
                    for row in rows(user_id, n, seed):
                        copy.write_row((*row, "bench", "rec.avi"))
            conn.execute("analyze public.user_files")
            return median_ms(lambda: _usage_as(conn, user), runs)
        finally:
            conn.execute("delete from auth.users where id = any(%s)", ([user, other],))


def _usage_as(conn, user_id: str) -> dict:
    """One PostgREST-style RPC transaction: the API role and the user's claims, then rolled back."""
    with conn.transaction(force_rollback=True):
        conn.execute("set local role authenticated")
        claims = json.dumps({"sub": user_id, "role": "authenticated", "aud": "authenticated"})
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        return conn.execute("select public.usage_summary()").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    count = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    with tempfile.TemporaryDirectory(prefix="pulsevault-usage-bench-") as folder:
        figures: dict[str, float | int] = {"rows": count,
                                           "usage_aggregation_ms_100k": sqlite_ms(count, args.runs, Path(folder))}
    if not args.no_postgres:
        pg = postgres_ms(count, args.runs)
        if pg is not None:
            figures["usage_aggregation_ms_100k_postgres"] = pg
    # A shared machine's load skews every timing: say how busy it was.
    figures["load_avg_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
