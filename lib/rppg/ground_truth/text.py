"""Reading ground-truth text: refuse binary or empty files, and keep line numbers for messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lib.rppg.ground_truth.model import bad

SNIFF_BYTES = 8192
"""A NUL byte in this much of the start of a file marks it as binary, not text."""
_CELL_SPLIT = re.compile(r"\s*[,;\t]\s*|\s+")


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line in the file
    cells: tuple[str, ...]


def read_text(path: Path) -> str:
    """The file's text (BOM dropped); binary or empty files are refused by name."""
    data = path.read_bytes()
    if b"\x00" in data[:SNIFF_BYTES]:
        raise bad(path.name, "is not a text file (it holds binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise bad(path.name, "is not UTF-8 text", line) from exc
    if not text.strip():
        raise bad(path.name, "is empty")
    return text


def rows(text: str) -> list[Row]:
    """Non-blank, non-comment lines split on commas, semicolons, tabs or spaces, with their line numbers."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            cells = tuple(cell.strip("\"'") for cell in _CELL_SPLIT.split(stripped) if cell)
            out.append(Row(number, cells))
    return out


def number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def is_numeric(row: Row) -> bool:
    return all(number(cell) is not None for cell in row.cells)


def parse(source: str, row: Row, column: int) -> float:
    """The number in ``column`` (0-based) of ``row``; a missing or non-numeric cell is named."""
    if column >= len(row.cells):
        raise bad(source, f"the row has {len(row.cells)} cell(s), so column {column + 1} is missing",
                  row.line, column + 1)
    value = number(row.cells[column])
    if value is None:
        raise bad(source, f"{row.cells[column]!r} is not a number", row.line, column + 1)
    return value
