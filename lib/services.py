"""The backends of one running app, built once per process from Settings.

``Services`` holds what is safe to share between browser sessions: settings,
the S3 object store (one boto3 client per process), the server's own
PostgREST client (service role, cloud mode), the sign-in throttle, the check workers (one
:class:`lib.checks.CheckPool` per process, fairly shared between users) and, in demo
mode, the embedded backends. What belongs to one signed-in user, the auth
provider with its Supabase client, the metadata repository running as that
user and the server's writes for that user, is made per browser session by
:meth:`Services.new_auth`, :meth:`Services.repository_for` and
:meth:`Services.server_records_for`.

The cloud-mode classes are looked up as ``lib.auth.X``, ``lib.repository.X`` and ``lib.sessions.X`` when
used: those packages load supabase-py and postgrest on first use, so a demo-mode process never does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import lib.auth
import lib.repository
import lib.sessions
from lib.auth import AuthProvider, DemoAuth, Session
from lib.checks import CheckLimits, CheckPool
from lib.demo import DemoBackends, seed_once, start_demo
from lib.errors import PulseVaultError
from lib.export.routes import ExportBackends
from lib.export.tickets import ExportTickets
from lib.repository import Repository, ServerRecords, SqliteRepository, SqliteServerRecords
from lib.sessions import SessionStore, SqliteSessionStore, TokenCipher
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.throttle import SignInThrottle

if TYPE_CHECKING:
    from lib.jobs.backends import DriverTarget
    from lib.jobs.store import JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    object_store: ObjectStore
    """Use :attr:`store`, which waits for demo mode's storage to be up."""
    demo: DemoBackends | None = None
    sessions: SessionStore | None = None
    """Where signed-in browsers' sessions are kept (lib.sessions); None: in this browser tab only (cloud
    mode without a session key)."""
    service_client: Any = field(default=None, repr=False)
    """Cloud mode: the service-role PostgREST client behind every ServerRecords (None in demo mode)."""
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    """One per process, shared by every browser session's sign-ins."""
    checks: CheckPool = field(default_factory=lambda: check_pool(Settings(mode="demo")), repr=False)
    """The check workers; no process starts until the first check."""
    exports: ExportTickets = field(default_factory=ExportTickets, repr=False)
    """Prepared exports waiting for their download (lib.export.routes), shared by every browser session."""

    @property
    def store(self) -> ObjectStore:
        """The S3 store. In demo mode the embedded server starts in the background while the sign-in
        page renders; the first use after that waits for it (a second at most, usually not at all)."""
        if self.demo is not None:
            self.demo.wait_for_storage()
        return self.object_store

    def export_backends(self) -> ExportBackends:
        """What the export download route needs: the prepared exports, the store, the session store."""
        return ExportBackends(self.exports, self.store, self.sessions)

    def new_auth(self) -> AuthProvider:
        """A fresh auth provider for one browser session (never shared)."""
        if self.demo is not None:
            return DemoAuth(self.demo.db_path, throttle=self.throttle)
        assert self.settings.supabase is not None
        return lib.auth.SupabaseAuth(lib.auth.new_supabase_client(self.settings.supabase), self.throttle)

    def repository_for(self, auth: AuthProvider, session: Session) -> Repository:
        """The metadata repository acting as the signed-in user."""
        if self.demo is not None:
            return SqliteRepository(self.demo.db_path, session.user_id)
        # The session's own client carries the user's JWT, so RLS decides.
        return lib.repository.SupabaseRepository(auth.client, session.user_id)

    def server_records_for(self, session: Session) -> ServerRecords:
        """The server's writes (facts, row lifecycle) for the signed-in user of ``session`` only."""
        if self.demo is not None:
            return SqliteServerRecords(self.demo.db_path, session.user_id)
        return lib.repository.SupabaseServerRecords(self.service_client, session.user_id)

    def jobs_for(self, auth: AuthProvider, session: Session) -> JobStore:
        """The signed-in user's batch jobs: read as the user (row-level security in the cloud), written by the
        server for that user only."""
        from lib.jobs.store import SqliteJobs, SupabaseJobs  # the Jobs page's, not every page's, import

        if self.demo is not None:
            return SqliteJobs(self.demo.db_path, session.user_id)
        return SupabaseJobs(auth.client, self.service_client, session.user_id)

    def start_job_driver(self) -> None:
        """Make sure a background driver runs this app's unfinished jobs (:mod:`lib.jobs.launch`); never waits
        for one."""
        from lib.jobs.launch import ensure_driver

        ensure_driver(self._driver_target())

    def resume_jobs(self) -> None:
        """At start-up, cloud mode: a driver for jobs a stopped app left unfinished. Demo mode's database is new
        with every start (so there are none), and its resting memory stays without the jobs modules."""
        if self.demo is None:
            from lib.jobs.launch import resume_unfinished

            try:
                resume_unfinished(self._driver_target())
            except PulseVaultError as exc:
                log.warning("unfinished jobs could not be looked up at start-up (%s); the Jobs page resumes them",
                            type(exc).__name__)

    def _driver_target(self) -> DriverTarget:
        from lib.jobs.backends import DriverTarget

        demo = self.demo
        return DriverTarget(self.settings, db_path=demo.db_path if demo else None,
                            workdir=demo.workdir if demo else None)


