"""A plain mean heart rate: one number for the recording, or a table of recordings and their rates.

The table is what datasets that only publish an oximeter average give (e.g. ``videoN,HR`` per subject).
A row belongs to a recording when its name is the recording's file stem, or the stem starts with the name
followed by a separator (``video12`` for ``video12_forehead.avi``, but not for ``video120.avi``).
"""

from __future__ import annotations

import re

from lib.rppg.ground_truth.model import GroundTruth, bad, mean_hr
from lib.rppg.ground_truth.text import Row, number, parse, rows

FORMAT = "mean_hr"
_SEPARATOR = re.compile(r"[_\-. ]")


def looks_like(table: list[Row]) -> bool:
    """One number on its own, or rows of a name then a number."""
    data = [row for row in table if any(number(cell) is not None for cell in row.cells)]
    if len(data) == 1 and len(data[0].cells) == 1:
        return True
    return bool(data) and all(len(row.cells) >= 2 and number(row.cells[0]) is None
                              and number(row.cells[1]) is not None for row in data)


def load(source: str, text: str, *, recording: str | None = None) -> GroundTruth:
    table = rows(text)
    data = [row for row in table if any(number(cell) is not None for cell in row.cells)]
    if len(data) == 1 and len(data[0].cells) == 1:
        return mean_hr(source, FORMAT, parse(source, data[0], 0), line=data[0].line, column=1)
    if recording is None:
        raise bad(source, "lists heart rates for several recordings; say which recording it is for")
    row = _row_for(data, recording)
    if row is None:
        raise bad(source, f"has no row for the recording {recording!r}")
    return mean_hr(source, FORMAT, parse(source, row, 1), line=row.line, column=2)


def _row_for(data: list[Row], recording: str) -> Row | None:
    stem = recording.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    best: Row | None = None
    for row in data:
        name = row.cells[0].lower()
        if stem == name:
            return row
        if stem.startswith(name) and _SEPARATOR.match(stem[len(name):len(name) + 1] or "x"):
            best = row if best is None or len(row.cells[0]) > len(best.cells[0]) else best
    return best
