"""BIDS physiological recordings: ``<name>_physio.tsv.gz`` (no header) beside ``<name>_physio.json``.

The sidecar gives ``SamplingFrequency`` (Hz), ``StartTime`` (s, the first sample relative to the start of
the acquisition, i.e. the video; negative when the signal started first) and ``Columns``. The pulse is
the column named ``cardiac`` (BIDS' name for PPG), or else ``ppg``, ``pulse`` or ``bvp``.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lib.rppg.ground_truth.model import GroundTruth, Origin, bad, waveform
from lib.rppg.ground_truth.text import parse, rows

FORMAT = "bids_physio"
PULSE_COLUMNS = ("cardiac", "ppg", "pulse", "bvp")
"""Column names that hold the pulse, in order of preference."""


def sidecar_of(path: Path) -> Path:
    name = path.name
    for suffix in (".tsv.gz", ".tsv"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path


def table_of(sidecar: Path) -> Path:
    stem = sidecar.name[: -len(".json")]
    gz = sidecar.with_name(stem + ".tsv.gz")
    return gz if gz.exists() or not sidecar.with_name(stem + ".tsv").exists() else sidecar.with_name(stem + ".tsv")


def load(table_path: Path, sidecar_path: Path) -> GroundTruth:
    meta = _sidecar(sidecar_path)
    fs = _number(sidecar_path.name, meta, "SamplingFrequency")
    if fs <= 0:
        raise bad(sidecar_path.name, f"SamplingFrequency is {fs:g}; it must be a positive number of Hz")
    start = _number(sidecar_path.name, meta, "StartTime") if "StartTime" in meta else None
    column = _pulse_column(sidecar_path.name, meta.get("Columns"))
    text = _tsv_text(table_path)
    data = rows(text)
    if not data:
        raise bad(table_path.name, "has no rows")
    values = np.array([parse(table_path.name, row, column) for row in data])
    return waveform(table_path.name, FORMAT, values, fs=fs, start_s=start,
                    origin=Origin(np.array([row.line for row in data]), column + 1))


def _sidecar(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise bad(path.name, "is missing: a BIDS _physio.tsv.gz needs its JSON sidecar beside it")
    try:
        meta = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise bad(path.name, "is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise bad(path.name, f"is not valid JSON ({exc.msg})", exc.lineno, exc.colno) from exc
    if not isinstance(meta, dict):
        raise bad(path.name, "is not a JSON object of BIDS fields")
    return meta


def _number(source: str, meta: dict[str, Any], key: str) -> float:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(source, f"{key} is {value!r}; it must be a number", column=key)
    return float(value)


def _pulse_column(source: str, columns: Any) -> int:
    if not isinstance(columns, list) or not columns:
        raise bad(source, "has no Columns list naming the table's columns", column="Columns")
    names = [str(c).strip().lower() for c in columns]
    for wanted in PULSE_COLUMNS:
        if wanted in names:
            return names.index(wanted)
    raise bad(source, f"names no pulse column (one of {', '.join(PULSE_COLUMNS)}) among {columns}",
              column="Columns")


def _tsv_text(path: Path) -> str:
    if not path.is_file():
        raise bad(path.name, "is missing: the sidecar's physiological table is not beside it")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise bad(path.name, "is not a readable gzip file") from exc
    if b"\x00" in raw[:8192]:
        raise bad(path.name, "is not a text table (it holds binary data)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(path.name, "is not UTF-8 text", raw[: exc.start].count(b"\n") + 1) from exc
    if not text.strip():
        raise bad(path.name, "is empty")
    return text
