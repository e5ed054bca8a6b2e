"""Usage figures and bucket/metadata reconciliation.

Three audiences, three sources:

* **The signed-in user** — :func:`user_usage`: the figures come from
  ``repo.usage()`` (aggregated in the database: ``usage_summary()`` in
  Supabase, grouped queries in SQLite) plus the quota from settings.
* **Admins** — :func:`bucket_wide_usage`: bytes and objects per user and per
  month from the bucket listing itself (the metadata store would only show an
  admin their own rows). The admin check is made here, before the listing and
  before the cache, so no page can hand the view to anyone else. It reads the
  caller's verified role (``lib.auth.Caller``, from the session: Supabase
  ``app_metadata`` or the demo account's role), never an e-mail address.
* **Reconciliation** — :func:`reconcile` compares the caller's prefix with
  their rows. Objects are listed *before* rows: the pipeline writes a row
  before any of its objects, so an object that is in the listing has its row in
  the later row snapshot, and an upload running meanwhile is never mistaken for
  orphans.

What counts as what (see :class:`Kind`):

* an object is an **orphan** when no row names it (``s3_key``,
  ``thumbnail_key``, ``preview_key``, ``ground_truth_key`` and a BIDS table's sidecar) and it does not lie
  under the record prefix of a ``pending`` row (an upload in flight writes its
  objects before the row is marked ready);
* a ``ready`` row is **missing** when its original is not in the bucket or is
  a different size from the row's ``size_bytes``; ``failed`` rows had their
  objects removed on purpose and are not checked;
* a ``pending`` row is **stale** once it is older than
  ``settings.stale_pending_s``.

Bucket-wide reconciliation (admins, :func:`reconcile_bucket`) lists the whole
bucket once and checks each user prefix *whose rows the caller can read*: the
caller's repository says whose those are (``Repository.rows_of``, and
``ServerRecords.rows_of`` for the repairs; :func:`row_access`). Where it
cannot read a user's rows (row-level security in the cloud shows an admin only
their own), that prefix is reported as *not checked* with its object count and
bytes, never guessed at. Checking another user's prefix in the cloud needs that user
signed in, or a service-role script outside the app.

Repairs run only after the user confirmed them in the UI, and the row repairs
re-check the row's status first: :func:`delete_orphans`,
:func:`mark_missing_failed`, :func:`clean_stale_pending` (aborts the record's
unfinished multipart uploads, deletes the partial objects, then marks the row
``failed``: the pipeline's own rule for a broken upload, so the attempt stays
visible on My files with its reason instead of vanishing, and its reservation
stops counting against the quota). :func:`repair` applies one kind to a
check's findings, user by user, and requires an admin for anyone else's.
Incomplete multipart uploads are not objects and do not show up in a listing;
the ones no row knows of are removed by the bucket's lifecycle rule
(AbortIncompleteMultipartUpload).
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from lib.auth import Caller
from lib.errors import AccessDenied, NotFound, PulseVaultError
from lib.keys import RECORDINGS_PREFIX, ground_truth_keys, record_folder, user_prefix
from lib.records import FileRecord, Status, UsageBucket, UsageSummary
from lib.repository import Repository, ServerRecords
from lib.settings import Settings
from lib.storage import HealthStatus, ObjectInfo, ObjectStore
from lib.studies import FORMER_MEMBER, Action, Study, StudyOverview, UploaderUsage, allows
from lib.units import human_bytes

BUCKET_CACHE_TTL_S = 60.0
"""How long an admin's bucket-wide figures are reused: listing a big bucket takes a while."""
PROGRESS_EVERY = 1_000
"""Report listing progress once per this many objects (one S3 list page)."""
UNKNOWN_MONTH = "unknown"
MISSING_REASON = "Reconciliation: the original file is missing from the bucket or has the wrong size."
STALE_REASON = "Reconciliation: the upload never finished; its partial files were removed."

ListingProgress = Callable[[int, int], None]
"""Called with (objects listed so far, bytes listed so far)."""


