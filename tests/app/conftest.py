from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest runs app.py in this process: no cloud variables, so demo mode."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_S3_BUCKET",
                 "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
