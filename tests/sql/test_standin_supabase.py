"""The Supabase stand-in answers supabase-py 2.34 the way Supabase does (GoTrue + PostgREST)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from tests.support.supabase_standin import SupabaseStandin

EMAIL, PASSWORD = "ada@lab.test", "correct horse"


def _client(standin: SupabaseStandin, **options):
    return create_client(standin.url, standin.anon_key, ClientOptions(**options) if options else None)


def test_password_sign_in_issues_an_hs256_jwt(supabase_standin):
    user_id = supabase_standin.create_user(EMAIL, PASSWORD)
    result = _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    claims = jwt.decode(result.session.access_token, supabase_standin.jwt_secret, algorithms=["HS256"],
                        audience="authenticated")
    assert (claims["sub"], claims["email"], claims["role"]) == (user_id, EMAIL, "authenticated")
    assert result.user.id == user_id
    assert result.session.expires_at == claims["exp"]


@pytest.mark.parametrize("email,password", [(EMAIL, "wrong password"), ("nobody@lab.test", PASSWORD)])
def test_wrong_credentials(supabase_standin, email, password):
    supabase_standin.create_user(EMAIL, PASSWORD)
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.sign_in_with_password({"email": email, "password": password})
    assert (caught.value.status, caught.value.code) == (400, "invalid_credentials")


def test_unconfirmed_email(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD, confirmed=False)
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    assert caught.value.code == "email_not_confirmed"


def test_rate_limit(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD)
    supabase_standin.set_rate_limited(True)
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    assert (caught.value.status, caught.value.code) == (429, "over_request_rate_limit")


def test_sign_up_without_confirmation_signs_in(supabase_standin):
    result = _client(supabase_standin).auth.sign_up({"email": EMAIL, "password": PASSWORD})
    assert result.session is not None
    assert result.user.email == EMAIL


def test_sign_up_needing_confirmation(supabase_standin):
    supabase_standin.set_require_confirmation(True)
    client = _client(supabase_standin)
    result = client.auth.sign_up({"email": EMAIL, "password": PASSWORD})
    assert result.session is None
    assert result.user.email_confirmed_at is None and result.user.identities
    with pytest.raises(AuthApiError, match="Email not confirmed"):
        client.auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    supabase_standin.confirm_email(EMAIL)
    assert client.auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD}).session


def test_sign_up_for_an_existing_account(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD)
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.sign_up({"email": EMAIL, "password": PASSWORD})
    assert (caught.value.status, caught.value.code) == (422, "user_already_exists")
    # With confirmation on, GoTrue hides the account: a user with no identities, no session.
    supabase_standin.set_require_confirmation(True)
    hidden = _client(supabase_standin).auth.sign_up({"email": EMAIL, "password": PASSWORD})
    assert hidden.session is None and hidden.user.identities == []


def test_weak_password(supabase_standin):
    with pytest.raises(AuthWeakPasswordError):
        _client(supabase_standin).auth.sign_up({"email": EMAIL, "password": "123"})


def test_refresh_get_user_and_sign_out(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD)
    supabase_standin.set_access_token_lifetime(30)
    client = _client(supabase_standin, auto_refresh_token=False)
    first = client.auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD}).session
    time.sleep(1.1)  # a new iat, so a new token
    second = client.auth.refresh_session().session
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert second.expires_in == 30
    assert client.auth.get_user().user.email == EMAIL
    client.auth.sign_out()
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.refresh_session(second.refresh_token)
    assert caught.value.code == "refresh_token_not_found"


def test_expired_access_token_is_refused(supabase_standin):
    user_id = supabase_standin.create_user(EMAIL, PASSWORD)
    expired = supabase_standin.access_token_for(user_id, EMAIL, lifetime_s=-5)
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.get_user(expired)
    assert caught.value.code == "bad_jwt"
    client = _client(supabase_standin, headers={"Authorization": f"Bearer {expired}"})
    with pytest.raises(APIError) as rest:
        client.table("user_files").select("*").execute()
    assert rest.value.code == "PGRST303"


def test_password_reset_is_recorded(supabase_standin):
    _client(supabase_standin).auth.reset_password_for_email("Ada@Lab.test")
    assert supabase_standin.recovery_requests == [EMAIL]


def test_anon_key_cannot_read_user_files(supabase_standin):
    with pytest.raises(APIError) as caught:
        _client(supabase_standin).table("user_files").select("*").execute()
    assert caught.value.code == "42501"


def test_unknown_api_key_is_refused(supabase_standin):
    response = httpx.get(f"{supabase_standin.url}/rest/v1/user_files", headers={"apikey": "nope"})
    assert response.status_code == 401


def test_control_api_needs_the_service_role_key(supabase_standin):
    url = f"{supabase_standin.url}/_standin/users"
    body = {"email": EMAIL, "password": PASSWORD}
    assert httpx.post(url, json=body, headers={"apikey": supabase_standin.anon_key}).status_code == 403
    created = httpx.post(url, json=body, headers={"apikey": supabase_standin.service_role_key})
    assert created.status_code == 201
    assert _client(supabase_standin).auth.sign_in_with_password(body).user.id == created.json()["id"]
