"""The Supabase stand-in answers supabase-py 2.34 the way Supabase does (GoTrue + PostgREST),
and is no looser than Supabase: API keys, token audience, upserts and e-mail confirmation."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from tests.support.supabase.server import SupabaseStandin

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


# --- the gateway: only the project's two API keys -------------------------------------


def _forged(standin: SupabaseStandin, **claims) -> str:
    """A token signed with the project's secret, but not one Supabase issued."""
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 3600, **claims}, standin.jwt_secret, algorithm="HS256")


def test_only_the_project_api_keys_pass_the_gateway(supabase_standin):
    user_id = supabase_standin.create_user(EMAIL, PASSWORD)
    session = _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD}).session
    refused = {
        "not a JWT": "nope",
        "another anon token": _forged(supabase_standin, role="anon", iss="supabase-standin"),
        "a service-role token": _forged(supabase_standin, role="service_role"),
        "a user's access token": session.access_token,
        "a token for this user": supabase_standin.access_token_for(user_id, EMAIL),
    }
    for path in ("/rest/v1/user_files", "/auth/v1/health"):
        for what, key in refused.items():
            response = httpx.get(f"{supabase_standin.url}{path}", headers={"apikey": key})
            assert (response.status_code, response.json()["message"]) == (401, "Invalid API key"), (path, what)
        missing = httpx.get(f"{supabase_standin.url}{path}")
        assert (missing.status_code, missing.json()["message"]) == (401, "No API key found in request")
    for key in (supabase_standin.anon_key, supabase_standin.service_role_key):
        assert httpx.get(f"{supabase_standin.url}/auth/v1/health", headers={"apikey": key}).status_code == 200


def test_a_forged_api_key_fails_in_supabase_py(supabase_standin):
    forged = _forged(supabase_standin, role="anon")
    with pytest.raises(APIError) as caught:
        create_client(supabase_standin.url, forged).table("user_files").select("*").execute()
    assert caught.value.message == "Invalid API key"
    with pytest.raises(AuthApiError) as auth_caught:
        create_client(supabase_standin.url, forged).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    assert auth_caught.value.status == 401


# --- the audience of a user's token ----------------------------------------------------


def _with_audience(standin: SupabaseStandin, token: str, audience) -> str:
    claims = jwt.decode(token, standin.jwt_secret, algorithms=["HS256"], options={"verify_aud": False})
    claims.pop("aud")
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, standin.jwt_secret, algorithm="HS256")


def _reads_user_files(standin: SupabaseStandin, token: str) -> list:
    client = _client(standin, headers={"Authorization": f"Bearer {token}"})
    return client.table("user_files").select("id").execute().data


def test_gotrue_accepts_only_its_own_audience(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD)
    client = _client(supabase_standin)
    token = client.auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD}).session.access_token
    assert client.auth.get_user(token).user.email == EMAIL
    for audience in ("somewhere-else", None, ["somewhere-else", "authenticated"]):
        with pytest.raises(AuthApiError) as caught:
            client.auth.get_user(_with_audience(supabase_standin, token, audience))
        assert (caught.value.status, caught.value.code) == (400, "validation_failed"), audience
        assert "audience" in caught.value.message


def test_postgrest_refuses_a_token_for_another_audience(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD)
    token = _client(supabase_standin).auth.sign_in_with_password(
        {"email": EMAIL, "password": PASSWORD}).session.access_token
    assert _reads_user_files(supabase_standin, token) == []
    # PostgREST's jwt-aud: a token naming an audience must name ours; one naming none is not refused.
    assert _reads_user_files(supabase_standin, _with_audience(supabase_standin, token, ["x", "authenticated"])) == []
    assert _reads_user_files(supabase_standin, _with_audience(supabase_standin, token, None)) == []
    for audience, message in (("somewhere-else", "JWT not in audience"), (["x"], "JWT not in audience"),
                              (42, "The JWT 'aud' claim must be a string or an array of strings")):
        with pytest.raises(APIError) as caught:
            _reads_user_files(supabase_standin, _with_audience(supabase_standin, token, audience))
        assert (caught.value.code, caught.value.message) == ("PGRST303", message)