@dataclass(frozen=True)
class UserRows:
    """One user's rows both ways: read as that user, written by the server for that user."""

    repo: Repository
    server: ServerRecords


RowAccess = Callable[[str], UserRows | None]
"""A user id → that user's rows, or None when the caller cannot reach them (:func:`row_access`)."""


def row_access(repo: Repository, server: ServerRecords) -> RowAccess:
    """Whose rows a session can reach: its own, and where its stores allow it (demo mode) anyone's."""
    def rows_for(user_id: str) -> UserRows | None:
        other_repo, other_server = repo.rows_of(user_id), server.rows_of(user_id)
        return None if other_repo is None or other_server is None else UserRows(other_repo, other_server)

    return rows_for

_KEY = re.compile(r"recordings/(?P<user>[^/]+)/(?:(?P<year>\d{4})/(?P<month>\d{2})/(?P<record>[^/]+)/)?")


# --- the signed-in user's figures --------------------------------------------------------------------


@dataclass(frozen=True)
class UserUsage:
    summary: UsageSummary
    quota_bytes: int

    @property
    def used_bytes(self) -> int:
        return self.summary.total_bytes

    @property
    def used_fraction(self) -> float:
        """Used / quota; above 1 when over quota (the bar clamps, the text does not)."""
        return self.used_bytes / self.quota_bytes if self.quota_bytes > 0 else 0.0

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.quota_bytes - self.used_bytes)

    @property
    def over_quota(self) -> bool:
        return self.used_bytes > self.quota_bytes


def user_usage(repo: Repository, settings: Settings) -> UserUsage:
    """The caller's figures (aggregated by the metadata store) against their quota."""
    return UserUsage(summary=repo.usage(), quota_bytes=settings.quota_bytes)


# --- the caller's studies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploaderShare:
    """What one person's ready recordings hold in a study."""

    email: str
    bytes: int
    recordings: int


@dataclass(frozen=True)
class StudyUsage:
    """One of the caller's studies: its ready recordings against the study quota, and (for its owners) who
    uploaded what, largest first."""

    study: Study
    bytes: int
    recordings: int
    quota_bytes: int
    by_uploader: tuple[UploaderShare, ...]
    """Empty unless the caller owns the study."""

    @property
    def used_fraction(self) -> float:
        return self.bytes / self.quota_bytes if self.quota_bytes > 0 else 0.0


def studies_usage(repo: Repository, settings: Settings) -> list[StudyUsage]:
    """Every study the caller is a member of, with its storage and recordings (per person for owners)."""
    rows = repo.study_usage()
    return [_study_usage(repo, study, [r for r in rows if r.study_id == study.id], settings.study_quota_bytes)
            for study in repo.studies()]


def _study_usage(repo: Repository, study: Study, rows: list[UploaderUsage], quota_bytes: int) -> StudyUsage:
    shares: tuple[UploaderShare, ...] = ()
    if allows(study.role, Action.MANAGE_MEMBERS):
        emails = {m.user_id: m.email for m in repo.members(study.id)}
        shares = tuple(sorted((UploaderShare(emails.get(r.user_id, FORMER_MEMBER), r.bytes, r.recordings)
                               for r in rows), key=lambda u: (-u.bytes, u.email)))
    return StudyUsage(study=study, bytes=sum(r.bytes for r in rows), recordings=sum(r.recordings for r in rows),
                      quota_bytes=quota_bytes, by_uploader=shares)


def admin_study_overview(repo: Repository, caller: Caller) -> list[StudyOverview]:
    """Every study with its owner, members, storage and recordings: administrators only (checked here, from
    the verified session; in the cloud the database checks the token's app_metadata again)."""
    if not caller.is_admin:
        raise AccessDenied("Only PulseVault administrators see every study.")
    return repo.admin_studies()


class Period(StrEnum):
    """How finely uploads over time are counted on the Usage page."""

    DAY = "Day"
    MONTH = "Month"