DemoSeed = Callable[[Services], None]


def build_services(
    settings: Settings, *, origins: Iterable[str] = (), seed: DemoSeed | None = None
) -> Services:
    """Connect to the configured backends, or start the demo ones.

    In demo mode ``seed`` adds sample data for the demo account, once per
    process (the upload pipeline provides it).
    """
    if not settings.is_demo:
        assert settings.supabase is not None
        service_client = lib.repository.new_service_client(settings.supabase)
        return Services(settings=settings, object_store=ObjectStore.from_settings(settings),
                        service_client=service_client, sessions=_cloud_sessions(settings, service_client),
                        checks=check_pool(settings))
    demo = start_demo([*settings.app_origins, *origins])
    settings = settings.with_s3(demo.s3)
    services = Services(settings=settings, object_store=ObjectStore.from_settings(settings), demo=demo,
                        sessions=_demo_sessions(settings, demo), checks=check_pool(settings))
    if seed is not None:
        seed_once(lambda: seed(services))
    return services


MSG_NO_SESSION_KEY = (
    "Cloud mode without [app] session_key (or PULSEVAULT_SESSION_KEY): sign-ins are not kept on the server, "
    "so every reload, new tab or app restart asks to sign in again. Set a key of at least 32 random characters "
    "(python -c \"import secrets; print(secrets.token_urlsafe(32))\"), the same for every app process, and "
    "apply sql/006_app_sessions.sql (README: Sessions)."
)
"""Logged at start-up when cloud mode has no key to keep sessions with."""


def _cloud_sessions(settings: Settings, service_client: Any) -> SessionStore | None:
    """Cloud mode keeps sessions in the database, encrypted with the configured key, so they outlive a
    restart and any app process can resume them; a key made up per process could do neither, so
    without one no sessions are kept (and the start-up log says how to turn them on)."""
    if not settings.session_keys:
        log.warning(MSG_NO_SESSION_KEY)
        return None
    return lib.sessions.PostgrestSessionStore(service_client, TokenCipher(settings.session_keys),
                                              idle_timeout_s=settings.session_idle_timeout_s,
                                              lifetime_s=settings.session_lifetime_s)


def _demo_sessions(settings: Settings, demo: DemoBackends) -> SqliteSessionStore:
    """Demo mode keeps sessions next to its accounts; without a configured key, one for this process."""
    cipher = TokenCipher(settings.session_keys) if settings.session_keys else TokenCipher.for_process()
    return SqliteSessionStore(demo.db_path, cipher, idle_timeout_s=settings.session_idle_timeout_s,
                              lifetime_s=settings.session_lifetime_s)


def check_pool(settings: Settings) -> CheckPool:
    """The app's check workers, sized by the settings' caps."""
    limits = CheckLimits(total=settings.check_concurrency,
                         per_user=min(settings.check_concurrency_per_user, settings.check_concurrency))
    return CheckPool(limits, idle_exit_s=settings.check_worker_idle_s)
