"""Issue 14 as it was found: an attacker with the anon key and their own JWT talks to PostgREST directly
(the Supabase stand-in over a real PostgreSQL with sql/ applied), not through the app.

Each request here succeeded before sql/003_trust.sql: the quota bypass (attack 1, size_bytes = 0), the
served content type (attack 2), a row marked ready by its owner, keys pointed elsewhere, rows deleted to
hide bytes from the quota. Research fields stay the user's to edit.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from lib.records import NewRecord
from tests.support.records import supabase_rows
from tests.support.supabase.server import SupabaseStandin

QUOTA = 10**12


class Attacker:
    """A signed-in user's raw PostgREST session: the public anon key and their own access token."""

    def __init__(self, standin: SupabaseStandin, token: str) -> None:
        self.base = f"{standin.url}/rest/v1"
        self.headers = {"apikey": standin.anon_key, "Authorization": f"Bearer {token}",
                        "Prefer": "return=representation"}

    def patch(self, record_id: str, body: dict[str, Any]) -> requests.Response:
        return requests.patch(f"{self.base}/user_files", params={"id": f"eq.{record_id}"}, json=body,
                              headers=self.headers, timeout=10)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.base}/{path}", json=body, headers=self.headers, timeout=10)

    def delete(self, record_id: str) -> requests.Response:
        return requests.delete(f"{self.base}/user_files", params={"id": f"eq.{record_id}"}, headers=self.headers,
                               timeout=10)

    def row(self, record_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/user_files", params={"id": f"eq.{record_id}"}, headers=self.headers,
                                timeout=10)
        response.raise_for_status()
        return response.json()[0]


@pytest.fixture
def setup(supabase_standin: SupabaseStandin):
    """B with one ready recording of 5,000 bytes (written by the server), and B's raw PostgREST session."""
    rows = supabase_rows(supabase_standin, "bee")
    record_id = str(uuid.uuid4())
    folder = f"recordings/{rows.repo.user_id}/2024/05/{record_id}/"
    rows.server.reserve(NewRecord(id=record_id, s3_key=f"{folder}original.mp4", bucket="lab",
                                  original_name="rec.mp4", content_type="video/mp4", size_bytes=5_000), QUOTA)
    rows.server.mark_ready(record_id, size_bytes=5_000, sha256="ab" * 32, video=None, thumbnail_key=None,
                           preview_key=f"{folder}preview.mp4")
    token = supabase_standin.access_token_for(rows.repo.user_id)
    return rows, record_id, Attacker(supabase_standin, token)


@pytest.mark.parametrize("body", [
    pytest.param({"size_bytes": 0}, id="quota-bypass"),
    pytest.param({"content_type": "text/html", "preview_key": None}, id="served-as-html"),
    pytest.param({"status": "ready"}, id="status"),
    pytest.param({"s3_key": "recordings/{other}/2024/05/{id}/original.mp4"}, id="s3-key"),
    pytest.param({"sha256": "00" * 32}, id="checksum"),
    pytest.param({"original_name": "![x](https://evil.example/x.png).mp4"}, id="name"),
    pytest.param({"analysis": {"hr_bpm": 1}}, id="analysis"),
    pytest.param({"notes": "fine", "size_bytes": 0}, id="research-with-a-fact"),
])
def test_a_users_token_cannot_patch_a_fact(setup, body: dict[str, Any]) -> None:
    rows, record_id, attacker = setup
    before = rows.repo.get(record_id)
    body = {k: v.format(other=uuid.uuid4(), id=record_id) if isinstance(v, str) else v for k, v in body.items()}
    response = attacker.patch(record_id, body)
    assert response.status_code in (401, 403), response.text
    assert response.json()["code"] == "42501"
    assert rows.repo.get(record_id) == before


def test_a_users_token_patches_research_fields(setup) -> None:
    rows, record_id, attacker = setup
    response = attacker.patch(record_id, {"subject_id": "S3", "session_label": "rest", "notes": "n",
                                          "tags": ["a"]})
    assert response.status_code == 200, response.text
    research = rows.repo.get(record_id).research
    assert (research.subject_id, research.notes, research.tags) == ("S3", "n", ("a",))


def test_a_users_token_inserts_and_deletes_nothing(setup) -> None:
    rows, record_id, attacker = setup
    new_id = str(uuid.uuid4())
    inserted = attacker.post("user_files", {
        "id": new_id, "user_id": rows.repo.user_id, "bucket": "lab", "original_name": "x.mp4",
        "s3_key": f"recordings/{rows.repo.user_id}/2024/05/{new_id}/original.mp4", "content_type": "video/mp4",
        "size_bytes": 0, "status": "ready"})
    assert inserted.status_code in (401, 403) and inserted.json()["code"] == "42501"
    deleted = attacker.delete(record_id)
    assert deleted.status_code in (401, 403) and deleted.json()["code"] == "42501"
    assert rows.repo.get(record_id).size_bytes == 5_000  # still counted against the quota


def test_a_users_token_cannot_reserve_around_the_quota(setup) -> None:
    rows, _record_id, attacker = setup
    new_id = str(uuid.uuid4())
    response = attacker.post("rpc/reserve_upload", {"p_row": {
        "id": new_id, "user_id": rows.repo.user_id, "bucket": "lab", "original_name": "x.mp4",
        "s3_key": f"recordings/{rows.repo.user_id}/2024/05/{new_id}/original.mp4", "content_type": "video/mp4",
        "size_bytes": 1}, "p_quota_bytes": 10**15})
    assert response.status_code in (401, 403) and response.json()["code"] == "42501"
    assert [r.id for r in rows.repo.iter_all()] == [_record_id]


def test_the_service_role_key_is_what_writes_facts(setup, supabase_standin: SupabaseStandin) -> None:
    """The server's key can; that is why it stays on the server (lib/settings.py only)."""
    rows, record_id, _attacker = setup
    server = Attacker(supabase_standin, supabase_standin.service_role_key)
    server.headers["apikey"] = supabase_standin.service_role_key
    response = server.patch(record_id, {"error": "checked"})
    assert response.status_code == 200, response.text
    assert rows.repo.get(record_id).error == "checked"
