"""CSV (or TSV, or space-separated) pulse with a time column, or one pulse column and a stated sampling rate.

Recognised without a header: ``time,value`` (two or more numeric columns, time first) or one column of
values. With a header, the time column is the one named like ``time``/``timestamp``/``t``/``ms`` and the
value column the one named like ``ppg``/``bvp``/``pulse``/``signal``/``value`` (else the first other
column). Times may be seconds, milliseconds (a header saying so, or steps too long for seconds) or
clock times; a rate is given by the caller or a comment line such as ``# sampling_rate_hz: 60``.
"""

from __future__ import annotations

import re

import numpy as np

from lib.rppg.ground_truth.model import GroundTruth, Origin, bad, waveform
from lib.rppg.ground_truth.text import Row, is_numeric, parse, rows

FORMAT = "csv"
_TIME_NAME = re.compile(r"^(t|ts|time.*|.*stamp.*|sec.*|ms|.*_s|.*_ms)$", re.IGNORECASE)
_VALUE_NAME = re.compile(r"ppg|bvp|pulse|pleth|wave|signal|value|cardiac", re.IGNORECASE)
_MS_NAME = re.compile(r"ms|milli", re.IGNORECASE)
_RATE_COMMENT = re.compile(
    r"^\s*#.*?\b(?:sampling[ _-]?rate(?:[ _-]?hz)?|sample[ _-]?rate|fs|rate[ _-]?hz)\b\s*[:=]\s*([-+0-9.eE]+)",
    re.IGNORECASE | re.MULTILINE,
)


def load(source: str, text: str, *, rate_hz: float | None = None) -> GroundTruth:
    table = rows(text)
    header = table[0] if table and not is_numeric(table[0]) else None
    data = table[1:] if header else table
    if not data:
        raise bad(source, "has a header but no rows of numbers" if header else "has no rows of numbers")
    rate = rate_hz if rate_hz is not None else _stated_rate(source, text)
    time_col, value_col = _columns(header, data[0], rate is not None)
    values = np.array([parse(source, row, value_col) for row in data])
    lines = np.array([row.line for row in data])
    if time_col is None:
        if rate is None:
            raise bad(source, "has no time column and no sampling rate; add a time column or state the rate "
                              "in a comment line such as '# sampling_rate_hz: 60'", data[0].line)
        return waveform(source, FORMAT, values, fs=rate, origin=Origin(lines, value_col + 1))
    times = np.array([parse(source, row, time_col) for row in data])
    if header is not None and _MS_NAME.search(header.cells[time_col]):
        times = times / 1000.0
    return waveform(source, FORMAT, values, t=times, origin=Origin(lines, value_col + 1, time_col + 1))


def _columns(header: Row | None, first: Row, have_rate: bool) -> tuple[int | None, int]:
    """(time column or None, value column), 0-based."""
    if header is None:
        if len(first.cells) >= 2 and not have_rate:
            return 0, 1
        return None, 0
    names = header.cells
    time_col = next((i for i, name in enumerate(names) if _TIME_NAME.match(name)), None)
    value_col = next((i for i, name in enumerate(names) if i != time_col and _VALUE_NAME.search(name)), None)
    if value_col is None:
        value_col = next((i for i in range(len(names)) if i != time_col), 0)
    return time_col, value_col


def _stated_rate(source: str, text: str) -> float | None:
    match = _RATE_COMMENT.search(text)
    if match is None:
        return None
    line = text[: match.start(1)].count("\n") + 1
    try:
        rate = float(match.group(1))
    except ValueError:
        raise bad(source, f"the stated sampling rate {match.group(1)!r} is not a number", line) from None
    if not rate > 0 or not np.isfinite(rate):
        raise bad(source, f"the stated sampling rate {rate:g} Hz must be a positive number", line)
    return rate
