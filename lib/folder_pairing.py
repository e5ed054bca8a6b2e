"""Which ground-truth file in a picked folder belongs to which video, by the layouts datasets use.

A researcher picks a dataset's folder; the browser gives every file with its path inside it. This module
looks only at those paths (never the bytes) and pairs each video with its reference signal by the first
rule that fits, each ground-truth file serving one video at most:

1. **UBFC-rPPG**: ``subjectN/vid.avi`` with ``ground_truth.txt`` (DATASET_2) or ``gtdump.xmp``
   (DATASET_1) in the same folder.
2. **BIDS**: ``sub-01_ses-1_task-rest_video.mp4`` with ``sub-01_ses-1_task-rest_physio.tsv.gz`` and its
   ``_physio.json`` sidecar: the same entities, the video's own suffix dropped.
3. **iBVP**: ``p1_a_bvp.csv`` beside a video whose name starts with ``p1_a``.
4. **Same name**: ``clip.mp4`` with ``clip.csv`` / ``.json`` (PURE's own naming) / ``.txt`` / ``.h5`` ...
5. **One per folder**: a folder holding exactly one video and one ground-truth file left over.

What fits no rule is left alone and named, so a researcher sees what was not paired and can attach it
by hand in My files.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lib.keys import BIDS_SIDECAR_SUFFIX, GROUND_TRUTH_SUFFIXES, ground_truth_sidecar
from lib.media.containers import ALLOWED_EXTENSIONS

UBFC_VIDEO_STEM = "vid"
"""UBFC-rPPG names every subject's video ``vid.avi``."""
UBFC_TRUTH_NAMES = ("ground_truth.txt", "gtdump.xmp")
"""UBFC-rPPG's reference: DATASET_2's text file, DATASET_1's XMP dump."""
IBVP_TRUTH_SUFFIX = "_bvp.csv"
"""iBVP's reference signal: ``<participant>_<task>_bvp.csv``."""
BIDS_SUBJECT_PREFIX = "sub-"


@dataclass(frozen=True)
class TruthPair:
    """A video and the ground truth that goes with it (a BIDS table comes with its sidecar)."""

    video: str
    truth: tuple[str, ...]
    layout: str

    def describe(self) -> str:
        return f"{self.video} ↔ {' + '.join(self.truth)} ({self.layout})"


@dataclass(frozen=True)
class FolderPairing:
    """What a folder's files pair into; paths as the browser gave them."""

    pairs: tuple[TruthPair, ...]
    unpaired_videos: tuple[str, ...]
    left_alone: tuple[str, ...]
    """Ground-truth files no video claimed."""

    def truth_for(self, video: str) -> TruthPair | None:
        return next((pair for pair in self.pairs if pair.video == video), None)

    def summary(self) -> str:
        """One line for the page: how many were paired and what was not."""
        parts = [f"Paired {len(self.pairs)} of {len(self.pairs) + len(self.unpaired_videos)} videos with their "
                 "ground truth."]
        if self.unpaired_videos:
            parts.append(f"No ground truth found for: {', '.join(self.unpaired_videos)}.")
        if self.left_alone:
            parts.append(f"Left alone (no video matched): {', '.join(self.left_alone)}.")
        return " ".join(parts)


def is_video(path: str) -> bool:
    return _extension(path) in ALLOWED_EXTENSIONS


def is_ground_truth(path: str) -> bool:
    name = _name(path).lower()
    return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in GROUND_TRUTH_SUFFIXES)


def pair_folder(paths: Iterable[str]) -> FolderPairing:
    """Pair the videos among ``paths`` with the ground-truth files among them (see the module docstring)."""
    paths = list(dict.fromkeys(paths))
    videos = sorted(p for p in paths if is_video(p))
    truths = {p for p in paths if is_ground_truth(p) and not is_video(p)}
    pairs: dict[str, TruthPair] = {}
    for layout, rule in _RULES:
        for video in videos:
            if video in pairs:
                continue
            claimed = rule(video, sorted(truths), videos)
            if claimed and all(path in truths for path in claimed):
                pairs[video] = TruthPair(video, claimed, layout)
                truths.difference_update(claimed)
    pairs.update(_one_per_folder(videos, pairs, truths))
    return FolderPairing(
        pairs=tuple(pairs[v] for v in videos if v in pairs),
        unpaired_videos=tuple(v for v in videos if v not in pairs),
        left_alone=tuple(sorted(truths)),
    )


