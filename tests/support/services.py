"""The shared rule for tests that need a service (PostgreSQL, Chromium, ...).

On a developer machine a missing service skips the test with a reason. With
``CI=true`` the same situation fails, so a green CI proves every tier ran.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def service_missing(reason: str) -> None:
    """Skip (developer machine) or fail (CI) because a service is missing."""
    if in_ci():
        pytest.fail(f"{reason} — with CI=true every tier must run, not skip", pytrace=False)
    pytest.skip(reason)


def real_data_dir() -> Path:
    """``../shared/data/rppg-real`` beside the repository (any worktree), else the shared folder's usual place."""
    beside = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "rppg-real"
    return beside if beside.is_dir() else Path("/work/shared/data/rppg-real")


def require_real_data() -> Path:
    root = real_data_dir()
    if not (root / "ground_truth").is_dir():
        service_missing(f"real rPPG recordings not found at {root} (the shared data folder)")
    return root


def require_chromium() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        service_missing("Chromium not installed (apt-get install chromium)")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
