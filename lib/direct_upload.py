"""Browser-to-S3 uploads: the server signs, the browser sends the bytes.

The browser (``components/direct_upload``) asks for a multipart upload,
receives presigned part URLs in batches, PUTs the parts itself and reports
their ETags; the server never holds the recording's bytes while it goes up.
Afterwards the rest is :mod:`lib.pipeline` itself, not a copy of it: the
upload becomes an upload job (:func:`lib.uploads.from_browser`) whose check
fetches and checks the object (:func:`lib.pipeline.finish.check_in_bucket`)
and whose store step sends only the thumbnail and proxy, verifies and marks
the row ready (:func:`lib.pipeline.finish.finish_in_bucket`) — so the row ends
up exactly like one the server-side path makes.

Resume without new state. The record id of a browser upload is derived from
the user and the file's fingerprint (name, size, last-modified time and a
hash of its first MiB), ``uuid5(user, fingerprint, generation)``. The record
id is part of the object key, so S3's own list of unfinished multipart
uploads under the user's prefix *is* the fingerprint → upload-id map: it
survives a server restart and a closed tab, needs no table, and disappears
when the upload is completed or aborted. ``generation`` moves on once a
record with that id exists, so the same file can be stored again when the
researcher keeps a duplicate; a session also passes the ids its own jobs
used for records that are gone (deleted, discarded), so a new pick of the same
file after a delete never reuses the id of the record the session just lost.

Rows: a ``pending`` row is written when the browser reports every part (just
before S3 assembles the object), so no complete object ever sits in the bucket
without a row. An unfinished multipart upload has no row and is invisible to
listings: the bucket's lifecycle rule (AbortIncompleteMultipartUpload, see
the README) sweeps the ones nobody resumes.

Failure policy once the bytes are in the bucket (:mod:`lib.pipeline.finish`): a file that turns out not
to be an acceptable video is deleted and its row marked ``failed`` with the
reason. Anything else that fails while finishing (fetching, the proxy, the
derivatives' upload, verification, the metadata store) keeps the original and
its ``pending`` row and removes only the derivatives: re-sending gigabytes
because a thumbnail upload hiccupped is the worse deal. The researcher gets
Retry (runs only the finishing step again; choosing the same file again also
lands there, since :func:`start_upload` finds the complete object) and Discard
(:func:`cancel_upload`). One nobody comes back for stays ``pending`` and the
Usage page's reconciliation lists it once it is older than
``settings.stale_pending_s``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from lib.errors import IntegrityError, NotFound, PulseVaultError, UnsupportedMedia, ValidationError
from lib.keys import extension_of, record_keys, record_keys_of, sanitize_filename, user_prefix
from lib.media import CONTENT_TYPES, check_extension
from lib.pipeline.cleanup import clean_up_failure, remove_unfinished
from lib.pipeline.limits import check_fits
from lib.records import FileRecord, NewRecord, ResearchFields, Status
from lib.repository import Repository
from lib.settings import MIB, Settings
from lib.storage import MAX_PARTS, ObjectStore, PartInfo
from lib.transfer import TransferConfig
from lib.units import human_bytes

FINGERPRINT_HEAD_BYTES = MIB
"""How much of the file's start the browser hashes for the fingerprint."""
SIGN_BATCH = 64
"""Most part URLs signed per request: a 16 MiB-part upload asks about once per GiB."""
MAX_GENERATIONS = 1_000
"""Upper bound on stored copies of one identical file (each needs its own record id)."""
RECORD_NAMESPACE = uuid.UUID("5d0c6f0e-93a4-4c57-9a4a-7b2f4c1f0a11")
"""uuid5 namespace of browser-upload record ids; fixed forever, or resume breaks."""
_HEX = re.compile(r"[0-9a-f]{16,64}")


