"""My files: what a researcher does with stored recordings, without any UI.

Ownership comes from the signed-in session, never from an object that claims
an owner: every function here takes the session's repository (``repo``, bound
to the signed-in user; in the cloud it carries their JWT, so row-level
security decides) and record *ids*, re-reads each row through it before
anything is signed, downloaded or deleted (another user's id is ``NotFound``),
and passes ``repo.user_id`` as the owner to the store, whose
:func:`lib.keys.check_owner` refuses any key outside that user's prefix. There
is no way to hand these functions a record built elsewhere. Writes (marking a
row failed, deleting it, saving an analysis) go through the server's records
for the same user (``server``, ``lib.repository.ServerRecords``).

Presigned GETs answer with the Content-Type of the key's extension
(:func:`lib.media.served_as`), never a row's, and only video and image types
are ever served inline: anything else downloads as an attachment.

Deleting a recording (see :func:`delete_records`) runs in this order, so that
a failure part-way never leaves bytes that no row points at:

0. its objects are listed (the record's keys plus anything under its prefix);
   if the store cannot be reached now, nothing has changed;
1. the row is marked ``failed`` with the reason :data:`DELETING`: from now on
   nothing calls it ready, and the quota stops counting it;
2. every object under the record's prefix is deleted (original, thumbnail,
   preview, ground truth, and anything else a broken upload left there);
3. the row is deleted.

If step 2 or 3 fails, the row stays ``failed`` with a reason that says the
deletion did not finish; the researcher sees it in My files (Discard deletes
it again) and the Usage page's reconciliation lists it as a failed row, with
or without objects. Orphan objects (bytes without a row) are never created by
a deletion. If step 1 fails nothing has changed.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lib import rppg
from lib.audit import AuditAction, AuditEvent, AuditTrail, research_change
from lib.checks import UNEXPECTED_CHECK, AnalysisTask, CheckOutcome
from lib.consent import MSG_ALREADY_WITHDRAWN, check_shareable
from lib.errors import AccessDenied, AnalysisError, NotFound, PulseVaultError, StorageError, ValidationError
from lib.ground_truth_files import load_record_truth
from lib.keys import Owner, Space, record_folder
from lib.media import served_as
from lib.records import MAX_PAGE_SIZE, Consent, FileRecord, ListQuery, ResearchFields, Status
from lib.repository import Repository, ServerRecords
from lib.repository.base import check_delete, record_space
from lib.settings import MAX_PRESIGN_EXPIRY_S, MIN_PRESIGN_EXPIRY_S, Settings
from lib.storage import ObjectStore
from lib.transfer import sign_download
from lib.units import counted

log = logging.getLogger(__name__)

DELETING = "Being deleted: if this stays, the deletion did not finish. Delete (or Discard) it again."
LINK_REUSE_FRACTION = 0.5
"""A cached link is reused while more than this fraction of its lifetime is left."""
LINK_CACHE_SIZE = 2_000
SHARE_EXPIRY_PRESETS_S = (60, 300, 900, 3_600, 6 * 3_600, 12 * 3_600, 86_400)
"""What the expiry picker offers (clipped to the configured bounds)."""

CSV_COLUMNS = (
    "id", "original_name", "status", "error", "subject_id", "session_label", "tags", "notes",
    "duration_s", "fps", "width", "height", "frame_count", "codec", "lossless", "browser_playable",
    "size_bytes", "content_type", "sha256", "quick_look_method", "quick_look_hr_bpm", "quick_look_snr_db",
    "created_at", "updated_at",
)


# --- links ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedUrl:
    """A presigned GET, the moment it stops working, and the type the bucket answers with."""

    url: str
    expires_at: datetime
    expires_s: int
    content_type: str


ShareLink = SignedUrl


def _sign(store: ObjectStore, owner: Owner, key: str, *, expires_s: int | None, inline: bool,
          download_name: str | None = None) -> SignedUrl:
    content_type, inline_ok = served_as(key)
    seconds = store.expiry(expires_s)
    now = datetime.now(UTC)
    url = store.presign_get(key, owner=owner, expires=seconds, download_name=download_name,
                            inline=inline and inline_ok, content_type=content_type)
    return SignedUrl(url=url, expires_at=now + timedelta(seconds=seconds), expires_s=seconds,
                     content_type=content_type)


def playback_url(store: ObjectStore, repo: Repository, record_id: str, *, trail: AuditTrail,
                 expires_s: int | None = None) -> SignedUrl:
    """What the player loads: the H.264 preview when there is one, else the original (inline). Its audit entry
    (a view) is written first: no entry, no link.

    S3 answers Range requests on presigned GETs, so the browser can seek.
    """
    record = repo.get(record_id)
    seconds = store.expiry(expires_s)
    trail.before(AuditEvent.about(AuditAction.VIEW, record, expires_s=seconds))
    return _sign(store, record_space(repo.user_id, record), record.playback_key, expires_s=seconds, inline=True)


def _thumbnail(store: ObjectStore, owner: Owner, record: FileRecord) -> SignedUrl | None:
    """The thumbnail of a ready record of ``owner``'s, or None (failed and pending uploads keep no objects)."""
    if record.status is not Status.READY or not record.thumbnail_key:
        return None
    return _sign(store, owner, record.thumbnail_key, expires_s=None, inline=True)


