"""What My files' Export does: make the plan as the signed-in user, then hand out either a one-time link to
the streamed zip (:mod:`lib.export.routes`) or, for a set above ``Settings.export_zip_max_bytes``, the
manifest zip with its fetch script (:mod:`lib.export.manifest`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from lib.audit import AuditAction, AuditEvent, AuditTrail
from lib.export.archive import zip_name
from lib.export.manifest import manifest_name, manifest_zip
from lib.export.model import Delivery, ExportPlan, ExportRequest
from lib.export.plan import Progress, build_plan
from lib.export.routes import EXPORT_PATH
from lib.export.tickets import ExportTickets
from lib.keys import Space, record_keys_of
from lib.repository import Repository
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.units import human_bytes


def _export_event(repo: Repository, plan: ExportPlan, delivery: Delivery) -> AuditEvent:
    """The export's audit entry, in the trail of the one space its recordings lie in."""
    record_ids = list(dict.fromkeys(record_keys_of(f.key).record_id for f in plan.objects))
    subjects = sorted({r.research.subject_id for r in repo.get_many(record_ids)} - {""})
    study_id = plan.space.study_id if isinstance(plan.space, Space) else None
    return AuditEvent(AuditAction.EXPORT, study_id, detail={
        "format": plan.layout.value, "delivery": delivery.value, "count": len(record_ids),
        "record_ids": record_ids, "subject_ids": subjects})


@dataclass(frozen=True)
class PreparedExport:
    plan: ExportPlan
    delivery: Delivery
    file_name: str
    download_url: str = ""
    """Zip: the app-relative link that streams it (one-time, short-lived)."""
    manifest: bytes = field(default=b"", repr=False)
    """Manifest: the small zip of links, fetch script and made files."""

    def describe(self) -> str:
        """One sentence for the page: what is in it and how it comes."""
        what = (f"{self.plan.recording_count} recording{'s' if self.plan.recording_count != 1 else ''}, "
                f"{self.plan.file_count} files, {human_bytes(self.plan.total_bytes)}, {self.plan.layout.label}")
        if self.delivery is Delivery.ZIP:
            return f"Ready: {what}. The zip is streamed from storage when you download it."
        return (f"Ready: {what}. That is too big for one browser download, so you get a manifest: unpack it and run "
                "`python fetch.py`, which downloads every recording with resume and checks its checksum.")


def prepare_export(store: ObjectStore, repo: Repository, tickets: ExportTickets, settings: Settings,
                   request: ExportRequest, *, trail: AuditTrail, progress: Progress | None = None) -> PreparedExport:
    """Plan the export (ExportRefused with every reason when it cannot be made) and hand it out, its audit entry
    (the recordings and subjects in it) written first: no entry, no link and no manifest."""
    plan = build_plan(store, repo, request.selection, request.layout, progress=progress)
    delivery = plan.delivery(settings.export_zip_max_bytes)
    trail.before(_export_event(repo, plan, delivery))
    if delivery is Delivery.MANIFEST:
        return PreparedExport(plan, delivery, manifest_name(plan), manifest=manifest_zip(store, plan))
    url = f"{EXPORT_PATH}?{urlencode({'ticket': tickets.issue(plan)})}"
    return PreparedExport(plan, delivery, zip_name(plan), download_url=url)
