"""Building an export plan: which recordings, where each file goes in the layout, and the small files made
for it. Everything that would make the export wrong is refused here, before a byte is sent, with every
reason listed (:class:`lib.errors.ExportRefused`):

1. nothing selected, or nothing stored among what was selected; recordings outside the exporter's own space or
   a study they are a member of;
2. a recording without a stored checksum (SHA256SUMS could not vouch for it);
3. names that collide in the layout (:mod:`lib.export.naming`);
4. the UBFC-rPPG layout for recordings without a pulse waveform as ground truth;
5. objects changed since the list was made: a HEAD finds one missing, of another size, or carrying another
   checksum than the row (:func:`check_unchanged`, run again by the download route before it streams);
6. ground truth that cannot be read or converted;
7. consent (:func:`lib.consent.export_refusal`): withdrawn recordings are left out of every export, internal-use
   ones out of a manifest of links (a set over the zip limit), and a study's viewers hand out no manifest at all.
   What is left out is named in ``ExportPlan.left_out`` (shown before the download, and in the README).

Reads run as the signed-in user: rows through their repository (row-level security), objects with their
id as the owner (:func:`lib.keys.check_owner`). Ground-truth files are small; they are fetched and parsed
(through a temporary folder, as a re-analysis does) while the plan is made. Recordings are not read here.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lib.consent import export_refusal
from lib.errors import ExportRefused, GroundTruthError, NotFound
from lib.export import documents
from lib.export.model import Delivery, ExportPlan, Layout, MadeFile, ObjectFile, Selection
from lib.export.naming import bids_label, bids_prefixes, plain_folders, refuse, ubfc_folders
from lib.export.truth import bids_physio, pulse_waveform, ubfc_text
from lib.ground_truth_files import fetch_ground_truth
from lib.keys import Owner, extension_of, ground_truth_sidecar
from lib.library import iter_matching, records_csv
from lib.records import FileRecord, Status
from lib.repository import Repository
from lib.repository.base import record_space
from lib.rppg.ground_truth import GroundTruth, load_ground_truth
from lib.storage import ObjectStore
from lib.studies import Action, Role, allows
from lib.transfer import SHA256_METADATA

HEAD_CONCURRENCY = 8
"""HEADs in flight while checking a plan's objects: a thousand recordings check in seconds."""

NOTHING_SELECTED = "Nothing to export: no recordings are selected or match the filter. Select some first."
NOTHING_STORED = "Nothing to export: none of the selected recordings is stored (ready) and allowed to leave:"
NOT_A_MEMBER = ("You can export only recordings of your own space or of a study you are a member of. Pick the "
                "space at the top of the page and select again.")
VIEWER_NO_LINKS = ("This export is too big for one browser download, so it would go out as a manifest of links that "
                   "work for anyone who holds them, like share links; viewers of a study do not hand those out. "
                   "Export a smaller set (a zip you download yourself), or ask a member or owner of the study.")
Progress = Callable[[int, int, str], None]
"""(done, total, what) while a plan is made."""


def _no_progress(_done: int, _total: int, _what: str) -> None:
    return None


@dataclass(frozen=True)
class _Truth:
    """A recording's ground truth as fetched: the stored files' bytes and the parsed reference."""

    files: tuple[tuple[str, bytes], ...]
    """(original name, bytes): the table and, for BIDS, its sidecar."""
    parsed: GroundTruth


def build_plan(store: ObjectStore, repo: Repository, selection: Selection, layout: Layout, *,
               zip_max_bytes: int | None = None, progress: Progress | None = None,
               now: datetime | None = None) -> ExportPlan:
    """The plan of an export of ``selection`` in ``layout`` for the signed-in user of ``repo``; see the
    module docstring for what is refused. Up to ``zip_max_bytes`` (None: no limit) it is a zip the user
    downloads; above, a manifest of links, which leaves out what consent keeps from links (lib.consent)."""
    report = progress or _no_progress
    records, left_out, space, role = _eligible(repo, selection)
    _check_checksums(records)
    _places(layout, records)  # colliding names are refused before any request to storage
    if layout is Layout.UBFC:
        _check_truth_present(records)
    etags = check_unchanged(store, space, [_expected(r) for r in records], progress=report)
    truths = _truths(store, space, records, report)
    fetched = _Fetched(layout, repo.user_id, space, etags, truths, now or datetime.now(UTC))
    plan = fetched.plan(records, left_out, Delivery.ZIP)
    if zip_max_bytes is None or plan.total_bytes <= zip_max_bytes:
        return plan
    _check_may_hand_out_links(role)
    kept, refused = _consented(records, as_links=True)
    if not kept:
        raise refuse("Nothing of this export can go out as a manifest of links:", refused)
    return fetched.plan(kept, [*left_out, *refused], Delivery.MANIFEST)


