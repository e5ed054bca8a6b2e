"""Streamed zip export: throughput against plain presigned GETs of the same objects, and the serving
process's memory while it streams.

SeaweedFS (S3) runs in its own process. About 1 GiB of recordings (8 × 128 MiB of random bytes, each with
a ground-truth waveform) is stored in it and listed in SQLite as a researcher's ready recordings. A
serving process (``--serve``) prepares UBFC-rPPG exports of them as the app does (lib.export.prepare)
and serves lib.export.routes' download route with uvicorn, the route app.py mounts next to Streamlit.
The bench then downloads, discarding the bytes as they arrive:

- the zip, through the route (one-time tickets, one per round);
- the same objects one after another through presigned GETs straight from SeaweedFS.

Rounds alternate the two (zip, GETs, zip, GETs, …) so a busy neighbour slows both alike; the best round
of each counts. psutil samples the serving process's RSS every 20 ms during each zip download.

Figures (one JSON line):
  export_zip_ratio_vs_get   zip MB/s ÷ presigned GET MB/s (goal >= 0.8)
  export_peak_rss_mb        serving process: peak RSS during a zip download minus its RSS at rest just before
                            (goal <= 200)
  export_server_cpu_s_per_gib  CPU seconds the serving process spends per GiB zipped (the machine has 2 cores)
  export_zip_mb_s, export_get_mb_s, export_rest_rss_mb, export_set_mib, export_rounds

Usage: python bench/export.py [--quick]   (--quick: 4 × 16 MiB, same keys)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.audit import Actor, AuditTrail
from lib.export import ExportBackends, ExportRequest, ExportTickets, Layout, Selection, export_routes, prepare_export
from lib.records import ListQuery, ResearchFields
from lib.repository import SqliteAuditLog, SqliteRepository, SqliteServerRecords
from lib.seaweedfs import admin_identities, start_seaweedfs
from lib.settings import GIB, MIB, S3Settings, Settings
from lib.storage import ObjectStore
from tests.support.export_world import attach, pulse_csv, store_recording
from tests.support.services import free_port

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
BUCKET = "pulsevault-bench"
READ_CHUNK = MIB
SAMPLE_S = 0.02
"""How often the serving process's RSS is read during a download."""
SERVE_READY_S = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "S3_JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), json.loads(args.serve[1]), args.rounds)
        return
    count, size = (4, 16 * MIB) if args.quick else (8, 128 * MIB)
    figures: dict = {"quick": args.quick}
    try:
        figures.update(measure(count, size, args.rounds))
    except Exception as exc:  # a loaded or broken machine reports what it could, never a traceback
        figures["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(figures))


def measure(count: int, size: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        key, secret = "PV" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
        weed = start_seaweedfs(folder / "weed", identities=admin_identities(key, secret))
        try:
            weed.wait_ready()
            s3 = S3Settings(bucket=BUCKET, region="us-east-1", access_key_id=key, secret_access_key=secret,
                            endpoint_url=weed.endpoint_url)
            store = ObjectStore(s3)
            store._client.create_bucket(Bucket=BUCKET)
            db = folder / "meta.db"
            records = seed(store, SqliteServerRecords(db, USER), count, size)
            return compare(store, records, db, s3, rounds)
        finally:
            weed.stop()


def seed(store: ObjectStore, server: SqliteServerRecords, count: int, size: int) -> list:
    records = []
    for i in range(count):
        record = store_recording(store, server, f"rec{i}.avi", os.urandom(size), ResearchFields(subject_id=str(i + 1)))
        records.append(attach(store, server, record, pulse_csv()))
    return records


def compare(store: ObjectStore, records: list, db: Path, s3: S3Settings, rounds: int) -> dict:
    s3_json = json.dumps({"bucket": s3.bucket, "region": s3.region, "access_key_id": s3.access_key_id,
                          "secret_access_key": s3.secret_access_key, "endpoint_url": s3.endpoint_url})
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(db), s3_json, "--rounds", str(rounds)],
                             stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(_first_line(child))
        base, urls = f"http://127.0.0.1:{ready['port']}", ready["urls"]
        process = psutil.Process(child.pid)
        zip_runs, get_runs, peaks, rests, cpu_s = [], [], [], [], []
        for url in urls:
            time.sleep(1.0)  # at rest: the previous download's buffers released
            rests.append(process.memory_info().rss)
            cpu = sum(process.cpu_times()[:2])
            with RssPeak(process) as peak:
                zip_runs.append(_download([base + url]))
            cpu_s.append(sum(process.cpu_times()[:2]) - cpu)
            peaks.append(peak.peak - rests[-1])
            get_runs.append(_download([store.presign_get(r.s3_key, owner=USER) for r in records]))
    finally:
        child.terminate()
        with suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10)
    zip_best = max(b / s for b, s in zip_runs)
    get_best = max(b / s for b, s in get_runs)
    return {"export_zip_ratio_vs_get": round(zip_best / get_best, 3),
            "export_peak_rss_mb": round(max(peaks) / MIB, 1),
            "export_zip_mb_s": round(zip_best / MIB, 1), "export_get_mb_s": round(get_best / MIB, 1),
            "export_rest_rss_mb": round(min(rests) / MIB, 1),
            "export_server_cpu_s_per_gib": round(min(cpu_s) / (zip_runs[0][0] / GIB), 2),
            "export_set_mib": round(sum(r.size_bytes for r in records) / MIB), "export_rounds": len(urls)}