def _ubfc(video: str, truths: Sequence[str], _videos: Sequence[str]) -> tuple[str, ...]:
    if _stem(video).lower() != UBFC_VIDEO_STEM:
        return ()
    folder = _folder(video)
    for name in UBFC_TRUTH_NAMES:
        match = next((t for t in truths if _folder(t) == folder and _name(t).lower() == name), None)
        if match:
            return (match,)
    return ()


def _bids(video: str, truths: Sequence[str], _videos: Sequence[str]) -> tuple[str, ...]:
    stem = _stem(video)
    if not stem.startswith(BIDS_SUBJECT_PREFIX) or "_" not in stem:
        return ()
    entities = stem.rsplit("_", 1)[0]  # drop the video's own suffix (_video, _rgb, ...)
    for table in truths:
        name = _name(table)
        if ground_truth_sidecar(table) is not None and _folder(table) == _folder(video) \
                and name[: name.lower().rfind("_physio")] == entities:
            return _with_sidecar(table, truths)
    return ()


def _ibvp(video: str, truths: Sequence[str], _videos: Sequence[str]) -> tuple[str, ...]:
    stem = _stem(video)
    for truth in truths:
        name = _name(truth)
        if _folder(truth) == _folder(video) and name.lower().endswith(IBVP_TRUTH_SUFFIX):
            prefix = name[: -len(IBVP_TRUTH_SUFFIX)]
            if stem == prefix or stem.startswith(prefix + "_"):
                return (truth,)
    return ()


def _same_name(video: str, truths: Sequence[str], _videos: Sequence[str]) -> tuple[str, ...]:
    stem = _stem(video)
    for truth in truths:
        if _folder(truth) == _folder(video) and _truth_stem(truth) == stem:
            return _with_sidecar(truth, truths)
    return ()


def _with_sidecar(truth: str, truths: Sequence[str]) -> tuple[str, ...]:
    """The file to attach, with its sidecar when it is a BIDS table; nothing when that sidecar is missing."""
    sidecar = ground_truth_sidecar(truth)
    if sidecar is None:
        return (truth,)
    return (truth, sidecar) if sidecar in truths else ()


def _one_per_folder(videos: Sequence[str], pairs: dict[str, TruthPair], truths: set[str]) -> dict[str, TruthPair]:
    """A folder with one unpaired video and one loose ground-truth file (not a BIDS table or sidecar) pairs them."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for video in videos:
        by_folder[_folder(video)].append(video)
    found: dict[str, TruthPair] = {}
    for folder, in_folder in by_folder.items():
        loose = [t for t in truths if _folder(t) == folder and ground_truth_sidecar(t) is None
                 and not t.lower().endswith(BIDS_SIDECAR_SUFFIX)]
        if len(in_folder) == 1 and in_folder[0] not in pairs and len(loose) == 1:
            found[in_folder[0]] = TruthPair(in_folder[0], (loose[0],), "one per folder")
            truths.discard(loose[0])
    return found


_RULES: tuple[tuple[str, Callable[[str, Sequence[str], Sequence[str]], tuple[str, ...]]], ...] = (
    ("UBFC-rPPG", _ubfc),
    ("BIDS", _bids),
    ("iBVP", _ibvp),
    ("same name", _same_name),
)
"""The named layouts, most specific first; the one-per-folder rule runs after them."""


def _name(path: str) -> str:
    return posixpath.basename(path.replace("\\", "/"))


def _folder(path: str) -> str:
    return posixpath.dirname(path.replace("\\", "/"))


def _stem(path: str) -> str:
    return _name(path).rsplit(".", 1)[0]


def _extension(path: str) -> str:
    name = _name(path)
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _truth_stem(path: str) -> str:
    """The name without its ground-truth ending (``clip.csv`` → ``clip``)."""
    name = _name(path)
    for suffix in GROUND_TRUTH_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
