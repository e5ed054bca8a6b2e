"""Regenerating a recording's browser preview and thumbnail from its original, as a batch job's work.

The worker makes them with the upload pipeline's own code (:func:`lib.media.make_thumbnail` at
:data:`lib.pipeline.check.THUMBNAIL_MAX_SIDE`, :func:`lib.media.make_preview` when
:func:`lib.media.needs_preview` says a browser cannot play the original) and PUTs them straight to the bucket
through presigned links signed for exactly the recording's ``thumb.jpg`` and (only when one is needed)
``preview.mp4``. Why PUT from the worker rather than return the bytes: a preview of a long recording is
hundreds of megabytes, more than Ray's object store (:data:`lib.jobs.engine.OBJECT_STORE_BYTES`) should carry
and a second copy through the driver for nothing; the workers need a network path to S3 anyway (the GET of the
original), and a PUT link for one key grants nothing else. The links carry no secret and sign the content
type and the metadata below, so a worker cannot store anything but what was asked under those keys.

The driver then checks the objects itself (HEAD: they exist, their size is what the worker reported, their
metadata names this original) and only then writes the facts (the keys) to the row. Each object records which
original bytes (the original's ETag) and which derivation (:data:`DERIVATION`) it was made from, so a
recording whose derivatives are current is skipped without running anything.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from lib.errors import PulseVaultError, ValidationError
from lib.keys import Owner, record_keys_of
from lib.media.containers import BROWSER_CONTENT_TYPES
from lib.records import FileRecord
from lib.storage import ObjectStore
from lib.transfer import SignedDownload, SignedUpload, put_signed, sign_download, sign_upload

log = logging.getLogger(__name__)

DERIVATION = "1"
"""Which way derivatives are made; raised when lib.media's thumbnail or preview changes, so a job makes them
again."""
DERIVED_FROM = "derived-from"
"""Object metadata: the original's ETag the derivative was made from."""
DERIVATION_META = "derivation"
THUMBNAIL_TYPE = "image/jpeg"
PREVIEW_TYPE = "video/mp4"


@dataclass(frozen=True)
class DeriveTask:
    """One recording's derivatives for a worker: where to read the original and where to PUT each. Picklable,
    no secret."""

    name: str
    workdir: Path
    source: SignedDownload
    thumbnail: SignedUpload
    preview: SignedUpload | None
    """None: a browser plays the original, so no preview is made (as in the upload pipeline)."""

    @property
    def fetched_path(self) -> Path:
        return self.workdir / "original"


@dataclass(frozen=True)
class DeriveOutcome:
    """What a worker stored (bytes of each), or why it could not (``refused``: the file itself, no retry)."""

    thumbnail_bytes: int = 0
    preview_bytes: int | None = None
    message: str = ""
    refused: bool = False

    @property
    def ok(self) -> bool:
        return not self.message


def needs_preview(record: FileRecord) -> bool:
    """The upload pipeline's rule (:func:`lib.media.needs_preview`) from the row's facts."""
    playable = record.video is not None and record.video.browser_playable
    return not (playable and record.content_type in BROWSER_CONTENT_TYPES)


def wanted_keys(record: FileRecord) -> tuple[str, str | None]:
    """The thumbnail's key and (when one is needed) the preview's, beside the original."""
    keys = record_keys_of(record.s3_key)
    return keys.thumbnail, keys.preview if needs_preview(record) else None


def is_current(store: ObjectStore, record: FileRecord, owner: Owner) -> bool:
    """Whether the row points at derivatives made by :data:`DERIVATION` from the original's current bytes."""
    thumbnail, preview = wanted_keys(record)
    if record.thumbnail_key != thumbnail or (preview is not None and record.preview_key != preview):
        return False
    etag = store.head(record.s3_key, owner=owner).etag
    return all(_made_from(store, key, owner, etag) for key in (thumbnail, preview) if key is not None)


def _made_from(store: ObjectStore, key: str, owner: Owner, etag: str) -> bool:
    try:
        meta = store.head(key, owner=owner).metadata
    except PulseVaultError:  # missing (or unreadable now): make it again
        return False
    return meta.get(DERIVED_FROM) == etag and meta.get(DERIVATION_META) == DERIVATION


def derive_task(store: ObjectStore, record: FileRecord, owner: Owner, workdir: Path) -> DeriveTask:
    """Links for exactly this recording's original (GET) and derivatives (PUT), pinned to the original's bytes."""
    source = sign_download(store, record.s3_key, owner=owner)
    meta = {DERIVED_FROM: source.etag, DERIVATION_META: DERIVATION}
    thumbnail, preview = wanted_keys(record)
    return DeriveTask(
        name=record.original_name, workdir=workdir, source=source,
        thumbnail=sign_upload(store, thumbnail, owner=owner, content_type=THUMBNAIL_TYPE, metadata=meta),
        preview=None if preview is None else sign_upload(store, preview, owner=owner, content_type=PREVIEW_TYPE,
                                                         metadata=meta))


def check_stored(store: ObjectStore, task: DeriveTask, outcome: DeriveOutcome, owner: Owner) -> None:
    """The driver's own look at what the worker says it stored: each object is there, of the reported size, made
    from this original; ValidationError (or the store's error) if not."""
    expected = [(task.thumbnail.key, outcome.thumbnail_bytes)]
    if task.preview is not None:
        expected.append((task.preview.key, outcome.preview_bytes or 0))
    for key, size in expected:
        info = store.head(key, owner=owner)
        if info.size != size or info.metadata.get(DERIVED_FROM) != task.source.etag:
            raise ValidationError(f"{key.rsplit('/', 1)[-1]} differs in size or origin from the worker's report")


def derive_on_worker(task: DeriveTask) -> DeriveOutcome:
    """On a Ray worker: fetch the original, make the thumbnail (and preview) with the upload pipeline's code, PUT
    each through its link. Every ending is an outcome; the folder goes either way."""
    from lib import media
    from lib.pipeline.check import THUMBNAIL_MAX_SIDE
    from lib.transfer import download_signed

    try:
        task.workdir.mkdir(parents=True, exist_ok=True)
        download_signed(task.source, task.fetched_path)
        thumb = media.make_thumbnail(task.fetched_path, task.workdir / "thumb.jpg", max_side=THUMBNAIL_MAX_SIDE,
                                     name=task.name)
        thumbnail_bytes = put_signed(task.thumbnail, thumb)
        preview_bytes = None
        if task.preview is not None:
            preview = media.make_preview(task.fetched_path, task.workdir / "preview.mp4", name=task.name)
            preview_bytes = put_signed(task.preview, preview)
        return DeriveOutcome(thumbnail_bytes, preview_bytes)
    except ValidationError as exc:  # the file itself: no retry
        return DeriveOutcome(message=str(exc), refused=True)
    except PulseVaultError as exc:
        return DeriveOutcome(message=str(exc))
    except Exception:
        log.exception("regenerating the derivatives of a recording failed unexpectedly")
        return DeriveOutcome(message="Its preview could not be made (an unexpected error; details in the log).")
    finally:
        shutil.rmtree(task.workdir, ignore_errors=True)
