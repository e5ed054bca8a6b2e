"""Demo mode: embedded backends so the app runs with no credentials at all.

An S3 API (SeaweedFS's ``weed mini``, a child process on 127.0.0.1 on free
ports, see :mod:`lib.seaweedfs`), a SQLite database for accounts and metadata,
and two seeded accounts, a researcher and an administrator (the role only
the server sets; both shown on the sign-in page). Everything lives in one
temporary folder that goes when the app stops; the app says so in a banner.

The S3 server is a real one: it checks signatures, so a share link stops
working at its expiry and a changed link is refused, as in cloud mode. It keeps
objects on disk, so a recording at the upload limit does not sit in memory.
It starts in the background (about a second) while the sign-in page renders:
:meth:`DemoBackends.wait_for_storage` is the one place that waits for it, and
:class:`lib.services.Services` calls it before handing out the store. It
stops with the app, even a killed one (:mod:`lib.childwatch`), and takes the
temporary folder with it.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import boto3
from botocore.config import Config

from lib.auth import ADMIN_ROLE, DemoAuth
from lib.childwatch import die_with_parent
from lib.errors import PulseVaultError, StorageUnavailable
from lib.seaweedfs import READY_TIMEOUT_S, SeaweedFS, admin_identities, start_seaweedfs
from lib.settings import DEFAULT_APP_ORIGINS, S3Settings, Settings

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@pulsevault.app"
DEMO_PASSWORD = "pulse-demo-2026"
DEMO_ADMIN_EMAIL = "admin@pulsevault.app"
DEMO_ADMIN_PASSWORD = "pulse-admin-2026"
DEMO_BUCKET = "pulsevault-demo"
DEMO_REGION = "us-east-1"
CORS_MAX_AGE_S = 3_000
SEED_NICENESS = 10
"""The seeding process yields the CPU to the app: the first pages render before the sample is drawn."""
REPO_ROOT = Path(__file__).resolve().parents[1]
"""Where ``python -m lib.sample`` runs from."""
STORAGE_FOLDER = "s3"
"""The S3 server's data folder inside the demo's temporary folder."""


class StorageStartup:
    """The embedded S3 server coming up in the background: answering, with the bucket and its CORS rule."""

    def __init__(self, server: SeaweedFS, s3: S3Settings, origins: tuple[str, ...]) -> None:
        self.server = server
        self._done = threading.Event()
        self._error: PulseVaultError | None = None
        threading.Thread(target=self._run, args=(s3, origins), name="pulsevault-demo-storage", daemon=True).start()

    def _run(self, s3: S3Settings, origins: tuple[str, ...]) -> None:
        try:
            self.server.wait_ready()
            _create_bucket(s3, origins)
        except PulseVaultError as exc:
            self._error = exc
        except Exception as exc:  # boto3's own errors: the demo has no storage, say so once
            log.exception("demo mode: setting up the embedded S3 bucket failed")
            self._error = StorageUnavailable(f"The demo's storage could not be set up ({type(exc).__name__}); "
                                             "restart PulseVault.")
        finally:
            self._done.set()

    def wait(self, timeout_s: float) -> None:
        if not self._done.wait(timeout_s):
            raise StorageUnavailable("The demo's storage is still starting; try again in a moment.")
        if self._error is not None:
            raise self._error


@dataclass(frozen=True)
class DemoBackends:
    s3: S3Settings
    db_path: Path
    workdir: Path
    email: str
    password: str = field(repr=False)
    user_id: str
    admin_email: str = DEMO_ADMIN_EMAIL
    admin_password: str = field(repr=False, default=DEMO_ADMIN_PASSWORD)
    storage: StorageStartup | None = field(default=None, repr=False, compare=False)
    """The embedded server coming up; None when ``s3`` is already answering (a script's own server)."""

    def wait_for_storage(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Return once the embedded S3 answers with the bucket in place; :class:`StorageUnavailable` if it cannot."""
        if self.storage is not None:
            self.storage.wait(timeout_s)


_lock = threading.Lock()
_running: DemoBackends | None = None
_seeded = False
_seed_done = threading.Event()


def start_demo(origins: Iterable[str]) -> DemoBackends:
    """Start the embedded backends once per process and return them.

    ``origins`` are the app's browser origins, allowed by the bucket's CORS
    rule so the browser can PUT parts straight to S3.
    """
    global _running
    with _lock:
        if _running is None:
            # The local app's own origins always: S3 refuses a rule without any, and the first caller
            # (a script, a test) may name none while the app it runs beside still needs them.
            _running = _start((*DEFAULT_APP_ORIGINS, *origins))
        return _running


def seed_once(seed: Callable[[], None]) -> None:
    """Run ``seed`` (sample data for the demo account) once per process.

    It runs in the background: generating, analysing and uploading the sample
    takes seconds, and the sign-in page should not wait for it. A failed seed
    leaves an empty but working demo; it must not stop the app.
    """
    global _seeded
    with _lock:
        if _seeded:
            return
        _seeded = True
    # A daemon: the heavy work runs in a child process (lib.sample), so this thread only waits,
    # and stopping the app must not wait for the sample to finish.
    threading.Thread(target=_run_seed, args=(seed,), name="pulsevault-demo-seed", daemon=True).start()


@dataclass(frozen=True)
class SeedTarget:
    """Where the demo sample goes: all the seeding process needs, and nothing it cannot pickle."""

    settings: Settings
    db_path: Path
    user_id: str
    workdir: Path


def seed_sample(settings: Settings, demo: DemoBackends) -> None:
    """Store the generated sample recording for the demo account (``python -m lib.sample``), in a child process.

    Drawing, checking and analysing the sample loads OpenCV and SciPy and takes seconds of CPU, which
    the app (still rendering its first pages) should neither hold in memory nor wait for when it stops.
    A plain subprocess, not ``multiprocessing``: under Streamlit ``__main__`` is the app script, which a
    spawned child would run again. The target goes over stdin, so no secret shows in a process list.
    """
    demo.wait_for_storage()  # the child talks to the embedded S3
    target = SeedTarget(settings, demo.db_path, demo.user_id, demo.workdir)
    child = subprocess.Popen([sys.executable, "-m", "lib.sample"], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                             preexec_fn=die_with_parent(signal.SIGTERM))  # this thread waits for it
    os.setpriority(os.PRIO_PROCESS, child.pid, SEED_NICENESS)
    child.communicate(pickle.dumps(target))
    if child.returncode != 0:
        raise PulseVaultError(f"storing the demo sample failed (seeding process exit code {child.returncode})")


def seeding_done(timeout_s: float | None = 0) -> bool:
    """Whether the sample data is in place (waiting up to ``timeout_s``)."""
    return _seed_done.wait(timeout_s)


def _run_seed(seed: Callable[[], None]) -> None:
    try:
        seed()
    except Exception:
        log.exception("demo mode: seeding the sample data failed")
    finally:
        _seed_done.set()


def _start(origins: tuple[str, ...]) -> DemoBackends:
    workdir = Path(tempfile.mkdtemp(prefix="pulsevault-demo-"))
    # Random credentials: the server checks them, and no well-known demo secret exists anywhere.
    s3 = S3Settings(bucket=DEMO_BUCKET, region=DEMO_REGION, access_key_id="PVDEMO" + secrets.token_hex(7).upper(),
                    secret_access_key=secrets.token_urlsafe(30))
    try:
        # The watcher removes the folder once the server has stopped, also when this process was killed.
        identities = admin_identities(s3.access_key_id, s3.secret_access_key)
        server = start_seaweedfs(workdir / STORAGE_FOLDER, identities=identities, allowed_origins=origins,
                                 cleanup=[workdir])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    atexit.register(server.stop, wait=False)
    s3 = replace(s3, endpoint_url=server.endpoint_url)
    db_path = workdir / "pulsevault-demo.sqlite3"
    accounts = DemoAuth(db_path)
    user_id = accounts.ensure_account(DEMO_EMAIL, DEMO_PASSWORD)
    accounts.ensure_account(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, role=ADMIN_ROLE)
    log.info("demo mode: S3 at %s, database in %s", s3.endpoint_url, workdir)
    return DemoBackends(s3=s3, db_path=db_path, workdir=workdir, email=DEMO_EMAIL, password=DEMO_PASSWORD,
                        user_id=user_id, storage=StorageStartup(server, s3, origins))


def _create_bucket(s3: S3Settings, origins: tuple[str, ...]) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=s3.bucket)
    client.put_bucket_cors(Bucket=s3.bucket, CORSConfiguration=cors_configuration(origins))


def cors_configuration(origins: Iterable[str]) -> dict:
    """The CORS rule the bucket needs for browser uploads and playback.

    The README shows the same rule for a real bucket.
    """
    return {
        "CORSRules": [
            {
                "AllowedOrigins": sorted(set(origins)),
                "AllowedMethods": ["GET", "PUT", "HEAD"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag", "Content-Length", "Content-Range"],
                "MaxAgeSeconds": CORS_MAX_AGE_S,
            }
        ]
    }
