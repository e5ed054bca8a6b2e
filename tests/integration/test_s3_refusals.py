"""What S3 must refuse, tried against a real server (SeaweedFS), not read off the URL.

moto accepts any signature, any expiry and any body length, so none of this could fail against it.
Here a share link stops working at its expiry, a presigned URL with anything changed is refused,
a part URL takes exactly the length it was signed for, a wrong secret is refused with a message
that says which setting to check, and an aborted multipart upload takes no more parts.
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.auth
import pytest
import requests

from lib import library
from lib.errors import StorageAccessDenied
from lib.records import Consent, NewRecord, ResearchFields
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.settings import MIB, MIN_PRESIGN_EXPIRY_S, S3Settings, Settings
from lib.storage import MIN_PART_SIZE, ObjectStore
from tests.support.audit import trail_of

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
RECORD = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
KEY = f"recordings/{USER}/2024/01/{RECORD}/original.avi"
SIBLING = f"recordings/{USER}/2024/01/{RECORD}/thumb.jpg"
BODY = b"RIFF" + os.urandom(4096)


@pytest.fixture
def store(s3_settings: S3Settings, s3_client) -> ObjectStore:
    for key in (KEY, SIBLING):
        s3_client.put_object(Bucket=s3_settings.bucket, Key=key, Body=BODY)
    return ObjectStore(s3_settings, settings=Settings(mode="cloud", s3=s3_settings))


def refused(url: str, **kwargs) -> requests.Response:
    response = requests.request(kwargs.pop("method", "GET"), url, timeout=30, **kwargs)
    assert response.status_code == 403, (response.status_code, response.text[:300])
    return response


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- expiry --------------------------------------------------------------------------------------------------


def test_a_share_link_works_until_its_expiry_and_is_refused_after(store: ObjectStore, tmp_path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortest link the app hands out (60 s), signed as if 55 s ago: it has 5 s left."""
    repo, server = SqliteRepository(tmp_path / "meta.db", USER), SqliteServerRecords(tmp_path / "meta.db", USER)
    server.reserve(NewRecord(id=RECORD, s3_key=KEY, bucket=store.bucket, original_name="s.avi",
                             content_type="video/x-msvideo", size_bytes=len(BODY), research=ResearchFields()), 10**9)
    server.mark_ready(RECORD, size_bytes=len(BODY), sha256=None, video=None, thumbnail_key=None, preview_key=None)
    repo.set_consent(RECORD, Consent.SHAREABLE, None)
    signed_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(seconds=55)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: signed_at)
    link = library.share_link(store, repo, RECORD, MIN_PRESIGN_EXPIRY_S, Settings(mode="cloud"), trail=trail_of(repo))
    monkeypatch.undo()
    assert link.expires_s == MIN_PRESIGN_EXPIRY_S
    assert requests.get(link.url, timeout=30).content == BODY
    time.sleep(max(0.0, (signed_at + datetime.timedelta(seconds=61)
                         - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds()))
    assert "expired" in refused(link.url).text


# --- tampering -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", [
    pytest.param(lambda url: url.replace("original.avi", "thumb.jpg"), id="another-key"),
    pytest.param(lambda url: with_query(url, **{"response-content-type": "text/html"}), id="served-as-html"),
    pytest.param(lambda url: with_query(url, **{"X-Amz-Expires": "604800"}), id="longer-expiry"),
    pytest.param(lambda url: with_query(url, **{"X-Amz-Date": "20990101T000000Z"}), id="later-date"),
    pytest.param(lambda url: with_query(url, **{"X-Amz-Signature": "0" * 64}), id="other-signature"),
])
def test_a_changed_presigned_url_is_refused(store: ObjectStore, tamper) -> None:
    url = store.presign_get(KEY, owner=USER, content_type="video/x-msvideo")
    assert requests.get(url, timeout=30).content == BODY  # untouched, it works
    refused(tamper(url))


def test_a_wrong_secret_is_refused_with_a_message_naming_the_setting(s3_settings: S3Settings) -> None:
    wrong = ObjectStore(replace(s3_settings, secret_access_key="not-the-secret"))
    with pytest.raises(StorageAccessDenied, match=r"secret key is wrong.*secret_access_key"):
        list(wrong.iter_objects(f"recordings/{USER}/", owner=USER))
    with pytest.raises(StorageAccessDenied):  # a HEAD's 403 has no body to say why
        wrong.head(KEY, owner=USER)
    refused(wrong.presign_get(KEY, owner=USER))
    unknown = ObjectStore(replace(s3_settings, access_key_id="AKIAUNKNOWN0000000"))
    with pytest.raises(StorageAccessDenied, match=r"does not know this access key"):
        list(unknown.iter_objects(f"recordings/{USER}/", owner=USER))


# --- part URLs sign their length ----------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [1, -1, MIB])
def test_a_part_url_refuses_any_other_length_and_keeps_nothing(store: ObjectStore, delta: int) -> None:
    upload_id = store.create_multipart(KEY, owner=USER, content_type="video/x-msvideo")
    url = store.presign_part(KEY, upload_id, 1, owner=USER, content_length=MIN_PART_SIZE)
    refused(url, method="PUT", data=b"x" * (MIN_PART_SIZE + delta))
    assert store.list_parts(KEY, upload_id, owner=USER) == []  # nothing parked in the unfinished upload
    assert requests.put(url, data=b"x" * MIN_PART_SIZE, timeout=60).ok
    assert [(p.part_number, p.size) for p in store.list_parts(KEY, upload_id, owner=USER)] == [(1, MIN_PART_SIZE)]


def test_a_short_last_part_is_signed_for_its_own_length(store: ObjectStore) -> None:
    first, last = os.urandom(MIN_PART_SIZE), os.urandom(1234)
    upload_id = store.create_multipart(KEY, owner=USER, content_type="video/x-msvideo")
    etags = []
    for number, body in ((1, first), (2, last)):
        url = store.presign_part(KEY, upload_id, number, owner=USER, content_length=len(body))
        if number == 2:
            refused(url, method="PUT", data=first)  # a full-size body under the last part's URL
        etags.append((number, requests.put(url, data=body, timeout=60).headers["ETag"]))
    store.complete_multipart(KEY, upload_id, etags, owner=USER)
    assert requests.get(store.presign_get(KEY, owner=USER), timeout=60).content == first + last


# --- unfinished uploads --------------------------------------------------------------------------------------


def test_an_aborted_upload_is_no_longer_listed_and_takes_no_more_parts(store: ObjectStore) -> None:
    upload_id = store.create_multipart(KEY, owner=USER, content_type="video/x-msvideo")
    url = store.presign_part(KEY, upload_id, 1, owner=USER, content_length=1000)
    assert requests.put(url, data=b"x" * 1000, timeout=30).ok
    listed = store.list_multipart_uploads(f"recordings/{USER}/", owner=USER)
    assert [(u.key, u.upload_id) for u in listed] == [(KEY, upload_id)]
    store.abort_multipart(KEY, upload_id, owner=USER)
    assert store.list_multipart_uploads(f"recordings/{USER}/", owner=USER) == []
    late = requests.put(url, data=b"x" * 1000, timeout=30)
    assert late.status_code == 404 and "NoSuchUpload" in late.text
