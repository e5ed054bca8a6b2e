"""Object-key layout, filename sanitising and the ownership check.

A recording in its uploader's personal space lives under ``recordings/{user_id}/{yyyy}/{mm}/{record_id}/``,
one in a study under ``studies/{study_id}/{yyyy}/{mm}/{record_id}/`` (the space is part of the key, and
``sql/005_studies.sql`` checks each row's keys against its study).
Keys are built here from the record (never from what a user typed), and every
storage call that takes a key runs :func:`check_owner` first, so a crafted key
can neither reach another researcher's objects nor escape the prefix.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lib.errors import KeyOwnershipError, ValidationError

RECORDINGS_PREFIX = "recordings/"
"""Where personal spaces lie: ``recordings/{user_id}/``."""
STUDIES_PREFIX = "studies/"
"""Where studies' recordings lie: ``studies/{study_id}/``."""
MAX_FILENAME_LENGTH = 150
"""Longest sanitised original name, in characters: fits S3 metadata and headers with room to spare."""
MAX_KEY_BYTES = 1024
"""S3's limit on the UTF-8 length of an object key."""
FALLBACK_STEM = "recording"
"""Name used when nothing printable is left of the original one."""
GROUND_TRUTH_SUFFIXES = ("_physio.tsv.gz", "_physio.tsv", ".csv", ".txt", ".json", ".xmp", ".h5", ".hdf5")
"""How a ground-truth file's name may end: the formats lib.rppg.ground_truth reads (BIDS with a sidecar)."""
BIDS_TABLE_SUFFIXES = ("_physio.tsv.gz", "_physio.tsv")
"""A BIDS physiology table, which needs its JSON sidecar beside it."""
BIDS_SIDECAR_SUFFIX = "_physio.json"
GROUND_TRUTH_STEM = "ground_truth"
THUMBNAIL_NAME = "thumb.jpg"
"""A record's thumbnail, beside its original."""
PREVIEW_NAME = "preview.mp4"
"""A record's H.264 preview proxy, beside its original."""

KEY_FILES = {
    "original": r"original\.[a-z0-9]{1,10}",
    "thumbnail": r"thumb\.jpg",
    "preview": r"preview\.mp4",
    "ground_truth": GROUND_TRUTH_STEM + "(?:" + "|".join(re.escape(s) for s in GROUND_TRUTH_SUFFIXES) + ")",
}
"""The file a key of each kind may name inside its record folder: exactly what :func:`record_keys`
makes. ``sql/003_trust.sql`` refuses any other key with the same patterns."""

_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
# Path separators plus what Windows refuses in a file name: a downloaded file must save anywhere.
_UNSAFE_CHARS = frozenset('/\\:*?"<>|')
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def user_prefix(user_id: str) -> str:
    """``recordings/{user_id}/``: everything a user owns lies below it."""
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise KeyOwnershipError("Your account id is not usable for storage; sign out and in again.")
    return f"{RECORDINGS_PREFIX}{user_id}/"


def study_prefix(study_id: str) -> str:
    """``studies/{study_id}/``: every recording of the study lies below it."""
    if not _is_uuid(study_id):
        raise KeyOwnershipError("That study id is not usable for storage.")
    return f"{STUDIES_PREFIX}{study_id}/"


def space_prefix(user_id: str, study_id: str | None) -> str:
    """The prefix of a recording's space: the study's, or (None) the uploader's personal one."""
    return user_prefix(user_id) if study_id is None else study_prefix(study_id)


@dataclass(frozen=True)
class Space:
    """The keys a caller may touch for one recording's space: a study's (``study_id``) or, with none, the
    user's personal one. Made only from a row the caller's repository returned (so membership was checked)
    or from a study the server checked the user's role in, never from what a user typed."""

    user_id: str
    study_id: str | None = None

    @property
    def prefix(self) -> str:
        return space_prefix(self.user_id, self.study_id)


Owner = str | Space
"""Whose keys a storage call may touch: a user id (their personal space) or a :class:`Space`."""


def owner_prefix(owner: Owner) -> str:
    """The prefix every key of ``owner`` lies under."""
    return owner.prefix if isinstance(owner, Space) else user_prefix(owner)


def new_record_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class RecordKeys:
    """The object keys of one recording, all under one record prefix."""

    prefix: str
    original: str
    thumbnail: str
    preview: str

    @property
    def record_id(self) -> str:
        """The record id: the last folder of the prefix."""
        return self.prefix.rstrip("/").rsplit("/", 1)[-1]

    def ground_truth(self, file_name: str) -> str:
        """The key of a ground-truth file called ``file_name``: its format's ending is kept, so the key
        says how to read it (``ground_truth.csv``, ``ground_truth_physio.tsv.gz``)."""
        return f"{self.prefix}{GROUND_TRUTH_STEM}{ground_truth_suffix(file_name)}"


def ground_truth_suffix(file_name: str) -> str:
    """The format ending of a ground-truth file's name (lower-cased), or ValidationError naming the allowed ones."""
    name = _basename(file_name).lower()
    for suffix in GROUND_TRUTH_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    raise ValidationError(f"{_basename(file_name)!r} is not a ground-truth file PulseVault reads: its name must "
                          f"end in one of {', '.join(GROUND_TRUTH_SUFFIXES)}.")


def ground_truth_keys(key: str | None) -> list[str]:
    """Every object of a ground truth: its file, and a BIDS table's sidecar beside it."""
    if not key:
        return []
    sidecar = ground_truth_sidecar(key)
    return [key] if sidecar is None else [key, sidecar]


