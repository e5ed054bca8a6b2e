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

from lib.errors import ConfigError, NotFound, PulseVaultError, ValidationError
from lib.jobs.backends import DriverTarget
from lib.jobs.driver import drain
from lib.jobs.model import Job, JobKind, JobParameters
from lib.records import FileRecord
from lib.settings import load_settings
from lib.studies import Action, require


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
    from lib.jobs.service import JobRequest, start_job
    from lib.rppg.spectrum import check_band

    band = check_band(args.band) if args.band else None
    reads = _OwnerReads(target, args.user, args.study)
    if not args.record and args.study is None:
        raise ValidationError("Name the recordings (--record, repeated) or a study (--study) to run the job over.")
    request = JobRequest(JobKind(args.kind), JobParameters(method=args.method, band=band),
                         args.record or reads.every_stored(), study_id=args.study)
    job = start_job(target.jobs_for(args.user), reads, request, lambda: None)
    print(f"started {job.id} over {len(job.record_ids)} recordings")
    return _drain(target, args)


class _OwnerReads:
    """The owner's rows as the server reads them (a script has no user token), for :func:`start_job`: their
    personal rows, or (``study_id``) the study's, if they may run jobs there."""

    def __init__(self, target: DriverTarget, user_id: str, study_id: str | None) -> None:
        self.user_id = user_id
        self.study_id = study_id
        self._records = target.records_for(user_id)
        if study_id is not None:
            require(self._records.study_role(study_id), Action.RUN_JOBS)

    def every_stored(self) -> list[str]:
        """The study's stored recordings (a job over a whole study)."""
        assert self.study_id is not None
        return self._records.study_record_ids(self.study_id)

    def get_many(self, record_ids: list[str]) -> list[FileRecord]:
        out = []
        for record_id in record_ids:
            try:
                out.append(self._records.get(record_id) if self.study_id is None
                           else self._records.study_row(record_id, self.study_id))
            except NotFound:
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
    run = sub.add_parser("run", help="start a job for --user over --record ids (or a --study) and drive it")
    run.add_argument("--user", required=True)
    run.add_argument("--kind", choices=[str(k) for k in JobKind], default=str(JobKind.REANALYSE))
    run.add_argument("--method", default="POS")
    run.add_argument("--band", help="low,high in Hz (default: at rest)")
    run.add_argument("--record", action="append", help="a recording's id (repeat it); with --study and no "
                     "--record: every stored recording of the study")
    run.add_argument("--study", help="run over this study's recordings (you must be a member or owner of it)")
    listing = sub.add_parser("list", help="a user's newest jobs")
    listing.add_argument("--user", required=True)
    cancel = sub.add_parser("cancel", help="ask a job to stop")
    cancel.add_argument("--user", required=True)
    cancel.add_argument("job")
    return parser


if __name__ == "__main__":
    sys.exit(main())