# --- upserts as PostgREST resolves them -----------------------------------------------
#
# Rows of user_files are the server's to write (sql/003_trust.sql), so upserts run with the
# service-role key; a user's own token may not insert or upsert at all.


def _signed_in_client(standin: SupabaseStandin, email: str = EMAIL):
    user_id = standin.create_user(email, PASSWORD)
    client = _client(standin)
    client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return client, user_id


def _service(standin: SupabaseStandin):
    return create_client(standin.url, standin.service_role_key)


def _row(user_id: str, *, row_id: str | None = None, notes: str = "") -> dict:
    row_id = row_id or str(uuid.uuid4())
    return {"id": row_id, "user_id": user_id, "bucket": "lab",
            "s3_key": f"recordings/{user_id}/2024/05/{row_id}/original.avi", "original_name": "a.avi",
            "content_type": "video/x-msvideo", "notes": notes}


def _rows(client) -> list[tuple[str, str]]:
    data = client.table("user_files").select("id,notes").order("notes").execute().data
    return [(r["id"], r["notes"]) for r in data]


def test_upsert_inserts_then_merges_on_the_primary_key(supabase_standin):
    service = _service(supabase_standin)
    row = _row(supabase_standin.create_user(EMAIL, PASSWORD), notes="first")
    response = service.table("user_files").upsert(row).execute()
    assert [r["notes"] for r in response.data] == ["first"]
    service.table("user_files").upsert({**row, "notes": "second"}).execute()
    assert _rows(service) == [(row["id"], "second")]
    with pytest.raises(APIError) as caught:  # without a resolution preference a duplicate is a conflict
        service.table("user_files").insert({**row, "notes": "third"}).execute()
    assert caught.value.code == "23505"
    assert _rows(service) == [(row["id"], "second")]


def test_upsert_on_conflict_columns(supabase_standin):
    service = _service(supabase_standin)
    user_id = supabase_standin.create_user(EMAIL, PASSWORD)
    first = _row(user_id, notes="a first")
    service.table("user_files").insert(first).execute()
    other = _row(user_id, notes="b new")
    service.table("user_files").upsert([{**first, "notes": "a merged"}, other], on_conflict="s3_key").execute()
    assert _rows(service) == [(first["id"], "a merged"), (other["id"], "b new")]
    with pytest.raises(APIError) as caught:
        service.table("user_files").upsert(first, on_conflict="notes").execute()
    assert caught.value.code == "42P10"  # no unique constraint on that column, as PostgreSQL says


def test_upsert_ignoring_duplicates(supabase_standin):
    service = _service(supabase_standin)
    user_id = supabase_standin.create_user(EMAIL, PASSWORD)
    row = _row(user_id, notes="kept")
    service.table("user_files").insert(row).execute()
    added = _row(user_id, notes="new")
    response = service.table("user_files").upsert([{**row, "notes": "ignored"}, added],
                                                  ignore_duplicates=True).execute()
    assert [r["id"] for r in response.data] == [added["id"]]
    assert _rows(service) == [(row["id"], "kept"), (added["id"], "new")]


def test_a_users_token_upserts_nothing_not_even_over_another_users_row(supabase_standin):
    _ada, ada_id = _signed_in_client(supabase_standin, "ada@lab.test")
    bob, bob_id = _signed_in_client(supabase_standin, "bob@lab.test")
    row = _row(ada_id, notes="ada's")
    _service(supabase_standin).table("user_files").insert(row).execute()
    for attempt in (_row(bob_id, notes="bob's own"), _row(bob_id, row_id=row["id"], notes="bob's")):
        with pytest.raises(APIError) as caught:
            bob.table("user_files").upsert(attempt).execute()
        assert caught.value.code == "42501"
    assert _rows(_service(supabase_standin)) == [(row["id"], "ada's")] and _rows(bob) == []


# --- e-mail confirmation, and the admin API that confirms ---------------------------------


