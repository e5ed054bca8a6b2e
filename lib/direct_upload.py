"""Browser-to-S3 uploads: the server signs, the browser sends the bytes.

The browser (``components/direct_upload``) asks for a multipart upload,
receives presigned part URLs in batches, PUTs the parts itself and reports
their ETags; the server never holds the recording's bytes while it goes up.
Afterwards the rest is :mod:`lib.pipeline` itself, not a copy of it: the
upload becomes an upload job (:func:`lib.uploads.from_browser`) whose check
fetches and checks the object (a check worker, :mod:`lib.checks`)
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

Rows and the quota: ``start`` reserves the ``pending`` row with the size the
browser declares (``ServerRecords.reserve``: the quota check, atomic in the
database) before any part URL is signed, so an unfinished upload counts
against the quota from its first byte, and two uploads at once cannot both pass
a check only one fits. Each part URL signs its exact length, so what the parts
hold can never exceed what the row reserved. Every call on an upload re-reads
that row through the session's repository and checks the upload against it
(:func:`_reserved_row`): an upload object claiming another owner, key or size
gets nothing signed. Uploads the user abandoned (no part sent for
``settings.stale_pending_s``) are aborted when the user next starts one, which
also ends their reservations; the bucket's lifecycle rule
(AbortIncompleteMultipartUpload, see the README) sweeps the rest.

Failure policy once the bytes are in the bucket (:mod:`lib.pipeline.finish`): a file that turns out not
to be an acceptable video is deleted and its row marked ``failed`` with the
reason. Anything else that fails while finishing (fetching, the proxy, the
derivatives' upload, verification, the metadata store) keeps the original and
its ``pending`` row and removes only the derivatives: re-sending gigabytes
because a thumbnail upload hiccupped is the worse deal. The researcher gets
Retry (runs only the finishing step again; choosing the same file again also
lands there, since :func:`start_upload` finds the complete object) and Discard
(:func:`cancel_upload`). One nobody comes back for stays ``pending`` (holding
its reservation) and the Usage page's reconciliation lists it once it is older
than ``settings.stale_pending_s``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.errors import AccessDenied, IntegrityError, NotFound, PulseVaultError, UnsupportedMedia, ValidationError
from lib.keys import extension_of, owner_prefix, record_keys, record_keys_of, sanitize_filename
from lib.media import CONTENT_TYPES, check_extension
from lib.pipeline.backends import Backends
from lib.pipeline.cleanup import clean_up_failure, remove_unfinished
from lib.pipeline.limits import check_size
from lib.records import FileRecord, NewRecord, ResearchFields, Status
from lib.repository import Repository
from lib.settings import MIB, Settings
from lib.storage import MAX_PARTS, MultipartUploadInfo, PartInfo
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
ABANDONED = ("The browser stopped sending this upload long ago, so it was cancelled and its parts removed. "
             "Pick the file again to upload it.")
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
    study_id: str | None = None
    """The study it goes into (None: the personal space): every later request is signed in that space."""

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


def start_upload(identity: FileIdentity, backends: Backends, *,
                 retired: frozenset[str] = frozenset()) -> DirectUpload:
    """Open a multipart upload for this file, or find the one already open for it.

    Limits come before anything is signed: the allow-list and the upload limit here, the quota by
    reserving the pending row with the declared size (a resumed upload keeps the row it has). The
    user's own abandoned uploads are aborted on the way (:func:`_open_uploads`). ``retired``:
    record ids this session's jobs used for records that are gone; they are never handed out again.
    """
    _check_acceptable(identity)
    check_size(identity.name, identity.size, backends.settings.max_upload_bytes)
    ids = [record_id_for(backends.owner, identity.fingerprint, generation, backends.study_id)
           for generation in range(MAX_GENERATIONS)]
    open_uploads = _open_uploads(backends)
    # Resume first, whatever generation the open upload has (an earlier one may have been freed since).
    for record_id in ids:
        if record_id in open_uploads:
            resumed = _resumed(identity, record_id, *open_uploads[record_id], backends)
            if resumed is not None:
                return resumed
    for record_id in ids:
        if record_id not in retired:
            found = _fresh_or_uploaded(identity, record_id, backends)
            if found is not None:
                return found
    raise ValidationError("This file has been stored too many times already.")


def _fresh_or_uploaded(identity: FileIdentity, record_id: str, backends: Backends) -> DirectUpload | None:
    """A new upload under this id, or the finish step of one completed under it; None if the id is taken."""
    row = _row_or_none(backends.repo, record_id)
    if row is None:
        return _created(identity, record_id, backends)
    if row.status is not Status.PENDING:
        return None
    if _object_size(backends, row.s3_key) == identity.size:
        # Completed earlier, finish never ran (tab closed, server restarted): only finish is left.
        return _uploaded(identity, row, backends.settings)
    # Reserved, but its multipart upload is gone (aborted as abandoned, or by the bucket's lifecycle
    # rule): start sending again under the same reservation.
    return _created(identity, record_id, backends, reserved=row)


def record_id_for(user_id: str, fingerprint: str, generation: int = 0, study_id: str | None = None) -> str:
    """The same file in the same space always gets the same ids (so a new pick finds its upload again); a
    study's are its own, and the personal space's are the ones they always were."""
    space = "" if study_id is None else f"{study_id}/"
    return str(uuid.uuid5(RECORD_NAMESPACE, f"{user_id}/{space}{fingerprint}/{generation}"))


def _check_acceptable(identity: FileIdentity) -> None:
    name = sanitize_filename(identity.name)
    check_extension(name)
    if identity.size == 0:
        raise UnsupportedMedia(f"{name} is empty (0 bytes).")


def _layout(identity: FileIdentity, settings: Settings) -> tuple[str, str, int]:
    # The type by extension for now; the bytes are sniffed once they are in.
    name = sanitize_filename(identity.name)
    return name, CONTENT_TYPES[extension_of(name)], _part_size(identity.size, settings)


def _part_size(size: int, settings: Settings) -> int:
    return TransferConfig.from_settings(settings).part_size_for(size)


def _created(identity: FileIdentity, record_id: str, backends: Backends, *,
             reserved: FileRecord | None = None) -> DirectUpload:
    """A new multipart upload, under a pending row reserved now (or already) with the declared size."""
    name, content_type, part_size = _layout(identity, backends.settings)
    row = reserved or _reserve(identity, record_id, None, backends)
    try:
        upload_id = backends.store.create_multipart(row.s3_key, owner=backends.space, content_type=content_type)
    except BaseException:
        if reserved is None:  # no upload, so no reservation either
            with suppress(PulseVaultError):
                backends.server.delete(row.id)
        raise
    return DirectUpload(user_id=backends.owner, record_id=record_id, key=row.s3_key, upload_id=upload_id,
                        original_name=name, content_type=content_type, size=identity.size, part_size=part_size,
                        study_id=backends.study_id)


def _reserve(identity: FileIdentity, record_id: str, key: str | None, backends: Backends) -> FileRecord:
    """The pending row that holds the declared size against the quota (``QuotaExceeded`` if it does not fit)."""
    name, content_type, _part = _layout(identity, backends.settings)
    key = key or record_keys(backends.owner, record_id, extension_of(name), datetime.now(UTC),
                             backends.study_id).original
    return backends.server.reserve(NewRecord(
        id=record_id, s3_key=key, bucket=backends.store.bucket, original_name=name, content_type=content_type,
        size_bytes=identity.size, study_id=backends.study_id,
    ), backends.settings.quota_bytes, backends.settings.study_quota_bytes)


def _resumed(identity: FileIdentity, record_id: str, key: str, upload_id: str,
             backends: Backends) -> DirectUpload | None:
    """The open upload to go on with, under its pending row (reserved now if it has none yet: an upload
    started before reservations existed). None when its row has ended: the upload is aborted."""
    row = _row_or_none(backends.repo, record_id)
    if row is not None and row.status is not Status.PENDING:
        with suppress(NotFound):
            backends.store.abort_multipart(key, upload_id, owner=backends.space)
        return None
    if row is None:
        _reserve(identity, record_id, key, backends)
    name, content_type, part_size = _layout(identity, backends.settings)
    upload = DirectUpload(user_id=backends.owner, record_id=record_id, key=key, upload_id=upload_id,
                          original_name=name, content_type=content_type, size=identity.size, part_size=part_size,
                          resumed=True, study_id=backends.study_id)
    return refresh_parts(upload, backends)


def _uploaded(identity: FileIdentity, row: FileRecord, settings: Settings) -> DirectUpload:
    name, _content_type, part_size = _layout(identity, settings)
    return DirectUpload(user_id=row.user_id, record_id=row.id, key=row.s3_key, upload_id=None,
                        original_name=name, content_type=row.content_type, size=identity.size,
                        part_size=part_size, resumed=True, study_id=row.study_id)


def refresh_parts(upload: DirectUpload, backends: Backends) -> DirectUpload:
    """The upload with ``done`` read from S3 (ListParts); parts of the wrong size count as missing."""
    if upload.upload_id is None:
        return upload
    listed = backends.store.list_parts(upload.key, upload.upload_id, owner=backends.space)
    good = tuple(sorted((p for p in listed if 1 <= p.part_number <= upload.part_count
                         and p.size == upload.part_bytes(p.part_number)), key=lambda p: p.part_number))
    return replace(upload, done=good)


# --- signing ---------------------------------------------------------------------------------------------


def sign_parts(upload: DirectUpload, part_numbers: Iterable[int], backends: Backends) -> dict[int, str]:
    """Presigned PUT URLs for up to :data:`SIGN_BATCH` parts of this upload.

    The upload is checked against its reserved row first (:func:`_reserved_row`), and each URL signs
    its part's exact length: S3 refuses any other body, so the parts can never hold more than the
    size the row reserved.
    """
    if upload.upload_id is None:
        raise ValidationError("This upload is already complete; nothing more to send.")
    _reserved_row(upload, backends)
    numbers = sorted({int(n) for n in part_numbers})
    if len(numbers) > SIGN_BATCH:
        raise ValidationError(f"At most {SIGN_BATCH} part links are handed out at once.")
    if any(not 1 <= n <= min(upload.part_count, MAX_PARTS) for n in numbers):
        raise ValidationError("The browser asked for a part this upload does not have.")
    return {n: backends.store.presign_part(upload.key, upload.upload_id, n, owner=backends.space,
                                           content_length=upload.part_bytes(n)) for n in numbers}


def _reserved_row(upload: DirectUpload, backends: Backends) -> FileRecord:
    """The session's pending row for this upload, re-read through its repository; the upload must match it.

    An upload object that claims another owner, another key, another size or another part layout than
    its row and the settings give is refused, so nothing is signed or assembled from what it claims.
    """
    _check_mine(upload, backends, "sign anything for it")
    row = backends.repo.get(upload.record_id)  # NotFound for anyone else's record
    if (row.status is not Status.PENDING or row.s3_key != upload.key or row.size_bytes != upload.size
            or row.study_id != upload.study_id
            or upload.part_size != _part_size(row.size_bytes, backends.settings)):
        raise ValidationError(f"{upload.original_name}: this upload no longer matches its record; "
                              "pick the file again.")
    return row


# --- complete / cancel ---------------------------------------------------------------------------------------


def complete_upload(upload: DirectUpload, parts: Iterable[tuple[int, str]], research: ResearchFields,
                    backends: Backends) -> FileRecord:
    """Have S3 assemble the parts, check the size (HEAD) and save the research fields. Returns the row.

    ETags the browser reports are checked against ListParts, and parts it does not report (sent
    before a resume) are taken from the listing. If assembling fails the row stays pending (its
    reservation with it) and the multipart upload stays open, so the browser can retry.
    """
    if upload.uploaded:
        return backends.repo.get(upload.record_id)
    row = _reserved_row(upload, backends)
    etags = _all_etags(upload, parts, backends)
    backends.store.complete_multipart(upload.key, upload.upload_id, etags.items(), owner=backends.space)
    size = _object_size(backends, upload.key)
    if size != upload.size:
        error = IntegrityError(f"{upload.original_name}: the bucket holds {human_bytes(size or 0)} where "
                               f"{human_bytes(upload.size)} were expected, so the upload was removed. Upload again.")
        clean_up_failure(row, [upload.key], error, backends)
        raise error
    return backends.repo.update_research(row.id, research) if research != row.research else row


def _all_etags(upload: DirectUpload, parts: Iterable[tuple[int, str]], backends: Backends) -> dict[int, str]:
    assert upload.upload_id is not None
    listed = {p.part_number: p
              for p in backends.store.list_parts(upload.key, upload.upload_id, owner=backends.space)}
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


def cancel_upload(upload: DirectUpload, backends: Backends) -> None:
    """Abort the multipart upload (S3 drops its parts) and remove what the record holds: objects, then row."""
    _check_mine(upload, backends, "cancel it")
    if upload.upload_id is not None:
        with suppress(NotFound):  # already finished or aborted elsewhere: nothing left to drop
            backends.store.abort_multipart(upload.key, upload.upload_id, owner=backends.space)
    remove_unfinished(upload.record_id, backends)


# --- helpers -------------------------------------------------------------------------------------------------


def _check_mine(upload: DirectUpload, backends: Backends, action: str) -> None:
    """The upload is the session user's, in the space these backends sign in."""
    if upload.user_id != backends.owner or upload.study_id != backends.study_id:
        raise AccessDenied(f"That upload is not yours, so PulseVault will not {action}.")