@dataclass(frozen=True)
class UploadHistory:
    """Uploads over time, per day when the whole history is recent (per month it would be one or two dots),
    else per month."""

    period: Period
    uploads: tuple[UsageBucket, ...]
    """Bytes and recordings uploaded in each period, in date order."""
    stored: tuple[UsageBucket, ...]
    """Bytes and recordings stored at the end of each period, starting from nothing the period before the
    first upload (so even one day of uploads draws a line, not a dot)."""


def upload_history(summary: UsageSummary) -> UploadHistory:
    """Per day when every stored recording was uploaded within the daily history, else per month."""
    daily = bool(summary.by_day) and sum(b.count for b in summary.by_day) == summary.total_count
    period = Period.DAY if daily else Period.MONTH
    uploads = tuple(sorted(summary.by_day if daily else summary.by_month, key=lambda b: b.label))
    return UploadHistory(period, uploads, running_total(uploads, period))


def running_total(uploads: Sequence[UsageBucket], period: Period) -> tuple[UsageBucket, ...]:
    """Stored bytes and recordings at the end of each period (``uploads`` in date order), from zero."""
    if not uploads:
        return ()
    running_bytes = running_count = 0
    out = [UsageBucket(_period_before(uploads[0].label, period), 0, 0)]
    for bucket in uploads:
        running_bytes += bucket.bytes
        running_count += bucket.count
        out.append(UsageBucket(bucket.label, running_bytes, running_count))
    return tuple(out)


