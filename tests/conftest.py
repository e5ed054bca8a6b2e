"""Shared test wiring: tier markers from folders, and fixtures from tests/support."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.checks import check_pool  # noqa: F401
from tests.support.postgres import pg_clean, pg_dsn  # noqa: F401
from tests.support.s3 import _no_real_aws  # noqa: F401
from tests.support.seaweedfs import s3_client, s3_endpoint, s3_settings, seaweedfs  # noqa: F401
from tests.support.supabase.fixtures import supabase_standin, supabase_standin_server  # noqa: F401

TIERS = ("unit", "integration", "sql", "app", "e2e", "data")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier, taken from the folder it lives in."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
