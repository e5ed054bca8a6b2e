"""Where recording metadata is kept: the ``Repository`` protocol (the signed-in user's reads and
research edits) and the ``ServerRecords`` protocol (the server's writes of facts and the row
lifecycle), both in ``base``, with their SQLite (demo mode, ``sqlite``) and Supabase (cloud mode,
``supabase``) implementations. The values they store and return are in ``lib.records``.
"""

from lib.repository.base import Repository, ServerRecords
from lib.repository.sqlite import SqliteRepository, SqliteServerRecords
from lib.repository.supabase import SupabaseRepository, SupabaseServerRecords, new_service_client

__all__ = ["Repository", "ServerRecords", "SqliteRepository", "SqliteServerRecords", "SupabaseRepository",
           "SupabaseServerRecords", "new_service_client"]
