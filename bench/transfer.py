"""Upload benchmark: PulseVault's presigned transfer against boto3's ``upload_file``.

Two servers, one after the other. **moto**: a file of ``--size-mb`` random
bytes goes to a moto S3 server running in its own process (so its memory is
not counted), alternating PulseVault and boto3
(default TransferConfig) for ``--runs`` rounds after an untimed warm-up of
each. Both upload the same file to the same key of the same moto process, and
the object is deleted after every run so moto's memory does not grow. Each
upload runs in a fresh child process that reports its wall time, its CPU time
and its peak resident memory (``ru_maxrss``, the kernel's high-water mark, so
no sampling gaps); the parent also records the CPU seconds moto spent serving
each run, which shows how much of a difference is the server's work.

**SeaweedFS** (``weed mini``, lib/seaweedfs.py): the same file, the same
rounds, with a third contender, boto3 with our concurrency and part size
(``TransferConfig(max_concurrency=..., multipart_chunksize=...)``), so a gain
is not only from different defaults. A Go server does not bound the figure
the way a Python one can; every contender sends checksums (ours a signed CRC32
per part, boto3 its default CRC32).

Prints one JSON line: ``upload_ratio_vs_boto3`` (moto: median throughput of
ours / median of boto3's), ``upload_ratio_vs_boto3_seaweedfs`` and
``upload_ratio_vs_boto3_tuned_seaweedfs`` (SeaweedFS, against boto3 with its
defaults and with ours), ``upload_peak_rss_mb`` (the highest peak of ours),
plus the paired per-round ratios and the raw figures (``seaweedfs_`` prefix
for the second server). Goals for 1 GiB: ratios >= 1.3, RSS < 200 MB.

boto3's client uses botocore's default ``request_checksum_calculation``
("when_supported": CRC32 per part, declared when the multipart upload starts),
which moto handles more cheaply than an upload without checksums (it then
copies the whole object twice to emulate S3's full-object CRC64NVME on
completion). ``--boto3-checksums when_required`` gives boto3 the setting
lib.storage uses, for a like-for-like comparison of the transfer itself.

    python bench/transfer.py [--size-mb 1024] [--runs 4] [--quick] [--boto3-checksums when_required]
                             [--only moto|seaweedfs]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUCKET = "pulsevault-bench"
REGION = "us-east-1"
OWNER = "bench-user"
KEY = f"recordings/{OWNER}/2024/01/00000000-0000-4000-8000-000000000000/original.bin"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
# Fake credentials only, and no profile files: the bench must never reach real AWS.
ENVIRONMENT = {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
               "AWS_SHARED_CREDENTIALS_FILE": os.devnull}  # fmt: skip
MIB = 1024 * 1024
SERVERS = ("moto", "seaweedfs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    # Rounds alternate who goes first, and the first timed run of a moto process is the slowest: an even
    # number of rounds lets each side go first equally often.
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="128 MiB, 4 runs")
    parser.add_argument("--concurrency", type=int, default=None, help="ours; default: lib.transfer's")
    parser.add_argument("--part-size-mb", type=int, default=None, help="ours; default: lib.storage's")
    parser.add_argument("--boto3-checksums", choices=("when_supported", "when_required"), default="when_supported",
                        help="boto3's request_checksum_calculation (default: botocore's own default)")  # fmt: skip
    parser.add_argument("--only", choices=SERVERS, help="one server instead of both")
    parser.add_argument("--child", choices=("ours", "boto3", "boto3-tuned"), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    size_mb, runs = (128, max(3, min(args.runs, 4))) if args.quick else (args.size_mb, max(3, args.runs))
    servers = (args.only,) if args.only else SERVERS
    print(json.dumps(_bench(size_mb, runs, args.concurrency, args.part_size_mb, args.boto3_checksums, servers)))


def _bench(size_mb: int, runs: int, concurrency: int | None, part_size_mb: int | None, checksums: str,
           servers: tuple[str, ...]) -> dict:
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": str(ROOT), "PULSEVAULT_BENCH_BOTO3_CHECKSUMS": checksums}
    env.pop("AWS_PROFILE", None)
    tuning = (concurrency, part_size_mb)
    figures: dict = {"size_mb": size_mb, "runs": runs, "boto3_checksums": checksums}
    with tempfile.TemporaryDirectory(prefix="pulsevault-bench-") as tmp:
        path = Path(tmp) / "recording.bin"
        _write_random(path, size_mb * MIB)
        if "moto" in servers:
            with _moto_server(env) as (endpoint, server):
                results = _rounds(("ours", "boto3"), endpoint, server, path, env, runs, tuning)
            figures |= _summary(size_mb, results["ours"], results["boto3"])
        if "seaweedfs" in servers:
            try:
                with _seaweedfs_server(Path(tmp)) as (endpoint, server):
                    results = _rounds(("ours", "boto3", "boto3-tuned"), endpoint, server, path, env, runs, tuning)
            except Exception as exc:  # a machine without the weed binary still reports moto's figures
                figures["seaweedfs_error"] = f"{type(exc).__name__}: {exc}"
            else:
                figures |= _seaweedfs_summary(size_mb, results)
    return figures


def _rounds(contenders: tuple[str, ...], endpoint: str, server, path: Path, env: dict, runs: int,
            tuning: tuple[int | None, int | None]) -> dict[str, list[dict]]:
    """An untimed warm-up of each, then ``runs`` timed rounds in rotating order; the object goes after each."""
    client = _client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    results: dict[str, list[dict]] = {which: [] for which in contenders}
    # The warm-up: a server's first big uploads pay for growing its heap and the page cache for reading the
    # file, whoever goes first.
    for which in reversed(contenders):
        _timed_run(which, endpoint, path, env, server, *tuning)
        client.delete_object(Bucket=BUCKET, Key=KEY)
    for round_ in range(runs):
        # Rotated A-B-C, B-C-A, ...: a load that drifts on a shared machine hits every contender alike.
        order = contenders[round_ % len(contenders):] + contenders[:round_ % len(contenders)]
        for which in order:
            results[which].append(_timed_run(which, endpoint, path, env, server, *tuning))
            client.delete_object(Bucket=BUCKET, Key=KEY)  # frees the server's copy before the next run
    return results


@contextmanager
def _moto_server(env: dict) -> Iterator[tuple[str, object]]:
    import psutil

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(endpoint, server)
        yield endpoint, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def _seaweedfs_server(folder: Path) -> Iterator[tuple[str, object]]:
    import psutil

    from lib.seaweedfs import admin_identities, start_seaweedfs

    identities = admin_identities(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    server = start_seaweedfs(folder / "seaweedfs", identities=identities)
    try:
        server.wait_ready()
        [weed] = psutil.Process(server.process.pid).children()  # the watcher's one child
        yield server.endpoint_url, weed
    finally:
        server.stop()


def _seaweedfs_summary(size_mb: int, results: dict[str, list[dict]]) -> dict:
    default = _summary(size_mb, results["ours"], results["boto3"])
    tuned = _summary(size_mb, results["ours"], results["boto3-tuned"])
    figures = {
        "upload_ratio_vs_boto3_seaweedfs": default["upload_ratio_vs_boto3"],
        "upload_ratio_vs_boto3_tuned_seaweedfs": tuned["upload_ratio_vs_boto3"],
        "seaweedfs_upload_ratio_tuned_paired_median": tuned["upload_ratio_paired_median"],
        "seaweedfs_boto3_tuned_mib_per_s": tuned["boto3_mib_per_s"],
        "seaweedfs_boto3_tuned_cpu_s": tuned["boto3_cpu_s"],
        "seaweedfs_server_cpu_s_serving_boto3_tuned": tuned["server_cpu_s_serving_boto3"],
        "seaweedfs_boto3_tuned_seconds": tuned["boto3_seconds"],
    }
    return figures | {f"seaweedfs_{name}": value for name, value in default.items()
                      if name not in ("upload_ratio_vs_boto3", "upload_peak_rss_mb")}


def _summary(size_mb: int, ours: list[dict], theirs: list[dict]) -> dict:
    ours_mbps = statistics.median(size_mb / r["seconds"] for r in ours)
    boto3_mbps = statistics.median(size_mb / r["seconds"] for r in theirs)
    paired = [b["seconds"] / o["seconds"] for o, b in zip(ours, theirs, strict=True)]  # same round, same load

    def median_of(rows: list[dict], name: str) -> float:
        return round(statistics.median(r[name] for r in rows), 2)

    return {
        "upload_ratio_vs_boto3": round(ours_mbps / boto3_mbps, 3),
        "upload_peak_rss_mb": round(max(r["peak_rss_mb"] for r in ours), 1),
        "upload_ratio_paired_median": round(statistics.median(paired), 3),
        "upload_ratios_paired": [round(r, 3) for r in paired],
        "ours_mib_per_s": round(ours_mbps, 1),
        "boto3_mib_per_s": round(boto3_mbps, 1),
        "boto3_peak_rss_mb": round(max(r["peak_rss_mb"] for r in theirs), 1),
        "ours_cpu_s": median_of(ours, "cpu_seconds"),
        "boto3_cpu_s": median_of(theirs, "cpu_seconds"),
        "server_cpu_s_serving_ours": median_of(ours, "server_cpu_seconds"),
        "server_cpu_s_serving_boto3": median_of(theirs, "server_cpu_seconds"),
        "ours_seconds": [round(r["seconds"], 2) for r in ours],
        "boto3_seconds": [round(r["seconds"], 2) for r in theirs],
    }


def _timed_run(
    which: str, endpoint: str, path: Path, env: dict, server, concurrency: int | None, part_size_mb: int | None
) -> dict:
    """One upload in a child process, plus the CPU seconds the server spent meanwhile."""
    tuning = (None, None) if which == "boto3" else (concurrency, part_size_mb)
    before = sum(server.cpu_times()[:2])
    result = _run_child(which, endpoint, path, env, *tuning)
    return result | {"server_cpu_seconds": sum(server.cpu_times()[:2]) - before}


def _run_child(
    which: str, endpoint: str, path: Path, env: dict, concurrency: int | None, part_size_mb: int | None
) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--endpoint", endpoint, "--file", str(path)]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    if part_size_mb:
        cmd += ["--part-size-mb", str(part_size_mb)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"{which} upload failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(args: argparse.Namespace) -> None:
    import boto3
    from botocore.config import Config

    from lib.settings import S3Settings
    from lib.storage import ObjectStore
    from lib.transfer import DEFAULT_CONCURRENCY, ObjectTarget, TransferConfig, upload_file

    if args.child == "ours":
        key_id, secret = CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        s3 = S3Settings(BUCKET, REGION, key_id, secret, endpoint_url=args.endpoint)
        store = ObjectStore(s3)
        part_size = args.part_size_mb * MIB if args.part_size_mb else None
        cpu, start = _cpu_seconds(), time.perf_counter()
        config = TransferConfig(concurrency=args.concurrency or DEFAULT_CONCURRENCY, part_size=part_size)
        upload_file(store, ObjectTarget(KEY, OWNER, "application/octet-stream"), args.file, config=config)
    else:
        checksums = os.environ.get("PULSEVAULT_BENCH_BOTO3_CHECKSUMS", "when_supported")
        config = Config(signature_version="s3v4", request_checksum_calculation=checksums,
                        s3={"addressing_style": "path"})
        client = boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION, config=config)
        transfer = _tuned_transfer_config(args) if args.child == "boto3-tuned" else None
        cpu, start = _cpu_seconds(), time.perf_counter()
        client.upload_file(args.file, BUCKET, KEY, Config=transfer)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_kib / 1024}))


def _tuned_transfer_config(args: argparse.Namespace):
    """boto3's TransferConfig with our concurrency, part size and single-PUT threshold."""
    from boto3.s3.transfer import TransferConfig

    from lib.storage import DEFAULT_PART_SIZE
    from lib.transfer import DEFAULT_CONCURRENCY, MULTIPART_THRESHOLD

    part_size = args.part_size_mb * MIB if args.part_size_mb else DEFAULT_PART_SIZE
    return TransferConfig(max_concurrency=args.concurrency or DEFAULT_CONCURRENCY, multipart_chunksize=part_size,
                          multipart_threshold=min(MULTIPART_THRESHOLD, part_size))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _wait_for_server(endpoint: str, server: subprocess.Popen) -> None:
    client = _client(endpoint)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list_buckets()
            return
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the moto server did not start") from None
            time.sleep(0.2)


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(16 * MIB)  # one random block repeated: fast to write, and S3 does not dedupe
    with open(path, "wb") as out:
        for offset in range(0, size, len(block)):
            out.write(block[: min(len(block), size - offset)])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
