"""What the Export dialog (My files, Studies) calls: make the plan as the signed-in user, write its audit
entries, then hand out either a one-time link to the streamed zip (:mod:`lib.export.routes`) or, for a set
above ``Settings.export_zip_max_bytes``, the manifest zip with its fetch script (:mod:`lib.export.manifest`).

The audit trail gets one ``export`` entry per exported recording, all written in one transaction before the
link or the manifest exists (no entries, no export). One entry per recording, not one per export with a list in
its detail, because the audit view filters on an entry's recording and subject columns: "who has seen subject
12's recordings" then finds exports as it finds playbacks and downloads, and a big export's list is not cut
at the detail's size limit. The entries of one export share its ``export_id``; each lists its recording's files
in the export, and all name the files about the whole export.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from lib.audit import AuditAction, AuditEvent, AuditTrail
from lib.export.archive import zip_name
from lib.export.manifest import manifest_name, manifest_zip
from lib.export.model import Delivery, ExportPlan, ExportRequest
from lib.export.plan import Progress, build_plan
from lib.export.routes import EXPORT_PATH
from lib.export.tickets import ExportTickets
from lib.keys import Space
from lib.repository import Repository
from lib.settings import MAX_PRESIGN_EXPIRY_S, Settings
from lib.storage import ObjectStore
from lib.units import counted, human_bytes


@dataclass(frozen=True)
class PreparedExport:
    plan: ExportPlan
    file_name: str
    download_url: str = ""
    """Zip: the app-relative link that streams it (one-time, short-lived)."""
    manifest: bytes = field(default=b"", repr=False)
    """Manifest: the small zip of links, fetch script and made files."""

    @property
    def delivery(self) -> Delivery:
        return self.plan.delivery

    def describe(self) -> str:
        """One sentence for the page: what is in it and how it comes."""
        what = (f"{counted(self.plan.recording_count, 'recording')}, {self.plan.file_count} files, "
                f"{human_bytes(self.plan.total_bytes)}, {self.plan.layout.label}")
        if self.delivery is Delivery.ZIP:
            return f"Ready: {what}. The zip is streamed from storage when you download it."
        return (f"Ready: {what}. That is too big for one browser download, so you get a manifest: unpack it and run "
                "`python fetch.py`, which downloads every recording with resume and checks its checksum.")


def prepare_export(store: ObjectStore, repo: Repository, tickets: ExportTickets, settings: Settings,
                   request: ExportRequest, *, trail: AuditTrail, progress: Progress | None = None) -> PreparedExport:
    """Plan the export (ExportRefused with every reason when it cannot be made), write its audit entries
    (AuditUnavailable, and nothing handed out, when they cannot be written) and hand it out."""
    plan = build_plan(store, repo, request.selection, request.layout, zip_max_bytes=settings.export_zip_max_bytes,
                      progress=progress)
    links_valid_s = store.expiry(MAX_PRESIGN_EXPIRY_S) if plan.delivery is Delivery.MANIFEST else None
    first, *rest = export_events(plan, links_valid_s=links_valid_s)  # a plan holds one recording at least
    trail.before(first, also=tuple(rest))
    if plan.delivery is Delivery.MANIFEST:
        return PreparedExport(plan, manifest_name(plan), manifest=manifest_zip(store, plan))
    url = f"{EXPORT_PATH}?{urlencode({'ticket': tickets.issue(plan)})}"
    return PreparedExport(plan, zip_name(plan), download_url=url)


def export_events(plan: ExportPlan, *, links_valid_s: int | None = None) -> list[AuditEvent]:
    """One ``export`` audit event per recording of ``plan``, with its files in the export (see the module
    docstring); ``links_valid_s``: how long a manifest's links work."""
    files: dict[str, list[str]] = {obj.record_id: [obj.path] for obj in plan.objects}
    for made in plan.made:
        if made.record_id is not None:
            files[made.record_id].append(made.path)
    common: dict[str, Any] = {"export_id": uuid.uuid4().hex, "root": plan.root, "layout": plan.layout.value,
                              "delivery": plan.delivery.value, "recordings": plan.recording_count,
                              "shared_files": list(plan.shared_files)}
    if links_valid_s is not None:
        common["links_valid_s"] = links_valid_s
    study_id = plan.space.study_id if isinstance(plan.space, Space) else None
    return [AuditEvent(AuditAction.EXPORT, study_id, obj.record_id, obj.subject_id,
                       {"name": obj.name, "files": files[obj.record_id], **common}) for obj in plan.objects]
