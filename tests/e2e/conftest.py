from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.app_server import RunningApp, app_origins, run_app
from tests.support.browser import browser, page  # noqa: F401
from tests.support.cloud import CloudBackends, cloud_backends
from tests.support.services import require_chromium


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app in demo mode (no configuration at all), once per module."""
    require_chromium()
    with run_app(tmp_path_factory.mktemp("demo-app")) as app:
        yield app


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudBackends]:
    """SeaweedFS (set up as the README's on-premises section says) and the Supabase stand-in, once per module."""
    require_chromium()
    with cloud_backends(tmp_path_factory.mktemp("cloud-backends")) as backends:
        yield backends


@pytest.fixture(scope="module")
def cloud_app(cloud: CloudBackends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app in cloud mode against SeaweedFS and the Supabase stand-in; the bucket's CORS rule names its origin."""
    with run_app(tmp_path_factory.mktemp("cloud-app"), env=cloud.app_env()) as app:
        cloud.allow_origins(app_origins(app))
        yield app
