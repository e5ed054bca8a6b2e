"""The export of a set too big for one browser download: a small zip with the made files (README,
SHA256SUMS, ground truth, metadata), ``manifest.csv`` (relative path, size, sha256 and a presigned GET
for every recording) and ``fetch.py`` (:mod:`lib.export.fetch`), which downloads the recordings with
resume and checks every checksum. The links are valid for the longest expiry the settings allow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from zipstream import ZIP_DEFLATED, ZipStream

from lib.export.documents import csv_bytes
from lib.export.model import ExportPlan, MadeFile
from lib.settings import MAX_PRESIGN_EXPIRY_S
from lib.storage import ObjectStore

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("path", "size", "sha256", "url")
FETCH_SCRIPT = "fetch.py"
FETCH_NOTES = "FETCH.md"
_FETCH_SOURCE = Path(__file__).with_name("fetch.py")


def manifest_name(plan: ExportPlan) -> str:
    return f"{plan.root}-manifest.zip"


def manifest_zip(store: ObjectStore, plan: ExportPlan, *, now: datetime | None = None) -> bytes:
    """The manifest export of ``plan`` (small: links and made files, no recording)."""
    expires_s = store.expiry(MAX_PRESIGN_EXPIRY_S)
    until = (now or datetime.now(UTC)) + timedelta(seconds=expires_s)
    rows = [(f.path, f.size, f.sha256, store.presign_get(f.key, owner=plan.owner, expires=expires_s))
            for f in plan.objects]
    files = [*plan.made, MadeFile(MANIFEST, csv_bytes(MANIFEST_COLUMNS, rows)),
             MadeFile(FETCH_SCRIPT, _FETCH_SOURCE.read_bytes()), _notes(plan, until)]
    archive = ZipStream(compress_type=ZIP_DEFLATED)
    for made in files:
        archive.add(made.data, f"{plan.root}/{made.path}")
    return bytes(archive)


def _notes(plan: ExportPlan, until: datetime) -> MadeFile:
    size_gib = sum(f.size for f in plan.objects) / 2**30
    text = (f"# Fetching {plan.root}\n\nThis export is {size_gib:,.1f} GiB in {plan.recording_count} recordings, too "
            "big for one browser download. Unpack this zip, then, in the unpacked folder:\n\n"
            "    python fetch.py\n\n"
            "It downloads every recording listed in `manifest.csv` beside this file, resumes an interrupted "
            "download when run again, and checks each file's SHA-256. Then `sha256sum -c SHA256SUMS` checks the "
            f"whole folder.\n\nThe links work until {until:%Y-%m-%d %H:%M} UTC; after that, prepare the export "
            "again in PulseVault (files already fetched are kept and skipped).\n")
    return MadeFile(FETCH_NOTES, text.encode("utf-8"))
