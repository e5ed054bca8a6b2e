"""What an upload runs against: the settings, the bucket, and the signed-in user's rows both ways."""

from __future__ import annotations

from dataclasses import dataclass

from lib.audit import AuditTrail
from lib.errors import AccessDenied
from lib.keys import Owner, Space
from lib.repository import Repository, ServerRecords
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.transfer import TransferConfig


@dataclass(frozen=True)
class Backends:
    """``repo`` reads the user's rows as the user (row-level security in the cloud); ``server`` writes
    facts and the row lifecycle for that same user. Both come from one verified session
    (``lib.services.Services``); every key the pipeline touches must lie under :attr:`owner`, the
    session's user, never under a user id a record claims."""

    settings: Settings
    store: ObjectStore
    repo: Repository
    server: ServerRecords
    study_id: str | None = None
    """The study an upload goes into (the server checks the user's role in it when the row is reserved);
    None: the user's personal space."""
    trail: AuditTrail | None = None
    """The session's audit trail: an upload's entry is written before its row is marked ready (no entry, not
    ready). Every upload the app runs for a user carries one; None only for the demo's seeded sample and tests of
    the pipeline alone."""

    def __post_init__(self) -> None:
        if self.repo.user_id != self.server.user_id:
            raise AccessDenied("These records belong to another session; sign in again.")

    @property
    def owner(self) -> str:
        """The signed-in user: the owner of every key an upload signs, sends, checks or deletes."""
        return self.repo.user_id

    @property
    def space(self) -> Owner:
        """Whose keys an upload signs, sends, checks or deletes: the study's space, or the user's own."""
        return self.owner if self.study_id is None else Space(self.owner, self.study_id)

    @property
    def transfer(self) -> TransferConfig:
        return TransferConfig.from_settings(self.settings)
