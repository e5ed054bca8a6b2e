"""Ground-truth files stored beside recordings: attach (checked before anything is stored), replace,
remove, and fetch them for a re-analysis.

A ground-truth file is stored at ``{record prefix}ground_truth{suffix}`` with its format's ending kept
(:meth:`lib.keys.RecordKeys.ground_truth`); the row keeps the key, the original (sanitised) name, from
which the format is read again, and the bytes it takes, which usage counts. A BIDS physiology table
travels with its JSON sidecar, stored at :func:`lib.keys.ground_truth_sidecar` of its key.

Attaching runs in this order, so a bad file stores nothing and the recording keeps what it had:

1. the file (and a BIDS sidecar) is written to a temporary folder under its own name, parsed by
   :func:`lib.rppg.ground_truth.load_ground_truth` (whose errors name the file, line and column) with
   the recording's original name (a table of mean heart rates is looked up by it), and checked
   against the recording's duration (:func:`lib.rppg.ground_truth.check_sync`);
2. the objects are uploaded through presigned URLs;
3. the saved quick look drops its comparison with the old ground truth (a re-analysis makes the new
   one), and the row is pointed at the new objects (if this fails, new objects at new keys are deleted
   again);
4. objects of the previous ground truth that the new one did not overwrite are deleted; a failure
   there leaves an orphan that the Usage page's reconciliation lists, never a row without its file.

Removing points the row at nothing first, then deletes the objects, for the same reason.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lib.errors import AccessDenied, AnalysisError, GroundTruthError, PulseVaultError, StorageError, ValidationError
from lib.keys import (
    BIDS_SIDECAR_SUFFIX,
    BIDS_TABLE_SUFFIXES,
    Owner,
    ground_truth_keys,
    ground_truth_sidecar,
    ground_truth_suffix,
    record_keys_of,
    sanitize_filename,
)
from lib.records import FileRecord, GroundTruthFile, Status
from lib.repository import Repository, ServerRecords
from lib.repository.base import quota_exceeded, record_space, study_quota_exceeded
from lib.rppg.ground_truth import GroundTruth, Kind, Sync, check_sync, load_ground_truth
from lib.rppg.results import AnalysisSummary
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.transfer import ObjectTarget, TransferConfig, upload_file

log = logging.getLogger(__name__)

MAX_GROUND_TRUTH_BYTES = 100 * 1024 * 1024
"""Largest ground-truth file accepted: hours of a 1 kHz waveform as text fit well within it."""
CONTENT_TYPES = {
    ".csv": "text/csv", ".txt": "text/plain", ".xmp": "text/plain", ".json": "application/json",
    ".h5": "application/x-hdf5", ".hdf5": "application/x-hdf5",
    "_physio.tsv": "text/tab-separated-values", "_physio.tsv.gz": "application/gzip",
}
"""The Content-Type each ground-truth ending is stored with (signed into its upload URL)."""
ONE_FILE = ("Choose one ground-truth file; two only for a BIDS physiology table (_physio.tsv.gz) together "
            "with its JSON sidecar (_physio.json).")


@dataclass(frozen=True)
class TruthUpload:
    """One file a researcher chose: the name it came with and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class AttachedTruth:
    """What attaching stored: the updated record, the parsed reference and how it lines up with the video."""

    record: FileRecord
    truth: GroundTruth
    sync: Sync | None  # None when the recording's duration is unknown

    def describe(self) -> str:
        """One sentence for the researcher: what was read, and the sync (with its warning, if any)."""
        return describe_truth(self.truth, self.sync)


def attach_ground_truth(
    store: ObjectStore,
    repo: Repository,
    server: ServerRecords,
    settings: Settings,
    record_id: str,
    files: Sequence[TruthUpload],
    *,
    workdir: Path | str | None = None,
) -> AttachedTruth:
    """Check, store and attach a ground-truth file (replacing any earlier one); see the module docstring.

    ``repo`` reads as the user, ``server`` writes the row's facts for the same user. What it adds to the
    user's storage must fit their quota, and in a study the study's (a replaced file's bytes are freed)."""
    _same_user(repo, server)
    record = _ready(repo, record_id)
    owner = record_space(repo.user_id, record)
    table, sidecar = _pair(files)
    name = _local_name(table.name)
    size = len(table.data) + (len(sidecar.data) if sidecar is not None else 0)
    _check_quota(repo, settings, record, name, size - record.ground_truth_bytes)
    with tempfile.TemporaryDirectory(prefix="pulsevault-truth-", dir=workdir) as tmp:
        local = Path(tmp) / name
        local.write_bytes(table.data)
        if sidecar is not None:
            local.with_name(_sidecar_name(name)).write_bytes(sidecar.data)
        truth, sync = check_ground_truth(local, record)
        key = record_keys_of(record.s3_key).ground_truth(name)
        stored = _upload(store, owner, key, local, TransferConfig.from_settings(settings))
    old = set(ground_truth_keys(record.ground_truth_key))
    try:
        _forget_comparison(server, record)
        updated = server.set_ground_truth(record.id, GroundTruthFile(key, name, size))
    except PulseVaultError:
        _delete_quietly(store, owner, [k for k in stored if k not in old])
        raise
    _delete_quietly(store, owner, sorted(old - set(stored)))
    return AttachedTruth(updated, truth, sync)


