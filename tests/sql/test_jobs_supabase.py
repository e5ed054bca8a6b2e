"""sql/007_jobs.sql through the Supabase stand-in (PostgREST over a real PostgreSQL): the server's job store
for one owner (service role) creates, claims, saves and ends jobs; a user's own token reads their jobs and
nobody else's, and can write none (not even to cancel or to point a job at other record ids)."""

from __future__ import annotations

import uuid

import pytest
import requests

from lib.errors import JobStateError
from lib.jobs import ItemResult, ItemStatus, JobKind, JobParameters, JobStatus, SupabaseJobs
from lib.jobs.store import _job_id
from lib.repository import new_service_client
from lib.settings import SupabaseSettings
from tests.support.supabase.server import SupabaseStandin

RECORDS = (str(uuid.uuid4()), str(uuid.uuid4()))


def server_jobs(standin: SupabaseStandin, user_id: str) -> SupabaseJobs:
    client = new_service_client(SupabaseSettings(url=standin.url, anon_key=standin.anon_key,
                                                 service_role_key=standin.service_role_key))
    return SupabaseJobs(client, client, user_id)


def test_the_server_runs_a_job_for_its_owner(supabase_standin: SupabaseStandin):
    repo = supabase_standin.new_user_repository("ada")
    jobs = server_jobs(supabase_standin, repo.user_id)
    job = jobs.create(JobKind.EVALUATE, JobParameters("CHROM", (0.7, 3.0)), RECORDS)
    assert job.status is JobStatus.QUEUED and job.parameters.band == (0.7, 3.0)
    assert (job.id, repo.user_id) in jobs.unfinished()
    claimed = jobs.claim(job.id)
    assert claimed.status is JobStatus.RUNNING and claimed.driver_attempts == 1 and not claimed.driverless()
    with pytest.raises(JobStateError, match="already being run"):  # its heartbeat is fresh
        jobs.claim(job.id)
    saved = jobs.save_progress(claimed.with_result(RECORDS[0], ItemResult(ItemStatus.DONE, 1, digest="d1")))
    assert saved.results[RECORDS[0]].digest == "d1"
    ended = jobs.finish(saved.with_result(RECORDS[1], ItemResult(ItemStatus.FAILED, 3, "bad")), JobStatus.FINISHED,
                        summary={"compared": 1})
    assert ended.status is JobStatus.FINISHED and ended.summary == {"compared": 1}
    assert jobs.current_digests(job.fingerprint) == {RECORDS[0]: "d1"}


def test_cancel_moves_queued_and_running_jobs(supabase_standin: SupabaseStandin):
    repo = supabase_standin.new_user_repository("bo")
    jobs = server_jobs(supabase_standin, repo.user_id)
    queued = jobs.create(JobKind.REANALYSE, JobParameters(), RECORDS)
    assert jobs.request_cancel(queued.id).status is JobStatus.CANCELLED
    running = jobs.claim(jobs.create(JobKind.REANALYSE, JobParameters(), RECORDS).id)
    assert jobs.request_cancel(running.id).status is JobStatus.CANCELLING


def test_a_users_token_reads_only_their_own_jobs_and_writes_none(supabase_standin: SupabaseStandin):
    ada = supabase_standin.new_user_repository("ada")
    bo = supabase_standin.new_user_repository("bo")
    job = server_jobs(supabase_standin, ada.user_id).create(JobKind.REANALYSE, JobParameters(), RECORDS)
    service = server_jobs(supabase_standin, ada.user_id)._writer
    as_ada = SupabaseJobs(ada._client, service, ada.user_id)
    assert [j.id for j in as_ada.list()] == [job.id]
    as_bo = SupabaseJobs(bo._client, service, bo.user_id)
    assert as_bo.list() == []
    headers = {"apikey": supabase_standin.anon_key, "Prefer": "return=representation",
               "Authorization": f"Bearer {supabase_standin.access_token_for(ada.user_id)}"}
    base = f"{supabase_standin.url}/rest/v1/jobs"
    bo_headers = {**headers, "Authorization": f"Bearer {supabase_standin.access_token_for(bo.user_id)}"}
    assert requests.get(base, params={"id": f"eq.{job.id}"}, headers=bo_headers, timeout=10).json() == []
    patch = requests.patch(base, params={"id": f"eq.{_job_id(job.id)}"}, json={"status": "finished"},
                           headers=headers, timeout=10)
    assert patch.status_code in (401, 403)
    forged = {"user_id": ada.user_id, "kind": "reanalyse", "fingerprint": "x", "record_ids": [str(uuid.uuid4())]}
    assert requests.post(base, json=forged, headers=headers, timeout=10).status_code in (401, 403)
    assert server_jobs(supabase_standin, ada.user_id).get(job.id).status is JobStatus.QUEUED