@dataclass(frozen=True)
class FileIdentity:
    """What the browser tells us about a picked file before sending any of it."""

    name: str
    size: int
    last_modified_ms: int
    head_sha256: str
    """Hex digest of the first :data:`FINGERPRINT_HEAD_BYTES` (or of the whole file if shorter)."""

    @property
    def fingerprint(self) -> str:
        raw = json.dumps([self.name, self.size, self.last_modified_ms, self.head_sha256])
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def from_client(cls, raw: Mapping[str, Any]) -> FileIdentity:
        """Validate what the browser sent; anything odd is a :class:`ValidationError`."""
        try:
            name, size = str(raw["name"]), int(raw["size"])
            modified, head = int(raw.get("lastModified") or 0), str(raw["headHash"]).lower()
        except (KeyError, TypeError, ValueError):
            raise ValidationError("The browser sent an incomplete file description; pick the file again.") from None
        if not name or len(name) > 1024 or not _HEX.fullmatch(head) or size < 0:
            raise ValidationError("The browser sent an unusable file description; pick the file again.")
        return cls(name=name, size=size, last_modified_ms=modified, head_sha256=head)


@dataclass(frozen=True)
class DirectUpload:
    """One browser upload as the server knows it (rebuilt from S3 whenever needed)."""

    user_id: str
    record_id: str
    key: str
    upload_id: str | None
    """None once the object is complete in the bucket (only the finish step is left)."""
    original_name: str
    content_type: str
    size: int
    part_size: int
    done: tuple[PartInfo, ...] = ()
    """Parts already in the bucket with the size the layout expects (resume sends only the rest)."""
    resumed: bool = False

    @property
    def part_count(self) -> int:
        return max(1, -(-self.size // self.part_size))

    @property
    def uploaded(self) -> bool:
        return self.upload_id is None

    def part_bytes(self, number: int) -> int:
        start = (number - 1) * self.part_size
        return max(0, min(self.part_size, self.size - start))

    @property
    def missing(self) -> tuple[int, ...]:
        have = {p.part_number for p in self.done}
        return tuple(n for n in range(1, self.part_count + 1) if n not in have)


# --- start / resume ----------------------------------------------------------------------------------------


def start_upload(identity: FileIdentity, *, settings: Settings, store: ObjectStore, repo: Repository,
                 retired: frozenset[str] = frozenset()) -> DirectUpload:
    """Open a multipart upload for this file, or find the one already open for it.

    Limits (allow-list, size, quota) are checked before anything is signed. ``retired``: record
    ids this session's jobs used for records that are gone; they are never handed out again.
    """
    _check_acceptable(identity)
    check_fits(identity.name, identity.size, settings, repo)
    user = repo.user_id
    ids = [record_id_for(user, identity.fingerprint, generation) for generation in range(MAX_GENERATIONS)]
    open_uploads = _open_uploads_by_record(store, user)
    # Resume first, whatever generation the open upload has (an earlier one may have been freed since).
    for record_id in ids:
        if record_id in open_uploads:
            key, upload_id = open_uploads[record_id]
            return _resumed(identity, record_id, key, upload_id, settings=settings, store=store, user=user)
    for record_id in ids:
        if record_id not in retired:
            found = _fresh_or_uploaded(identity, record_id, settings=settings, store=store, repo=repo)
            if found is not None:
                return found
    raise ValidationError("This file has been stored too many times already.")


def _fresh_or_uploaded(identity: FileIdentity, record_id: str, *, settings: Settings, store: ObjectStore,
                       repo: Repository) -> DirectUpload | None:
    """A new upload under this id, or the finish step of one completed under it; None if the id is taken."""
    user = repo.user_id
    row = _row_or_none(repo, record_id)
    if row is None:
        return _created(identity, record_id, settings=settings, store=store, user=user)
    if row.status is not Status.PENDING:
        return None
    if _object_size(store, row.s3_key, user) == identity.size:
        # Completed earlier, finish never ran (tab closed, server restarted): only finish is left.
        return _uploaded(identity, row, settings)
    # A row left by a completion that failed half-way: nothing of it is in the bucket.
    repo.delete(record_id)
    return _created(identity, record_id, settings=settings, store=store, user=user)


def record_id_for(user_id: str, fingerprint: str, generation: int = 0) -> str:
    return str(uuid.uuid5(RECORD_NAMESPACE, f"{user_id}/{fingerprint}/{generation}"))


def _check_acceptable(identity: FileIdentity) -> None:
    name = sanitize_filename(identity.name)
    check_extension(name)
    if identity.size == 0:
        raise UnsupportedMedia(f"{name} is empty (0 bytes).")


def _layout(identity: FileIdentity, settings: Settings) -> tuple[str, str, int]:
    # The type by extension for now; the bytes are sniffed once they are in.
    name = sanitize_filename(identity.name)
    return name, CONTENT_TYPES[extension_of(name)], TransferConfig.from_settings(settings).part_size_for(identity.size)


def _created(identity: FileIdentity, record_id: str, *, settings: Settings, store: ObjectStore,
             user: str) -> DirectUpload:
    name, content_type, part_size = _layout(identity, settings)
    key = record_keys(user, record_id, extension_of(name), datetime.now(UTC)).original
    upload_id = store.create_multipart(key, owner=user, content_type=content_type)
    return DirectUpload(user_id=user, record_id=record_id, key=key, upload_id=upload_id, original_name=name,
                        content_type=content_type, size=identity.size, part_size=part_size)


def _resumed(identity: FileIdentity, record_id: str, key: str, upload_id: str, *, settings: Settings,
             store: ObjectStore, user: str) -> DirectUpload:
    name, content_type, part_size = _layout(identity, settings)
    upload = DirectUpload(user_id=user, record_id=record_id, key=key, upload_id=upload_id, original_name=name,
                          content_type=content_type, size=identity.size, part_size=part_size, resumed=True)
    return refresh_parts(upload, store=store)


def _uploaded(identity: FileIdentity, row: FileRecord, settings: Settings) -> DirectUpload:
    name, _content_type, part_size = _layout(identity, settings)
    return DirectUpload(user_id=row.user_id, record_id=row.id, key=row.s3_key, upload_id=None,
                        original_name=name, content_type=row.content_type, size=identity.size,
                        part_size=part_size, resumed=True)


def refresh_parts(upload: DirectUpload, *, store: ObjectStore) -> DirectUpload:
    """The upload with ``done`` read from S3 (ListParts); parts of the wrong size count as missing."""
    if upload.upload_id is None:
        return upload
    listed = store.list_parts(upload.key, upload.upload_id, owner=upload.user_id)
    good = tuple(sorted((p for p in listed if 1 <= p.part_number <= upload.part_count
                         and p.size == upload.part_bytes(p.part_number)), key=lambda p: p.part_number))
    return replace(upload, done=good)


# --- signing ---------------------------------------------------------------------------------------------


def sign_parts(upload: DirectUpload, part_numbers: Iterable[int], *, store: ObjectStore) -> dict[int, str]:
    """Presigned PUT URLs for up to :data:`SIGN_BATCH` parts of this upload."""
    if upload.upload_id is None:
        raise ValidationError("This upload is already complete; nothing more to send.")
    numbers = sorted({int(n) for n in part_numbers})
    if len(numbers) > SIGN_BATCH:
        raise ValidationError(f"At most {SIGN_BATCH} part links are handed out at once.")
    if any(not 1 <= n <= min(upload.part_count, MAX_PARTS) for n in numbers):
        raise ValidationError("The browser asked for a part this upload does not have.")
    # Each URL signs its part's exact length: S3 refuses a longer or shorter body (and parks nothing of it).
    return {n: store.presign_part(upload.key, upload.upload_id, n, owner=upload.user_id,
                                  content_length=upload.part_bytes(n)) for n in numbers}


# --- complete / cancel ---------------------------------------------------------------------------------------


def complete_upload(upload: DirectUpload, parts: Iterable[tuple[int, str]], research: ResearchFields, *,
                    store: ObjectStore, repo: Repository) -> FileRecord:
    """Write the ``pending`` row, have S3 assemble the parts, check the size (HEAD). Returns the row.

    ETags the browser reports are checked against ListParts, and parts it does not
    report (sent before a resume) are taken from the listing. If assembling fails the
    row goes again and the multipart upload stays open, so the browser can retry.
    """
    if upload.uploaded:
        return repo.get(upload.record_id)
    etags = _all_etags(upload, parts, store)
    row = repo.create_pending(NewRecord(
        id=upload.record_id, s3_key=upload.key, bucket=store.bucket, original_name=upload.original_name,
        content_type=upload.content_type, size_bytes=upload.size, research=research,
    ))
    try:
        store.complete_multipart(upload.key, upload.upload_id, etags.items(), owner=upload.user_id)
    except BaseException:
        with suppress(PulseVaultError):
            repo.delete(row.id)
        raise
    size = _object_size(store, upload.key, upload.user_id)
    if size != upload.size:
        error = IntegrityError(f"{upload.original_name}: the bucket holds {human_bytes(size or 0)} where "
                               f"{human_bytes(upload.size)} were expected, so the upload was removed. Upload again.")
        clean_up_failure(row, [upload.key], error, store=store, repo=repo)
        raise error
    return row


def _all_etags(upload: DirectUpload, parts: Iterable[tuple[int, str]], store: ObjectStore) -> dict[int, str]:
    assert upload.upload_id is not None
    listed = {p.part_number: p for p in store.list_parts(upload.key, upload.upload_id, owner=upload.user_id)}
    reported = {int(n): str(etag).strip('"') for n, etag in parts}
    etags: dict[int, str] = {}
    for number in range(1, upload.part_count + 1):
        part = listed.get(number)
        if part is None or part.size != upload.part_bytes(number):
            raise IntegrityError(f"Part {number} of {upload.original_name} is not in the bucket yet; "
                                 "resume the upload to send it.")
        if number in reported and reported[number] != part.etag:
            raise IntegrityError(f"Part {number} of {upload.original_name} changed while it was sent; "
                                 "resume the upload to send it again.")
        etags[number] = part.etag
    return etags


def cancel_upload(upload: DirectUpload, *, store: ObjectStore, repo: Repository) -> None:
    """Abort the multipart upload (S3 drops its parts); a complete object and its row are removed."""
    if upload.upload_id is not None:
        with suppress(NotFound):  # already finished or aborted elsewhere: nothing left to drop
            store.abort_multipart(upload.key, upload.upload_id, owner=upload.user_id)
        return
    remove_unfinished(upload.record_id, store=store, repo=repo)


# --- helpers -------------------------------------------------------------------------------------------------


def _row_or_none(repo: Repository, record_id: str) -> FileRecord | None:
    try:
        return repo.get(record_id)
    except NotFound:
        return None


def _object_size(store: ObjectStore, key: str, owner: str) -> int | None:
    try:
        return store.head(key, owner=owner).size
    except NotFound:
        return None


def _open_uploads_by_record(store: ObjectStore, user_id: str) -> dict[str, tuple[str, str]]:
    """record id → (key, upload id) of the user's unfinished multipart uploads (newest wins)."""
    found: dict[str, tuple[str, str, datetime]] = {}
    for item in store.list_multipart_uploads(user_prefix(user_id), owner=user_id):
        record_id = record_keys_of(item.key).record_id
        stamp = item.initiated or datetime.min.replace(tzinfo=UTC)
        if record_id not in found or found[record_id][2] <= stamp:
            found[record_id] = (item.key, item.upload_id, stamp)
    return {rid: (key, upload_id) for rid, (key, upload_id, _) in found.items()}
