"""AppTest of the Usage page: figures and charts, the bucket check with a confirmed repair, admins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from streamlit.testing.v1 import AppTest

from lib.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_EMAIL, DEMO_PASSWORD, seeding_done, start_demo
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