@dataclass(frozen=True)
class _Fetched:
    """What a plan is assembled from once storage has been read: the same for any subset of the records."""

    layout: Layout
    owner: str
    space: Owner
    etags: dict[str, str]
    truths: dict[str, _Truth]
    at: datetime

    def plan(self, records: Sequence[FileRecord], left_out: Sequence[str], delivery: Delivery) -> ExportPlan:
        layout, at = self.layout, self.at
        root = f"pulsevault-{layout.value}-{at:%Y%m%d-%H%M%S}"
        objects, made = _LAYOUTS[layout](records, _places(layout, records), self.etags, self.truths)
        if layout is Layout.UBFC:
            made.append(documents.toolbox_yaml(root, records))
        if layout is Layout.BIDS:
            made.append(documents.dataset_description(root))
        made.append(documents.readme(layout, root, at, left_out))
        made.append(documents.sha256sums(objects, made))
        return ExportPlan(layout, root, self.owner, self.space, tuple(objects), tuple(made), tuple(left_out),
                          delivery)


# --- which recordings ----------------------------------------------------------------------------------


def _selected(repo: Repository, selection: Selection) -> list[FileRecord]:
    """The rows, re-read as the user (a crafted or deleted id is refused by name, not skipped)."""
    if selection.query is not None:
        return list(iter_matching(repo, selection.query))
    records, missing = [], []
    for record_id in dict.fromkeys(selection.record_ids):
        try:
            records.append(repo.get(record_id))
        except NotFound:
            missing.append(f"The recording {record_id} is not there any more (deleted?), or not yours.")
    if missing:
        raise refuse("Some selected recordings cannot be exported; refresh My files and select again:", missing)
    return records


def _stored(records: Sequence[FileRecord]) -> tuple[list[FileRecord], list[str]]:
    """Ready recordings, and a sentence for each one left out."""
    ready = [r for r in records if r.status is Status.READY]
    left = [f"{r.original_name}: its upload is {r.status.value}, so it has no stored recording."
            for r in records if r.status is not Status.READY]
    return ready, left


def _eligible(repo: Repository, selection: Selection) -> tuple[list[FileRecord], list[str], Owner, Role | None]:
    """The stored recordings consent lets leave, why the others are left out, their one space and the exporter's
    role in it (None: their personal space)."""
    selected = _selected(repo, selection)
    if not selected:
        raise ExportRefused(NOTHING_SELECTED)
    # Consent first: a withdrawn recording is also marked failed, and its reason is the withdrawal.
    consented, refused = _consented(selected, as_links=False)
    records, not_stored = _stored(consented)
    left_out = [*refused, *not_stored]
    if not records:
        raise refuse(NOTHING_STORED, left_out)
    space = _one_space(repo.user_id, records)
    return records, left_out, space, _member_role(repo, records)


def _member_role(repo: Repository, records: Sequence[FileRecord]) -> Role | None:
    """The exporter's role in the recordings' study (None for their personal space); refused outright unless
    they are a member of it, or the personal space is theirs. Rows come through the user's repository, so this
    holds already (row-level security); it is checked here too because an export hands out every byte."""
    study_id = records[0].study_id
    if study_id is None:
        if any(r.user_id != repo.user_id for r in records):
            raise ExportRefused(NOT_A_MEMBER)
        return None
    try:
        return repo.study(study_id).role
    except NotFound:
        raise ExportRefused(NOT_A_MEMBER) from None


def _consented(records: Sequence[FileRecord], *, as_links: bool) -> tuple[list[FileRecord], list[str]]:
    """The recordings consent lets out (``as_links``: as a manifest's links), and why each other one is not."""
    kept, refused = [], []
    for record in records:
        reason = export_refusal(record, as_links=as_links)
        if reason is None:
            kept.append(record)
        else:
            refused.append(reason)
    return kept, refused


def _check_may_hand_out_links(role: Role | None) -> None:
    """A manifest's links reach whoever holds them, as a share link does: in a study (``role`` not None), only
    roles that make share links hand them out (viewers do not)."""
    if role is not None and not allows(role, Action.SHARE):
        raise ExportRefused(VIEWER_NO_LINKS)


