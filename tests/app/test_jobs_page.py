"""AppTest of pages/jobs.py and My files' *Batch job* in demo mode, as a fresh account: the empty state, a
job's progress, errors per recording, the link to Evaluate and Cancel; and a job started from My files, which
the page hands to a background driver (a real local Ray) without waiting for it."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from components import state_keys
from components.jobs_view import SCOPE_SELECTED
from lib import demo
from lib.jobs import ItemResult, ItemStatus, JobKind, JobParameters, JobStatus, SqliteJobs
from lib.repository import SqliteServerRecords
from tests.app.test_files_page import s3
from tests.support.apptest import SEED_TIMEOUT_S, new_app, new_demo_account, select_rows, sign_in
from tests.support.job_world import clip_files, store_recording

JOB_TIMEOUT_S = 240.0
PAGE_RUN_LIMIT_S = 10.0
"""Starting a job must not wait for it (a Ray start alone takes longer than this)."""


def page_of(path: str) -> tuple[AppTest, str]:
    at = new_app()
    email, password, user_id = new_demo_account()
    sign_in(at, email, password)
    at.switch_page(path).run()
    assert not at.exception, at.exception
    demo.seeding_done(timeout_s=SEED_TIMEOUT_S)
    return at, user_id


def jobs_of(user_id: str) -> SqliteJobs:
    return SqliteJobs(demo.start_demo([]).db_path, user_id)


def test_no_jobs_says_where_to_start_one() -> None:
    at, _ = page_of("pages/jobs.py")
    assert any("No jobs yet" in i.value for i in at.info)


def test_progress_errors_evaluation_link_and_cancel() -> None:
    at, user_id = page_of("pages/jobs.py")
    jobs = jobs_of(user_id)
    ids = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
    finished = jobs.create(JobKind.EVALUATE, JobParameters("CHROM"), ids)
    finished = jobs.claim(finished.id)
    finished = finished.with_result(ids[0], ItemResult(ItemStatus.DONE, attempts=1, hr_bpm=70.0))
    finished = finished.with_result(ids[1], ItemResult(ItemStatus.FAILED, attempts=3,
                                                       message="Failed 3 times; the last time: storage down"))
    jobs.finish(finished, JobStatus.FINISHED, summary={"compared": 1, "figures": []})
    running = jobs.claim(jobs.create(JobKind.REANALYSE, JobParameters("POS"), ids).id)  # a fresh heartbeat
    jobs.save_progress(running.with_result(ids[0], ItemResult(ItemStatus.DONE, attempts=1)))
    at.run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Evaluate against ground truth" in text and "CHROM" in text and "Re-analyse" in text
    assert any("Failed 3 times" in str(d.value) for d in at.dataframe)  # the per-recording reason
    assert any(link.proto.label == "Open the evaluation" for link in at.get("page_link"))
    [cancel] = [b for b in at.button if b.key == state_keys.job_cancel(running.id)]
    cancel.click().run()
    assert not at.exception, at.exception
    assert jobs.get(running.id).status is JobStatus.CANCELLING
    assert jobs.get(finished.id).status is JobStatus.FINISHED


def test_a_job_started_from_my_files_runs_in_the_background(tmp_path: Path) -> None:
    at, user_id = page_of("pages/files.py")
    server = SqliteServerRecords(demo.start_demo([]).db_path, user_id)
    record = store_recording(s3(), demo.start_demo([]).s3.bucket, server, clip_files(tmp_path), name="batch.avi")
    at.run()
    select_rows(at, 0)
    at.radio(key=state_keys.JOB_SCOPE).set_value(SCOPE_SELECTED).run()
    started = time.monotonic()
    at.button(key=state_keys.JOB_START).click().run()
    assert time.monotonic() - started < PAGE_RUN_LIMIT_S
    assert not at.exception, at.exception
    [job] = jobs_of(user_id).list()
    assert job.record_ids == (record.id,) and job.kind is JobKind.REANALYSE
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (job := jobs_of(user_id).get(job.id)).status.ended:
        assert time.monotonic() < deadline, f"the background job did not end: {job}"
        time.sleep(0.5)
    assert job.status is JobStatus.FINISHED, job.error
    assert job.results[record.id].status is ItemStatus.DONE
    assert server.get(record.id).analysis is not None