def remove_ground_truth(store: ObjectStore, repo: Repository, server: ServerRecords, record_id: str) -> FileRecord:
    """Detach the record's ground truth, then delete its objects."""
    _same_user(repo, server)
    record = repo.get(record_id)
    owner = record_space(repo.user_id, record)
    if not record.ground_truth_key:
        raise ValidationError(f"{record.original_name} has no ground truth to remove.")
    keys = ground_truth_keys(record.ground_truth_key)
    _forget_comparison(server, record)
    updated = server.set_ground_truth(record.id, None)
    result = store.delete(keys, owner=owner)
    if result.errors:
        raise StorageError(f"The ground truth is detached from {record.original_name}, but its file could not be "
                           f"removed from storage ({result.errors[0][1]}); the Usage page's reconciliation lists "
                           "it as an orphan to delete.")
    return updated


def fetch_ground_truth(store: ObjectStore, record: FileRecord, folder: Path, *, owner: Owner) -> Path | None:
    """Download the record's ground truth (and BIDS sidecar) into ``folder`` under its original name, which
    tells the loader its format; None when the record has none."""
    if not record.ground_truth_key:
        return None
    name = _local_name(record.ground_truth_name or record.ground_truth_key.rsplit("/", 1)[-1])
    local = folder / name
    store.download_to(record.ground_truth_key, local, owner=owner)
    sidecar_key = ground_truth_sidecar(record.ground_truth_key)
    if sidecar_key is not None:
        store.download_to(sidecar_key, local.with_name(_sidecar_name(name)), owner=owner)
    return local


def load_record_truth(store: ObjectStore, record: FileRecord, folder: Path, *, owner: Owner) -> GroundTruth | None:
    """The record's ground truth, downloaded into ``folder`` and parsed for this recording (by its original
    name, which a table of mean heart rates lists); None when it has none."""
    local = fetch_ground_truth(store, record, folder, owner=owner)
    return None if local is None else load_ground_truth(local, recording=record.original_name)


def check_ground_truth(path: Path, record: FileRecord) -> tuple[GroundTruth, Sync | None]:
    """Parse a ground-truth file for this recording and check it covers the video (GroundTruthError if not)."""
    truth = load_ground_truth(path, recording=record.original_name)
    duration = record.video.duration_s if record.video is not None else None
    return truth, (check_sync(truth, duration) if duration else None)


def describe_truth(truth: GroundTruth, sync: Sync | None) -> str:
    """What a reference is and how it lines up with its video, in one or two sentences."""
    if truth.kind is Kind.MEAN_HR:
        return f"{truth.source}: a mean heart rate of {truth.hr_bpm:.1f} bpm ({truth.format})."
    rate = f"{truth.fs:g} Hz" if truth.fs else "no rate of its own (spread over the video)"
    text = f"{truth.source}: a {truth.format} pulse waveform of {len(truth.values):,} samples at {rate}."
    if sync is None:
        return text
    offset = "from the file" if sync.offset_from_file else "assumed"
    text += (f" Video {sync.video_s:.1f} s, signal {sync.signal_s or 0.0:.1f} s, offset {sync.offset_s:+.2f} s "
             f"({offset}).")
    return f"{text} {sync.warning}" if sync.warning else text


def _same_user(repo: Repository, server: ServerRecords) -> str:
    """The one user both act for (built from the same session); anything else is refused."""
    if repo.user_id != server.user_id:
        raise AccessDenied("These records belong to another session; sign in again.")
    return repo.user_id


