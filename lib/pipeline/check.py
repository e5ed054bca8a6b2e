"""The heavy check of one local recording: nothing is stored, nothing is asked of a server.

size limit → validate (allow-list, magic bytes, structure, one decoded frame) →
probe → thumbnail → H.264 proxy when a browser cannot play the original →
sha256 → quick-look pulse analysis. :func:`check_recording` takes only
picklable values (a path, a name, a byte limit, a folder, a callback) and
returns a picklable :class:`PreparedRecording`, so it can run in a worker
process; the duplicate lookup, which needs the user's repository, is a
separate cheap step (:func:`lib.pipeline.limits.find_duplicate`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lib import media, rppg
from lib.errors import AnalysisError
from lib.keys import PREVIEW_NAME, THUMBNAIL_NAME, sanitize_filename
from lib.media import ContainerInfo
from lib.pipeline.limits import check_size
from lib.pipeline.progress import ProgressCallback, Reporter, Step
from lib.records import VideoProperties
from lib.rppg import AnalysisSummary
from lib.workspace import CHUNK_BYTES, local_writes

log = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 320
"""Longest side of a stored thumbnail, in pixels."""


@dataclass(frozen=True)
class PreparedRecording:
    """A checked recording on local disk, with its derivatives, ready to store."""

    path: Path
    given_name: str
    """The name as the researcher's system gave it (may contain folders)."""
    original_name: str
    """Sanitised: what is stored and offered on download."""
    workdir: Path
    """Owned by this recording: :func:`discard` removes it with everything inside."""
    container: ContainerInfo
    video: VideoProperties
    size_bytes: int
    sha256: str
    thumbnail: Path
    preview: Path | None
    analysis: AnalysisSummary | None = None
    analysis_error: str | None = None

    @property
    def name_changed(self) -> bool:
        """The stored name differs from the file's own name (folders aside)."""
        return self.original_name != re.split(r"[/\\]", self.given_name)[-1]

    @property
    def playback_path(self) -> Path:
        """What a browser can play: the proxy when there is one."""
        return self.preview or self.path


def check_recording(path: Path | str, name: str, *, max_bytes: int, workdir: Path | str,
                    progress: ProgressCallback | None = None, analyse: bool = True,
                    band: tuple[float, float] | None = None) -> PreparedRecording:
    """Check a local recording and make what storing it needs, in ``workdir`` (created if missing).

    Raises :class:`UnsupportedMedia`/:class:`FileTooLarge` for files that cannot be
    accepted; a failed quick-look analysis is kept as ``analysis_error`` instead,
    since it must not stop an upload. ``band`` is the quick look's heart-rate band in Hz (None: at rest).
    """
    path, workdir = Path(path), Path(workdir)
    with local_writes(name):
        workdir.mkdir(parents=True, exist_ok=True)
        return _check(path, name, max_bytes=max_bytes, workdir=workdir, report=Reporter(progress),
                      analyse=analyse, band=band)


def _check(path: Path, name: str, *, max_bytes: int, workdir: Path, report: Reporter,
           analyse: bool, band: tuple[float, float] | None) -> PreparedRecording:
    report.step(Step.VALIDATE)
    size = path.stat().st_size
    check_size(name, size, max_bytes)
    container = media.validate(path, name)
    report.step(Step.PROBE)
    video = media.probe(path, name=name)
    report.step(Step.THUMBNAIL)
    thumbnail = media.make_thumbnail(path, workdir / THUMBNAIL_NAME, max_side=THUMBNAIL_MAX_SIDE, name=name)
    preview = None
    if media.needs_preview(video, container):
        report.step(Step.PREVIEW)
        preview = media.make_preview(path, workdir / PREVIEW_NAME, name=name,
                                     progress=lambda f: report(Step.PREVIEW, f, 1.0))
    digest = sha256_file(path, progress=lambda done: report(Step.CHECKSUM, done, size, unit="bytes"))
    analysis, analysis_error = _quick_look(path, video, report, band) if analyse else (None, None)
    return PreparedRecording(
        path=path, given_name=name, original_name=sanitize_filename(name), workdir=workdir,
        container=container, video=video, size_bytes=size, sha256=digest, thumbnail=thumbnail,
        preview=preview, analysis=analysis, analysis_error=analysis_error,
    )


def _quick_look(path: Path, video: VideoProperties, report: Reporter,
                band: tuple[float, float] | None) -> tuple[AnalysisSummary | None, str | None]:
    report.step(Step.ANALYSE)
    try:
        summary = rppg.analyse(path, progress=lambda f: report(Step.ANALYSE, f, 1.0), lossless=video.lossless,
                               band=band)
    except AnalysisError as exc:
        return None, str(exc)
    except Exception:
        # The quick look is advice, not a gate: a bug in it must not stop a recording being stored.
        log.exception("quick-look analysis failed unexpectedly")
        return None, "The quick-look pulse analysis failed unexpectedly (details in the server log)."
    return summary, None


def sha256_file(path: Path, *, progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in blocks; ``progress`` gets the bytes read so far."""
    digest = hashlib.sha256()
    done = 0
    with Path(path).open("rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


def discard(prepared: PreparedRecording) -> None:
    """Remove the recording's temporary files (the workdir and everything in it)."""
    shutil.rmtree(prepared.workdir, ignore_errors=True)
