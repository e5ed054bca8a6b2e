"""One user's in-process world for unit tests of lib functions that take a store, a repository and the
server's records: moto's S3 (fine here: nothing is presigned and tried) and SQLite in a temporary folder.

The unit tier registers the fixtures (``tests/unit/conftest.py``); modules import the constants
for what a test builds itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from lib.repository import SqliteRepository, SqliteServerRecords
from lib.settings import S3Settings, Settings
from lib.storage import ObjectStore

BUCKET = "pulsevault-unit"
USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
"""The user every fixture acts as."""
S3 = S3Settings(bucket=BUCKET, region="us-east-1", access_key_id="AKIDUNIT", secret_access_key="unit-secret")
SETTINGS = Settings(mode="cloud", s3=S3, presign_expiry_s=900)


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    with mock_aws():
        store = ObjectStore(S3, settings=SETTINGS)
        store._client.create_bucket(Bucket=BUCKET)
        yield store


@pytest.fixture
def repo(tmp_path: Path) -> SqliteRepository:
    return SqliteRepository(tmp_path / "demo.db", USER)


@pytest.fixture
def server(repo: SqliteRepository) -> SqliteServerRecords:
    return SqliteServerRecords(repo.db_path, USER)
