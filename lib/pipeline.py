"""The upload pipeline: a recording on local disk becomes a ``ready`` record.

Two halves, so a page can show the researcher what they are about to store
before anything leaves the machine:

* :func:`prepare` — validate (allow-list, magic bytes, size, one decoded
  frame) → probe → thumbnail → H.264 proxy when a browser cannot play the
  original → sha256 → duplicate check → quick-look pulse analysis.
  Nothing is stored anywhere.
* :func:`upload` — limits and quota → ``pending`` row → original, thumbnail
  and proxy through presigned URLs (:mod:`lib.transfer`) → verify (HEAD size,
  checksum) → ``ready``.

A recording whose original is already in the bucket (the browser sent it
straight to S3, :mod:`lib.direct_upload`) goes through the same two halves:
:func:`fetch_original` streams it to local disk, :func:`prepare` checks it, and
``upload(..., original_in_bucket=...)`` skips sending the original (HEAD
checks its size, and that it is still the object that was fetched and
hashed), sends the thumbnail and proxy, verifies and marks its ``pending``
row ready.

:func:`process_upload` runs both for a script; :func:`seed_demo` uses it to
give demo mode a sample recording.

Failure rules:

* Anything that goes wrong during the upload aborts the transfer (the
  multipart upload is aborted by lib.transfer), deletes whatever objects of
  this record reached the bucket, marks the row ``failed`` with the reason,
  and re-raises. The local copy is kept so the researcher can retry; a retry
  passes ``replaces=`` the failed record, which is cleaned up first.
* If the metadata store becomes unreachable after the bytes are in the
  bucket (``mark_ready`` fails), the objects are **removed** and the row is
  marked ``failed`` if the store answers again, else it stays ``pending``
  pointing at nothing. We chose removal over leaving the objects for
  reconciliation because the researcher is at the machine with the local copy
  and a Retry button: a clean slate and a clear message beat a half-finished
  record that only an admin's reconciliation can finish. A leftover
  ``pending`` row holds no bytes, and the Usage page's reconciliation flags it
  once it is older than ``settings.stale_pending_s``. Nothing is ever
  ``ready`` without its bytes, and no bytes sit in the bucket without a row.
* An original already in the bucket (``original_in_bucket``) is never
  deleted by a failure here: it may be gigabytes the browser took an hour to
  send. Its thumbnail and proxy are deleted, its row stays ``pending`` (no
  ``failed``: the row still points at good bytes), and the error tells the
  researcher to Retry, which runs only this finishing step again. The Upload
  page keeps the card with Retry and Discard; an abandoned one is flagged by
  the Usage page's stale-pending reconciliation after ``settings.stale_pending_s``.
  Discard (:func:`remove_unfinished`) removes the objects and then the row.
* When the storage itself is unreachable, deleting the partial objects can
  fail too; they then stay under the record's prefix with a ``failed`` (or
  ``pending``) row pointing at them, which reconciliation finds.

Progress callbacks are always called on the caller's thread (lib.transfer
guarantees it for the byte transfers), so a UI may update widgets from them.
If a callback raises, the upload is aborted and cleaned up like any failure.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from lib import media, rppg
from lib.errors import (
    AnalysisError,
    DuplicateRecording,
    FileTooLarge,
    IntegrityError,
    LocalDiskError,
    MetadataError,
    MetadataUnavailable,
    NotFound,
    PulseVaultError,
    QuotaExceeded,
    TransferCancelled,
    ValidationError,
)
from lib.keys import extension_of, new_record_id, record_keys, sanitize_filename
from lib.media import ContainerInfo
from lib.records import FileRecord, NewRecord, ResearchFields, Status, VideoProperties
from lib.repository import Repository, SqliteRepository
from lib.rppg import AnalysisSummary
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.transfer import SHA256_METADATA, upload_file
from lib.units import human_bytes

if TYPE_CHECKING:
    from lib.services import Services

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
"""Read/write block for checksums and local copies: large enough to be fast, small enough to stream."""
REPORT_EVERY_S = 0.1
"""Progress updates closer together than this are dropped (a browser cannot show them anyway)."""
THUMBNAIL_MAX_SIDE = 320
INTERRUPTED = "The upload was interrupted before it finished."


class Step(StrEnum):
    DOWNLOAD = "download"
    VALIDATE = "validate"
    PROBE = "probe"
    THUMBNAIL = "thumbnail"
    PREVIEW = "preview"
    CHECKSUM = "checksum"
    DUPLICATES = "duplicates"
    ANALYSE = "analyse"
    RECORD = "record"
    UPLOAD_ORIGINAL = "upload_original"
    UPLOAD_THUMBNAIL = "upload_thumbnail"
    UPLOAD_PREVIEW = "upload_preview"
    VERIFY = "verify"
    READY = "ready"


STEP_LABELS: dict[Step, str] = {
    Step.DOWNLOAD: "Fetching the recording from the bucket",
    Step.VALIDATE: "Checking the file",
    Step.PROBE: "Reading video properties",
    Step.THUMBNAIL: "Making a thumbnail",
    Step.PREVIEW: "Making a browser-playable preview",
    Step.CHECKSUM: "Computing the checksum",
    Step.DUPLICATES: "Looking for duplicates",
    Step.ANALYSE: "Quick-look pulse analysis",
    Step.RECORD: "Recording the upload",
    Step.UPLOAD_ORIGINAL: "Uploading the recording",
    Step.UPLOAD_THUMBNAIL: "Uploading the thumbnail",
    Step.UPLOAD_PREVIEW: "Uploading the preview",
    Step.VERIFY: "Verifying what arrived",
    Step.READY: "Ready",
}


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` in bytes (``unit="bytes"``) or as a fraction."""

    step: Step
    done: float
    total: float
    unit: str = "fraction"
    rate_bps: float | None = None
    """Bytes per second since the step started (byte steps only)."""

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, max(0.0, self.done / self.total))

    @property
    def label(self) -> str:
        return STEP_LABELS[self.step]

    def describe(self) -> str:
        """``"Uploading the recording: 3.0 MB of 12.0 MB · 4.1 MB/s"`` and the like."""
        if self.unit != "bytes":
            return f"{self.label}: {self.fraction:.0%}"
        text = f"{self.label}: {human_bytes(self.done)} of {human_bytes(self.total)}"
        return text + (f" · {human_bytes(self.rate_bps)}/s" if self.rate_bps else "")


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class PreparedRecording:
    """A checked recording on local disk, with its derivatives, ready to upload."""

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
    duplicate_of: FileRecord | None = None
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


