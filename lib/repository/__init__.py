"""Where recording metadata is kept: the ``Repository`` protocol (the signed-in user's reads and
research edits) and the ``ServerRecords`` protocol (the server's writes of facts and the row
lifecycle), both in ``base``, with their SQLite (demo mode, ``sqlite``) and Supabase (cloud mode,
``supabase``) implementations. The values they store and return are in ``lib.records``.
The Supabase backend loads postgrest, so its names load on first use (lib.lazy).
"""

from lib.lazy import lazy_exports

_EXPORTS = {  # name -> its module; each loads on first use (lib.lazy)
    "Repository": "base",
    "ServerRecords": "base",
    "SqliteRepository": "sqlite",
    "SqliteServerRecords": "sqlite",
    "SupabaseRepository": "supabase",
    "SupabaseServerRecords": "supabase",
    "new_service_client": "supabase",
    "SqliteAuditLog": "sqlite_audit",
    "SupabaseAuditLog": "supabase_audit",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
