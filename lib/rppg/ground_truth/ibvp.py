"""iBVP ground truth (Joshi & Cho 2024): ``<name>_bvp.csv`` with a header and the BVP in the first column.

The file has no time column; rPPG-Toolbox's loader stretches the samples over the video's frames, so
unless the caller states the rate the samples are taken to span the video evenly (resolved by
``GroundTruth.on_video``).
"""

from __future__ import annotations

import numpy as np

from lib.rppg.ground_truth.model import GroundTruth, Origin, bad, waveform
from lib.rppg.ground_truth.text import is_numeric, parse, rows

FORMAT = "ibvp"
BVP_COLUMN = 0


def load(source: str, text: str, *, rate_hz: float | None = None) -> GroundTruth:
    table = rows(text)
    data = table[1:] if table and not is_numeric(table[0]) else table
    if not data:
        raise bad(source, "has no rows of BVP samples")
    values = np.array([parse(source, row, BVP_COLUMN) for row in data])
    lines = np.array([row.line for row in data])
    return waveform(source, FORMAT, values, fs=rate_hz, origin=Origin(lines, BVP_COLUMN + 1))
