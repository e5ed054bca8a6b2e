"""Benchmark: server-side render time of My files with 10,000 recordings in the repository.

What is measured: one full script run of the real app (``app.py`` → auth gate → sidebar with its
storage meter → ``pages/files.py``) in demo mode, through Streamlit's AppTest, for a signed-in user
whose SQLite repository holds N recordings (inserted directly, with realistic video properties, tags
and a saved quick-look analysis). Each timed run shows a different page of 50 rows, so every run
lists a page in the database and presigns its 50 thumbnails afresh (no link cache hits). AppTest's
own overhead (building and parsing the protobuf deltas) is included, so this is an upper bound for
the server side; the browser's drawing is not.

Prints one JSON line: ``files_page_render_s_10k`` (median over runs; the key is the same with
``--quick``, which uses 2,000 rows), plus the slowest run, a run with a search filter, and a run with
one row selected (detail panel: player, download link, properties, research form, saved analysis;
measured after a first selection, which pays once per process for setting up the charts).
Goal: under 1 s.

    .venv/bin/python bench/files_page.py            # 10,000 rows
    .venv/bin/python bench/files_page.py --quick    # 2,000 rows
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sqlite3
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from streamlit.testing.v1 import AppTest

from components import state_keys

FULL_ROWS = 10_000
QUICK_ROWS = 2_000
RUNS = 7
_CLOUD_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_S3_BUCKET", "AWS_S3_ENDPOINT_URL",
               "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY")


def select_row(at: AppTest, row: int) -> None:
    """Select one row of My files' table (its key names the rows it shows: ``state_keys.files_table``)."""
    prefix = state_keys.files_table("")
    [key] = [k for k in at._session_state.filtered_state if str(k).startswith(prefix)]
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}


def analysis(i: int) -> str:
    """A saved quick look the size a 20 s clip produces (300 pulse samples, 11 track points)."""
    hr = 55 + i % 60
    return json.dumps({
        "version": 1, "method": "POS", "hr_bpm": hr, "snr_db": 4.2,
        "hr_track": [[5 + s, hr + math.sin(s)] for s in range(11)],
        "pulse": [round(math.sin(2 * math.pi * hr / 60 * k / 15), 4) for k in range(300)], "pulse_fs": 15.0,
        "flags": [], "frames_analysed": 600, "seconds_taken": 1.3, "ground_truth_hr_bpm": None,
        "hr_error_bpm": None, "fps": 30.0, "duration_s": 20.0,
    })


def fill(db_path: Path, user_id: str, count: int) -> None:
    start = datetime.now(UTC) - timedelta(days=400)
    rows = []
    for i in range(count):
        record_id = str(uuid.uuid4())
        created = start + timedelta(minutes=50 * i)
        prefix = f"recordings/{user_id}/{created:%Y}/{created:%m}/{record_id}/"
        stamp = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append((
            record_id, user_id, "pulsevault-demo", prefix + "original.avi", f"S{i % 97:03d}_session{i % 5}_{i}.avi",
            "video/x-msvideo", 50_000_000 + i, uuid.uuid4().hex * 2, "ready" if i % 50 else "failed",
            None if i % 50 else "The upload was interrupted.", prefix + "thumb.jpg", prefix + "preview.mp4",
            20.0, 30.0, 640, 480, 600, "FFV1", i % 3 != 0, 0, f"S{i % 97:03d}", f"session{i % 5}",
            "bench row", json.dumps(["bench", f"lab-{i % 4}"]), analysis(i), stamp, stamp,
        ))
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "insert into user_files (id, user_id, bucket, s3_key, original_name, content_type, size_bytes, sha256,"
            " status, error, thumbnail_key, preview_key, duration_s, fps, width, height, frame_count, codec,"
            " lossless, browser_playable, subject_id, session_label, notes, tags, analysis, created_at, updated_at)"
            " values (" + ",".join("?" * 27) + ")", rows)


def signed_in_files_page() -> AppTest:
    from tests.support.apptest import signed_in_app

    return signed_in_app("pages/files.py", timeout_s=300)


def timed(at: AppTest) -> float:
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    rows = QUICK_ROWS if args.quick else FULL_ROWS
    for name in _CLOUD_VARS:  # demo mode: embedded SeaweedFS S3 and SQLite
        os.environ.pop(name, None)
    logging.disable(logging.WARNING)

    at = signed_in_files_page()  # starts the demo backends (and seeds the sample) outside the timing
    from lib import demo

    backends = demo._running
    assert backends is not None
    demo.seeding_done(timeout_s=300)  # the sample is seeded in the background; the quota check must not see N rows
    fill(backends.db_path, backends.user_id, rows)
    timed(at)  # warm: imports, first query plans
    times = []
    for page in range(2, args.runs + 2):
        at.number_input(key=state_keys.FILES_PAGE).set_value(page)
        times.append(timed(at))
    at.text_input(key=state_keys.FILES_SEARCH).input("S042_")
    search_s = timed(at)
    select_row(at, 0)
    timed(at)  # warm: the first chart in a process pays for importing and setting up Altair
    select_row(at, 1)
    detail_s = timed(at)
    print(json.dumps({
        "files_page_render_s_10k": round(statistics.median(times), 3),
        "files_page_render_max_s": round(max(times), 3),
        "files_page_search_render_s": round(search_s, 3),
        "files_page_detail_render_s": round(detail_s, 3),
        "rows": rows,
        "runs": len(times),
    }))


if __name__ == "__main__":
    main()