def _one_space(user_id: str, records: Sequence[FileRecord]) -> Owner:
    """The space every recording lies in (My files shows one at a time); a mix is refused by name."""
    studies = {r.study_id for r in records}
    if len(studies) > 1:
        raise ExportRefused("These recordings lie in different spaces (your own and a study's, or two studies); "
                            "export one space at a time: pick it at the top of My files.")
    return record_space(user_id, records[0])


def _check_checksums(records: Sequence[FileRecord]) -> None:
    problems = [f"{r.original_name} has no stored checksum, so SHA256SUMS could not vouch for it. Upload it again."
                for r in records if not r.sha256]
    if problems:
        raise refuse("Some recordings cannot be exported:", problems)


def _places(layout: Layout, records: Sequence[FileRecord]) -> dict[str, str]:
    if layout is Layout.UBFC:
        return ubfc_folders(records)
    if layout is Layout.BIDS:
        return bids_prefixes(records)
    return plain_folders(records)


def _check_truth_present(records: Sequence[FileRecord]) -> None:
    problems = [f"{r.original_name} has no ground truth; UBFC-rPPG needs a ground_truth.txt for every subject. "
                "Attach one (select the recording, Ground truth), leave it out, or choose BIDS-style or Plain."
                for r in records if not r.ground_truth_key]
    if problems:
        raise refuse("The UBFC-rPPG layout needs ground truth for every recording:", problems)


# --- have the objects changed? -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the list says an object is: the plan's HEAD must find exactly this."""

    key: str
    size: int
    sha256: str
    name: str
    etag: str | None = None
    """Set when checking a made plan again: the object must still be the one the plan saw."""


def _expected(record: FileRecord) -> Expected:
    return Expected(record.s3_key, record.size_bytes, record.sha256 or "", record.original_name)


def check_unchanged(store: ObjectStore, owner: Owner, expected: Sequence[Expected], *,
                    progress: Progress | None = None) -> dict[str, str]:
    """HEAD every object (a few at a time): key -> ETag; ExportRefused naming each one that is missing, of
    another size, carrying another checksum, or (``etag`` given) replaced since."""
    report = progress or _no_progress
    problems: list[str] = []
    etags: dict[str, str] = {}
    with ThreadPoolExecutor(HEAD_CONCURRENCY) as pool:
        for done, (item, outcome) in enumerate(zip(expected, pool.map(lambda e: _head(store, owner, e), expected),
                                                   strict=True), start=1):
            report(done, len(expected), f"Checked {done} of {len(expected)} recordings in storage")
            if isinstance(outcome, str):
                problems.append(outcome)
            else:
                etags[item.key] = outcome[0]
    if problems:
        raise refuse("Some recordings changed in storage since the list was made, so the export would not match "
                     "its SHA256SUMS. Refresh My files and export again:", problems)
    return etags


def _head(store: ObjectStore, owner: Owner, item: Expected) -> tuple[str] | str:
    """(ETag,) when the object is as expected, else what is wrong with it."""
    try:
        info = store.head(item.key, owner=owner)
    except NotFound:
        return f"{item.name} is no longer in storage (deleted)."
    if info.size != item.size:
        return f"{item.name} is {info.size:,} bytes in storage but {item.size:,} in its record."
    stored = info.metadata.get(SHA256_METADATA)
    if stored and stored != item.sha256:
        return f"{item.name} in storage carries another checksum than its record."
    if item.etag is not None and info.etag != item.etag:
        return f"{item.name} was replaced in storage since the export was prepared."
    return (info.etag,)


def check_plan_unchanged(store: ObjectStore, plan: ExportPlan) -> None:
    """Right before sending: every recording is still the very object the plan saw (ExportRefused if not)."""
    check_unchanged(store, plan.space, [Expected(f.key, f.size, f.sha256, f.name, f.etag) for f in plan.objects])


# --- ground truth ----------------------------------------------------------------------------------------


def _truths(store: ObjectStore, owner: Owner, records: Sequence[FileRecord], report: Progress) -> dict[str, _Truth]:
    """Record id -> its ground truth, for the records that have one; ExportRefused naming each unreadable."""
    with_truth = [r for r in records if r.ground_truth_key]
    truths: dict[str, _Truth] = {}
    problems: list[str] = []
    for done, record in enumerate(with_truth, start=1):
        report(done, len(with_truth), f"Reading ground truth {done} of {len(with_truth)}")
        try:
            truths[record.id] = _fetch_truth(store, owner, record)
        except (GroundTruthError, NotFound) as exc:
            problems.append(f"{record.original_name}: {exc}")
    if problems:
        raise refuse("Some ground-truth files could not be read:", problems)
    return truths


