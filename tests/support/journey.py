"""Helpers for issue 10's suites: recordings for the journey, numbered screenshots, a recorder of
everything the browser receives (for the secrets check), and the bucket/metadata consistency check
that the bad-input and fault suites run after every case."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lib.keys import user_prefix
from lib.records import Status
from lib.repository import Repository
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.usage import Kind, Reconciliation, reconcile
from tests.support import videos
from tests.support.app_server import REPO
from tests.support.synthetic_pulse import ClipSpec, make_clip

SCREENSHOTS = REPO / "artifacts" / "screenshots"
README_SCREENSHOT = REPO / "docs" / "screenshot.png"
PUBLISH_SCREENSHOT_ENV = "PULSEVAULT_PUBLISH_SCREENSHOT"
"""Set to ``1`` to let the journey replace :data:`README_SCREENSHOT` (the README's picture) with its own."""
README_SCREENSHOT_MAX_BYTES = 300 * 1024
FACE_HR_BPM = 72.0
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
"""Any JSON Web Token: access tokens, refresh-capable sessions, the anon and service-role keys."""


# --- recordings -------------------------------------------------------------------------------------


def lossless_face_avi(folder: Path, stem: str) -> Path:
    """A 6 s FFV1 AVI of a face pulsing at 72 bpm (about 1.3 MB): the quick look finds the pulse."""
    spec = ClipSpec(hr_bpm=FACE_HR_BPM, seconds=6, size=(200, 150), noise_sigma=0.0, seed=3)
    return make_clip(folder / stem, spec).path


def lossy_mp4(folder: Path, name: str, *, seconds: float = 2.0) -> Path:
    """A small browser-playable H.264 MP4 (no proxy needed)."""
    return videos.h264_mp4(folder / name, seconds=seconds, size=(160, 120))


# --- screenshots ------------------------------------------------------------------------------------


class Screenshots:
    """``artifacts/screenshots/<mode>/NN-name.png``, numbered in the order they were taken."""

    def __init__(self, mode: str) -> None:
        self.folder = SCREENSHOTS / mode
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    def take(self, page, name: str, *, full_page: bool = True) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


def publish_readme_screenshot(source: Path) -> Path | None:
    """Copy a journey screenshot to docs/ for the README, shrunk to a 256-colour PNG if too big; only when
    :data:`PUBLISH_SCREENSHOT_ENV` is ``1`` (a test run must not rewrite a committed file). Returns the
    path written, or None."""
    if os.environ.get(PUBLISH_SCREENSHOT_ENV) != "1":
        return None
    from PIL import Image

    README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, README_SCREENSHOT)
    if README_SCREENSHOT.stat().st_size > README_SCREENSHOT_MAX_BYTES:
        with Image.open(source) as image:
            image.convert("RGB").quantize(colors=256).save(README_SCREENSHOT, optimize=True)
    return README_SCREENSHOT


# --- what the browser receives ------------------------------------------------------------------------


@dataclass
class BrowserCapture:
    """Every page's HTML (when :meth:`snapshot` is called) and every websocket frame a page receives."""

    html: list[tuple[str, bytes]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)

    def attach(self, page) -> None:
        """Call before the first ``goto``: records every frame the app's websocket delivers."""

        def on_socket(ws) -> None:
            ws.on("framereceived", lambda payload: self.frames.append(
                payload.encode() if isinstance(payload, str) else bytes(payload)))

        page.on("websocket", on_socket)

    def snapshot(self, page, label: str) -> None:
        self.html.append((label, page.content().encode()))

    def sources(self, app_log: str = "") -> Iterable[tuple[str, bytes]]:
        yield from ((f"html:{label}", body) for label, body in self.html)
        yield from ((f"websocket frame {i}", frame) for i, frame in enumerate(self.frames))
        if app_log:
            yield "app log", app_log.encode()

    def leaks(self, secrets: dict[str, str], app_log: str = "") -> list[str]:
        """``"<secret name> in <where>"`` for every secret found anywhere."""
        found = []
        for where, body in self.sources(app_log):
            for name, value in secrets.items():
                if value and value.encode() in body:
                    found.append(f"{name} in {where}")
        return found

    def tokens(self, app_log: str = "") -> list[tuple[str, bytes]]:
        """Every JWT-shaped string found, with where it was."""
        return [(where, match) for where, body in self.sources(app_log) for match in JWT.findall(body)]


# --- bucket and metadata agree -------------------------------------------------------------------------


def object_keys(store: ObjectStore, user_id: str) -> set[str]:
    return {info.key for info in store.iter_objects(user_prefix(user_id), owner=user_id)}


def assert_consistent(store: ObjectStore, repo: Repository, settings: Settings) -> Reconciliation:
    """Reconcile the user's prefix with their rows: no orphan object and no ``ready`` row without its
    object (or with the wrong size). Objects left beside a ``failed`` row are allowed: that is the
    pipeline's documented outcome when storage is unreachable during clean-up (Discard removes them)."""
    found = reconcile(store, repo, repo.user_id, settings)
    problems = [d for d in found.discrepancies if d.kind in (Kind.ORPHAN, Kind.MISSING)]
    assert not problems, problems
    ready = {r.s3_key for r in repo.iter_all((Status.READY,))}
    assert ready <= object_keys(store, repo.user_id)
    return found


@dataclass(frozen=True)
class Holdings:
    """What a user has: object keys and row statuses."""

    objects: frozenset[str]
    rows: tuple[tuple[str, Status], ...]

    @classmethod
    def of(cls, store: ObjectStore, repo: Repository) -> Holdings:
        rows = tuple(sorted((r.id, r.status) for r in repo.iter_all()))
        return cls(frozenset(object_keys(store, repo.user_id)), rows)
