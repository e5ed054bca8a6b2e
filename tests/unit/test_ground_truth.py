"""Ground-truth loaders: each format's good file, and each kind of bad file named by file, line and column."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lib.errors import GroundTruthError, NotFound
from lib.rppg.ground_truth import Kind, check_sync, load_ground_truth

FS = 50.0
N = 500  # 10 s at 50 Hz


def wave(n: int = N, fs: float = FS, bpm: float = 72.0) -> np.ndarray:
    return np.sin(2 * np.pi * bpm / 60.0 * np.arange(n) / fs)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_text(t: np.ndarray, v: np.ndarray, header: str | None = "time_s,ppg") -> str:
    lines = ([header] if header else []) + [f"{a:.5f},{b:.6f}" for a, b in zip(t, v, strict=True)]
    return "\n".join(lines) + "\n"


def refused(path: Path, *parts: str, **kwargs: object) -> GroundTruthError:
    with pytest.raises(GroundTruthError) as info:
        load_ground_truth(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    for part in parts:
        assert part in message, message
    return info.value


# --- UBFC-rPPG -----------------------------------------------------------------------------------------


def test_ubfc_dataset2_three_lines(tmp_path: Path) -> None:
    t = np.arange(N) / FS
    lines = [" ".join(f"{x:.7e}" for x in row) for row in (wave(), np.full(N, 72.0), t)]
    truth = load_ground_truth(write(tmp_path / "ground_truth.txt", "\n".join(lines) + "\n"))
    assert truth.kind is Kind.WAVEFORM and truth.format == "ubfc_dataset2"
    assert truth.fs == pytest.approx(FS) and truth.start_s == 0.0 and not truth.offset_from_file
    assert truth.duration_s == pytest.approx(10.0)


def test_ubfc_dataset2_bad_cell_and_backwards_time_are_named(tmp_path: Path) -> None:
    t = np.arange(N) / FS
    ppg = [f"{x:.7e}" for x in wave()]
    ppg[7] = "oops"
    text = "\n".join([" ".join(ppg), " ".join(["72"] * N), " ".join(f"{x:.7e}" for x in t)])
    error = refused(write(tmp_path / "ground_truth.txt", text), "line 1, column 8", "'oops' is not a number")
    assert (error.line, error.column) == (1, 8)
    t[20] = t[18]  # goes backwards from t[19]
    text = "\n".join([" ".join(f"{x:.7e}" for x in wave()), " ".join(["72"] * N), " ".join(f"{x:.7e}" for x in t)])
    refused(write(tmp_path / "ground_truth.txt", text), "line 3, column 21", "backwards")


def test_ubfc_dataset1_gtdump(tmp_path: Path) -> None:
    rows = [f"{1000 * i / FS:.1f},72,98,{v:.4f}" for i, v in enumerate(wave())]
    truth = load_ground_truth(write(tmp_path / "gtdump.xmp", "\n".join(rows)))
    assert truth.format == "ubfc_dataset1" and truth.fs == pytest.approx(FS)
    rows[4] = "80.0,72,98"
    refused(write(tmp_path / "gtdump.xmp", "\n".join(rows)), "line 5, column 4", "missing")


# --- CSV -----------------------------------------------------------------------------------------------


def test_csv_with_time_column_in_seconds_or_milliseconds(tmp_path: Path) -> None:
    t = np.arange(N) / FS
    assert load_ground_truth(write(tmp_path / "a.csv", csv_text(t, wave()))).fs == pytest.approx(FS)
    ms = load_ground_truth(write(tmp_path / "b.csv", csv_text(t * 1000, wave(), "time_ms;ppg")))
    assert ms.duration_s == pytest.approx(10.0)
    bare = load_ground_truth(write(tmp_path / "c.csv", csv_text(t * 1000, wave(), None)))  # steps say ms
    assert bare.fs == pytest.approx(FS)
    epoch = load_ground_truth(write(tmp_path / "d.csv", csv_text(1.7e9 + t, wave())))
    assert epoch.t[0] == 0.0 and epoch.fs == pytest.approx(FS)


def test_csv_named_columns_in_any_order(tmp_path: Path) -> None:
    t = np.arange(N) / FS
    rows = ["spo2\tbvp\ttimestamp"] + [f"98\t{v:.5f}\t{a:.4f}" for a, v in zip(t, wave(), strict=True)]
    truth = load_ground_truth(write(tmp_path / "p.tsv", "\n".join(rows)))
    assert truth.fs == pytest.approx(FS)
    assert np.allclose(truth.values, wave(), atol=1e-4)


def test_csv_with_a_stated_rate(tmp_path: Path) -> None:
    body = "\n".join(f"{v:.5f}" for v in wave())
    stated = load_ground_truth(write(tmp_path / "r.csv", "# sampling_rate_hz: 50\nppg\n" + body))
    assert stated.fs == 50.0 and stated.duration_s == pytest.approx(10.0)
    given = load_ground_truth(write(tmp_path / "s.csv", body), rate_hz=25.0)
    assert given.duration_s == pytest.approx(20.0)


def test_csv_without_time_or_rate_and_with_zero_rate(tmp_path: Path) -> None:
    body = "\n".join(f"{v:.5f}" for v in wave())
    refused(write(tmp_path / "r.csv", "ppg\n" + body), "line 2", "no time column and no sampling rate")
    refused(write(tmp_path / "z.csv", "# fs = 0\nppg\n" + body), "z.csv, line 1", "sampling rate 0 Hz")
    refused(write(tmp_path / "y.csv", body), "sampling rate 0", rate_hz=0.0)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_csv_non_finite_value_is_named(tmp_path: Path, bad: str) -> None:
    lines = csv_text(np.arange(N) / FS, wave()).splitlines()
    lines[12] = f"0.22,{bad}"
    error = refused(write(tmp_path / "g.csv", "\n".join(lines)), "g.csv, line 13, column 2", "finite")
    assert (error.source, error.line, error.column) == ("g.csv", 13, 2)


def test_csv_backwards_time_and_text_cell_are_named(tmp_path: Path) -> None:
    lines = csv_text(np.arange(N) / FS, wave()).splitlines()
    back = lines.copy()
    back[30] = "0.1,0.5"
    refused(write(tmp_path / "b.csv", "\n".join(back)), "line 31, column 1", "goes backwards")
    text = lines.copy()
    text[40] = "0.78,high"
    refused(write(tmp_path / "t.csv", "\n".join(text)), "line 41, column 2", "'high' is not a number")


def test_repeated_timestamps_keep_the_first_sample(tmp_path: Path) -> None:
    t = np.repeat(np.arange(N // 2) / FS, 2)
    truth = load_ground_truth(write(tmp_path / "rep.csv", csv_text(t, np.arange(N, dtype=float))))
    assert len(truth.values) == N // 2 and truth.values[1] == 2.0


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
    (b"time,ppg\n", "header but no rows"),
    (b"time,ppg\n0,1\n0.02,2\n", "only 2 samples"),
    (b"caf\xe9,1\n", "not UTF-8 text"),
])
def test_unusable_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "gt.csv"
    path.write_bytes(content)
    refused(path, "gt.csv", expected)


def test_no_numeric_column(tmp_path: Path) -> None:
    refused(write(tmp_path / "n.csv", "name,comment\nanna,fine\nbob,ok\n"), "line 2", "not a number")


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_ground_truth(tmp_path / "nothing.csv")


# --- PURE, iBVP, BIDS, HDF5 ----------------------------------------------------------------------------


def pure_doc(image_start_ns: int | None) -> dict:
    packets = [{"Timestamp": 5_000_000_000 + int(i * 1e9 / FS), "Value": {"waveform": float(v), "pulseRate": 72}}
               for i, v in enumerate(wave())]
    doc: dict = {"/FullPackage": packets}
    if image_start_ns is not None:
        doc["/Image"] = [{"Timestamp": image_start_ns + i * 33_333_333} for i in range(300)]
    return doc


def test_pure_json_offset_from_image_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "01-01.json"
    path.write_text(json.dumps(pure_doc(4_500_000_000)))
    truth = load_ground_truth(path)
    assert truth.format == "pure" and truth.fs == pytest.approx(FS)
    assert truth.start_s == pytest.approx(0.5) and truth.offset_from_file
    path.write_text(json.dumps(pure_doc(None)))
    assert load_ground_truth(path).start_s == 0.0


def test_pure_json_bad_packet_and_bad_json(tmp_path: Path) -> None:
    doc = pure_doc(None)
    del doc["/FullPackage"][3]["Value"]["waveform"]
    path = write(tmp_path / "01-02.json", json.dumps(doc))
    refused(path, "packet 3", "waveform")
    refused(write(tmp_path / "01-03.json", '{"/FullPackage": [\n  {"Timestamp": 1,}\n]}'), "line 2")
    refused(write(tmp_path / "01-04.json", '{"other": 1}'), "/FullPackage")


def test_ibvp_csv_spans_the_video_unless_a_rate_is_given(tmp_path: Path) -> None:
    rows = ["BVP,SQ1,SQ2,SQ3"] + [f"{v:.5f},1,1,0.9" for v in wave()]
    path = write(tmp_path / "p01_a_bvp.csv", "\n".join(rows))
    truth = load_ground_truth(path)
    assert truth.format == "ibvp" and truth.fs is None
    on_video = truth.on_video(20.0)
    assert on_video.fs == pytest.approx(N / 20.0) and on_video.duration_s == pytest.approx(20.0)
    assert load_ground_truth(path, rate_hz=FS).duration_s == pytest.approx(10.0)
    rows[3] = "x,1,1,1"
    refused(write(tmp_path / "p01_b_bvp.csv", "\n".join(rows)), "line 4, column 1")


def bids_pair(tmp_path: Path, meta: dict, rows: list[str] | None = None) -> Path:
    table = tmp_path / "sub-01_task-rest_physio.tsv.gz"
    lines = rows if rows is not None else [f"0\t{v:.5f}" for v in wave()]
    table.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (tmp_path / "sub-01_task-rest_physio.json").write_text(json.dumps(meta))
    return table


def test_bids_physio_with_sidecar(tmp_path: Path) -> None:
    table = bids_pair(tmp_path, {"SamplingFrequency": FS, "StartTime": -1.5, "Columns": ["trigger", "cardiac"]})
    truth = load_ground_truth(table)
    assert truth.format == "bids_physio" and truth.fs == FS
    assert truth.start_s == -1.5 and truth.offset_from_file and truth.t[0] == -1.5
    assert np.allclose(truth.values, wave(), atol=1e-4)
    assert load_ground_truth(tmp_path / "sub-01_task-rest_physio.json").fs == FS  # either file of the pair


def test_bids_bad_sidecar_and_table(tmp_path: Path) -> None:
    table = bids_pair(tmp_path, {"SamplingFrequency": 0, "Columns": ["cardiac"]})
    refused(table, "sub-01_task-rest_physio.json", "SamplingFrequency is 0")
    table = bids_pair(tmp_path, {"SamplingFrequency": FS, "Columns": ["trigger", "respiratory"]})
    refused(table, "names no pulse column")
    rows = [f"0\t{v:.5f}" for v in wave()]
    rows[9] = "0\tNaN"
    table = bids_pair(tmp_path, {"SamplingFrequency": FS, "Columns": ["trigger", "cardiac"]}, rows)
    refused(table, "sub-01_task-rest_physio.tsv.gz, line 10, column 2", "finite")
    (tmp_path / "sub-01_task-rest_physio.json").unlink()
    refused(table, "sidecar")


def test_cohface_hdf5(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "data.hdf5"
    with h5py.File(path, "w") as f:
        f["pulse"] = wave(2 * N, 2 * FS)
        f["time"] = np.arange(2 * N) / (2 * FS)
    truth = load_ground_truth(path)
    assert truth.format == "hdf5" and truth.fs == pytest.approx(2 * FS) and truth.duration_s == pytest.approx(10.0)
    with h5py.File(path, "w") as f:
        f["respiration"] = wave()
    refused(path, "no 'pulse' dataset")
    path.write_bytes(b"not hdf5 at all")
    refused(path, "not an HDF5 file")


# --- mean heart rate -----------------------------------------------------------------------------------

INDIA_LIKE = "\ufeffSubject ,Heart_Rate(BPM) \nvideo1,85.413\nvideo12,66.474\nvideo120,90.0\n"


def test_mean_hr_single_value_and_table(tmp_path: Path) -> None:
    one = load_ground_truth(write(tmp_path / "hr.txt", "hr_bpm\n72.5\n"))
    assert one.kind is Kind.MEAN_HR and one.hr_bpm == 72.5 and one.duration_s is None
    table = write(tmp_path / "GT.csv", INDIA_LIKE)
    assert load_ground_truth(table, recording="video12_forehead.avi").hr_bpm == 66.474
    assert load_ground_truth(table, recording="video1_leftcheek.avi").hr_bpm == 85.413
    assert load_ground_truth(table, recording="video120.avi").hr_bpm == 90.0


def test_mean_hr_table_needs_its_recording(tmp_path: Path) -> None:
    table = write(tmp_path / "GT.csv", INDIA_LIKE)
    refused(table, "say which recording")
    refused(table, "no row for the recording 'video7_forehead.avi'", recording="video7_forehead.avi")
    refused(write(tmp_path / "z.txt", "0\n"), "z.txt, line 1, column 1", "not a heart rate")


# --- sync ----------------------------------------------------------------------------------------------


def test_sync_shows_durations_offset_and_warns_past_a_second(tmp_path: Path) -> None:
    truth = load_ground_truth(write(tmp_path / "a.csv", csv_text(np.arange(N) / FS, wave())))
    fine = check_sync(truth, 10.5)
    assert (fine.video_s, fine.signal_s, fine.offset_s, fine.warning) == (10.5, pytest.approx(10.0), 0.0, None)
    late = check_sync(truth, 12.0)
    assert late.mismatch_s == pytest.approx(2.0)
    assert "12.0 s" in late.warning and "10.0 s" in late.warning and "+0.00 s" in late.warning
    assert "assumed" in late.warning


def test_sync_refuses_a_file_for_another_recording(tmp_path: Path) -> None:
    truth = load_ground_truth(write(tmp_path / "short.csv", csv_text(np.arange(N) / FS, wave())))
    with pytest.raises(GroundTruthError, match=re.escape("short.csv: covers 10.0 s of this 60.0 s recording")):
        check_sync(truth, 60.0)
    mean = load_ground_truth(write(tmp_path / "hr.txt", "70\n"))
    assert check_sync(mean, 60.0).warning is None
