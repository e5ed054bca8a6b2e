"""Pure parts of lib/direct_upload.py: the browser's file description, record ids, the part layout."""

from __future__ import annotations

import uuid

import pytest

from lib import direct_upload as du
from lib.errors import ValidationError
from lib.settings import MIB

HEAD = "ab" * 32


def test_identity_from_the_browser_is_validated():
    ok = du.FileIdentity.from_client({"name": "a.avi", "size": "10", "lastModified": 5, "headHash": HEAD.upper()})
    assert (ok.size, ok.head_sha256) == (10, HEAD)
    for bad in ({}, {"name": "a.avi", "size": "x", "headHash": HEAD}, {"name": "", "size": 1, "headHash": HEAD},
                {"name": "a.avi", "size": 1, "headHash": "not-hex"}, {"name": "a.avi", "size": -1, "headHash": HEAD}):
        with pytest.raises(ValidationError):
            du.FileIdentity.from_client(bad)


def test_fingerprint_changes_with_any_part_of_the_identity():
    base = du.FileIdentity("a.avi", 10, 5, HEAD)
    others = [du.FileIdentity("b.avi", 10, 5, HEAD), du.FileIdentity("a.avi", 11, 5, HEAD),
              du.FileIdentity("a.avi", 10, 6, HEAD), du.FileIdentity("a.avi", 10, 5, "cd" * 32)]
    assert len({base.fingerprint, *(o.fingerprint for o in others)}) == 5


def test_record_ids_are_stable_uuids_per_user_fingerprint_and_generation():
    rid = du.record_id_for("user-1", "f" * 64)
    assert rid == du.record_id_for("user-1", "f" * 64) and str(uuid.UUID(rid)) == rid
    assert rid not in {du.record_id_for("user-2", "f" * 64), du.record_id_for("user-1", "f" * 64, 1)}


def test_part_layout():
    upload = du.DirectUpload(user_id="u", record_id="r", key="k", upload_id="x", original_name="a.avi",
                             content_type="video/x-msvideo", size=12 * MIB + 3, part_size=5 * MIB)
    assert upload.part_count == 3
    assert [upload.part_bytes(n) for n in (1, 2, 3)] == [5 * MIB, 5 * MIB, 2 * MIB + 3]
    assert upload.missing == (1, 2, 3) and not upload.uploaded
