"""One user's rows both ways, for tests: the user's repository (reads, research fields) and the server's
records for that user (facts, the row lifecycle), in demo mode (SQLite) or cloud mode (the stand-in)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from lib.pipeline.backends import Backends
from lib.repository import SqliteRepository, SqliteServerRecords, SupabaseServerRecords, new_service_client
from lib.settings import Settings, SupabaseSettings
from lib.storage import ObjectStore
from lib.usage import UserRows


def sqlite_rows(db: str | Path, user_id: str | None = None) -> UserRows:
    """A (new, unless ``user_id`` is given) user's rows in the demo database file ``db``."""
    user_id = user_id or str(uuid.uuid4())
    return UserRows(SqliteRepository(db, user_id), SqliteServerRecords(db, user_id))


def supabase_server(standin: Any, user_id: str) -> SupabaseServerRecords:
    """The server's records for ``user_id`` through the stand-in's PostgREST, with its service-role key."""
    settings = SupabaseSettings(url=standin.url, anon_key=standin.anon_key, service_role_key=standin.service_role_key)
    return SupabaseServerRecords(new_service_client(settings), user_id)


def supabase_rows(standin: Any, name: str | None = None) -> UserRows:
    """A new confirmed user, signed in through supabase-py (their JWT: RLS decides), and the server's records."""
    repo = standin.new_user_repository(name)
    return UserRows(repo, supabase_server(standin, repo.user_id))


def server_of(repo: SqliteRepository) -> SqliteServerRecords:
    """The server's records for the user of a demo-mode repository (what a session gets beside it)."""
    return SqliteServerRecords(repo.db_path, repo.user_id)


def backends_of(settings: Settings, store: ObjectStore, repo: SqliteRepository) -> Backends:
    """What an upload runs against for the user of a demo-mode repository: their rows both ways."""
    return Backends(settings, store, repo, server_of(repo))
