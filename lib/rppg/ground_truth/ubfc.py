"""UBFC-rPPG ``ground_truth.txt`` (DATASET_2): three lines of numbers, the PPG, the HR and the time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lib.errors import ValidationError


def matches(lines: Sequence[str]) -> bool:
    """Three lines of as many space-separated numbers each (not a CSV)."""
    if len(lines) != 3 or "," in lines[0]:
        return False
    counts = {len(line.split()) for line in lines}
    return len(counts) == 1 and counts.pop() > 2


def parse(lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(t, PPG) from the three lines; the HR line is not used (the HR is computed like the estimate's)."""
    try:
        ppg, _hr, t = (np.array([float(v) for v in line.split()]) for line in lines)
    except ValueError as exc:
        raise ValidationError("The UBFC ground_truth.txt has a non-numeric entry.") from exc
    return t, ppg
