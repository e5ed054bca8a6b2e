"""A ``time,value`` table: two numeric columns split on commas, semicolons, tabs or spaces."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from lib.errors import ValidationError

_CELL_SPLIT = re.compile(r"[,;\t ]+")


def parse(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric columns split on commas, semicolons, tabs or spaces; one optional header line."""
    rows = [
        [cell.strip("\"'") for cell in _CELL_SPLIT.split(line.strip()) if cell]
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    ms = False
    if rows and not _numeric(rows[0][:2]):
        header = rows[0][0].lower()
        ms = "ms" in header or "milli" in header
        rows = rows[1:]
    try:
        pairs = np.array([[float(row[0]), float(row[1])] for row in rows])
    except (ValueError, IndexError) as exc:
        raise ValidationError(
            f"{name!r} is not a ground-truth CSV: every row needs two numbers, time and value."
        ) from exc
    if pairs.size == 0:
        raise ValidationError(f"{name!r} has no ground-truth rows.")
    return pairs[:, 0] / (1000.0 if ms else 1.0), pairs[:, 1]


def _numeric(cells: Sequence[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return len(cells) == 2
