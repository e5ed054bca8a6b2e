"""What a driver process acts with: :class:`DriverTarget`, everything it needs and nothing it cannot pickle
(it reaches ``python -m lib.jobs drain`` over stdin, so no secret shows in a process list).

A driver acts for each job's owner in turn, with the server's rights for that owner only
(``lib.repository.ServerRecords`` and :class:`lib.jobs.store.JobStore` built for the job row's user id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.audit import AuditLog
from lib.jobs.driver import OwnerBackends
from lib.jobs.store import JobStore, SqliteJobs, SupabaseJobs
from lib.repository import ServerRecords, SqliteAuditLog, SqliteServerRecords
from lib.settings import Settings
from lib.storage import ObjectStore


@dataclass(frozen=True)
class DriverTarget:
    settings: Settings
    db_path: Path | None = None
    """Demo mode's SQLite file; None in the cloud (PostgREST with the service role)."""
    workdir: Path | None = None
    """Where local workers fetch recordings to; None: the system's temporary folder."""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # clients are made again in the driver, never pickled
        return {"settings": self.settings, "db_path": self.db_path, "workdir": self.workdir, "_cache": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def store(self) -> ObjectStore:
        if "store" not in self._cache:
            self._cache["store"] = ObjectStore.from_settings(self.settings)
        return self._cache["store"]

    def records_for(self, user_id: str) -> ServerRecords:
        if self.db_path is not None:
            return SqliteServerRecords(self.db_path, user_id)
        from lib.repository import SupabaseServerRecords  # cloud mode only: it loads postgrest

        return SupabaseServerRecords(self._client(), user_id)

    def jobs_for(self, user_id: str) -> JobStore:
        if self.db_path is not None:
            return SqliteJobs(self.db_path, user_id)
        client = self._client()
        return SupabaseJobs(client, client, user_id)

    def audit_for(self, user_id: str) -> AuditLog:
        """The audit trail a driver writes each re-analysis's entry to, as the job's owner (the server's insert)."""
        if self.db_path is not None:
            return SqliteAuditLog(self.db_path, user_id)
        from lib.repository import SupabaseAuditLog

        client = self._client()
        return SupabaseAuditLog(client, client, user_id)

    def owner(self, user_id: str) -> OwnerBackends:
        return OwnerBackends(self.store(), self.records_for(user_id), self.jobs_for(user_id), self.audit_for(user_id),
                             self.workdir)

    def unfinished(self) -> list[tuple[str, str]]:
        """(job id, owner) of every unfinished job."""
        return self.jobs_for("00000000-0000-0000-0000-000000000000").unfinished()

    def _client(self) -> Any:
        if "client" not in self._cache:
            from lib.repository import new_service_client

            assert self.settings.supabase is not None
            self._cache["client"] = new_service_client(self.settings.supabase)
        return self._cache["client"]