def test_sign_up_again_before_confirming_resends_the_confirmation(supabase_standin):
    supabase_standin.set_require_confirmation(True)
    first = _client(supabase_standin).auth.sign_up({"email": EMAIL, "password": PASSWORD})
    again = _client(supabase_standin).auth.sign_up({"email": EMAIL, "password": PASSWORD})
    assert again.session is None and again.user.id == first.user.id and again.user.identities
    assert again.user.confirmation_sent_at >= first.user.confirmation_sent_at


def test_the_admin_api_confirms_an_address(supabase_standin):
    supabase_standin.set_require_confirmation(True)
    client = _client(supabase_standin)
    user = client.auth.sign_up({"email": EMAIL, "password": PASSWORD}).user
    with pytest.raises(AuthApiError, match="Email not confirmed"):
        client.auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    admin = create_client(supabase_standin.url, supabase_standin.service_role_key).auth.admin
    confirmed = admin.update_user_by_id(user.id, {"email_confirm": True}).user
    assert confirmed.email_confirmed_at is not None
    assert client.auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD}).user.id == user.id


def test_the_admin_api_creates_accounts(supabase_standin):
    admin = create_client(supabase_standin.url, supabase_standin.service_role_key).auth.admin
    confirmed = admin.create_user({"email": EMAIL, "password": PASSWORD, "email_confirm": True}).user
    assert _client(supabase_standin).auth.sign_in_with_password(
        {"email": EMAIL, "password": PASSWORD}).user.id == confirmed.id
    admin.create_user({"email": "bob@lab.test", "password": PASSWORD})
    with pytest.raises(AuthApiError) as unconfirmed:
        _client(supabase_standin).auth.sign_in_with_password({"email": "bob@lab.test", "password": PASSWORD})
    assert unconfirmed.value.code == "email_not_confirmed"
    with pytest.raises(AuthApiError) as duplicate:
        admin.create_user({"email": EMAIL, "password": PASSWORD})
    assert (duplicate.value.status, duplicate.value.code) == (422, "email_exists")


def test_the_admin_api_needs_a_service_role_bearer(supabase_standin):
    user_id = supabase_standin.create_user(EMAIL, PASSWORD, confirmed=False)
    signed_in, _ = _signed_in_client(supabase_standin, "bob@lab.test")
    for client in (_client(supabase_standin), signed_in):
        with pytest.raises(AuthApiError) as caught:
            client.auth.admin.update_user_by_id(user_id, {"email_confirm": True})
        assert (caught.value.status, caught.value.code) == (403, "not_admin")
    with pytest.raises(AuthApiError, match="Email not confirmed"):
        _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})


def test_the_admin_api_sets_app_metadata_which_tokens_and_the_user_carry(supabase_standin):
    """GoTrue copies app_metadata into the user object and every access token; only the service role sets it."""
    user_id = supabase_standin.create_user(EMAIL, PASSWORD)
    admin = create_client(supabase_standin.url, supabase_standin.service_role_key).auth.admin
    updated = admin.update_user_by_id(user_id, {"app_metadata": {"role": "admin"}}).user
    assert updated.app_metadata["role"] == "admin" and updated.app_metadata["provider"] == "email"
    session = _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD}).session
    assert session.user.app_metadata["role"] == "admin"
    assert supabase_standin.keys.verify(session.access_token)["app_metadata"]["role"] == "admin"
    signed_in, _ = _signed_in_client(supabase_standin, "bob@lab.test")
    with pytest.raises(AuthApiError) as caught:
        signed_in.auth.admin.update_user_by_id(user_id, {"app_metadata": {"role": "researcher"}})
    assert caught.value.code == "not_admin"


def test_control_api_needs_the_service_role_key(supabase_standin):
    supabase_standin.create_user(EMAIL, PASSWORD)
    url = f"{supabase_standin.url}/_standin/settings"
    body = {"rate_limited": True}
    assert httpx.post(url, json=body, headers={"apikey": supabase_standin.anon_key}).status_code == 403
    assert httpx.post(url, json=body, headers={"apikey": supabase_standin.service_role_key}).status_code == 200
    with pytest.raises(AuthApiError) as caught:
        _client(supabase_standin).auth.sign_in_with_password({"email": EMAIL, "password": PASSWORD})
    assert caught.value.status == 429
