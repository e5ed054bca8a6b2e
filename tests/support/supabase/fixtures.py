"""The stand-in's pytest fixtures; import both into a conftest (with ``pg_dsn`` from tests.support.postgres)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.supabase.server import SupabaseStandin


@pytest.fixture(scope="module")
def supabase_standin_server(pg_dsn: str) -> Iterator[SupabaseStandin]:
    """One stand-in per test module over the session's PostgreSQL."""
    with SupabaseStandin(pg_dsn) as standin:
        yield standin


@pytest.fixture
def supabase_standin(supabase_standin_server: SupabaseStandin) -> SupabaseStandin:
    """The module's stand-in, reset: default switches, no users, no rows, no sessions."""
    supabase_standin_server.reset()
    return supabase_standin_server
