"""Jobs over a study (sql/011_study_jobs.sql) through the Supabase stand-in over a real PostgreSQL: every member
of the study reads its jobs (labelled by the study), a non-member reads nothing of them; only a member or owner
starts one (the job store says so, the database's trigger refuses a viewer's row even from the service role),
over the study's recordings only; the creator or an owner cancels; the driver's analysis write holds only while
the job's owner may still run jobs there."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from lib.errors import AccessDenied, KeyOwnershipError, NotFound, StudyAccessLost
from lib.jobs import JobKind, JobParameters, JobStatus, SupabaseJobs
from lib.keys import record_keys, record_keys_of
from lib.records import NewRecord
from lib.repository import new_service_client
from lib.settings import SupabaseSettings
from lib.studies import Role
from lib.usage import UserRows
from tests.support.records import supabase_rows
from tests.support.supabase.server import SupabaseStandin

QUOTA = 10**12
ANALYSIS = {"method": "POS", "hr_bpm": 70.0}


@dataclass(frozen=True)
class Lab:
    standin: SupabaseStandin
    people: dict[str, UserRows]
    study: str
    recordings: tuple[str, ...]
    personal: str
    """A recording in the member's personal space (outside the study)."""

    def __getitem__(self, name: str) -> UserRows:
        return self.people[name]

    def server_jobs(self, name: str) -> SupabaseJobs:
        """The app server's job store for one person (service role, naming them)."""
        client = new_service_client(SupabaseSettings(url=self.standin.url, anon_key=self.standin.anon_key,
                                                     service_role_key=self.standin.service_role_key))
        return SupabaseJobs(client, client, self[name].repo.user_id)

    def page_jobs(self, name: str) -> SupabaseJobs:
        """What the Jobs page reads for one person: their own token (row-level security), the server writing."""
        server = self.server_jobs(name)
        return SupabaseJobs(self[name].repo._client, server._writer, server.user_id)


def _upload(person: UserRows, study: str | None) -> str:
    record_id = str(uuid.uuid4())
    keys = record_keys(person.repo.user_id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="lab", original_name="r.mp4",
                                    content_type="video/mp4", size_bytes=10, study_id=study), QUOTA)
    person.server.mark_ready(record_id, size_bytes=10, sha256=None, video=None, thumbnail_key=None,
                             preview_key=None)
    return record_id


@pytest.fixture
def lab(supabase_standin: SupabaseStandin) -> Lab:
    people = {name: supabase_rows(supabase_standin, name) for name in ("owner", "member", "viewer", "outsider")}
    study = people["owner"].repo.create_study("Sleep 2024").id
    people["owner"].repo.add_member(study, "member@lab.test", Role.MEMBER)
    people["owner"].repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    recordings = (_upload(people["owner"], study), _upload(people["member"], study))
    return Lab(supabase_standin, people, study, recordings, _upload(people["member"], None))


def test_members_see_a_study_job_and_a_non_member_sees_nothing(lab: Lab):
    job = lab.server_jobs("member").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study,
                                           owner_email="member@lab.test")
    assert job.study_id == lab.study and job.owner_email == "member@lab.test"
    for name in ("owner", "member", "viewer"):
        assert [j.id for j in lab.page_jobs(name).list()] == [job.id], name
        assert lab.page_jobs(name).get(job.id).study_id == lab.study
    assert lab.page_jobs("outsider").list() == []
    with pytest.raises(NotFound):
        lab.page_jobs("outsider").get(job.id)
    token = lab.standin.access_token_for(lab["outsider"].repo.user_id)
    direct = requests.get(f"{lab.standin.url}/rest/v1/jobs", params={"id": f"eq.{job.id}"}, timeout=10,
                          headers={"apikey": lab.standin.anon_key, "Authorization": f"Bearer {token}"})
    assert direct.status_code == 200 and direct.json() == []


def test_a_removed_member_loses_sight_of_the_studys_jobs_at_once(lab: Lab):
    job = lab.server_jobs("owner").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)
    assert [j.id for j in lab.page_jobs("viewer").list()] == [job.id]
    lab["owner"].repo.remove_member(lab.study, lab["viewer"].repo.user_id)
    assert lab.page_jobs("viewer").list() == []


