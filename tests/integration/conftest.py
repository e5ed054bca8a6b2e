"""Fixtures the integration modules share: cloud-mode settings on the SeaweedFS fixture and its store. A
module that needs other limits defines its own ``settings``."""

from __future__ import annotations

import pytest

from lib.settings import MIB, Settings
from lib.storage import ObjectStore


@pytest.fixture
def settings(s3_settings) -> Settings:
    return Settings(mode="cloud", s3=s3_settings, max_upload_bytes=50 * MIB, quota_bytes=500 * MIB)


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    return ObjectStore.from_settings(settings)