@dataclass(frozen=True)
class OriginalInBucket:
    """An original that is already in the bucket, with the ``pending`` row that points at it."""

    record: FileRecord
    etag: str
    """The object's ETag when it was fetched: verify checks the bucket still holds those bytes."""


# --- fetch (originals already in the bucket) -------------------------------------------------------


def fetch_original(record: FileRecord, path: Path | str, *, store: ObjectStore,
                   progress: ProgressCallback | None = None) -> OriginalInBucket:
    """Stream the record's original from the bucket to ``path`` (for :func:`prepare`), with progress."""
    info = store.head(record.s3_key, owner=record.user_id)
    report = _Reporter(progress)
    report(Step.DOWNLOAD, 0, info.size, unit="bytes", force=True)
    store.download_to(record.s3_key, path, owner=record.user_id, progress=_bytes_reporter(report, Step.DOWNLOAD))
    return OriginalInBucket(record=record, etag=info.etag)


# --- prepare ---------------------------------------------------------------------------------------


def prepare(
    path: Path | str,
    original_name: str,
    *,
    settings: Settings,
    repo: Repository | None,
    workdir: Path | str,
    progress: ProgressCallback | None = None,
    analyse: bool = True,
) -> PreparedRecording:
    """Check a local recording and make what the upload needs; stores nothing.

    Derivatives go into ``workdir`` (created if missing). Raises
    :class:`UnsupportedMedia`/:class:`FileTooLarge` for files that cannot be
    accepted; a failed quick-look analysis is kept as ``analysis_error``
    instead, since it must not stop an upload. ``repo=None`` skips the
    duplicate check.
    """
    path, workdir = Path(path), Path(workdir)
    with local_writes(original_name):
        return _prepare(path, original_name, settings=settings, repo=repo, workdir=workdir,
                        report=_Reporter(progress), analyse=analyse)