def _check_quota(repo: Repository, settings: Settings, record: FileRecord, name: str, extra_bytes: int) -> None:
    """What the ground truth adds must fit the quota, and a study recording's its study's quota, as a recording's
    bytes must."""
    if extra_bytes <= 0:
        return
    used = repo.usage().total_bytes
    if used + extra_bytes > settings.quota_bytes:
        raise quota_exceeded(name, extra_bytes, used, 0, settings.quota_bytes)
    if record.study_id is not None:
        held = sum(u.bytes for u in repo.study_usage() if u.study_id == record.study_id)
        if held + extra_bytes > settings.study_quota_bytes:
            raise study_quota_exceeded(name, extra_bytes, held, 0, settings.study_quota_bytes)


def _forget_comparison(server: ServerRecords, record: FileRecord) -> None:
    """A saved quick look compared with the old ground truth no longer holds: keep the estimate, drop the
    comparison (a re-analysis makes the new one)."""
    if record.analysis is None:
        return
    try:
        summary = AnalysisSummary.from_json(record.analysis)
    except AnalysisError:
        return  # unreadable already; the detail panel says so and asks for a re-analysis
    if summary.compared:
        server.set_analysis(record.id, summary.without_ground_truth().to_json())


def _ready(repo: Repository, record_id: str) -> FileRecord:
    record = repo.get(record_id)
    if record.status is not Status.READY:
        raise ValidationError("Ground truth can be attached to a stored (ready) recording only.")
    return record


def _pair(files: Sequence[TruthUpload]) -> tuple[TruthUpload, TruthUpload | None]:
    """The file to attach and, for a BIDS table, its sidecar; a clear refusal for anything else."""
    if not files:
        raise ValidationError("Choose a ground-truth file to attach.")
    for upload in files:
        if len(upload.data) > MAX_GROUND_TRUTH_BYTES:
            raise ValidationError(f"{upload.name} is larger than {MAX_GROUND_TRUTH_BYTES // 2**20} MiB, too "
                                  "large for a ground-truth file.")
    tables = [f for f in files if f.name.lower().endswith(BIDS_TABLE_SUFFIXES)]
    sidecars = [f for f in files if f.name.lower().endswith(".json")]
    if len(files) == 1 and tables:
        raise GroundTruthError(f"{files[0].name}: a BIDS physiology table needs its JSON sidecar "
                               f"({_sidecar_name(files[0].name)}) for its sampling rate and columns; choose both "
                               "files together.", source=files[0].name)
    if len(files) == 1 and files[0].name.lower().endswith(BIDS_SIDECAR_SUFFIX):
        raise GroundTruthError(f"{files[0].name} is a BIDS sidecar; choose it together with the _physio.tsv.gz "
                               "table it describes.", source=files[0].name)
    if len(files) == 1:
        return files[0], None
    if len(files) == 2 and len(tables) == 1 and len(sidecars) == 1:
        return tables[0], sidecars[0]
    raise ValidationError(ONE_FILE)


def _local_name(name: str) -> str:
    """The sanitised name, its format ending lower-cased so the loader and the sidecar lookup recognise it."""
    clean = sanitize_filename(name)
    suffix = ground_truth_suffix(clean)
    return clean[: -len(suffix)] + suffix


def _sidecar_name(table_name: str) -> str:
    """The sidecar's name beside a BIDS table: the one lib.rppg.ground_truth.bids looks for."""
    sidecar = ground_truth_sidecar(table_name)
    if sidecar is None:
        raise ValidationError(f"{table_name} is not a BIDS physiology table, so it has no sidecar.")
    return sidecar


def _upload(store: ObjectStore, owner: Owner, key: str, local: Path, config: TransferConfig) -> list[str]:
    """Upload the file and a BIDS sidecar beside it; the keys written, so a failure can undo them."""
    uploads = [(key, local, CONTENT_TYPES[ground_truth_suffix(local.name)])]
    sidecar_key = ground_truth_sidecar(key)
    if sidecar_key is not None:
        uploads.append((sidecar_key, local.with_name(_sidecar_name(local.name)), "application/json"))
    written: list[str] = []
    try:
        for target_key, path, content_type in uploads:
            upload_file(store, ObjectTarget(target_key, owner, content_type), path, config=config)
            written.append(target_key)
    except PulseVaultError:
        _delete_quietly(store, owner, written)
        raise
    return written


def _delete_quietly(store: ObjectStore, owner: Owner, keys: Sequence[str]) -> None:
    """Best effort: what is left behind is an orphan the Usage page's reconciliation finds and removes."""
    if not keys:
        return
    try:
        errors = store.delete(keys, owner=owner).errors
    except PulseVaultError as exc:
        log.warning("could not delete %d ground-truth object(s): %s", len(keys), exc)
        return
    if errors:
        log.warning("could not delete %d ground-truth object(s): %s", len(errors), errors[0][1])