def _period_before(label: str, period: Period) -> str:
    """The day before a "YYYY-MM-DD", or the month before a "YYYY-MM"."""
    if period is Period.DAY:
        return (date.fromisoformat(label) - timedelta(days=1)).isoformat()
    year, month = (int(part) for part in label.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def usage_csv(usage: UserUsage) -> str:
    """Every figure of the Usage page as CSV: section, label, bytes, count."""
    s = usage.summary
    rows: list[tuple[str, str, int, int | str]] = [
        ("total", "stored", s.total_bytes, s.total_count),
        ("quota", "quota", usage.quota_bytes, ""),
        ("quota", "remaining", usage.remaining_bytes, ""),
    ]
    for section, buckets in (("day", s.by_day), ("month", s.by_month), ("content_type", s.by_content_type),
                             ("lossless", s.by_lossless), ("subject", s.by_subject)):
        rows += [(section, b.label, b.bytes, b.count) for b in buckets]
    rows += [("largest", f"{r.original_name} ({r.id})", r.size_bytes, 1) for r in s.largest]
    return _csv(("section", "label", "bytes", "count"), rows)


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def storage_health(store: ObjectStore) -> HealthStatus:
    """Bucket reachable, credentials valid, and how long a HEAD took. Never raises."""
    return store.health()


# --- admins: the bucket-wide view --------------------------------------------------------------------


@dataclass(frozen=True)
class BucketRow:
    user_id: str
    month: str
    bytes: int
    objects: int


@dataclass(frozen=True)
class BucketUsage:
    """Bytes and objects in the bucket per (user, month), as the listing found them."""

    bucket: str
    rows: tuple[BucketRow, ...]
    listed_at: datetime

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    @property
    def total_objects(self) -> int:
        return sum(r.objects for r in self.rows)

    @property
    def by_user(self) -> tuple[BucketRow, ...]:
        """One row per user (month ""), largest first."""
        return _fold(self.rows, lambda r: (r.user_id, ""), by_size=True)

    @property
    def by_month(self) -> tuple[BucketRow, ...]:
        """One row per month (user ""), oldest first."""
        return _fold(self.rows, lambda r: ("", r.month), by_size=False)


def _fold(rows: Iterable[BucketRow], key: Callable[[BucketRow], tuple[str, str]],
          *, by_size: bool) -> tuple[BucketRow, ...]:
    totals: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        total = totals.setdefault(key(row), [0, 0])
        total[0] += row.bytes
        total[1] += row.objects
    folded = [BucketRow(user, month, size, count) for (user, month), (size, count) in totals.items()]
    order = (lambda r: (-r.bytes, r.user_id)) if by_size else (lambda r: r.month)
    return tuple(sorted(folded, key=order))


def bucket_usage_csv(usage: BucketUsage) -> str:
    return _csv(("user_id", "month", "bytes", "objects"),
                ((r.user_id, r.month, r.bytes, r.objects) for r in usage.rows))


class _TtlCache:
    """A few bucket listings, each reused for ``ttl_s``; shared by the process's admin sessions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, BucketUsage]] = {}

    def get(self, key: str, ttl_s: float, now: float) -> BucketUsage | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry and now - entry[0] < ttl_s else None

    def put(self, key: str, value: BucketUsage, now: float) -> None:
        with self._lock:
            self._entries[key] = (now, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_bucket_cache = _TtlCache()


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise AccessDenied("Only PulseVault administrators can see or check the whole bucket.")


def bucket_wide_usage(
    store: ObjectStore,
    caller: Caller,
    progress: ListingProgress | None = None,
    *,
    refresh: bool = False,
    ttl_s: float = BUCKET_CACHE_TTL_S,
    clock: Callable[[], float] = time.monotonic,
) -> BucketUsage:
    """Bytes and objects per user and month, from a paginated listing of ``recordings/``.

    Raises AccessDenied unless the caller is an admin; the check comes before
    the cache, so a cached listing is never a way around it.
    """
    require_admin(caller)
    cached = None if refresh else _bucket_cache.get(store.bucket, ttl_s, clock())
    if cached is not None:
        return cached
    totals: dict[tuple[str, str], list[int]] = {}
    for info in _listed(store.iter_all_objects(RECORDINGS_PREFIX), progress):
        user, month = _owner_and_month(info)
        total = totals.setdefault((user, month), [0, 0])
        total[0] += info.size
        total[1] += 1
    rows = tuple(sorted((BucketRow(u, m, b, n) for (u, m), (b, n) in totals.items()),
                        key=lambda r: (r.user_id, r.month)))
    usage = BucketUsage(bucket=store.bucket, rows=rows, listed_at=datetime.now(UTC))
    _bucket_cache.put(store.bucket, usage, clock())
    return usage


def _listed(objects: Iterable[ObjectInfo], progress: ListingProgress | None) -> Iterator[ObjectInfo]:
    count = size = 0
    for info in objects:
        count += 1
        size += info.size
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count, size)
        yield info
    if progress is not None:
        progress(count, size)


def _owner_and_month(info: ObjectInfo) -> tuple[str, str]:
    """The user id and yyyy-mm a key's folders name; "" / unknown when it does not follow the layout."""
    match = _KEY.match(info.key)
    if match is None or match.end() == len(info.key):
        return "", UNKNOWN_MONTH
    if match["year"]:
        return match["user"], f"{match['year']}-{match['month']}"
    return match["user"], UNKNOWN_MONTH


# --- reconciliation ----------------------------------------------------------------------------------


class Kind(StrEnum):
    ORPHAN = "orphan"
    """An object no row refers to."""
    MISSING = "missing"
    """A ready row whose original is not in the bucket, or is a different size."""
    STALE_PENDING = "stale_pending"
    """A row still pending long after its upload should have finished."""


KIND_LABELS = {Kind.ORPHAN: "Orphaned file", Kind.MISSING: "Missing file",
               Kind.STALE_PENDING: "Stale pending upload"}


@dataclass(frozen=True)
class Discrepancy:
    kind: Kind
    user_id: str
    key: str
    """The orphan's key, or the row's original key."""
    record_id: str | None
    size_bytes: int
    """The orphan's size, or the row's recorded size."""
    detail: str


@dataclass(frozen=True)
class Reconciliation:
    user_id: str
    objects_checked: int
    rows_checked: int
    discrepancies: tuple[Discrepancy, ...]
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return not self.discrepancies


@dataclass(frozen=True)
class UncheckedPrefix:
    """A user prefix whose rows the caller cannot read: listed, not judged."""

    user_id: str
    objects: int
    bytes: int


@dataclass(frozen=True)
class BucketReconciliation:
    checked: tuple[Reconciliation, ...]
    unchecked: tuple[UncheckedPrefix, ...]

    @property
    def discrepancies(self) -> tuple[Discrepancy, ...]:
        return tuple(d for r in self.checked for d in r.discrepancies)


@dataclass(frozen=True)
class RepairResult:
    done: tuple[str, ...] = ()
    """Keys deleted, or record ids repaired."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(id, why): no longer in the state the check found."""
    errors: tuple[tuple[str, str], ...] = ()
    """(key or id, message)."""


def reconcile(store: ObjectStore, repo: Repository, user_id: str, settings: Settings,
              now: datetime | None = None) -> Reconciliation:
    """Compare the caller's prefix in the bucket with their rows (objects first, see module doc)."""
    if user_id != repo.user_id:
        raise AccessDenied("Reconciliation compares your own files with your own records only.")
    objects = list(store.iter_objects(user_prefix(user_id), owner=user_id))
    return _compare(user_id, objects, list(repo.iter_all()), settings, now or datetime.now(UTC))


def reconcile_bucket(store: ObjectStore, settings: Settings, caller: Caller,
                     rows_for: RowAccess, now: datetime | None = None,
                     progress: ListingProgress | None = None) -> BucketReconciliation:
    """Admins: every user prefix in the bucket, checked where the caller can read that user's rows.

    Users are found in the listing, so one with records but no files at all is
    not visited here; their own check (or the caller's, for the caller) finds them.
    """
    require_admin(caller)
    by_user: dict[str, list[ObjectInfo]] = {}
    for info in _listed(store.iter_all_objects(RECORDINGS_PREFIX), progress):
        by_user.setdefault(_owner_and_month(info)[0], []).append(info)
    moment = now or datetime.now(UTC)
    checked, unchecked = [], []
    for user_id in sorted(by_user):
        objects = by_user[user_id]
        rows = rows_for(user_id) if user_id else None
        if rows is None:
            unchecked.append(UncheckedPrefix(user_id, len(objects), sum(o.size for o in objects)))
        else:
            checked.append(_compare(user_id, objects, list(rows.repo.iter_all()), settings, moment))
    return BucketReconciliation(tuple(checked), tuple(unchecked))


def _compare(user_id: str, objects: list[ObjectInfo], rows: list[FileRecord], settings: Settings,
             now: datetime) -> Reconciliation:
    by_key = {o.key: o for o in objects}
    referenced: set[str] = set()
    in_flight: set[str] = set()
    found: list[Discrepancy] = []
    stale_after = timedelta(seconds=settings.stale_pending_s)
    for row in rows:
        referenced.update(k for k in (row.s3_key, row.thumbnail_key, row.preview_key,
                                      *ground_truth_keys(row.ground_truth_key)) if k)
        if row.status is Status.PENDING:
            in_flight.add(record_folder(row.s3_key))
            if now - row.created_at > stale_after:
                found.append(_stale(row, by_key, now))
        elif row.status is Status.READY:
            problem = _missing_detail(row, by_key.get(row.s3_key))
            if problem:
                found.append(Discrepancy(Kind.MISSING, user_id, row.s3_key, row.id, row.size_bytes, problem))
    for info in objects:
        if info.key not in referenced and record_folder(info.key) not in in_flight:
            found.append(Discrepancy(Kind.ORPHAN, user_id, info.key, None, info.size,
                                     f"{human_bytes(info.size)} that no recording refers to"))
    return Reconciliation(user_id, len(objects), len(rows), tuple(found), now)


def _missing_detail(row: FileRecord, info: ObjectInfo | None) -> str:
    if info is None:
        return f"{row.original_name}: the original file is not in the bucket"
    if info.size != row.size_bytes:
        return (f"{row.original_name}: the bucket holds {info.size:,} bytes, "
                f"the record says {row.size_bytes:,}")
    return ""


def _stale(row: FileRecord, by_key: dict[str, ObjectInfo], now: datetime) -> Discrepancy:
    prefix = record_folder(row.s3_key)
    partial = [o for key, o in by_key.items() if key.startswith(prefix)]
    hours = (now - row.created_at).total_seconds() / 3600
    detail = (f"{row.original_name}: pending for {hours:.1f} h, "
              f"{len(partial)} partial file(s) ({human_bytes(sum(o.size for o in partial))})")
    return Discrepancy(Kind.STALE_PENDING, row.user_id, row.s3_key, row.id, row.size_bytes, detail)


# --- repairs (each one confirmed by the user in the UI first) ------------------------------------------


def delete_orphans(store: ObjectStore, user_id: str, keys: Sequence[str]) -> RepairResult:
    """Delete orphaned objects of ``user_id``; every key must lie under that user's prefix."""
    if not keys:
        return RepairResult()
    result = store.delete(list(keys), owner=user_id)
    return RepairResult(done=result.deleted, errors=result.errors)


def mark_missing_failed(rows: UserRows, ids: Sequence[str]) -> RepairResult:
    """Mark ready rows whose original is gone as failed, so nobody tries to play them.

    The row keeps its keys, so any thumbnail or preview left is not an orphan:
    it goes when the recording is deleted on My files.
    """
    return _each_row(rows.repo, ids, Status.READY,
                     lambda record: rows.server.mark_failed(record.id, MISSING_REASON))


def clean_stale_pending(store: ObjectStore, rows: UserRows, ids: Sequence[str]) -> RepairResult:
    """Abort a stale upload's unfinished multipart uploads, delete its partial objects, then mark its
    row failed (pipeline rule), which ends its reservation.

    If any object cannot be deleted the row stays pending, so the next check finds it again.
    """
    owner = rows.repo.user_id

    def clean(record: FileRecord) -> None:
        folder = record_folder(record.s3_key)
        store.abort_multipart_uploads(folder, owner=owner)
        keys = [o.key for o in store.iter_objects(folder, owner=owner)]
        if keys:
            result = store.delete(keys, owner=owner)
            if result.errors:
                raise _PartialDelete(result.errors[0][1])
        rows.server.mark_failed(record.id, STALE_REASON)

    return _each_row(rows.repo, ids, Status.PENDING, clean)


class _PartialDelete(PulseVaultError):
    """S3 refused some deletes; the row stays pending so the next check finds it again."""


def repair(kind: Kind, found: Sequence[Discrepancy], *, store: ObjectStore, rows_for: RowAccess,
           caller: Caller) -> RepairResult:
    """Apply the repair of one kind to discrepancies a check found, one user at a time.

    Another user's discrepancies (from :func:`reconcile_bucket`) need an admin,
    checked here again, and that user's rows reachable through ``rows_for``.
    """
    results = []
    for user_id in sorted({d.user_id for d in found if d.kind is kind}):
        if user_id != caller.user_id:
            require_admin(caller)
        items = [d for d in found if d.kind is kind and d.user_id == user_id]
        rows = rows_for(user_id)
        if kind is Kind.ORPHAN:
            results.append(delete_orphans(store, user_id, [d.key for d in items]))
        elif rows is None:
            results.append(RepairResult(errors=tuple((d.record_id or d.key, _UNREADABLE) for d in items)))
        elif kind is Kind.MISSING:
            results.append(mark_missing_failed(rows, [d.record_id for d in items if d.record_id]))
        else:
            results.append(clean_stale_pending(store, rows, [d.record_id for d in items if d.record_id]))
    return RepairResult(*(tuple(x for r in results for x in getattr(r, name))
                          for name in ("done", "skipped", "errors")))


_UNREADABLE = "That user's records are not readable from this session."


def _each_row(repo: Repository, ids: Sequence[str], expected: Status,
              repair: Callable[[FileRecord], object]) -> RepairResult:
    done: list[str] = []
    skipped: list[tuple[str, str]] = []
    errors: list[tuple[str, str]] = []
    for record_id in ids:
        try:
            record = repo.get(record_id)
            if record.status is not expected:
                skipped.append((record_id, f"it is {record.status.value} now"))
                continue
            repair(record)
            done.append(record_id)
        except NotFound:
            skipped.append((record_id, "it no longer exists"))
        except PulseVaultError as exc:
            errors.append((record_id, str(exc)))
    return RepairResult(tuple(done), tuple(skipped), tuple(errors))
