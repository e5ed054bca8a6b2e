"""lib.folder_pairing: a picked folder's videos paired with their ground truth by dataset layout."""

from __future__ import annotations

from lib.folder_pairing import FolderPairing, pair_folder


def _pairs(pairing: FolderPairing) -> dict[str, tuple[tuple[str, ...], str]]:
    return {p.video: (p.truth, p.layout) for p in pairing.pairs}


def test_ubfc_rppg_pairs_each_subjects_vid_with_its_ground_truth() -> None:
    pairing = pair_folder([
        "UBFC/subject1/vid.avi", "UBFC/subject1/ground_truth.txt",
        "UBFC/subject3/vid.avi", "UBFC/subject3/ground_truth.txt",
        "UBFC1/after-exercise/vid.avi", "UBFC1/after-exercise/gtdump.xmp",
    ])
    assert _pairs(pairing) == {
        "UBFC/subject1/vid.avi": (("UBFC/subject1/ground_truth.txt",), "UBFC-rPPG"),
        "UBFC/subject3/vid.avi": (("UBFC/subject3/ground_truth.txt",), "UBFC-rPPG"),
        "UBFC1/after-exercise/vid.avi": (("UBFC1/after-exercise/gtdump.xmp",), "UBFC-rPPG"),
    }
    assert not pairing.unpaired_videos and not pairing.left_alone


def test_bids_takes_the_table_with_its_sidecar_and_only_with_it() -> None:
    pairing = pair_folder([
        "ds/sub-01/sub-01_task-rest_video.mp4",
        "ds/sub-01/sub-01_task-rest_physio.tsv.gz", "ds/sub-01/sub-01_task-rest_physio.json",
        "ds/sub-02/sub-02_task-rest_video.mp4", "ds/sub-02/sub-02_task-rest_physio.tsv.gz",
    ])
    assert _pairs(pairing) == {"ds/sub-01/sub-01_task-rest_video.mp4": (
        ("ds/sub-01/sub-01_task-rest_physio.tsv.gz", "ds/sub-01/sub-01_task-rest_physio.json"), "BIDS")}
    assert pairing.unpaired_videos == ("ds/sub-02/sub-02_task-rest_video.mp4",)  # its sidecar is missing
    assert pairing.left_alone == ("ds/sub-02/sub-02_task-rest_physio.tsv.gz",)


def test_ibvp_pure_and_same_name_files_pair_by_their_names() -> None:
    pairing = pair_folder([
        "iBVP/p1_a/p1_a_rgb.avi", "iBVP/p1_a/p1_a_bvp.csv",
        "PURE/01-01.mp4", "PURE/01-01.json", "PURE/01-02.mp4", "PURE/01-02.json",
        "lab/s7 rest.mkv", "lab/s7 rest.csv", "lab/s7 rest.txt",
    ])
    assert _pairs(pairing) == {
        "iBVP/p1_a/p1_a_rgb.avi": (("iBVP/p1_a/p1_a_bvp.csv",), "iBVP"),
        "PURE/01-01.mp4": (("PURE/01-01.json",), "same name"),
        "PURE/01-02.mp4": (("PURE/01-02.json",), "same name"),
        "lab/s7 rest.mkv": (("lab/s7 rest.csv",), "same name"),
    }
    assert pairing.left_alone == ("lab/s7 rest.txt",)  # one file per video: the second is named, not guessed


def test_one_video_and_one_file_in_a_folder_pair_but_two_videos_do_not_guess() -> None:
    pairing = pair_folder([
        "study/s1/face.mp4", "study/s1/ppg.csv",
        "study/s2/a.mp4", "study/s2/b.mp4", "study/s2/ppg.csv",
        "study/readme.md",
    ])
    assert _pairs(pairing) == {"study/s1/face.mp4": (("study/s1/ppg.csv",), "one per folder")}
    assert pairing.unpaired_videos == ("study/s2/a.mp4", "study/s2/b.mp4")
    assert pairing.left_alone == ("study/s2/ppg.csv",)  # readme.md is not ground truth: not listed at all


def test_a_ground_truth_file_serves_one_video_only_and_the_summary_names_the_rest() -> None:
    pairing = pair_folder(["x/vid.avi", "x/vid.mp4", "x/ground_truth.txt"])
    assert len(pairing.pairs) == 1 and len(pairing.unpaired_videos) == 1
    summary = pairing.summary()
    assert summary.startswith("Paired 1 of 2 videos with their ground truth.")
    assert pairing.unpaired_videos[0] in summary
    assert pair_folder(["only/notes.csv"]).summary() == (
        "Paired 0 of 0 videos with their ground truth. Left alone (no video matched): only/notes.csv.")