def _first_line(child: subprocess.Popen) -> str:
    assert child.stdout is not None
    deadline = time.monotonic() + SERVE_READY_S
    line = child.stdout.readline()
    if not line or time.monotonic() > deadline:
        raise RuntimeError("the serving process did not start")
    return line


def _download(urls: list[str]) -> tuple[int, float]:
    """(bytes, seconds) for fetching the URLs one after another, bytes discarded as they arrive."""
    total, started = 0, time.perf_counter()
    with requests.Session() as http:
        for url in urls:
            with http.get(url, stream=True, timeout=120) as response:
                response.raise_for_status()
                for chunk in response.iter_content(READ_CHUNK):
                    total += len(chunk)
    return total, time.perf_counter() - started


class RssPeak:
    """The highest RSS of a process while the block runs, read every :data:`SAMPLE_S`."""

    def __init__(self, process: psutil.Process) -> None:
        self.process, self.peak = process, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(psutil.NoSuchProcess):
                self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(SAMPLE_S)

    def __enter__(self) -> RssPeak:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def serve(db: Path, s3_fields: dict, rounds: int) -> None:
    """The serving process: prepare ``rounds`` exports as the app does, print their links, serve the route."""
    import uvicorn
    from starlette.applications import Starlette

    s3 = S3Settings(**s3_fields)
    settings = Settings(mode="cloud", s3=s3, export_zip_max_bytes=64 * GIB)
    store, repo, tickets = ObjectStore(s3, settings=settings), SqliteRepository(db, USER), ExportTickets()
    trail = AuditTrail(SqliteAuditLog(db, USER), Actor(USER, "bench@lab.test"))
    urls = [prepare_export(store, repo, tickets, settings, ExportRequest(Selection(query=ListQuery()), Layout.UBFC),
                           trail=trail).download_url for _ in range(rounds)]
    port = free_port()
    app = Starlette(routes=export_routes(lambda: ExportBackends(tickets, store, None)))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=lambda: (_wait_up(port), print(json.dumps({"port": port, "urls": urls}), flush=True)),
                     daemon=True).start()
    server.run()


def _wait_up(port: int) -> None:
    deadline = time.monotonic() + SERVE_READY_S
    while time.monotonic() < deadline:
        with suppress(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        time.sleep(0.1)


if __name__ == "__main__":
    main()
