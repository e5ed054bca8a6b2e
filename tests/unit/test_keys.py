"""Key layout, filename sanitising and the ownership check."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lib.errors import KeyOwnershipError, ValidationError
from lib.keys import (
    FALLBACK_STEM,
    GROUND_TRUTH_SUFFIXES,
    MAX_FILENAME_LENGTH,
    RECORDINGS_PREFIX,
    check_owner,
    check_record_key,
    extension_of,
    ground_truth_sidecar,
    new_record_id,
    record_folder,
    record_keys,
    record_keys_of,
    sanitize_filename,
    user_prefix,
)

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
OTHER = "9f1e2d3c-4b5a-4968-8776-655443322110"
RECORD = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def test_record_keys_follow_the_layout() -> None:
    keys = record_keys(USER, RECORD, "AVI", datetime(2024, 3, 9, 12, 0, tzinfo=UTC))
    prefix = f"recordings/{USER}/2024/03/{RECORD}/"
    assert keys.prefix == prefix
    assert keys.original == prefix + "original.avi"
    assert keys.thumbnail == prefix + "thumb.jpg"
    assert keys.preview == prefix + "preview.mp4"
    assert keys.ground_truth("subject1 ground truth.CSV") == prefix + "ground_truth.csv"
    assert keys.ground_truth("C:\\data\\gt.txt") == prefix + "ground_truth.txt"
    assert keys.ground_truth("sub-01_physio.tsv.gz") == prefix + "ground_truth_physio.tsv.gz"
    assert ground_truth_sidecar(keys.ground_truth("sub-01_physio.tsv.gz")) == prefix + "ground_truth_physio.json"
    assert ground_truth_sidecar("sub-01_physio.TSV") == "sub-01_physio.json"
    assert ground_truth_sidecar(keys.ground_truth("01.json")) is None


def test_a_records_keys_from_its_original_key() -> None:
    keys = record_keys(USER, RECORD, "mkv", datetime(2024, 3, 9, 12, 0, tzinfo=UTC))
    assert record_keys_of(keys.original) == keys
    assert keys.record_id == RECORD
    assert record_folder(keys.thumbnail) == record_folder(keys.original) == keys.prefix


def test_record_keys_use_the_utc_month() -> None:
    # 00:30 on 1 April in UTC+2 is still March in UTC.
    created = datetime(2024, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert "/2024/03/" in record_keys(USER, RECORD, "mp4", created).original


@pytest.mark.parametrize("bad", ["not-a-uuid", "../" + RECORD, RECORD.upper(), ""])
def test_record_id_must_be_a_uuid(bad: str) -> None:
    with pytest.raises(ValidationError):
        record_keys(USER, bad, "mp4", datetime.now(UTC))


@pytest.mark.parametrize("ext", ["", "mp4/../x", "a b", "toolongextension"])
def test_record_extension_must_be_plain(ext: str) -> None:
    with pytest.raises(ValidationError):
        record_keys(USER, RECORD, ext, datetime.now(UTC))


@pytest.mark.parametrize("name", ["tool.exe", ".csv", "gt.tsv.gz", "gt.hd5", "notes"])
def test_ground_truth_only_in_a_readable_format(name: str) -> None:
    keys = record_keys(USER, RECORD, "mp4", datetime.now(UTC))
    with pytest.raises(ValidationError, match="end in one of"):
        keys.ground_truth(name)


def test_new_record_id_is_a_uuid4() -> None:
    first, second = new_record_id(), new_record_id()
    assert uuid.UUID(first).version == 4 and first != second


def test_check_owner_accepts_own_keys_and_prefix() -> None:
    key = f"recordings/{USER}/2024/01/{RECORD}/original.mp4"
    assert check_owner(key, USER) == key
    assert check_owner(user_prefix(USER), USER) == user_prefix(USER)


@pytest.mark.parametrize(
    "key",
    [
        f"recordings/{OTHER}/2024/01/{RECORD}/original.mp4",
        f"recordings/{USER}x/2024/01/{RECORD}/original.mp4",  # a prefix of the id is not the id
        f"recordings/{USER}/../{OTHER}/2024/original.mp4",
        f"recordings/{USER}//2024/original.mp4",
        f"/recordings/{USER}/2024/original.mp4",
        f"recordings/{USER}/2024\\..\\x",
        f"recordings/{USER}/2024/original.mp4\x00.txt",
        f"recordings/{USER}/" + "a" * 1100,
        f"uploads/{USER}/x.mp4",
        "",
    ],
)
def test_check_owner_refuses(key: str) -> None:
    with pytest.raises(KeyOwnershipError) as caught:
        check_owner(key, USER)
    assert OTHER not in str(caught.value)  # never echo another user's id


@pytest.mark.parametrize("user", ["", "../x", "a/b", "..", None])
def test_unusable_user_ids_are_refused(user: str | None) -> None:
    with pytest.raises(KeyOwnershipError):
        check_owner(f"recordings/{user}/x.mp4", user)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\y.AVI", "y.avi"),
        ("sub ject\x00 01.mp4", "sub ject 01.mp4"),
        ("Probandin Müller – Sitzung 2.MOV", "Probandin Müller – Sitzung 2.mov"),
        ("受试者_01.mkv", "受试者_01.mkv"),
        ("a\u202eroc.exe.mp4", "aroc.exe.mp4"),  # bidi override removed
        ('we"ird:na*me?.mp4', "we_ird_na_me_.mp4"),
        ("   ", FALLBACK_STEM),
        ("", FALLBACK_STEM),
        ("..", FALLBACK_STEM),
        ("\x00\x01.mp4", f"{FALLBACK_STEM}.mp4"),
        (".bashrc", "bashrc"),
        ("trailing dots...", "trailing dots"),
    ],
)
def test_sanitize_examples(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_sanitize_bounds_length_and_keeps_extension() -> None:
    result = sanitize_filename("x" * 500 + ".MP4")
    assert len(result) == MAX_FILENAME_LENGTH and result.endswith(".mp4")


@pytest.mark.parametrize(
    ("name", "ext"),
    [("a.MP4", "mp4"), ("dir/a.b.avi", "avi"), ("noext", ""), (".bashrc", ""), ("a.", ""), ("a.mp 4", "")],
)
def test_extension_of(name: str, ext: str) -> None:
    assert extension_of(name) == ext


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
@example("x" * 140 + ".Ab c")
@example("e\u200b\u0301.mp4")
def test_sanitize_properties(name: str) -> None:
    result = sanitize_filename(name)
    assert result and len(result) <= MAX_FILENAME_LENGTH
    assert "/" not in result and "\\" not in result
    assert not any(unicodedata.category(c).startswith("C") for c in result)
    assert result == result.strip(" .") or result.startswith(FALLBACK_STEM)
    assert sanitize_filename(result) == result  # stable: sanitising twice changes nothing
    if extension_of(name):
        assert extension_of(result) == extension_of(name)


@given(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=40))
def test_sanitize_keeps_unicode_letters(name: str) -> None:
    assert sanitize_filename(name) == unicodedata.normalize("NFC", name)


@given(
    st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30),
    st.sampled_from(["MP4", "avi"]),
)
def test_sanitize_strips_any_directory(stem: str, ext: str) -> None:
    assert sanitize_filename(f"../../{stem}/..\\{stem}.{ext}") == sanitize_filename(f"{stem}.{ext}")


def test_record_prefix_constant() -> None:
    assert user_prefix(USER) == f"{RECORDINGS_PREFIX}{USER}/"


# --- the canonical layout (issue 14, attack 8; sql/003_trust.sql checks the same) -------------------


def test_every_key_record_keys_makes_is_canonical() -> None:
    keys = record_keys(USER, RECORD, "MKV", datetime(2024, 12, 31, tzinfo=UTC))
    for key, kind in ((keys.original, "original"), (keys.thumbnail, "thumbnail"), (keys.preview, "preview"),
                      *((keys.ground_truth(f"gt{suffix}"), "ground_truth") for suffix in GROUND_TRUTH_SUFFIXES)):
        assert check_record_key(key, USER, RECORD, kind) == key


@pytest.mark.parametrize(("key", "kind"), [
    (f"recordings/{USER}/../{OTHER}/2024/05/{RECORD}/original.mp4", "original"),
    (f"recordings/{USER}/2024/05/../../{OTHER}/2024/05/{RECORD}/original.mp4", "original"),
    (f"recordings/{USER}//2024/05/{RECORD}/original.mp4", "original"),
    (f"recordings/{OTHER}/2024/05/{RECORD}/original.mp4", "original"),
    (f"recordings/{USER}/2024/05/{OTHER}/original.mp4", "original"),
    (f"recordings/{USER}/2024/00/{RECORD}/original.mp4", "original"),
    (f"recordings/{USER}/24/05/{RECORD}/original.mp4", "original"),
    (f"recordings/{USER}/2024/05/{RECORD}/original.MP4", "original"),
    (f"recordings/{USER}/2024/05/{RECORD}/original.mp4\n", "original"),
    (f"recordings/{USER}/2024/05/{RECORD}/original.", "original"),
    (f"recordings/{USER}/2024/05/{RECORD}/thumb.jpg", "original"),
    (f"recordings/{USER}/2024/05/{RECORD}/original.mp4", "thumbnail"),
    (f"recordings/{USER}/2024/05/{RECORD}/preview.webm", "preview"),
    (f"recordings/{USER}/2024/05/{RECORD}/ground_truth.exe", "ground_truth"),
    (f"recordings/{USER}/2024/05/{RECORD}/ground_truth_physio.json", "ground_truth"),  # a sidecar, never a row's key
    (f"/recordings/{USER}/2024/05/{RECORD}/original.mp4", "original"),
])
def test_anything_else_is_refused_without_naming_it(key: str, kind: str) -> None:
    with pytest.raises(KeyOwnershipError) as caught:
        check_record_key(key, USER, RECORD, kind)
    assert OTHER not in str(caught.value) and "recordings/" not in str(caught.value)