def _prepare(path: Path, original_name: str, *, settings: Settings, repo: Repository | None, workdir: Path,
             report: _Reporter, analyse: bool) -> PreparedRecording:
    workdir.mkdir(parents=True, exist_ok=True)
    report.step(Step.VALIDATE)
    container = media.validate(path, original_name, max_bytes=settings.max_upload_bytes)
    report.step(Step.PROBE)
    video = media.probe(path, name=original_name)
    report.step(Step.THUMBNAIL)
    thumbnail = media.make_thumbnail(path, workdir / "thumb.jpg", max_side=THUMBNAIL_MAX_SIDE,
                                     name=original_name)
    preview = None
    if media.needs_preview(video, container):
        report.step(Step.PREVIEW)
        preview = media.make_preview(path, workdir / "preview.mp4", name=original_name,
                                     progress=lambda f: report(Step.PREVIEW, f, 1.0))
    size = path.stat().st_size
    digest = sha256_file(path, progress=lambda done: report(Step.CHECKSUM, done, size, unit="bytes"))
    duplicate = None
    if repo is not None:
        report.step(Step.DUPLICATES)
        duplicate = repo.find_ready_by_sha256(digest)
    analysis, analysis_error = (_quick_look(path, video, report, settings.hr_band_hz) if analyse else (None, None))
    return PreparedRecording(
        path=path, given_name=original_name, original_name=sanitize_filename(original_name),
        workdir=workdir, container=container, video=video, size_bytes=size, sha256=digest,
        thumbnail=thumbnail, preview=preview, duplicate_of=duplicate, analysis=analysis,
        analysis_error=analysis_error,
    )