def download_url(store: ObjectStore, repo: Repository, record_id: str, *, trail: AuditTrail,
                 expires_s: int | None = None) -> SignedUrl:
    """The original, as an attachment saved under its original (sanitised) name. Its audit entry (a download)
    is written first: no entry, no link."""
    return _download(store, repo, record_id, trail, AuditAction.DOWNLOAD, expires_s)


def _download(store: ObjectStore, repo: Repository, record_id: str, trail: AuditTrail, action: AuditAction,
              expires_s: int | None) -> SignedUrl:
    record = repo.get(record_id)
    if record.status is not Status.READY:
        raise ValidationError("Only a stored (ready) recording can be downloaded.")
    seconds = store.expiry(expires_s)
    expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
    trail.before(AuditEvent.about(action, record, expires_s=seconds,
                                  expires_at=expires_at.isoformat(timespec="seconds")))
    return _sign(store, record_space(repo.user_id, record), record.s3_key, expires_s=seconds, inline=False,
                 download_name=record.original_name)


def share_expiry_options(settings: Settings) -> tuple[int, ...]:
    """Presets within the configured bounds, plus the configured default, ascending."""
    options = {s for s in SHARE_EXPIRY_PRESETS_S if MIN_PRESIGN_EXPIRY_S <= s <= MAX_PRESIGN_EXPIRY_S}
    options.add(settings.clamp_expiry(None))
    return tuple(sorted(options))


def share_link(store: ObjectStore, repo: Repository, record_id: str, expires_s: int | float | None,
               settings: Settings, *, trail: AuditTrail) -> ShareLink:
    """A link to the original for a colleague, valid for ``expires_s`` clamped to the configured bounds; refused
    (in words) unless the recording's consent allows sharing. Its audit entry (with the expiry) is written first:
    no entry, no link."""
    check_shareable(repo.get(record_id))
    return _download(store, repo, record_id, trail, AuditAction.SHARE, settings.clamp_expiry(expires_s))


def edit_research(repo: Repository, record_id: str, research: ResearchFields, *, trail: AuditTrail) -> FileRecord:
    """Save a recording's research fields, with an audit entry of each change (before and after); if the entry
    cannot be written, the edit is undone."""
    before = repo.get(record_id)
    after = repo.update_research(record_id, research)
    if after.research != before.research:
        trail.after(AuditEvent.about(AuditAction.EDIT_RESEARCH, before,
                                     **research_change(before.research, after.research)),
                    undo=lambda: repo.update_research(record_id, before.research))
    return after


