"""Run the stand-in as a process (e2e in cloud mode)::

    python -m tests.support.supabase --pg-dsn "host=... dbname=..." --port 54321
    python -m tests.support.supabase --throwaway-pg --user demo@lab.test:secret123

It prints one JSON line (url, anon_key, service_role_key, pg_dsn) once it is
serving, and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from tests.support.supabase.gotrue import DEFAULT_LIFETIME_S
from tests.support.supabase.server import SupabaseStandin


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.support.supabase",
                                     description="A Supabase stand-in (GoTrue + PostgREST) over PostgreSQL.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pg-dsn", help="PostgreSQL with the shim and sql/ applied (or --apply-schema)")
    source.add_argument("--throwaway-pg", action="store_true", help="start a private PostgreSQL cluster")
    parser.add_argument("--apply-schema", action="store_true", help="apply the shim and sql/ to --pg-dsn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jwt-secret", default=None)
    parser.add_argument("--access-token-lifetime", type=int, default=DEFAULT_LIFETIME_S)
    parser.add_argument("--require-confirmation", action="store_true",
                        help="sign-up sends a confirmation e-mail instead of signing in (as real projects do)")
    parser.add_argument("--user", action="append", default=[], metavar="EMAIL:PASSWORD",
                        help="create a confirmed account (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    from tests.support.postgres import apply_schema, prepared_database

    with contextlib.ExitStack() as stack:
        if args.throwaway_pg:
            dsn = stack.enter_context(prepared_database())
        else:
            dsn = args.pg_dsn
            if args.apply_schema:
                apply_schema(dsn)
        standin = stack.enter_context(SupabaseStandin(dsn, host=args.host, port=args.port,
                                                      jwt_secret=args.jwt_secret))
        standin.set_access_token_lifetime(args.access_token_lifetime)
        standin.set_require_confirmation(args.require_confirmation)
        for spec in args.user:
            email, _, password = spec.partition(":")
            if standin.accounts.find(email=email) is None:
                standin.create_user(email, password)
        print(json.dumps({"url": standin.url, "anon_key": standin.anon_key,
                          "service_role_key": standin.service_role_key, "pg_dsn": dsn}), flush=True)
        stopped = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopped.set())
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
