"""Fixtures the integration modules share: cloud-mode settings on the SeaweedFS fixture and its store, and a local
Ray and two short face clips for the batch-job modules (one of each per module).
A module that needs other limits defines its own ``settings``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.jobs.engine import EngineConfig, RayEngine
from lib.settings import MIB, Settings
from lib.storage import ObjectStore
from tests.support.job_world import ClipFiles, clip_files
from tests.support.synthetic_pulse import ClipSpec


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


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[ClipFiles]:
    """Two short generated face clips (with ground truth) at different heart rates, stored again as needed."""
    folder = tmp_path_factory.mktemp("clips")
    return [clip_files(folder, ClipSpec(seconds=8.0, size=(160, 120), hr_bpm=hr, seed=i))
            for i, hr in enumerate((66.0, 78.0))]