def _quick_look(path: Path, video: VideoProperties, report: _Reporter,
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


# --- upload ----------------------------------------------------------------------------------------


def upload(
    prepared: PreparedRecording,
    research: ResearchFields,
    *,
    settings: Settings,
    store: ObjectStore,
    repo: Repository,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    allow_duplicate: bool = False,
    replaces: str | None = None,
    record_id: str | None = None,
    original_in_bucket: OriginalInBucket | None = None,
) -> FileRecord:
    """Store a prepared recording and return its ``ready`` record.

    Limits, quota and duplicates are checked before anything is stored.
    ``record_id`` (a UUID, default a new one) lets a caller know which row a
    failed attempt left; ``replaces`` is such an earlier failed attempt at
    this recording (Retry): its row, and any objects it left, are removed
    first. ``original_in_bucket`` (from :func:`fetch_original`): the original
    is already stored under that ``pending`` row, so only the derivatives are
    sent; ``research`` updates the row, ``record_id`` and ``replaces`` do not apply.
    See the module docstring for what happens on failure.
    """
    report = _Reporter(progress)
    _check_unchanged(prepared)
    current = None if original_in_bucket is None else _still_pending(original_in_bucket, repo)
    if current is not None and current.status is Status.READY:
        return current  # an earlier attempt got there (e.g. its answer was lost): nothing to do
    _check_limits(prepared, settings, repo)
    if not allow_duplicate:
        report.step(Step.DUPLICATES)
        _check_duplicate(prepared, repo)
    if current is None:
        if replaces:
            remove_unfinished(replaces, store=store, repo=repo)
        report.step(Step.RECORD)
        record = repo.create_pending(
            _new_record(prepared, research, repo.user_id, store.bucket, record_id or new_record_id()))
        owned = [k for k in (record.s3_key, record.thumbnail_key, record.preview_key) if k]
    else:
        if research != current.research:  # edited on the card since the browser finished sending
            current = repo.update_research(current.id, research)
        record = _with_derivative_keys(current, prepared)
        owned = [k for k in (record.thumbnail_key, record.preview_key) if k]  # the original stays (docstring)
    try:
        _send_all(prepared, record, settings=settings, store=store, report=report, cancel=cancel,
                  original_in_bucket=original_in_bucket)
    except BaseException as exc:  # also Streamlit's rerun/stop: never leave half a recording behind
        clean_up_failure(record, owned, exc, store=store, repo=repo, keep_pending=original_in_bucket is not None)
        raise
    return _finish(prepared, record, owned, store=store, repo=repo, report=report,
                   in_bucket=original_in_bucket is not None)


def _check_unchanged(prepared: PreparedRecording) -> None:
    if not prepared.path.exists() or prepared.path.stat().st_size != prepared.size_bytes:
        raise ValidationError(
            f"The local copy of {prepared.original_name} changed or disappeared since it was checked; "
            "add the file again."
        )


def _check_limits(prepared: PreparedRecording, settings: Settings, repo: Repository) -> None:
    if prepared.size_bytes > settings.max_upload_bytes:
        raise FileTooLarge(
            f"{prepared.original_name} is {human_bytes(prepared.size_bytes)}, over the "
            f"{human_bytes(settings.max_upload_bytes)} upload limit."
        )
    used = repo.usage().total_bytes
    if used + prepared.size_bytes > settings.quota_bytes:
        raise QuotaExceeded(
            f"{prepared.original_name} ({human_bytes(prepared.size_bytes)}) does not fit: you use "
            f"{human_bytes(used)} of your {human_bytes(settings.quota_bytes)} quota. "
            "Delete recordings you no longer need, or ask an administrator for more space."
        )


def _check_duplicate(prepared: PreparedRecording, repo: Repository) -> None:
    # Checked again here, not only in prepare(): the same file may sit twice in one batch.
    existing = repo.find_ready_by_sha256(prepared.sha256)
    if existing is not None:
        raise DuplicateRecording(
            f"{prepared.original_name} is already stored as {existing.original_name} "
            f"(uploaded {existing.created_at:%Y-%m-%d %H:%M} UTC). Skip it, or upload it anyway.",
            existing.id,
        )


def remove_unfinished(record_id: str, *, store: ObjectStore, repo: Repository) -> None:
    """Remove a record that never became ready (a failed attempt, a discarded browser upload).

    Every object under the record's folder goes first, then the row; a ``ready`` record is never touched.
    """
    try:
        old = repo.get(record_id)
    except NotFound:
        return  # already gone, or not ours: nothing to clean
    if old.status is Status.READY:
        return  # never delete a good record because a retry or discard was asked for
    folder = old.s3_key.rsplit("/", 1)[0] + "/"
    keys = {o.key for o in store.iter_objects(folder, owner=repo.user_id)}
    result = store.delete(sorted(keys), owner=repo.user_id) if keys else None
    if result is None or not result.errors:
        # The row goes only once its objects are gone, so nothing is left that no row points at.
        repo.delete(record_id)


def _still_pending(original: OriginalInBucket, repo: Repository) -> FileRecord:
    current = repo.get(original.record.id)
    if current.status is Status.FAILED:
        raise ValidationError(current.error or f"{current.original_name} could not be stored; upload it again.")
    return current


def _with_derivative_keys(record: FileRecord, prepared: PreparedRecording) -> FileRecord:
    """The row of an original already in the bucket, with its derivatives' keys beside the original."""
    folder = record.s3_key.rsplit("/", 1)[0] + "/"
    return replace(record, thumbnail_key=f"{folder}thumb.jpg",
                   preview_key=f"{folder}preview.mp4" if prepared.preview else None)


def _new_record(prepared: PreparedRecording, research: ResearchFields, user_id: str, bucket: str,
                record_id: str) -> NewRecord:
    keys = record_keys(user_id, record_id, prepared.container.extension, datetime.now(UTC))
    return NewRecord(
        id=record_id, s3_key=keys.original, bucket=bucket, original_name=prepared.original_name,
        content_type=prepared.container.content_type, size_bytes=prepared.size_bytes, research=research,
        sha256=prepared.sha256, thumbnail_key=keys.thumbnail,
        preview_key=keys.preview if prepared.preview else None, video=prepared.video,
    )


def _send_all(prepared: PreparedRecording, record: FileRecord, *, settings: Settings, store: ObjectStore,
              report: _Reporter, cancel: threading.Event | None, original_in_bucket: OriginalInBucket | None) -> None:
    owner = record.user_id
    sends: list[tuple[Step, str, Path, str, str | None]] = []
    if original_in_bucket is None:
        # The original carries its checksum: lib.transfer stores it as x-amz-meta-sha256 and refuses bytes
        # whose streamed digest differs (the file changed after it was checked).
        sends.append((Step.UPLOAD_ORIGINAL, record.s3_key, prepared.path, record.content_type, prepared.sha256))
    if record.thumbnail_key:
        sends.append((Step.UPLOAD_THUMBNAIL, record.thumbnail_key, prepared.thumbnail, "image/jpeg", None))
    if record.preview_key and prepared.preview:
        sends.append((Step.UPLOAD_PREVIEW, record.preview_key, prepared.preview, "video/mp4", None))
    for step, key, path, content_type, sha256 in sends:
        if cancel is not None and cancel.is_set():
            raise TransferCancelled("The upload was cancelled.")
        report(step, 0, path.stat().st_size, unit="bytes", force=True)
        upload_file(store, key, path, owner=owner, content_type=content_type,
                    progress=_bytes_reporter(report, step), cancel=cancel,
                    concurrency=settings.transfer_concurrency, part_size=settings.transfer_part_size_bytes,
                    sha256=sha256)
    report.step(Step.VERIFY)
    _verify(store, record, prepared, original_in_bucket)
    if original_in_bucket is not None:
        # Metadata cannot be added to an object after it is stored; a tag can. The row holds the digest
        # too, so a store that refuses tagging is not fatal.
        try:
            store.put_tags(record.s3_key, {SHA256_METADATA: prepared.sha256}, owner=owner)
        except PulseVaultError as exc:
            log.info("upload: sha256 tag not set on record %s: %s", record.id, exc)


def _verify(store: ObjectStore, record: FileRecord, prepared: PreparedRecording,
            original_in_bucket: OriginalInBucket | None) -> None:
    """HEAD every object once more before the row says ready: sizes, and the original's checksum.

    An original already in the bucket has no checksum metadata (the browser sent it in parts); its
    ETag must still be the one it had when it was fetched and hashed, so the digest describes it.
    """
    outcome = "Retry." if original_in_bucket else "so the upload was removed. Retry."
    expected = [(record.s3_key, prepared.size_bytes)]
    if record.thumbnail_key:
        expected.append((record.thumbnail_key, prepared.thumbnail.stat().st_size))
    if record.preview_key and prepared.preview:
        expected.append((record.preview_key, prepared.preview.stat().st_size))
    for key, size in expected:
        info = store.head(key, owner=record.user_id)
        if info.size != size:
            raise IntegrityError(
                f"The bucket holds {human_bytes(info.size)} where {human_bytes(size)} were sent, {outcome}"
            )
        stored_sha = info.metadata.get(SHA256_METADATA)
        if key == record.s3_key and stored_sha and stored_sha.lower() != prepared.sha256:
            raise IntegrityError(f"The checksum stored with the upload does not match the file, {outcome}")
        if key == record.s3_key and original_in_bucket and info.etag != original_in_bucket.etag:
            raise IntegrityError(f"{record.original_name} changed in the bucket after it was checked. {outcome}")


def _finish(prepared: PreparedRecording, record: FileRecord, keys: list[str], *, store: ObjectStore,
            repo: Repository, report: _Reporter, in_bucket: bool) -> FileRecord:
    report.step(Step.RECORD)
    try:
        ready = repo.mark_ready(
            record.id, size_bytes=prepared.size_bytes, sha256=prepared.sha256, video=prepared.video,
            thumbnail_key=record.thumbnail_key, preview_key=record.preview_key,
            analysis=prepared.analysis.to_json() if prepared.analysis else None,
        )
    except MetadataError as exc:
        # Policy (module docstring): no bytes without a ready row, so the objects go (but an original
        # already in the bucket stays with its pending row, for Retry).
        clean_up_failure(record, keys, exc, store=store, repo=repo, keep_pending=in_bucket)
        why = ("could not be reached" if isinstance(exc, MetadataUnavailable)
               else f"refused the update ({exc})")
        kept = ("The recording stays in the bucket, waiting: Retry" if in_bucket
                else "so the uploaded copy was removed again. Your local copy is kept: Retry")
        raise type(exc)(
            f"{prepared.original_name} reached the bucket, but the metadata store {why} when recording it "
            f"as ready, {kept} when the metadata store is reachable."
        ) from exc
    except BaseException as exc:
        clean_up_failure(record, keys, exc, store=store, repo=repo, keep_pending=in_bucket)
        raise
    report(Step.READY, 1.0, 1.0, force=True)
    return ready


def clean_up_failure(record: FileRecord, keys: list[str], exc: BaseException, *, store: ObjectStore,
                     repo: Repository, keep_pending: bool = False) -> None:
    """Best effort: delete these objects of the record, then mark its row failed with the reason.

    ``keep_pending``: the row still points at a good original (module docstring), so it stays pending.
    """
    try:
        result = store.delete(keys, owner=record.user_id) if keys else None
        for _key, message in result.errors if result else ():
            log.warning("upload cleanup: could not delete an object of record %s: %s", record.id, message)
    except PulseVaultError as cleanup_error:
        log.warning("upload cleanup: objects of record %s not deleted: %s", record.id, cleanup_error)
    if keep_pending:
        return
    reason = str(exc) if isinstance(exc, PulseVaultError) else INTERRUPTED
    try:
        repo.mark_failed(record.id, reason)
    except PulseVaultError as cleanup_error:
        # The row stays pending; reconciliation finds it once it is stale.
        log.warning("upload cleanup: record %s not marked failed: %s", record.id, cleanup_error)


# --- both, for scripts and the demo seed ----------------------------------------------------------------


def process_upload(
    path: Path | str,
    original_name: str,
    research: ResearchFields,
    *,
    settings: Settings,
    store: ObjectStore,
    repo: Repository,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    allow_duplicate: bool = False,
    analyse: bool = True,
) -> FileRecord:
    """Prepare and upload one local file; derivatives live in a temporary folder removed at the end.

    The source file is never modified or removed. A duplicate raises
    :class:`DuplicateRecording` unless ``allow_duplicate``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pulsevault-prepare-"))
    try:
        prepared = prepare(path, original_name, settings=settings, repo=repo, workdir=workdir,
                           progress=progress, analyse=analyse)
        return upload(prepared, research, settings=settings, store=store, repo=repo, progress=progress,
                      cancel=cancel, allow_duplicate=allow_duplicate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SAMPLE_RESEARCH = ResearchFields(
    subject_id="DEMO-01",
    session_label="sample",
    notes="Generated sample: a cartoon face whose skin pulses at 72 bpm (lossless FFV1).",
    tags=("demo", "synthetic"),
)


def seed_demo(services: Services) -> None:
    """Demo mode: one generated sample recording for the demo account, through this pipeline."""
    from lib.sample import SAMPLE_NAME, write_sample  # only demo mode draws the sample

    demo = services.demo
    if demo is None:
        return
    repo = SqliteRepository(demo.db_path, demo.user_id)
    folder = Path(tempfile.mkdtemp(prefix="sample-", dir=demo.workdir))
    try:
        clip = write_sample(folder / SAMPLE_NAME)
        record = process_upload(clip, SAMPLE_NAME, SAMPLE_RESEARCH, settings=services.settings,
                                store=services.store, repo=repo)
        log.info("demo mode: sample recording %s is %s", record.id, record.status)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- a session's local copies --------------------------------------------------------------------------


class Workspace:
    """A private temporary folder for one browser session's recordings.

    Each file gets a slot (a sub-folder named after its upload id) holding the
    local copy and its derivatives. The folder is removed by :meth:`close`, or
    when the workspace is garbage-collected (say, its session ended), or at exit.
    """

    def __init__(self, parent: Path | str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pulsevault-upload-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.root), True)

    def slot(self, slot_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", slot_id)[:80] or "file"
        return self.root / safe

    def save(self, slot_id: str, stream: BinaryIO, original_name: str) -> Path:
        """Copy ``stream`` into the slot in blocks and return the local path."""
        folder = self.slot(slot_id)
        target = folder / f"original.{extension_of(original_name) or 'bin'}"
        if hasattr(stream, "seek"):
            stream.seek(0)
        try:
            with local_writes(original_name):
                folder.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    shutil.copyfileobj(stream, out, CHUNK_BYTES)
        except LocalDiskError:
            self.remove(slot_id)  # a half-written copy is of no use to anyone
            raise
        return target

    def remove(self, slot_id: str) -> None:
        shutil.rmtree(self.slot(slot_id), ignore_errors=True)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


# --- helpers ---------------------------------------------------------------------------------------


@contextmanager
def local_writes(name: str) -> Iterator[None]:
    """Turn a failed write of a temporary file (disk full, permissions) into a clear message."""
    try:
        yield
    except PulseVaultError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise LocalDiskError(
                f"The server ran out of disk space while making the temporary copy of {name}. "
                "Free some space on the PulseVault server (or ask its administrator), then try again."
            ) from None
        raise LocalDiskError(
            f"The server could not write its temporary copy of {name} ({exc.strerror or 'write error'}). "
            "Try again; if it keeps happening, ask the server's administrator."
        ) from None


def _bytes_reporter(report: _Reporter, step: Step) -> Callable[[int, int], None]:
    """A ``(done, total)`` byte callback reporting ``step`` with the rate since it started."""
    started = time.monotonic()

    def on_bytes(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        report(step, done, total, unit="bytes", rate_bps=done / elapsed if elapsed > 0 else None)

    return on_bytes


class _Reporter:
    """Forwards progress to the caller's callback, at most every REPORT_EVERY_S except step changes."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last_step: Step | None = None
        self._last_time = 0.0

    def step(self, step: Step) -> None:
        self(step, 0.0, 1.0, force=True)

    def __call__(self, step: Step, done: float, total: float, *, unit: str = "fraction",
                 rate_bps: float | None = None, force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        finished = total > 0 and done >= total
        if not (force or finished or step != self._last_step or now - self._last_time >= REPORT_EVERY_S):
            return
        self._last_step, self._last_time = step, now
        self._callback(Progress(step=step, done=done, total=total, unit=unit, rate_bps=rate_bps))
