"""Ground truth for a recording: one loader module per dataset format (as pyVHR keeps one per dataset), all
parsing to one :class:`GroundTruth`; ``reference`` gives the reference heart rate over the span the
estimate used (it needs SciPy; parsing does not).

``load_ground_truth`` picks the format from the file's name, then its content:

- ``*_physio.tsv.gz`` / ``*_physio.tsv`` / ``*_physio.json`` → BIDS physiology with its sidecar (``bids``)
- ``*.h5`` / ``*.hdf5`` → COHFACE-style HDF5, ``pulse`` and ``time`` (``hdf5``)
- ``*.json`` → PURE, ``/FullPackage`` packets (``pure``)
- ``*_bvp.csv`` → iBVP (``ibvp``)
- ``*.xmp`` → UBFC-rPPG DATASET_1 ``gtdump.xmp`` (``ubfc``)
- three long whitespace-separated lines → UBFC-rPPG DATASET_2 ``ground_truth.txt`` (``ubfc``)
- one number, or rows of ``name, HR`` → a mean heart rate (``mean_hr``)
- anything else → CSV with a time column or a stated sampling rate (``table``)

Every refusal is a :class:`lib.errors.GroundTruthError` naming the file, line and column; ``check_sync``
compares a reference's span with its video's.
"""

from __future__ import annotations

from pathlib import Path

from lib.errors import NotFound
from lib.rppg.ground_truth import bids, hdf5, ibvp, mean_hr, pure, table, ubfc
from lib.rppg.ground_truth.model import GroundTruth, Kind
from lib.rppg.ground_truth.sync import SYNC_TOLERANCE_S, Sync, check_sync
from lib.rppg.ground_truth.text import read_text, rows

__all__ = ["SYNC_TOLERANCE_S", "GroundTruth", "Kind", "Sync", "check_sync", "load_ground_truth"]


def load_ground_truth(
    path: Path | str, *, recording: str | None = None, rate_hz: float | None = None
) -> GroundTruth:
    """Parse one ground-truth file.

    ``recording`` (the video's file name) picks the row of a table of mean heart rates; ``rate_hz`` is the
    sampling rate of a signal whose file states none.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"The ground-truth file {path.name!r} is not there.")
    name = path.name.lower()
    if name.endswith(("_physio.tsv.gz", "_physio.tsv")):
        return bids.load(path, bids.sidecar_of(path))
    if name.endswith("_physio.json"):
        return bids.load(bids.table_of(path), path)
    if name.endswith((".h5", ".hdf5")):
        return hdf5.load(path, rate_hz=rate_hz)
    text = read_text(path)
    if name.endswith(".json"):
        return pure.load(path.name, text)
    if name.endswith("_bvp.csv"):
        return ibvp.load(path.name, text, rate_hz=rate_hz)
    if name.endswith(".xmp"):
        return ubfc.load_dataset1(path.name, text)
    if ubfc.looks_like_dataset2(text):
        return ubfc.load_dataset2(path.name, text)
    if mean_hr.looks_like(rows(text)):
        return mean_hr.load(path.name, text, recording=recording)
    return table.load(path.name, text, rate_hz=rate_hz)
