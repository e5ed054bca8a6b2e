"""COHFACE-style HDF5 ground truth (Heusch et al. 2017): datasets ``pulse`` and ``time`` (seconds).

Read with h5py; a file without ``time`` needs its sampling rate from the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lib.rppg.ground_truth.model import GroundTruth, Origin, bad, waveform

FORMAT = "hdf5"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
"""The signature at the start of every HDF5 file."""


def load(path: Path, *, rate_hz: float | None = None) -> GroundTruth:
    import h5py  # only this format needs it, and importing it costs ~0.2 s

    with path.open("rb") as fh:
        if fh.read(len(HDF5_MAGIC)) != HDF5_MAGIC:
            raise bad(path.name, "is not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            pulse = _dataset(f, path.name, "pulse")
            time = _dataset(f, path.name, "time")
    except OSError as exc:
        raise bad(path.name, "is an HDF5 file h5py cannot read") from exc
    if pulse is None:
        raise bad(path.name, "has no 'pulse' dataset (COHFACE layout: 'pulse' and 'time')", column="pulse")
    if time is None:
        if rate_hz is None:
            raise bad(path.name, "has no 'time' dataset and no sampling rate was given", column="time")
        return waveform(path.name, FORMAT, pulse, fs=rate_hz, origin=Origin(None, "pulse", None, "sample"))
    if len(time) != len(pulse):
        raise bad(path.name, f"has {len(pulse)} pulse samples but {len(time)} times", column="time")
    return waveform(path.name, FORMAT, pulse, t=time, origin=Origin(None, "pulse", "time", "sample"))


def _dataset(f: Any, source: str, name: str) -> np.ndarray | None:
    """The named dataset of an open ``h5py.File`` as float64, None when absent."""
    if name not in f:
        return None
    node = f[name]
    kind = getattr(getattr(node, "dtype", None), "kind", "")
    if not hasattr(node, "shape") or kind not in "fiu" or not kind:
        raise bad(source, f"'{name}' is not a numeric dataset", column=name)
    return np.asarray(node[()], dtype=np.float64).ravel()