def _row_or_none(repo: Repository, record_id: str) -> FileRecord | None:
    try:
        return repo.get(record_id)
    except NotFound:
        return None


def _object_size(backends: Backends, key: str) -> int | None:
    try:
        return backends.store.head(key, owner=backends.space).size
    except NotFound:
        return None


def _open_uploads(backends: Backends) -> dict[str, tuple[str, str]]:
    """record id → (key, upload id) of the user's unfinished multipart uploads (newest wins).

    Abandoned ones are aborted on the way: started, and last sent a part, more than
    ``settings.stale_pending_s`` ago. Their parts go, and their pending rows are marked failed, which
    ends their reservations. This runs whenever the user starts or resumes a browser upload; the
    Usage page's stale-upload repair does the same for any pending row, and the bucket's lifecycle
    rule sweeps what neither reaches (a user who never comes back).
    """
    found: dict[str, tuple[str, str, datetime]] = {}
    now = datetime.now(UTC)
    for item in backends.store.list_multipart_uploads(owner_prefix(backends.space), owner=backends.space):
        record_id = record_keys_of(item.key).record_id
        if backends.study_id is not None and not _uploaded_by_me(record_id, backends):
            continue  # another member's upload in the same study: theirs to resume or give up
        if _abandoned(item, backends, now):
            _give_up(item, record_id, backends)
            continue
        stamp = item.initiated or datetime.min.replace(tzinfo=UTC)
        if record_id not in found or found[record_id][2] <= stamp:
            found[record_id] = (item.key, item.upload_id, stamp)
    return {rid: (key, upload_id) for rid, (key, upload_id, _) in found.items()}


def _uploaded_by_me(record_id: str, backends: Backends) -> bool:
    row = _row_or_none(backends.repo, record_id)
    return row is not None and row.user_id == backends.owner


def _abandoned(item: MultipartUploadInfo, backends: Backends, now: datetime) -> bool:
    stale_after = timedelta(seconds=backends.settings.stale_pending_s)
    if item.initiated is None or now - item.initiated <= stale_after:
        return False
    parts = backends.store.list_parts(item.key, item.upload_id, owner=backends.space)
    last = max((p.last_modified for p in parts if p.last_modified is not None), default=item.initiated)
    return now - last > stale_after


def _give_up(item: MultipartUploadInfo, record_id: str, backends: Backends) -> None:
    with suppress(NotFound):
        backends.store.abort_multipart(item.key, item.upload_id, owner=backends.space)
    row = _row_or_none(backends.repo, record_id)
    if row is not None and row.status is Status.PENDING and _object_size(backends, row.s3_key) is None:
        backends.server.mark_failed(row.id, ABANDONED)
