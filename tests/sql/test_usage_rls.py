"""Row-level security keeps other users' bytes out of the Usage page's figures.

Through the whole cloud path: supabase-py → the Supabase stand-in (PostgREST
and GoTrue) → PostgreSQL with sql/ applied, as the signed-in user.
"""

from __future__ import annotations

import uuid

import pytest
from supabase import create_client

from lib.records import NewRecord, ResearchFields
from lib.repository import SupabaseRepository
from lib.settings import Settings
from lib.usage import user_usage
from tests.support.records import supabase_server

SETTINGS = Settings(mode="cloud", quota_bytes=1_000_000)


def _signed_in(standin, name: str):
    email, password = f"{name}@lab.test", "password-123"
    user_id = standin.create_user(email, password)
    client = create_client(standin.url, standin.anon_key)
    client.auth.sign_in_with_password({"email": email, "password": password})
    return client, SupabaseRepository(client, user_id)


def _ready(standin, repo: SupabaseRepository, size: int, subject: str = "S01") -> None:
    """A ready row, written as the server writes it (service role)."""
    record_id = str(uuid.uuid4())
    server = supabase_server(standin, repo.user_id)
    server.reserve(NewRecord(
        id=record_id, s3_key=f"recordings/{repo.user_id}/2024/05/{record_id}/original.avi", bucket="lab",
        original_name=f"{size}.avi", content_type="video/x-msvideo", size_bytes=size,
        research=ResearchFields(subject_id=subject)), quota_bytes=10**12)
    server.mark_ready(record_id, size_bytes=size, sha256=None, video=None, thumbnail_key=None, preview_key=None)


def test_other_users_bytes_never_reach_the_figures(supabase_standin):
    _, ada = _signed_in(supabase_standin, "ada")
    _, bob = _signed_in(supabase_standin, "bob")
    _ready(supabase_standin, ada, 100)
    _ready(supabase_standin, ada, 200)
    _ready(supabase_standin, bob, 50_000)  # same month, subject and type: only RLS tells them apart
    _ready(supabase_standin, bob, 1)

    mine = user_usage(ada, SETTINGS).summary
    assert (mine.total_bytes, mine.total_count) == (300, 2)
    assert [(b.label, b.bytes, b.count) for b in mine.by_subject] == [("S01", 300, 2)]
    assert [(b.label, b.bytes) for b in mine.by_month] == [(mine.by_month[0].label, 300)]
    assert {r.user_id for r in mine.largest} == {ada.user_id}
    assert user_usage(bob, SETTINGS).summary.total_bytes == 50_001


def test_admin_figures_are_not_reachable_through_the_api(supabase_standin):
    client, ada = _signed_in(supabase_standin, "ada")
    _ready(supabase_standin, ada, 100)
    for view in ("admin_usage_by_user", "admin_usage_by_month"):
        with pytest.raises(Exception, match=r"(?i)permission denied"):
            client.table(view).select("*").execute()
    own = client.table("user_files_usage").select("*").execute().data
    assert [(row["user_id"], row["total_bytes"]) for row in own] == [(ada.user_id, 100)]


def test_signed_out_callers_get_no_figures(supabase_standin):
    _, ada = _signed_in(supabase_standin, "ada")
    _ready(supabase_standin, ada, 100)
    anonymous = create_client(supabase_standin.url, supabase_standin.anon_key)
    with pytest.raises(Exception, match=r"(?i)permission denied"):
        anonymous.rpc("usage_summary").execute()