def ground_truth_sidecar(key_or_name: str) -> str | None:
    """The JSON sidecar that goes with a BIDS physiology table (a key or a file name); None for other formats."""
    for suffix in BIDS_TABLE_SUFFIXES:
        if key_or_name.lower().endswith(suffix):
            return key_or_name[: -len(suffix)] + BIDS_SIDECAR_SUFFIX
    return None


def record_keys(user_id: str, record_id: str, ext: str, created: datetime, study_id: str | None = None) -> RecordKeys:
    """Keys for a record in ``study_id`` (None: the user's personal space); ``created`` picks the year/month
    folder (in UTC)."""
    if not _is_uuid(record_id):
        raise ValidationError("A record id must be a UUID.")
    ext = ext.lower().lstrip(".")
    if not _EXTENSION.fullmatch(ext):
        raise ValidationError("The recording's file extension is not usable in storage.")
    when = created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
    prefix = f"{space_prefix(user_id, study_id)}{when:%Y}/{when:%m}/{record_id}/"
    return _keys_in(prefix, f"{prefix}original.{ext}")


def rebased_key(key: str, source: Owner, target: Owner) -> str:
    """The key an object of a recording moving from the space ``source`` to ``target`` gets: the same path
    (year, month, record folder, file) below the target's prefix; ``key`` must lie in ``source``."""
    check_owner(key, source)
    return check_owner(owner_prefix(target) + key[len(owner_prefix(source)):], target)


def record_folder(key: str) -> str:
    """``recordings/{uid}/{yyyy}/{mm}/{record_id}/``: the folder an object of a record lies in."""
    return key.rsplit("/", 1)[0] + "/"


def record_keys_of(original_key: str) -> RecordKeys:
    """The keys of the record whose original is ``original_key`` (its derivatives lie beside it)."""
    return _keys_in(record_folder(original_key), original_key)


def _keys_in(prefix: str, original: str) -> RecordKeys:
    return RecordKeys(prefix=prefix, original=original, thumbnail=f"{prefix}{THUMBNAIL_NAME}",
                      preview=f"{prefix}{PREVIEW_NAME}")


def check_owner(key: str, owner: Owner) -> str:
    """Return ``key`` if it lies under the caller's prefix (their personal space's, or a study's for a
    :class:`Space`); raise otherwise.

    The message never repeats the key: it may name another user's id.
    """
    prefix = owner_prefix(owner)
    if not isinstance(key, str) or not key.startswith(prefix) or _is_malformed(key):
        raise KeyOwnershipError("That file is not in your storage area, so PulseVault will not touch it.")
    return key


def check_record_key(key: str, user_id: str, record_id: str, kind: str, study_id: str | None = None) -> str:
    """Return ``key`` if it is exactly a key :func:`record_keys` makes for this user (or study), record
    and kind.

    ``recordings/{user_id}/{yyyy}/{mm}/{record_id}/{file}`` (``studies/{study_id}/...`` for a study's)
    and nothing else: no ``..``, no ``//``, no other record's folder. The database checks the same
    (``sql/003_trust.sql``, ``sql/005_studies.sql``); this refuses it first with a message that names nothing.
    """
    pattern = (re.escape(space_prefix(user_id, study_id)) + r"[0-9]{4}/(?:0[1-9]|1[0-2])/"
               + re.escape(str(record_id)) + "/" + KEY_FILES[kind])
    if not isinstance(key, str) or not re.fullmatch(pattern, key):
        raise KeyOwnershipError("That storage key is not one PulseVault makes for this recording, so it is refused.")
    return key


def extension_of(name: str) -> str:
    """Lower-case extension without the dot, ``""`` if the name has none.

    Only 1-10 ASCII letters/digits count, and a dot-file (``.bashrc``) has none.
    """
    stem, dot, ext = _basename(name).rpartition(".")
    if not dot or not stem.strip(" .") or not _EXTENSION.fullmatch(ext):
        return ""
    return ext.lower()


def sanitize_filename(name: str) -> str:
    """A safe display/download name: no path, no control characters, bounded, never empty.

    Unicode letters are kept; the extension is kept and lower-cased.
    """
    base = _basename(unicodedata.normalize("NFC", str(name)))
    ext = extension_of(base)
    stem = base[: -(len(ext) + 1)] if ext else base
    room = MAX_FILENAME_LENGTH - (len(ext) + 1 if ext else 0)
    stem = _clean(stem)[:room].rstrip(" .") or FALLBACK_STEM
    if not ext and extension_of(stem):
        # Truncation exposed a new extension; one more pass lower-cases it, so the result is stable.
        return sanitize_filename(stem)
    return f"{stem}.{ext}" if ext else stem


def _basename(name: str) -> str:
    # Both separators: a Windows path (C:\x\y.avi) arrives as one string on Linux.
    return re.split(r"[/\\]", name)[-1]


def _clean(text: str) -> str:
    chars = []
    for char in text:
        category = unicodedata.category(char)
        if category.startswith("C"):  # control, format (bidi overrides), surrogate, private, unassigned
            continue
        chars.append(" " if category.startswith("Z") else "_" if char in _UNSAFE_CHARS else char)
    # Removing format characters can leave a base letter next to its combining mark: renormalise.
    return unicodedata.normalize("NFC", " ".join("".join(chars).split()).strip(" ."))


def _is_malformed(key: str) -> bool:
    return (
        ".." in key
        or "//" in key
        or key.startswith("/")
        or "\\" in key
        or any(unicodedata.category(c).startswith("C") for c in key)
        or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
    )


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError, AttributeError):
        return False
