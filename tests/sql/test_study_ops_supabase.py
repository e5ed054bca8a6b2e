"""Running studies through the cloud stores (SupabaseRepository with each user's JWT, SupabaseServerRecords with
the service role) on the Supabase stand-in over a real PostgreSQL: the same behaviour as the demo's SQLite
stores (tests/unit/test_study_ops.py), with sql/010_study_ops.sql deciding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from supabase import create_client

from lib.auth import Caller
from lib.errors import AccessDenied, NotFound, QuotaExceeded, ValidationError
from lib.keys import record_keys
from lib.records import NewRecord
from lib.repository import SupabaseRepository
from lib.settings import Settings
from lib.studies import Invite, Member, Role
from lib.usage import UserRows, admin_study_overview, studies_usage
from tests.support.records import supabase_rows
from tests.support.supabase.server import NEW_USER_PASSWORD

PASSWORD = NEW_USER_PASSWORD
QUOTA = 10**12


def _signed_in(standin, email: str) -> SupabaseRepository:
    client = create_client(standin.url, standin.anon_key)
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    return SupabaseRepository(client, session.user.id)


def _upload(person: UserRows, study: str, size: int, study_quota: int = QUOTA) -> str:
    record_id = str(uuid.uuid4())
    keys = record_keys(person.repo.user_id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="lab", original_name="r.mp4",
                                    content_type="video/mp4", size_bytes=size, study_id=study), QUOTA, study_quota)
    person.server.mark_ready(record_id, size_bytes=size, sha256=None, video=None, thumbnail_key=None,
                             preview_key=None)
    return record_id


@pytest.fixture
def lab(supabase_standin):
    people = {name: supabase_rows(supabase_standin, name) for name in ("owner", "member", "outsider")}
    study = people["owner"].repo.create_study("Sleep").id
    people["owner"].repo.add_member(study, "member@lab.test", Role.MEMBER)
    return people, study


def test_an_invited_address_joins_once_its_sign_up_is_confirmed(supabase_standin, lab):
    people, study = lab
    owner = people["owner"].repo
    invited = owner.add_member(study, " Student@Lab.test ", Role.VIEWER)
    assert isinstance(invited, Invite) and (invited.email, invited.role) == ("student@lab.test", Role.VIEWER)
    assert [i.email for i in owner.invites(study)] == ["student@lab.test"]
    supabase_standin.set_require_confirmation(True)
    create_client(supabase_standin.url, supabase_standin.anon_key).auth.sign_up(
        {"email": "student@lab.test", "password": PASSWORD,
         "options": {"data": {"email": "member@lab.test", "study": study}}})  # user_metadata decides nothing
    assert [i.email for i in owner.invites(study)] == ["student@lab.test"]
    supabase_standin.confirm_email("student@lab.test")
    student = _signed_in(supabase_standin, "student@lab.test")
    assert [(s.id, s.role) for s in student.studies()] == [(study, Role.VIEWER)]
    assert owner.invites(study) == []
    assert isinstance(owner.add_member(study, "outsider@lab.test", Role.MEMBER), Member)


def test_owners_alone_see_and_cancel_invitations(lab):
    people, study = lab
    owner = people["owner"].repo
    owner.add_member(study, "later@lab.test", Role.MEMBER)
    with pytest.raises(ValidationError, match="invited already"):
        owner.add_member(study, "later@lab.test", Role.OWNER)
    for refused, error in ((people["member"].repo, AccessDenied), (people["outsider"].repo, NotFound)):
        with pytest.raises(error):
            refused.invites(study)
        with pytest.raises(error):
            refused.cancel_invite(study, "later@lab.test")
        with pytest.raises(AccessDenied):
            refused.add_member(study, "friend@evil.test", Role.OWNER)
    owner.cancel_invite(study, "LATER@lab.test")
    with pytest.raises(NotFound, match="does not exist"):
        owner.cancel_invite(study, "later@lab.test")
    assert owner.invites(study) == []


def test_an_upload_that_would_overfill_the_study_is_refused_in_words(lab):
    people, study = lab
    _upload(people["owner"], study, 600, study_quota=1_000)
    with pytest.raises(QuotaExceeded, match=r"does not fit into the study.*600 B of its 1000 B quota"):
        _upload(people["member"], study, 500, study_quota=1_000)
    _upload(people["member"], study, 400, study_quota=1_000)


def test_usage_per_study_and_the_administrators_overview(supabase_standin, lab):
    people, study = lab
    _upload(people["owner"], study, 100)
    _upload(people["member"], study, 300)
    other = people["outsider"].repo.create_study("Other lab").id
    _upload(people["outsider"], other, 7_000)
    settings = Settings(mode="demo", study_quota_bytes=10_000)
    [mine] = studies_usage(people["owner"].repo, settings)
    assert (mine.bytes, mine.recordings) == (400, 2)
    assert [(u.email, u.bytes) for u in mine.by_uploader] == [("member@lab.test", 300), ("owner@lab.test", 100)]
    [theirs] = studies_usage(people["member"].repo, settings)
    assert (theirs.bytes, theirs.by_uploader) == (400, ())

    with pytest.raises(AccessDenied):  # the database refuses a token without the admin role
        people["owner"].repo.admin_studies()
    supabase_standin.accounts.merge_app_metadata(people["outsider"].repo.user_id, {"role": "admin"})
    admin = _signed_in(supabase_standin, "outsider@lab.test")
    overview = admin_study_overview(admin, Caller(user_id=admin.user_id, is_admin=True))
    assert [(s.name, s.owner_email, s.members, s.bytes, s.recordings) for s in overview] == [
        ("Other lab", "outsider@lab.test", 1, 7_000, 1), ("Sleep", "owner@lab.test", 2, 400, 2)]