def test_a_viewer_cannot_start_a_job_not_even_around_the_app(lab: Lab):
    with pytest.raises(AccessDenied, match="viewers cannot"):
        lab.server_jobs("viewer").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)
    viewer_id = lab["viewer"].repo.user_id
    row = {"user_id": viewer_id, "study_id": lab.study, "kind": "reanalyse", "fingerprint": "x",
           "record_ids": list(lab.recordings)}
    service = lab.server_jobs("owner")._writer
    with pytest.raises(AccessDenied):  # the database's trigger, even for the service role
        lab.server_jobs("owner")._rows(service.from_("jobs").insert(row))
    token = lab.standin.access_token_for(viewer_id)
    posted = requests.post(f"{lab.standin.url}/rest/v1/jobs", json=row, timeout=10,
                           headers={"apikey": lab.standin.anon_key, "Authorization": f"Bearer {token}"})
    assert posted.status_code in (401, 403)
    assert lab.page_jobs("viewer").list() == []


def test_a_study_job_covers_only_the_studys_recordings(lab: Lab):
    with pytest.raises(AccessDenied):
        lab.server_jobs("member").create(JobKind.REANALYSE, JobParameters(), (*lab.recordings, lab.personal),
                                         study_id=lab.study)
    with pytest.raises(AccessDenied):  # and an outsider's study job over it, naming the study, neither
        lab.server_jobs("outsider").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)


def test_the_creator_or_an_owner_cancels_a_study_job(lab: Lab):
    first = lab.server_jobs("member").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)
    with pytest.raises(AccessDenied, match="Only the member who started"):
        lab.page_jobs("viewer").request_cancel(first.id)
    assert lab.page_jobs("owner").request_cancel(first.id).status is JobStatus.CANCELLED
    second = lab.server_jobs("owner").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)
    with pytest.raises(AccessDenied):
        lab.page_jobs("member").request_cancel(second.id)
    running = lab.server_jobs("member").claim(
        lab.server_jobs("member").create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study).id)
    assert lab.page_jobs("member").request_cancel(running.id).status is JobStatus.CANCELLING


def test_the_drivers_write_holds_only_while_the_owner_may_run_jobs(lab: Lab):
    member = lab["member"].server
    theirs = lab.recordings[0]  # the owner's upload: a study job writes any of the study's rows
    assert member.set_study_analysis(theirs, lab.study, ANALYSIS).analysis == ANALYSIS
    assert member.study_row(theirs, lab.study).analysis == ANALYSIS
    with pytest.raises(NotFound):  # a row outside the study, even the member's own
        member.set_study_analysis(lab.personal, lab.study, ANALYSIS)
    assert sorted(member.study_record_ids(lab.study)) == sorted(lab.recordings)
    lab["owner"].repo.set_role(lab.study, member.user_id, Role.VIEWER)
    with pytest.raises(StudyAccessLost):
        member.set_study_analysis(theirs, lab.study, {"method": "CHROM"})
    with pytest.raises(StudyAccessLost):
        member.study_row(theirs, lab.study)
    assert lab["owner"].server.study_row(theirs, lab.study).analysis == ANALYSIS
    with pytest.raises(StudyAccessLost):
        lab["outsider"].server.set_study_analysis(theirs, lab.study, {"method": "CHROM"})


def test_regenerated_derivatives_are_written_on_the_same_terms(lab: Lab):
    member = lab["member"].server
    theirs = lab.recordings[0]
    keys = record_keys_of(lab["owner"].repo.get(theirs).s3_key)
    saved = member.set_study_derivatives(theirs, lab.study, keys.thumbnail, keys.preview)
    assert (saved.thumbnail_key, saved.preview_key) == (keys.thumbnail, keys.preview)
    with pytest.raises(KeyOwnershipError):  # a key outside the recording's folder, refused before the database
        member.set_study_derivatives(theirs, lab.study, keys.thumbnail.replace(theirs, lab.personal), None)
    mine = record_keys_of(lab["member"].repo.get(lab.personal).s3_key)
    assert member.set_derivatives(lab.personal, mine.thumbnail, None).thumbnail_key == mine.thumbnail
    job = lab.server_jobs("member").create(JobKind.REDERIVE, JobParameters(), lab.recordings, study_id=lab.study)
    assert job.kind is JobKind.REDERIVE  # the third kind is one the database accepts
    lab["owner"].repo.remove_member(lab.study, member.user_id)
    with pytest.raises(StudyAccessLost):
        member.set_study_derivatives(theirs, lab.study, keys.thumbnail, None)
