"""AppTest of batch jobs over a study (demo mode): a member starts one from the Studies page (the study's
recordings only), a viewer is told why they cannot; the Jobs page labels a study's job with the study and who
started it, and offers Cancel to its creator and the study's owners, not to a viewer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import state_keys
from components.jobs_view import VIEWERS_CANNOT
from lib import demo
from lib.jobs import JobKind, JobParameters, SqliteJobs
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.studies import Role
from tests.app.test_files_page import s3
from tests.support.apptest import new_demo_account, signed_in_app
from tests.support.job_world import clip_files, store_recording


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    user_id: str


@dataclass(frozen=True)
class Lab:
    owner: Account
    member: Account
    viewer: Account
    study: str
    name: str
    recordings: tuple[str, ...]
    personal: str


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    owner, member, viewer = (Account(*new_demo_account()) for _ in range(3))
    db = demo.start_demo([]).db_path
    repo = SqliteRepository(db, owner.user_id)
    study = repo.create_study(f"Sleep {owner.user_id[:8]}")
    repo.add_member(study.id, member.email, Role.MEMBER)
    repo.add_member(study.id, viewer.email, Role.VIEWER)
    clip = clip_files(tmp_path)
    bucket = demo.start_demo([]).s3.bucket
    recordings = tuple(store_recording(s3(), bucket, SqliteServerRecords(db, owner.user_id), clip,
                                       name=f"study{i}.avi", study_id=study.id).id for i in range(2))
    personal = store_recording(s3(), bucket, SqliteServerRecords(db, member.user_id), clip, name="mine.avi").id
    return Lab(owner, member, viewer, study.id, study.name, recordings, personal)


def jobs_of(account: Account) -> SqliteJobs:
    return SqliteJobs(demo.start_demo([]).db_path, account.user_id)


def studies_page(account: Account, study: str) -> AppTest:
    at = signed_in_app("pages/studies.py", email=account.email, password=account.password)
    at.selectbox(key=state_keys.STUDIES_SELECTED).set_value(study).run()
    assert not at.exception, at.exception
    return at


def test_a_member_starts_a_job_over_the_study_and_a_viewer_is_told_why_not(lab: Lab):
    at = studies_page(lab.member, lab.study)
    next(b for b in at.button if (b.form_id or "") == state_keys.JOB_STUDY_FORM and b.label == "Start").click()
    at.run()
    assert not at.exception, at.exception
    [job] = jobs_of(lab.member).list()
    try:
        assert job.study_id == lab.study and sorted(job.record_ids) == sorted(lab.recordings)
        assert job.owner_email == lab.member.email and job.kind is JobKind.REANALYSE
    finally:
        jobs_of(lab.member).request_cancel(job.id)  # the page's point is the start, not the run
    viewer = studies_page(lab.viewer, lab.study)
    assert any(VIEWERS_CANNOT in c.value for c in viewer.caption)
    assert not [b for b in viewer.button if (b.form_id or "") == state_keys.JOB_STUDY_FORM]


def _cancel_buttons(at: AppTest, job_id: str) -> list:
    return [b for b in at.button if b.key == state_keys.job_cancel(job_id)]


def test_the_jobs_page_labels_a_study_job_and_offers_cancel_to_creator_and_owner(lab: Lab):
    # Claimed with a fresh heartbeat: no driver of the page's takes it over while the test looks.
    job = jobs_of(lab.member).claim(jobs_of(lab.member).create(
        JobKind.REANALYSE, JobParameters("POS"), lab.recordings, study_id=lab.study, owner_email=lab.member.email).id)
    viewer = signed_in_app("pages/jobs.py", email=lab.viewer.email, password=lab.viewer.password)
    text = " ".join(m.value for m in viewer.markdown)
    assert f"Study {lab.name}, started by {lab.member.email}" in text
    assert not _cancel_buttons(viewer, job.id)
    member = signed_in_app("pages/jobs.py", email=lab.member.email, password=lab.member.password)
    assert f"Study {lab.name} ·" in " ".join(m.value for m in member.markdown) and _cancel_buttons(member, job.id)
    owner = signed_in_app("pages/jobs.py", email=lab.owner.email, password=lab.owner.password)
    _cancel_buttons(owner, job.id)[0].click().run()
    assert not owner.exception, owner.exception
    assert jobs_of(lab.owner).get(job.id).status.value == "cancelling"


def test_regenerating_previews_is_offered_the_same_way(lab: Lab):
    at = studies_page(lab.member, lab.study)
    at.radio(key=state_keys.JOB_KIND).set_value(JobKind.REDERIVE)
    next(b for b in at.button if (b.form_id or "") == state_keys.JOB_STUDY_FORM and b.label == "Start").click()
    at.run()
    assert not at.exception, at.exception
    [job] = jobs_of(lab.member).list()
    try:
        assert job.kind is JobKind.REDERIVE and sorted(job.record_ids) == sorted(lab.recordings)
    finally:
        jobs_of(lab.member).request_cancel(job.id)
    jobs_page = signed_in_app("pages/jobs.py", email=lab.member.email, password=lab.member.password)
    assert "Regenerate previews and thumbnails" in " ".join(m.value for m in jobs_page.markdown)
