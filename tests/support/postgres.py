"""PostgreSQL for the sql tier: a throwaway cluster (or ``PG_DSN``) with the
Supabase auth shim and every file of ``sql/`` applied verbatim.

Fixtures (import them into a conftest):
- ``pg_dsn``   session: DSN of a database that has the shim and ``sql/`` applied
               (one per process, shared by every conftest that imports the fixture).
- ``pg_clean`` function: empties ``auth.users`` (and so ``user_files``) first; yields the DSN.

The cluster can also be used outside pytest (``ThrowawayCluster``), e.g. by
``python -m tests.support.supabase``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import free_port, service_missing

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "sql"
SHIM = Path(__file__).with_name("supabase_auth_shim.sql")
DB_NAME = "pulsevault_test"


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_pg_bin() -> Path:
    """The newest installed PostgreSQL bin directory with initdb and pg_ctl."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresMissing("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")


class ThrowawayCluster:
    """A private PostgreSQL cluster in a temp dir: 127.0.0.1 on a free port, trust auth.

    initdb refuses to run as root, so under root every server command runs as
    the ``postgres`` system user, which then needs to own the temp dir.
    """

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="pulsevault-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "sock"
        self.log = self.base / "server.log"
        self._as_postgres = os.geteuid() == 0
        self.user = "postgres"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}\n{log}")

    def start(self) -> ThrowawayCluster:
        self.sockets.mkdir()
        if self._as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        else:
            self.user = os.environ.get("USER") or "postgres"
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c timezone=UTC -c max_connections=60"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")
        atexit.register(self.stop)  # a crashed or interrupted run must not leave a server behind
        return self

    def stop(self) -> None:
        if not self.base.exists():
            return
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def _with_dbname(dsn: str, dbname: str) -> str:
    import psycopg.conninfo

    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)


def apply_schema(dsn: str) -> None:
    """Apply the auth shim, then every file of sql/ in name order, verbatim."""
    import psycopg

    files = [SHIM, *sorted(SQL_DIR.glob("*.sql"))]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in files:
            try:
                conn.execute(path.read_text())
            except psycopg.Error as exc:
                raise RuntimeError(f"applying {path.name} failed: {exc}") from exc


def create_database(admin_dsn: str, name: str = DB_NAME) -> str:
    """(Re)create database ``name`` in the cluster of ``admin_dsn``; returns its DSN."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return _with_dbname(admin_dsn, name)


def truncate_all(dsn: str) -> None:
    """Remove every user and (by cascade) every row that belongs to one."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate auth.users cascade")


@contextlib.contextmanager
def prepared_database() -> Iterator[str]:
    """A DSN with the schema applied: ``PG_DSN`` as given, or a throwaway cluster."""
    given = os.environ.get("PG_DSN")
    if given:
        apply_schema(given)
        yield given
        return
    cluster = ThrowawayCluster().start()
    try:
        dsn = create_database(cluster.dsn)
        apply_schema(dsn)
        yield dsn
    finally:
        cluster.stop()


_shared: dict[str, str] = {}
_shared_lock = threading.Lock()


def shared_database() -> str:
    """One prepared database per process, however many conftests import ``pg_dsn``.

    It is stopped at interpreter exit, so every test module and tier shares one cluster.
    """
    with _shared_lock:
        if "dsn" not in _shared:
            stack = contextlib.ExitStack()
            _shared["dsn"] = stack.enter_context(prepared_database())
            atexit.register(stack.close)
        return _shared["dsn"]


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of a PostgreSQL database with the auth shim and sql/ applied."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        service_missing("psycopg is not installed (pip install -r requirements-dev.txt)")
    if not os.environ.get("PG_DSN"):
        try:
            find_pg_bin()
        except PostgresMissing as exc:
            service_missing(str(exc))
    return shared_database()


@pytest.fixture
def pg_clean(pg_dsn: str) -> str:
    """The session database emptied of users and their rows; yields the DSN."""
    truncate_all(pg_dsn)
    return pg_dsn
