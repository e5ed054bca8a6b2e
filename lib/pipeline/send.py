"""The steps both kinds of upload share, once their row exists: send the files, verify what arrived,
mark the row ready. A local recording (:mod:`lib.pipeline.store`) sends its original too; one already
in the bucket (:mod:`lib.pipeline.finish`) sends only its derivatives.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lib.audit import AuditAction, AuditEvent
from lib.errors import (
    AuditUnavailable,
    IntegrityError,
    MetadataError,
    MetadataUnavailable,
    TransferCancelled,
    ValidationError,
)
from lib.keys import Owner
from lib.pipeline.backends import Backends
from lib.pipeline.check import PreparedRecording
from lib.pipeline.cleanup import clean_up_failure
from lib.pipeline.progress import Reporter, Step
from lib.records import FileRecord
from lib.transfer import SHA256_METADATA, ObjectTarget, upload_file
from lib.units import human_bytes


def check_unchanged(prepared: PreparedRecording) -> None:
    """The local copy must still be the file that was checked (size), or nothing is stored."""
    if not prepared.path.exists() or prepared.path.stat().st_size != prepared.size_bytes:
        raise ValidationError(
            f"The local copy of {prepared.original_name} changed or disappeared since it was checked; "
            "add the file again."
        )


@dataclass(frozen=True)
class _Send:
    step: Step
    target: ObjectTarget
    path: Path


def send_files(prepared: PreparedRecording, record: FileRecord, backends: Backends, report: Reporter,
               cancel: threading.Event | None, *, with_original: bool) -> None:
    """Upload the record's files through presigned URLs, one after the other, with byte progress."""
    for send in _plan(prepared, record, backends.space, with_original=with_original):
        if cancel is not None and cancel.is_set():
            raise TransferCancelled("The upload was cancelled.")
        report(send.step, 0, send.path.stat().st_size, unit="bytes", force=True)
        upload_file(backends.store, send.target, send.path, config=backends.transfer,
                    progress=report.bytes(send.step), cancel=cancel)


def _plan(prepared: PreparedRecording, record: FileRecord, owner: Owner, *, with_original: bool) -> list[_Send]:
    """What to send, every key as the session's user (``owner``): the store refuses any other user's."""
    sends = []
    if with_original:
        # The original carries its checksum: lib.transfer stores it as x-amz-meta-sha256 and refuses bytes
        # whose streamed digest differs (the file changed after it was checked).
        sends.append(_Send(Step.UPLOAD_ORIGINAL, ObjectTarget(record.s3_key, owner, record.content_type,
                                                              sha256=prepared.sha256), prepared.path))
    if record.thumbnail_key:
        sends.append(_Send(Step.UPLOAD_THUMBNAIL, ObjectTarget(record.thumbnail_key, owner, "image/jpeg"),
                           prepared.thumbnail))
    if record.preview_key and prepared.preview:
        sends.append(_Send(Step.UPLOAD_PREVIEW, ObjectTarget(record.preview_key, owner, "video/mp4"),
                           prepared.preview))
    return sends


def verify(backends: Backends, record: FileRecord, prepared: PreparedRecording, *, etag: str | None,
           outcome: str) -> None:
    """HEAD every object once before the row says ready: sizes, and the original's checksum.

    The only verification of what arrived (lib.transfer does not HEAD). An original the browser
    sent has no checksum metadata; ``etag`` is then its ETag when it was fetched and hashed, and
    the bucket must still hold that object, so the digest describes it. ``outcome`` ends the message.
    """
    expected = [(record.s3_key, prepared.size_bytes)]
    if record.thumbnail_key:
        expected.append((record.thumbnail_key, prepared.thumbnail.stat().st_size))
    if record.preview_key and prepared.preview:
        expected.append((record.preview_key, prepared.preview.stat().st_size))
    for key, size in expected:
        info = backends.store.head(key, owner=backends.space)
        if info.size != size:
            raise IntegrityError(
                f"The bucket holds {human_bytes(info.size)} where {human_bytes(size)} were sent, {outcome}"
            )
        if key != record.s3_key:
            continue
        stored_sha = info.metadata.get(SHA256_METADATA)
        if stored_sha and stored_sha.lower() != prepared.sha256:
            raise IntegrityError(f"The checksum stored with the upload does not match the file, {outcome}")
        if etag is not None and info.etag != etag:
            raise IntegrityError(f"{record.original_name} changed in the bucket after it was checked. {outcome}")


def mark_ready(prepared: PreparedRecording, record: FileRecord, keys: list[str], backends: Backends,
               report: Reporter, *, in_bucket: bool) -> FileRecord:
    """The row says ready (facts from the checks), or the attempt is cleaned up (module docstrings)."""
    report.step(Step.RECORD)
    try:
        if backends.trail is not None:
            backends.trail.before(AuditEvent(AuditAction.UPLOAD, record.study_id, record.id,
                                             record.research.subject_id,
                                             {"name": prepared.original_name, "size_bytes": prepared.size_bytes}))
        ready = backends.server.mark_ready(
            record.id, size_bytes=prepared.size_bytes, sha256=prepared.sha256, video=prepared.video,
            thumbnail_key=record.thumbnail_key, preview_key=record.preview_key,
            analysis=prepared.analysis.to_json() if prepared.analysis else None,
        )
    except AuditUnavailable as exc:  # not stored unless recorded: cleaned up as any failure to record it
        clean_up_failure(record, keys, exc, backends, keep_pending=in_bucket)
        raise AuditUnavailable(f"{prepared.original_name} was not stored. {exc}") from exc
    except MetadataError as exc:
        # No bytes without a ready row, so the objects go (but an original already in the bucket stays
        # with its pending row, for Retry).
        clean_up_failure(record, keys, exc, backends, keep_pending=in_bucket)
        raise type(exc)(_not_recorded(prepared, exc, in_bucket=in_bucket)) from exc
    except BaseException as exc:
        clean_up_failure(record, keys, exc, backends, keep_pending=in_bucket)
        raise
    report(Step.READY, 1.0, 1.0, force=True)
    return ready


def _not_recorded(prepared: PreparedRecording, exc: MetadataError, *, in_bucket: bool) -> str:
    why = "could not be reached" if isinstance(exc, MetadataUnavailable) else f"refused the update ({exc})"
    kept = ("The recording stays in the bucket, waiting: Retry" if in_bucket
            else "so the uploaded copy was removed again. Your local copy is kept: Retry")
    return (f"{prepared.original_name} reached the bucket, but the metadata store {why} when recording it "
            f"as ready, {kept} when the metadata store is reachable.")
