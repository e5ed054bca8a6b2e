"""Where recording metadata is kept: the ``Repository`` protocol (``base``) and
its two implementations, ``SqliteRepository`` (demo mode, ``sqlite``) and
``SupabaseRepository`` (cloud mode, ``supabase``). The values they store and
return are in ``lib.records``.
"""

from lib.repository.base import Repository
from lib.repository.sqlite import SqliteRepository
from lib.repository.supabase import SupabaseRepository

__all__ = ["Repository", "SqliteRepository", "SupabaseRepository"]