def describe_expiry(seconds: int) -> str:
    """``90`` → ``"1 min 30 s"``; ``86400`` → ``"24 h"``."""
    hours, rest = divmod(int(seconds), 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


class LinkCache:
    """Presigned links reused across reruns while most of their life is left.

    A fresh signature every rerun would change every thumbnail's and the
    player's URL, so the browser would fetch them all again (and the video
    would restart). One per browser session; bounded, oldest dropped first.
    """

    def __init__(self, max_entries: int = LINK_CACHE_SIZE) -> None:
        self._links: OrderedDict[tuple[str, ...], SignedUrl] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], make: Callable[[], SignedUrl | None]) -> SignedUrl | None:
        cached = self.peek(key)
        if cached is not None:
            return cached
        link = make()
        if link is not None:
            self.put(key, link)
        return link

    def peek(self, key: tuple[str, ...]) -> SignedUrl | None:
        """The cached link while most of its life is left, else None."""
        now = datetime.now(UTC)
        with self._lock:
            cached = self._links.get(key)
            if cached is not None and cached.expires_at - now > timedelta(
                    seconds=cached.expires_s * LINK_REUSE_FRACTION):
                self._links.move_to_end(key)
                return cached
        return None

    def put(self, key: tuple[str, ...], link: SignedUrl) -> None:
        with self._lock:
            self._links[key] = link
            while len(self._links) > self._max:
                self._links.popitem(last=False)

    def forget(self, record_id: str) -> None:
        """Drop every link of one recording (its keys changed: a move), so the next run signs the new ones."""
        with self._lock:
            for key in [k for k in self._links if record_id in k]:
                del self._links[key]

    def __len__(self) -> int:
        return len(self._links)

    def __repr__(self) -> str:  # never the URLs: they are credentials for their lifetime
        return f"LinkCache({len(self._links)} links)"


def thumbnail_urls(store: ObjectStore, repo: Repository, record_ids: Iterable[str], *,
                   cache: LinkCache | None = None) -> dict[str, str | None]:
    """Record id → thumbnail URL, for exactly the rows given (the page on screen).

    Links still in ``cache`` are reused; the rest are signed from the rows re-read through
    ``repo`` in one query (ids that are not the user's get no picture).
    """
    owner = repo.user_id
    ids = list(dict.fromkeys(record_ids))
    out: dict[str, str | None] = {}
    for record_id in ids:
        cached = cache.peek(("thumb", owner, record_id)) if cache is not None else None
        out[record_id] = cached.url if cached else None
    missing = [i for i in ids if out[i] is None]
    for record in repo.get_many(missing) if missing else []:
        try:
            link = _thumbnail(store, record_space(repo.user_id, record), record)
        except PulseVaultError as exc:  # one odd row must not take the whole list down: it shows no picture
            log.warning("no thumbnail link for record %s: %s", record.id, exc)
            link = None
        if link is not None:
            if cache is not None:
                cache.put(("thumb", owner, record.id), link)
            out[record.id] = link.url
    return out


# --- listing and export --------------------------------------------------------------------------


def iter_matching(repo: Repository, query: ListQuery) -> Iterator[FileRecord]:
    """Every row matching the query's filters (all pages, in its order), a page at a time."""
    page = 1
    while True:
        result = repo.list(replace(query, page=page, page_size=MAX_PAGE_SIZE))  # every filter, the space too
        yield from result.records
        if not result.records or page * MAX_PAGE_SIZE >= result.total:
            return
        page += 1


def quick_look_hr(record: FileRecord) -> float | None:
    value = (record.analysis or {}).get("hr_bpm")
    return None if value is None else float(value)


def _csv_row(record: FileRecord) -> list[Any]:
    v = record.video
    r = record.research
    analysis = record.analysis or {}
    return [
        record.id, record.original_name, record.status.value, record.error or "", r.subject_id, r.session_label,
        ";".join(r.tags), r.notes,
        *(("", "", "", "", "", "", "", "") if v is None else
          (v.duration_s, v.fps, v.width, v.height, v.frame_count, v.codec, v.lossless, v.browser_playable)),
        record.size_bytes, record.content_type, record.sha256 or "", analysis.get("method", ""),
        _blank(analysis.get("hr_bpm")), _blank(analysis.get("snr_db")),
        record.created_at.isoformat(), record.updated_at.isoformat(),
    ]


def _blank(value: Any) -> Any:
    return "" if value is None else value


