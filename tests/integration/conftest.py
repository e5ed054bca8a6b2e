"""Fixtures the integration modules share: cloud-mode settings on the SeaweedFS fixture and its store, and a local
Ray for the batch-job modules (one per module). A module that needs other limits defines its own ``settings``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.jobs.engine import EngineConfig, RayEngine
from lib.settings import MIB, Settings
from lib.storage import ObjectStore


@pytest.fixture
def settings(s3_settings) -> Settings:
    return Settings(mode="cloud", s3=s3_settings, max_upload_bytes=50 * MIB, quota_bytes=500 * MIB)


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    return ObjectStore.from_settings(settings)


@pytest.fixture(scope="module")
def engine() -> Iterator[RayEngine]:
    """A local Ray with 2 CPUs (this machine's) and a small object store, shut down after the module."""
    made = RayEngine(EngineConfig(address=None, num_cpus=2))
    yield made
    made.close()
