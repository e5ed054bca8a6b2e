"""SupabaseRepository and SupabaseServerRecords turn transport and PostgREST failures into lib.errors."""

from __future__ import annotations

import uuid

import pytest
from supabase import ClientOptions, create_client

from lib.errors import AccessDenied, MetadataError, MetadataUnavailable, NotFound, SessionExpired
from lib.records import ListQuery, NewRecord, ResearchFields
from lib.repository import SupabaseRepository, SupabaseServerRecords, new_service_client
from lib.settings import SupabaseSettings
from tests.support.records import supabase_server
from tests.support.services import free_port


def _new(user_id: str) -> NewRecord:
    record_id = str(uuid.uuid4())
    return NewRecord(id=record_id, s3_key=f"recordings/{user_id}/2024/05/{record_id}/original.mp4",
                     bucket="lab", original_name="x.mp4", content_type="video/mp4", size_bytes=1)


def test_unreachable_service_is_metadata_unavailable(supabase_standin):
    url = f"http://127.0.0.1:{free_port()}"
    client = create_client(url, supabase_standin.anon_key)
    user_id = str(uuid.uuid4())
    with pytest.raises(MetadataUnavailable, match="could not be reached"):
        SupabaseRepository(client, user_id).list(ListQuery())
    service = new_service_client(SupabaseSettings(url, supabase_standin.anon_key, supabase_standin.service_role_key))
    with pytest.raises(MetadataUnavailable, match="could not be reached"):
        SupabaseServerRecords(service, user_id).reserve(_new(user_id), quota_bytes=10)


def test_a_wrong_service_role_key_is_refused(supabase_standin):
    user_id = supabase_standin.create_user("ada@lab.test", "password-1")
    service = new_service_client(SupabaseSettings(supabase_standin.url, supabase_standin.anon_key, "not-the-key"))
    with pytest.raises(MetadataError):
        SupabaseServerRecords(service, user_id).reserve(_new(user_id), quota_bytes=10)


def test_expired_token_is_session_expired(supabase_standin):
    user_id = supabase_standin.create_user("ada@lab.test", "password-1")
    expired = supabase_standin.access_token_for(user_id, "ada@lab.test", lifetime_s=-5)
    client = create_client(supabase_standin.url, supabase_standin.anon_key,
                           ClientOptions(headers={"Authorization": f"Bearer {expired}"}))
    with pytest.raises(SessionExpired):
        SupabaseRepository(client, user_id).list(ListQuery())


def test_signed_out_client_is_access_denied(supabase_standin):
    user_id = supabase_standin.create_user("ada@lab.test", "password-1")
    client = create_client(supabase_standin.url, supabase_standin.anon_key)
    with pytest.raises(AccessDenied):
        SupabaseRepository(client, user_id).list(ListQuery())


def test_token_of_one_user_with_another_users_id_reaches_nothing(supabase_standin):
    """A repository built with the wrong user id reads and changes nothing: RLS checks the JWT, not the app."""
    supabase_standin.create_user("ada@lab.test", "password-1")
    bob = supabase_standin.create_user("bob@lab.test", "password-1")
    record = supabase_server(supabase_standin, bob).reserve(_new(bob), quota_bytes=10)
    client = create_client(supabase_standin.url, supabase_standin.anon_key)
    client.auth.sign_in_with_password({"email": "ada@lab.test", "password": "password-1"})
    mislabelled = SupabaseRepository(client, bob)
    with pytest.raises(NotFound):
        mislabelled.get(record.id)
    with pytest.raises(NotFound):
        mislabelled.update_research(record.id, ResearchFields(notes="mine now"))
    assert mislabelled.list(ListQuery()).total == 0