def _fetch_truth(store: ObjectStore, owner: Owner, record: FileRecord) -> _Truth:
    with tempfile.TemporaryDirectory(prefix="pulsevault-export-") as tmp:
        local = fetch_ground_truth(store, record, Path(tmp), owner=owner)
        assert local is not None  # only records with ground truth come here
        files = [(local.name, local.read_bytes())]
        sidecar = ground_truth_sidecar(local.name)
        if sidecar is not None:
            files.append((sidecar, local.with_name(sidecar).read_bytes()))
        parsed = load_ground_truth(local, recording=record.original_name)
    return _Truth(tuple(files), parsed)


# --- the layouts -------------------------------------------------------------------------------------------

Files = tuple[list[ObjectFile], list[MadeFile]]


def _object(record: FileRecord, path: str, etags: dict[str, str]) -> ObjectFile:
    return ObjectFile(path, record.s3_key, record.size_bytes, record.sha256 or "", etags[record.s3_key],
                      record.original_name, record.id, record.research.subject_id)


def _ubfc(records: Sequence[FileRecord], places: dict[str, str], etags: dict[str, str],
          truths: dict[str, _Truth]) -> Files:
    objects, made, rows, problems = [], [], [], []
    for record in records:
        folder = places[record.id]
        objects.append(_object(record, f"{folder}/vid.{extension_of(record.s3_key)}", etags))
        try:
            wave = pulse_waveform(truths[record.id].parsed, record)
            if wave is None:
                raise ExportRefused(f"{record.original_name}: its ground truth is a mean heart rate only; "
                                    "UBFC-rPPG's ground_truth.txt needs the pulse waveform.")
            made.append(MadeFile(f"{folder}/ground_truth.txt", ubfc_text(wave, record), record.id))
        except ExportRefused as exc:
            problems.append(str(exc))
            continue
        rows.append(_mapping_row(folder, record, truths[record.id].parsed, max(wave.start_s, 0.0)))
    if problems:
        raise refuse("Some ground truth cannot be written as UBFC-rPPG's ground_truth.txt:", problems)
    made.append(documents.mapping(rows))
    return objects, made


def _bids(records: Sequence[FileRecord], places: dict[str, str], etags: dict[str, str],
          truths: dict[str, _Truth]) -> Files:
    objects, made, rows = [], [], []
    for record in records:
        prefix = places[record.id]
        objects.append(_object(record, f"{prefix}_video.{extension_of(record.s3_key)}", etags))
        truth = truths.get(record.id)
        wave = pulse_waveform(truth.parsed, record) if truth is not None else None
        if wave is not None:
            table, sidecar = bids_physio(wave)
            made += [MadeFile(f"{prefix}_physio.tsv.gz", table, record.id),
                     MadeFile(f"{prefix}_physio.json", sidecar, record.id)]
        rows.append(_mapping_row(prefix, record, truth.parsed if truth else None,
                                 wave.start_s if wave is not None else None))
    subjects = {bids_label(r.research.subject_id): r.research.subject_id.strip() for r in records}
    made += [documents.mapping(rows), documents.participants(subjects)]
    return objects, made


def _plain(records: Sequence[FileRecord], places: dict[str, str], etags: dict[str, str],
           truths: dict[str, _Truth]) -> Files:
    objects, made, paths = [], [], {}
    for record in records:
        folder = places[record.id]
        paths[record.id] = f"{folder}/{record.original_name}"
        objects.append(_object(record, paths[record.id], etags))
        truth = truths.get(record.id)
        made += [MadeFile(f"{folder}/{name}", data, record.id) for name, data in (truth.files if truth else ())]
        if record.analysis is not None:
            made.append(MadeFile(f"{folder}/analysis.json",
                                 (json.dumps(record.analysis, indent=2, sort_keys=True) + "\n").encode("utf-8"),
                                 record.id))
    made.append(MadeFile("metadata.csv", records_csv(records, paths=paths)))
    return objects, made


def _mapping_row(path: str, record: FileRecord, truth: GroundTruth | None, start_s: float | None) -> tuple[object, ...]:
    return (path, record.id, record.original_name, record.research.subject_id, record.research.session_label,
            truth.source if truth is not None else "", "" if start_s is None else f"{start_s:g}")


_LAYOUTS: dict[Layout, Callable[[Sequence[FileRecord], dict[str, str], dict[str, str], dict[str, _Truth]], Files]] = {
    Layout.UBFC: _ubfc, Layout.BIDS: _bids, Layout.PLAIN: _plain,
}
"""Each layout's files from the records, their places, ETags and ground truth."""