def records_csv(records: Iterable[FileRecord], *, paths: Mapping[str, str] | None = None) -> bytes:
    """UTF-8 CSV with a header row; tags are joined with ``;``. With ``paths`` (record id -> where the
    recording sits in an export), a first ``path`` column says where each row's file is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS if paths is None else ("path", *CSV_COLUMNS))
    for record in records:
        row = _csv_row(record)
        writer.writerow(row if paths is None else [paths[record.id], *row])
    return buffer.getvalue().encode("utf-8")


def export_csv(repo: Repository, query: ListQuery, *, trail: AuditTrail) -> bytes:
    """The whole filtered list (not only the page on screen) as CSV, with an audit entry (written before it is
    handed out) naming the recordings in it."""
    records = list(iter_matching(repo, query))
    trail.before(AuditEvent(AuditAction.EXPORT, query.study_id,
                            detail={"format": "csv", "count": len(records), "record_ids": [r.id for r in records],
                                    "subject_ids": sorted({r.research.subject_id for r in records} - {""})}))
    return records_csv(records)


# --- delete ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeleteFailure:
    record_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class DeleteReport:
    deleted: tuple[str, ...]
    """Ids of the records that are gone, objects and row."""
    deleted_names: tuple[str, ...]
    failed: tuple[DeleteFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        done = f"Deleted {counted(len(self.deleted), 'recording')}."
        if self.ok:
            return done
        names = "; ".join(f"{f.name}: {f.reason}" for f in self.failed)
        return f"{done} {len(self.failed)} could not be deleted completely ({names})"


def object_keys(store: ObjectStore, owner: Owner, record: FileRecord) -> list[str]:
    """The record's known keys plus anything else under its prefix (a broken upload's leftovers)."""
    known = [k for k in (record.s3_key, record.thumbnail_key, record.preview_key, record.ground_truth_key) if k]
    listed = [info.key for info in store.iter_objects(record_folder(record.s3_key), owner=owner)]
    return list(dict.fromkeys([*known, *listed]))


def _delete(store: ObjectStore, repo: Repository, server: ServerRecords, record: FileRecord,
            trail: AuditTrail) -> FileRecord:
    """``record`` is always a row just read through ``repo`` (the caller), never one handed in."""
    same_user(repo, server)
    if record.consent is Consent.WITHDRAWN:  # its erasure keeps a tombstone: finish it that way (lib.erasure)
        raise ValidationError(MSG_ALREADY_WITHDRAWN)
    _check_may_delete(repo, record)  # before anything changes
    owner = record_space(repo.user_id, record)
    keys = object_keys(store, owner, record)  # refuses foreign keys before anything changes
    trail.before(AuditEvent.about(AuditAction.DELETE, record, objects=len(keys), size_bytes=record.size_bytes))
    server.mark_failed(record.id, DELETING)
    try:
        result = store.delete(keys, owner=owner)
    except PulseVaultError as exc:
        _note_unfinished(server, record, str(exc))
        raise
    if result.errors:
        reason = f"{len(result.errors)} of its files could not be removed ({result.errors[0][1]})"
        _note_unfinished(server, record, reason)
        raise _unfinished(reason)
    server.delete(record.id)
    return record


def _check_may_delete(repo: Repository, record: FileRecord) -> None:
    """The caller may delete ``record`` (lib.studies.may_delete, with their role now): checked before the row is
    marked or an object removed, so a refusal changes nothing."""
    if record.study_id is None:
        return
    check_delete(record.study_id, repo.study(record.study_id).role, uploader_id=record.user_id,
                 caller_id=repo.user_id)


def same_user(repo: Repository, server: ServerRecords) -> str:
    """The one user both act for (they are built from the same session); anything else is refused."""
    if repo.user_id != server.user_id:
        raise AccessDenied("These records belong to another session; sign in again.")
    return repo.user_id


def _unfinished(reason: str) -> StorageError:
    return StorageError(f"The deletion did not finish: {reason}. It is marked failed; delete it again.")


def _note_unfinished(server: ServerRecords, record: FileRecord, reason: str) -> None:
    try:
        server.mark_failed(record.id, f"{DELETING} ({reason})")
    except PulseVaultError as exc:  # the DELETING mark from step 1 stays, which says the same
        log.warning("could not note the unfinished deletion of record %s: %s", record.id, exc)


def delete_records(store: ObjectStore, repo: Repository, server: ServerRecords, ids: Sequence[str], *,
                   trail: AuditTrail, progress: Callable[[int, int], None] | None = None) -> DeleteReport:
    """Delete several recordings; one failing does not stop the others (nor one whose audit entry cannot be
    written: that one is not touched). Never raises for a record."""
    deleted: list[FileRecord] = []
    failed: list[DeleteFailure] = []
    unique = list(dict.fromkeys(ids))
    for index, record_id in enumerate(unique, start=1):
        name = record_id
        try:
            record = repo.get(record_id)  # NotFound for anyone else's id
            name = record.original_name
            deleted.append(_delete(store, repo, server, record, trail))
        except PulseVaultError as exc:
            failed.append(DeleteFailure(record_id, name, str(exc)))
        if progress is not None:
            progress(index, len(unique))
    return DeleteReport(tuple(r.id for r in deleted), tuple(r.original_name for r in deleted), tuple(failed))


def can_discard(record: FileRecord, settings: Settings, *, now: datetime | None = None) -> bool:
    """Failed rows, and pending rows too old to be an upload still running (settings.stale_pending_s)."""
    if record.status is Status.FAILED:
        return True
    if record.status is Status.PENDING:
        age = (now or datetime.now(UTC)) - record.updated_at
        return age.total_seconds() >= settings.stale_pending_s
    return False


# --- re-analyse ------------------------------------------------------------------------------------


REANALYSIS_KEY = "reanalyse-{record_id}"
"""The check workers' key for a recording's re-analysis (one at a time per recording)."""


def reanalysis_task(store: ObjectStore, repo: Repository, server: ServerRecords, record_id: str, *,
                    method: str = "POS", band: tuple[float, float] | None = None,
                    parent: Path | str | None = None) -> AnalysisTask:
    """What a check worker needs to run the quick look again on a stored recording: a link signed for exactly
    its original, its ground truth parsed here (so the summary compares against it), a fresh folder, no secret.

    Run it with :class:`lib.checks.CheckPool` (the app) or :func:`lib.checks.run.run_task` (a script), then
    :func:`save_reanalysis`.
    """
    same_user(repo, server)  # refused before anything is signed or run
    record = repo.get(record_id)  # a row the session may see (NotFound for anyone else's id)
    return analysis_task_for(store, record_space(repo.user_id, record), record, method=method, band=band,
                             parent=parent)


def analysis_task_for(store: ObjectStore, owner: Owner, record: FileRecord, *, method: str = "POS",
                      band: tuple[float, float] | None = None, parent: Path | str | None = None) -> AnalysisTask:
    """:func:`reanalysis_task` for a row the caller has just read, in the space ``owner`` it lies in (a batch
    job's driver reads it through the owner's server records: their personal space); the store refuses any key
    outside that space."""
    caller = owner.user_id if isinstance(owner, Space) else owner
    if record_space(caller, record) != owner:
        raise AccessDenied("That recording lies outside the space it was read for.")
    if record.status is not Status.READY:
        raise ValidationError("Only a stored (ready) recording can be analysed.")
    method = rppg.check_method(method)
    source = sign_download(store, record.s3_key, owner=owner)
    with tempfile.TemporaryDirectory(prefix="pulsevault-truth-") as tmp:  # parsed here: a bad file fails first
        truth = load_record_truth(store, record, Path(tmp), owner=owner)
    # Named, not made: the worker makes it, and a check cancelled before it started leaves no folder behind.
    workdir = Path(parent or tempfile.gettempdir()) / f"pulsevault-reanalyse-{uuid.uuid4().hex}"
    return AnalysisTask(name=record.original_name, workdir=workdir, source=source, method=method,
                        lossless=record.video.lossless if record.video else None, ground_truth=truth, band=band)


def save_reanalysis(repo: Repository, server: ServerRecords, record_id: str, task: AnalysisTask,
                    outcome: CheckOutcome, *, trail: AuditTrail) -> FileRecord:
    """Save what the re-analysis found, as the server for the session's user (its folder goes either way), with
    an audit entry (if it cannot be written, the previous analysis is put back); a failed one is raised, phrased
    for the user."""
    shutil.rmtree(task.workdir, ignore_errors=True)
    same_user(repo, server)
    if outcome.analysis is None:
        raise AnalysisError(outcome.message or UNEXPECTED_CHECK)
    try:
        before = server.get(record_id)
        saved = server.set_analysis(record_id, outcome.analysis.to_json())
    except NotFound:
        raise NotFound("The recording was deleted while it was being analysed.") from None
    trail.after(AuditEvent.about(AuditAction.REANALYSE, saved, method=task.method,
                                 hr_bpm=(saved.analysis or {}).get("hr_bpm")),
                undo=lambda: server.set_analysis(record_id, before.analysis))
    return saved
