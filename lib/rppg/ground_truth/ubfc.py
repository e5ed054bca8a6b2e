"""UBFC-rPPG ground truth (Bobbia et al. 2019), both layouts the dataset ships.

- DATASET_1 ``gtdump.xmp``: comma-separated, no header; columns time (ms), HR, SpO2, PPG.
- DATASET_2 ``ground_truth.txt``: three whitespace-separated lines: PPG, HR, time (s).

The time axes start with the video, as rPPG-Toolbox and pyVHR take them.
"""

from __future__ import annotations

import numpy as np

from lib.rppg.ground_truth.model import GroundTruth, Origin, bad, waveform
from lib.rppg.ground_truth.text import number, parse, rows

FORMAT_1 = "ubfc_dataset1"
FORMAT_2 = "ubfc_dataset2"
DATASET1_TIME_COL, DATASET1_PPG_COL = 0, 3
"""Columns of gtdump.xmp (0-based): time in ms first, the PPG waveform fourth."""


def looks_like_dataset2(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 3 or "," in lines[0]:
        return False
    counts = {len(line.split()) for line in lines}
    return len(counts) == 1 and counts.pop() >= 10


def load_dataset2(source: str, text: str) -> GroundTruth:
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(numbered) != 3:
        raise bad(source, f"has {len(numbered)} lines; UBFC-rPPG ground_truth.txt has three (PPG, HR, time)")
    parsed = []
    for line_no, line in numbered:
        cells = line.split()
        values = [number(cell) for cell in cells]
        wrong = next((i for i, v in enumerate(values) if v is None), None)
        if wrong is not None:
            raise bad(source, f"{cells[wrong]!r} is not a number", line_no, wrong + 1)
        parsed.append(np.array(values, dtype=np.float64))
    ppg, _hr, t = parsed
    if len(t) != len(ppg):
        raise bad(source, f"has {len(ppg)} PPG samples but {len(t)} times", numbered[2][0])
    # One line per quantity: a bad sample is named by its position on the line, before the shared checks.
    for (line_no, _), x in ((numbered[0], ppg), (numbered[2], t)):
        wrong = np.flatnonzero(~np.isfinite(x))
        if len(wrong):
            raise bad(source, f"{x[wrong[0]]!r} is not a finite number", line_no, int(wrong[0]) + 1)
    backwards = np.flatnonzero(np.diff(t) < 0)
    if len(backwards):
        i = int(backwards[0]) + 1
        raise bad(source, f"the time {t[i]:g} goes backwards from {t[i - 1]:g}", numbered[2][0], i + 1)
    return waveform(source, FORMAT_2, ppg, t=t)


def load_dataset1(source: str, text: str) -> GroundTruth:
    table = rows(text)
    if not table:
        raise bad(source, "has no rows")
    times = np.array([parse(source, row, DATASET1_TIME_COL) for row in table]) / 1000.0
    ppg = np.array([parse(source, row, DATASET1_PPG_COL) for row in table])
    lines = np.array([row.line for row in table])
    return waveform(source, FORMAT_1, ppg, t=times,
                    origin=Origin(lines, DATASET1_PPG_COL + 1, DATASET1_TIME_COL + 1))
