"""Where each recording goes in a layout, from its research fields; names that would collide are refused
before anything is sent, with every collision named.

- UBFC-rPPG: ``subject<N>`` with N from the subject field's trailing number (``S07`` → 7); subjects with
  no number get the next free numbers in the order of their names. rPPG-Toolbox finds the folders with
  ``subject(\\d+)`` and reads one ``vid.avi`` per folder, so a subject holds one recording.
- BIDS: ``sub-<label>[/ses-<label>]`` with the labels being the fields' letters and digits (BIDS allows no
  other characters); several recordings of one subject and session are ``run-1``, ``run-2``, … in upload
  order. A session level is left out where a recording has no session (BIDS allows that).
- Plain: one folder per recording named after the original file; a name used twice gets the record id's
  first characters added.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from lib.errors import ExportRefused
from lib.keys import FALLBACK_STEM, extension_of, sanitize_filename
from lib.records import FileRecord

PROBLEMS_SHOWN = 10
"""A refusal lists this many problems in its message (all of them stay in ``problems``)."""
_TRAILING_NUMBER = re.compile(r"(\d+)\s*$")
_NOT_BIDS_LABEL = re.compile(r"[^A-Za-z0-9]")
PLAIN_ID_CHARS = 8
"""Characters of the record id added to a Plain folder whose name another recording already has."""


def refuse(summary: str, problems: Sequence[str]) -> ExportRefused:
    """The refusal for an export: a summary, then each problem on its own line (the first few)."""
    shown = "\n".join(f"- {p}" for p in problems[:PROBLEMS_SHOWN])
    more = f"\n- … and {len(problems) - PROBLEMS_SHOWN} more" if len(problems) > PROBLEMS_SHOWN else ""
    return ExportRefused(f"{summary}\n{shown}{more}", tuple(problems))


def _names(records: Iterable[FileRecord]) -> str:
    return ", ".join(r.original_name for r in records)


def _without_subject(records: Sequence[FileRecord], layout: str) -> list[str]:
    return [f"{r.original_name} has no subject; {layout} names its folders after the subject field. Fill it "
            "in (select the recording, Research fields)." for r in records if not r.research.subject_id.strip()]


# --- UBFC-rPPG ---------------------------------------------------------------------------------------


def ubfc_folders(records: Sequence[FileRecord]) -> dict[str, str]:
    """Record id -> ``subject<N>``; ExportRefused naming every missing subject and collision."""
    problems = _without_subject(records, "UBFC-rPPG")
    by_subject: dict[str, list[FileRecord]] = defaultdict(list)
    for record in records:
        if record.research.subject_id.strip():
            by_subject[record.research.subject_id.strip()].append(record)
    problems += [f"Subject {subject!r} has {len(group)} recordings ({_names(group)}); a UBFC-rPPG subject "
                 "folder holds one video. Select one per subject, or choose BIDS-style, which numbers runs."
                 for subject, group in sorted(by_subject.items()) if len(group) > 1]
    numbers = _subject_numbers(sorted(by_subject))
    by_number: dict[int, list[str]] = defaultdict(list)
    for subject, number in numbers.items():
        by_number[number].append(subject)
    problems += [f"Subjects {' and '.join(repr(s) for s in sorted(group))} would all be subject{number}. Make "
                 "the subject fields' numbers distinct." for number, group in sorted(by_number.items())
                 if len(group) > 1]
    if problems:
        raise refuse("These recordings cannot be laid out as UBFC-rPPG:", problems)
    return {group[0].id: f"subject{numbers[subject]}" for subject, group in by_subject.items()}


def _subject_numbers(subjects: Sequence[str]) -> dict[str, int]:
    """Each subject's number: its trailing digits, or the next free number after the highest."""
    numbers = {s: int(m.group(1)) for s in subjects if (m := _TRAILING_NUMBER.search(s))}
    following = max(numbers.values(), default=0) + 1
    for subject in subjects:
        if subject not in numbers:
            numbers[subject] = following
            following += 1
    return numbers


# --- BIDS --------------------------------------------------------------------------------------------


def bids_label(text: str) -> str:
    """A BIDS label: the letters and digits of a field."""
    return _NOT_BIDS_LABEL.sub("", text)


def bids_prefixes(records: Sequence[FileRecord]) -> dict[str, str]:
    """Record id -> ``sub-X[/ses-Y]/sub-X[_ses-Y][_run-N]`` (folder and file-name prefix in one path);
    ExportRefused naming every missing subject and every pair of fields that collide."""
    problems = _without_subject(records, "BIDS")
    problems += [f"{r.original_name}: the subject {r.research.subject_id!r} has no letter or digit, which a "
                 "BIDS label needs." for r in records if r.research.subject_id.strip()
                 and not bids_label(r.research.subject_id)]
    usable = [r for r in records if bids_label(r.research.subject_id)]
    problems += _label_collisions("subject", [r.research.subject_id.strip() for r in usable])
    for subject in sorted({bids_label(r.research.subject_id) for r in usable}):
        sessions = [r.research.session_label.strip() for r in usable if bids_label(r.research.subject_id) == subject]
        problems += _label_collisions(f"sub-{subject} session", [s for s in sessions if s])
    if problems:
        raise refuse("These recordings cannot be laid out BIDS-style:", problems)
    groups: dict[tuple[str, str], list[FileRecord]] = defaultdict(list)
    for record in usable:
        groups[(bids_label(record.research.subject_id), bids_label(record.research.session_label))].append(record)
    return {record_id: path for key, group in groups.items() for record_id, path in _runs(key, group)}


def _label_collisions(what: str, fields: Iterable[str]) -> list[str]:
    by_label: dict[str, set[str]] = defaultdict(set)
    for value in fields:
        by_label[bids_label(value)].add(value)
    return [f"The {what}s {' and '.join(repr(v) for v in sorted(values))} would all be labelled {label!r} (BIDS "
            "labels keep letters and digits only). Make them differ in a letter or digit."
            for label, values in sorted(by_label.items()) if len(values) > 1]


def _runs(key: tuple[str, str], group: list[FileRecord]) -> Iterable[tuple[str, str]]:
    subject, session = key
    folder = f"sub-{subject}" + (f"/ses-{session}" if session else "")
    stem = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    if len(group) == 1:
        yield group[0].id, f"{folder}/{stem}"
        return
    for run, record in enumerate(sorted(group, key=lambda r: (r.created_at, r.id)), start=1):
        yield record.id, f"{folder}/{stem}_run-{run}"


# --- Plain -------------------------------------------------------------------------------------------


def plain_folders(records: Sequence[FileRecord]) -> dict[str, str]:
    """Record id -> a folder named after the original file (its stem; the record id's start when taken)."""
    stems = {r.id: _stem(r.original_name) for r in records}
    counts: dict[str, int] = defaultdict(int)
    for stem in stems.values():
        counts[stem.lower()] += 1
    return {rid: stem if counts[stem.lower()] == 1 else f"{stem}-{rid[:PLAIN_ID_CHARS]}" for rid, stem in stems.items()}


def _stem(name: str) -> str:
    clean = sanitize_filename(name)
    ext = extension_of(clean)
    stem = clean[: -(len(ext) + 1)] if ext else clean
    return stem.strip(" .") or FALLBACK_STEM
