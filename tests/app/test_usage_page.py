"""AppTest of the Usage page: figures and charts, the bucket check with a confirmed repair, admins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_EMAIL, DEMO_PASSWORD, seeding_done, start_demo
from lib.keys import new_record_id, record_keys
from lib.records import NewRecord
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.studies import Role
from tests.support.apptest import SEED_TIMEOUT_S, new_demo_account, signed_in_app


@pytest.fixture
def fresh_services() -> Iterator[None]:
    """Settings are read once per process (st.cache_resource); rebuild them around a test that changes them."""
    from components.context import get_services

    get_services.clear()
    yield
    get_services.clear()


def _usage_page(email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> AppTest:
    at = signed_in_app(email=email, password=password)
    assert seeding_done(SEED_TIMEOUT_S), "the demo sample recording was never stored"
    at.switch_page("pages/usage.py").run()
    assert not at.exception, at.exception
    return at


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label.startswith(label)).click()
    at.run()
    assert not at.exception, at.exception
    return at


def _demo_s3():
    demo = start_demo([])
    client = boto3.client("s3", endpoint_url=demo.s3.endpoint_url, region_name=demo.s3.region,
                          aws_access_key_id=demo.s3.access_key_id,
                          aws_secret_access_key=demo.s3.secret_access_key,
                          config=Config(signature_version="s3v4"))
    return demo, client


def test_figures_charts_and_export(fresh_services) -> None:
    at = _usage_page()
    assert at.title[0].value == "Usage"
    assert any("Storage OK" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Recordings"]) >= 1 and metrics["Stored"] != "0 B"
    assert len(at.get("vega_lite_chart")) >= 5  # per month ×2, over time, type, lossless, subject
    assert at.get("progress")[0].proto.text.endswith("%)")
    assert any(s.value == "Ten largest recordings" for s in at.subheader)
    assert at.get("download_button")
    assert not any("administrators" in h.value for h in at.header)  # not an admin


def test_check_finds_an_orphan_and_deletes_it_after_confirmation(fresh_services) -> None:
    email, password, user_id = new_demo_account()  # nothing other tests left behind
    at = _usage_page(email, password)
    demo, s3 = _demo_s3()
    orphan = f"recordings/{user_id}/2024/01/{uuid.uuid4()}/original.mp4"
    s3.put_object(Bucket=demo.s3.bucket, Key=orphan, Body=b"left behind")

    at = _click(at, "Check bucket against metadata")
    assert any("1 discrepancy" in w.value for w in at.warning)
    table = at.dataframe[-1].value
    assert list(table["Kind"]) == ["Orphaned file"] and list(table["File"]) == [orphan]
    s3.head_object(Bucket=demo.s3.bucket, Key=orphan)  # still there: nothing happens before confirming

    at = _click(at, "Delete 1 orphaned file")
    assert any(b.label == "Yes, go ahead" for b in at.button)  # the confirmation dialog
    s3.head_object(Bucket=demo.s3.bucket, Key=orphan)
    at = _click(at, "Yes, go ahead")
    assert any("1 orphaned file(s) deleted" in s.value for s in at.success)
    assert any("agree" in s.value for s in at.success)
    assert "Contents" not in s3.list_objects_v2(Bucket=demo.s3.bucket, Prefix=orphan)


def test_admins_see_the_whole_bucket(fresh_services) -> None:
    """The demo's seeded administrator (a role only the server sets), shown on the sign-in page."""
    at = _usage_page(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
    assert any("administrators" in h.value for h in at.header)
    at = _click(at, "Show bucket-wide usage")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Bucket total"] != "0 B" and int(metrics["Files"].replace(",", "")) >= 2
    at = _click(at, "Check the whole bucket")
    assert any("Checked" in s.value and "user folder" in s.value for s in [*at.success, *at.warning])


def _study_with_uploads(owner_id: str, member_email: str, member_id: str, name: str) -> str:
    """A study of ``owner_id`` with ``member_email`` in it; the owner uploads 1000 bytes, the member 3000."""
    db = start_demo([]).db_path
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study(name).id
    owner.add_member(study, member_email, Role.MEMBER)
    for user_id, size in ((owner_id, 1_000), (member_id, 3_000)):
        server = SqliteServerRecords(db, user_id)
        record_id = new_record_id()
        keys = record_keys(user_id, record_id, "mp4", datetime.now(UTC), study)
        server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="demo", original_name="r.mp4",
                                 content_type="video/mp4", size_bytes=size, study_id=study), 10**12, 10**12)
        server.mark_ready(record_id, size_bytes=size, sha256=None, video=None, thumbnail_key=None, preview_key=None)
    return study


def _table_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_each_study_shows_its_usage_and_owners_see_who_uploaded_what(fresh_services) -> None:
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, member_password, member_id = new_demo_account()
    name = f"Usage lab {uuid.uuid4().hex[:6]}"
    _study_with_uploads(owner_id, member_email, member_id, name)

    at = _usage_page(owner_email, owner_password)
    studies = _table_with(at, "Your role")
    assert studies.to_dict("records") == [{"Study": name, "Your role": "owner", "Stored": "3.9 KiB",
                                           "Recordings": 2, "Quota": "500.0 GiB", "Used": "0.0%"}]
    people = _table_with(at, "Person")
    assert list(zip(people["Person"], people["Stored"], people["Recordings"], strict=True)) == [
        (member_email, "2.9 KiB", 1), (owner_email, "1000 B", 1)]

    seen = _usage_page(member_email, member_password)
    assert _table_with(seen, "Your role")["Your role"].tolist() == ["member"]
    assert not [d for d in seen.dataframe if "Person" in d.value.columns]  # the breakdown is the owners'


def test_a_full_study_is_named_on_the_usage_page(fresh_services, monkeypatch) -> None:
    monkeypatch.setenv("PULSEVAULT_STUDY_QUOTA_GB", "0.000001")  # about 1 KiB: the 4000 bytes overfill it
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, _, member_id = new_demo_account()
    name = f"Full lab {uuid.uuid4().hex[:6]}"
    _study_with_uploads(owner_id, member_email, member_id, name)
    at = _usage_page(owner_email, owner_password)
    assert any(f"{name} is full: uploads into it are refused" in e.value for e in at.error)


def test_admins_see_every_study_others_do_not(fresh_services) -> None:
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, _, member_id = new_demo_account()
    name = f"Admin lab {uuid.uuid4().hex[:6]}"
    _study_with_uploads(owner_id, member_email, member_id, name)
    assert not _usage_page(owner_email, owner_password).get("toggle")

    at = _usage_page(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
    at.toggle(key=state_keys.USAGE_ADMIN_STUDIES).set_value(True).run()
    assert not at.exception, at.exception
    every = _table_with(at, "Members")
    row = every[every["Study"] == name].to_dict("records")
    assert [{k: v for k, v in r.items() if k != "Created"} for r in row] == [
        {"Study": name, "Owner": owner_email, "Members": 2, "Stored": "3.9 KiB", "Recordings": 2}]
