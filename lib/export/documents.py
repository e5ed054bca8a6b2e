"""The small files every export carries beside the recordings: README, SHA256SUMS, the mapping from the
layout's names back to PulseVault's records, and each layout's own index files (BIDS'
``participants.tsv`` and ``dataset_description.json``, the rPPG-Toolbox config fragment)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from lib.export.model import Layout, MadeFile, ObjectFile
from lib.keys import extension_of
from lib.records import FileRecord

SHA256SUMS = "SHA256SUMS"
README = "README.md"
MAPPING = "mapping.csv"
TOOLBOX_YAML = "rppg-toolbox.yaml"
BIDS_VERSION = "1.9.0"
"""The BIDS version the layout follows (dataset_description.json's BIDSVersion)."""
TOOLBOX_VIDEO_EXT = "avi"
"""rPPG-Toolbox's UBFC-rPPG loader opens ``vid.avi`` in each subject folder."""

_README_BODY = {
    Layout.UBFC: """Laid out as the UBFC-rPPG dataset (DATASET_2), which rPPG-Toolbox's `UBFC-rPPG` loader reads:

- `subjectN/vid.<ext>`: the recording, byte for byte as stored (N comes from the subject field).
- `subjectN/ground_truth.txt`: the reference pulse in UBFC-rPPG DATASET_2 format: line 1 the PPG signal,
  line 2 the heart rate (bpm) at each sample, line 3 the sample times (s from the video's first frame).
  Converted from the ground-truth file stored with the recording; samples before the first frame dropped.
- `mapping.csv`: which subject folder holds which PulseVault recording (subject, session, original name).
- `rppg-toolbox.yaml`: the `DATA` settings for rPPG-Toolbox; set `DATA_PATH` to where you unpacked this folder.
""",
    Layout.BIDS: """Laid out BIDS-style:

- `sub-<subject>/[ses-<session>/]sub-<subject>[_ses-<session>][_run-<n>]_video.<ext>`: the recording, byte
  for byte as stored.
- `..._physio.tsv.gz` + `..._physio.json`: the reference pulse (column `cardiac`, no header, evenly sampled)
  and its sidecar (`SamplingFrequency` in Hz, `StartTime` in s from the video's first frame, `Columns`).
  Converted from the ground-truth file stored with the recording; a recording without a pulse waveform
  (none, or only a mean heart rate) has no physio files.
- `participants.tsv`: one row per subject with the subject field as typed in PulseVault.
- `dataset_description.json`: the dataset's name and BIDS version.
- `mapping.csv`: which file is which PulseVault recording.
""",
    Layout.PLAIN: """One folder per recording, named after its original file:

- `<name>/<original file>`: the recording, byte for byte as stored.
- `<name>/<ground-truth file>`: its ground truth as it was attached (a BIDS table with its sidecar).
- `<name>/analysis.json`: the saved quick-look analysis (method, heart rate, every method's estimate, quality,
  comparison).
- `metadata.csv`: one row per recording: where it is (`path`), research fields, video properties,
  checksum and quick-look results.
""",
}


def readme(layout: Layout, root: str, exported_at: datetime, left_out: Sequence[str]) -> MadeFile:
    """What each file is, how to check it, and what was left out."""
    text = (f"# {root}\n\nExported from PulseVault on {exported_at:%Y-%m-%d %H:%M} UTC.\n\n{_README_BODY[layout]}\n"
            "- `SHA256SUMS`: the SHA-256 of every file (the recordings' as stored at upload). Check them from this "
            "folder with `sha256sum -c SHA256SUMS` (macOS: `shasum -a 256 -c SHA256SUMS`).\n")
    if left_out:
        text += "\nNot exported:\n\n" + "".join(f"- {reason}\n" for reason in left_out)
    return MadeFile(README, text.encode("utf-8"))


def sha256sums(objects: Iterable[ObjectFile], made: Iterable[MadeFile]) -> MadeFile:
    """``sha256sum -c``'s format, recordings from their stored checksums, sorted by path."""
    lines = sorted((f.path, f.sha256) for f in (*objects, *made))
    return MadeFile(SHA256SUMS, "".join(f"{digest}  {path}\n" for path, digest in lines).encode("utf-8"))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]], *, delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


MAPPING_COLUMNS = ("path", "record_id", "original_name", "subject_id", "session_label", "ground_truth",
                   "signal_start_s")


def mapping(rows: Iterable[Sequence[object]]) -> MadeFile:
    """Rows of :data:`MAPPING_COLUMNS`: where each recording went, and what its ground truth was made from."""
    return MadeFile(MAPPING, csv_bytes(MAPPING_COLUMNS, sorted(rows, key=lambda row: str(row[0]))))


def participants(labels: dict[str, str]) -> MadeFile:
    """BIDS' participants.tsv: label -> the subject field as typed."""
    rows = [(f"sub-{label}", subject) for label, subject in sorted(labels.items())]
    return MadeFile("participants.tsv", csv_bytes(("participant_id", "subject_id"), rows, delimiter="\t"))


def dataset_description(root: str) -> MadeFile:
    description = {"Name": root, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
                   "GeneratedBy": [{"Name": "PulseVault", "Description": "rPPG recordings with reference pulse"}]}
    return MadeFile("dataset_description.json", (json.dumps(description, indent=2) + "\n").encode("utf-8"))


def toolbox_yaml(root: str, records: Sequence[FileRecord]) -> MadeFile:
    """The ``DATA`` block rPPG-Toolbox's configs take for a UBFC-rPPG dataset, pointing at this export."""
    rates = Counter(round(r.video.fps) for r in records if r.video is not None and r.video.fps > 0)
    fs = rates.most_common(1)[0][0] if rates else 30
    notes = []
    if len(rates) > 1:
        notes.append(f"# The recordings' frame rates differ ({', '.join(f'{k} fps' for k in sorted(rates))}); FS is "
                     "the most common one.")
    others = sorted({extension_of(r.s3_key) for r in records} - {TOOLBOX_VIDEO_EXT})
    if others:
        notes.append(f"# rPPG-Toolbox's UBFC-rPPG loader opens vid.avi; these are {', '.join(others)}: convert "
                     "them to AVI (e.g. ffmpeg -i vid.mp4 -c:v ffv1 vid.avi) or adapt the loader's file name.")
    text = "\n".join([
        "# rPPG-Toolbox: the DATA settings for this export (UBFC-rPPG layout). Put them under TEST (or TRAIN,",
        "# VALID, UNSUPERVISED) in your config; set DATA_PATH to the unpacked folder (an absolute path is safer),",
        "# and CACHED_PATH to where the toolbox may write its preprocessed data.",
        *notes,
        "TEST:",
        "  DATA:",
        f"    FS: {fs}",
        "    DATASET: UBFC-rPPG",
        "    DO_PREPROCESS: True",
        "    DATA_FORMAT: NDCHW",
        f'    DATA_PATH: "{root}"',
        "    BEGIN: 0.0",
        "    END: 1.0",
        "",
    ])
    return MadeFile(TOOLBOX_YAML, text.encode("utf-8"))
