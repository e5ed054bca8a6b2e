"""The sql tier's fixtures: a real PostgreSQL with sql/ applied, and the Supabase stand-in."""

from __future__ import annotations

from tests.support.postgres import pg_clean, pg_dsn  # noqa: F401
from tests.support.supabase.fixtures import supabase_standin, supabase_standin_server  # noqa: F401
