"""``python -m lib.jobs``: run, resume, list and cancel batch jobs from a script, and ``drain`` (the app's
background driver, which reads its :class:`lib.jobs.backends.DriverTarget` from stdin).

The script commands use the configured (cloud) PulseVault from the environment (the variables of the
README), acting as the server for ``--user``; demo mode's data lives inside the running app, whose Jobs page
starts jobs itself.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import signal
import sys
from collections.abc import Sequence

from lib.errors import ConfigError, PulseVaultError
from lib.jobs.backends import DriverTarget
from lib.jobs.driver import drain
from lib.jobs.model import Job, JobKind, JobParameters
from lib.records import FileRecord
from lib.settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)  # the app is stopping: end cleanly, the jobs resume later
    try:
        target = pickle.load(sys.stdin.buffer) if args.command == "drain" else _cloud_target()
        return COMMANDS[args.command](target, args)
    except PulseVaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _cloud_target() -> DriverTarget:
    settings = load_settings()
    if settings.is_demo:
        raise ConfigError("Nothing is configured, so there are no jobs here: demo mode's data lives inside the "
                          "running app (use its Jobs page), or set the [s3] and [supabase] variables.")
    return DriverTarget(settings)


def _drain(target: DriverTarget, _args: argparse.Namespace) -> int:
    from lib.jobs.engine import EngineConfig, RayEngine

    engines: list[RayEngine] = []

    def engine() -> RayEngine:
        engines.append(RayEngine(EngineConfig.from_settings(target.settings)))
        return engines[-1]

    try:
        for job in drain(target.owner, target.unfinished, engine):
            print(_line(job))
    finally:
        for made in engines:
            made.close()
    return 0


def _run(target: DriverTarget, args: argparse.Namespace) -> int:
    from lib.jobs.service import start_job
    from lib.rppg.spectrum import check_band

    band = check_band(args.band) if args.band else None
    job = start_job(target.jobs_for(args.user), _OwnerReads(target, args.user), JobKind(args.kind),
                    JobParameters(method=args.method, band=band), args.record, lambda: None)
    print(f"started {job.id} over {len(job.record_ids)} recordings")
    return _drain(target, args)


class _OwnerReads:
    """The owner's rows as the server reads them (a script has no user token), for :func:`start_job`."""

    def __init__(self, target: DriverTarget, user_id: str) -> None:
        self.user_id = user_id
        self._records = target.records_for(user_id)

    def get_many(self, record_ids: list[str]) -> list[FileRecord]:
        out = []
        for record_id in record_ids:
            try:
                out.append(self._records.get(record_id))
            except PulseVaultError:
                continue
        return out


def _list(target: DriverTarget, args: argparse.Namespace) -> int:
    for job in target.jobs_for(args.user).list():
        print(_line(job))
    return 0


def _cancel(target: DriverTarget, args: argparse.Namespace) -> int:
    from lib.jobs.service import cancel_job

    print(_line(cancel_job(target.jobs_for(args.user), args.job)))
    return 0


def _line(job: Job) -> str:
    progress = job.progress()
    return (f"{job.id} {job.kind} {job.status} {progress.finished}/{progress.total} finished, "
            f"{progress.failed} failed{f': {job.error}' if job.error else ''}")


COMMANDS = {"drain": _drain, "resume": _drain, "run": _run, "list": _list, "cancel": _cancel}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib.jobs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("drain", help="the app's driver: a pickled DriverTarget on stdin")
    sub.add_parser("resume", help="drive every job no driver is looking after, then exit")
    run = sub.add_parser("run", help="start a job for --user over --record ids and drive it")
    run.add_argument("--user", required=True)
    run.add_argument("--kind", choices=[str(k) for k in JobKind], default=str(JobKind.REANALYSE))
    run.add_argument("--method", default="POS")
    run.add_argument("--band", help="low,high in Hz (default: at rest)")
    run.add_argument("--record", action="append", required=True)
    listing = sub.add_parser("list", help="a user's newest jobs")
    listing.add_argument("--user", required=True)
    cancel = sub.add_parser("cancel", help="ask a job to stop")
    cancel.add_argument("--user", required=True)
    cancel.add_argument("job")
    return parser


if __name__ == "__main__":
    sys.exit(main())
