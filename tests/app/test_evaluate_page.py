"""AppTest of pages/evaluate.py in demo mode, as a fresh account: figures per method from saved analyses,
the grouping, the plots and CSVs, and re-analysing a recording whose ground truth has no comparison yet
(a synthetic clip and its true pulse in the demo's S3, decoded for real)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib import demo
from lib.keys import record_keys
from lib.records import FileRecord, GroundTruthFile, NewRecord, ResearchFields, VideoProperties
from lib.repository import SqliteRepository
from lib.rppg import AnalysisSummary
from lib.rppg.results import MethodEstimate
from tests.app.test_files_page import s3
from tests.support.apptest import SEED_TIMEOUT_S, new_app, new_demo_account, sign_in
from tests.support.records import server_of
from tests.support.synthetic_pulse import ClipSpec, make_clip, write_ground_truth_csv

VIDEO = VideoProperties(duration_s=10.0, fps=30.0, width=160, height=120, frame_count=300, codec="FFV1",
                        lossless=True, browser_playable=False)


def evaluate_page() -> tuple[AppTest, str]:
    """A fresh account (nothing other tests left behind) signed in on Evaluate, and its user id.

    The app starts first: the demo backends must come up with the app's browser origins for its CORS rule.
    """
    at = new_app()
    email, password, user_id = new_demo_account()
    sign_in(at, email, password)
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    demo.seeding_done(timeout_s=SEED_TIMEOUT_S)
    return at, user_id


def add(repo: SqliteRepository, name: str, *, hr: float | None, truth: float | None, subject: str = "",
        objects: dict[str, bytes] | None = None, every: bool = False) -> FileRecord:
    """A ready recording with ground truth, analysed by POS (compared with ``truth`` unless it is None); with
    ``every``, its analysis also holds CHROM's estimate (``hr`` + 4) and GREEN's (``hr`` − 1), as the analysis
    keeps them today (without, as analyses saved before)."""
    record_id = str(uuid.uuid4())
    keys = record_keys(repo.user_id, record_id, "avi", datetime.now(UTC))
    bucket = demo.start_demo([]).s3.bucket
    for suffix, body in (objects or {}).items():
        key = keys.original if suffix == "video" else keys.ground_truth(suffix)
        s3().put_object(Bucket=bucket, Key=key, Body=body)
    server = server_of(repo)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=bucket, original_name=name,
                             content_type="video/x-msvideo", size_bytes=1_000, video=VIDEO,
                             research=ResearchFields(subject_id=subject)), quota_bytes=10**12)
    methods = () if not every or hr is None else tuple(
        MethodEstimate(name, hr + shift, 2.0, 5.0 + shift) for name, shift in (("POS", 0), ("CHROM", 4), ("GREEN", -1)))
    summary = AnalysisSummary(method="POS", hr_bpm=hr, snr_db=2.0, hr_track=(), pulse=(), pulse_fs=0.0,
                              flags=(), frames_analysed=300, seconds_taken=0.5, ground_truth_hr_bpm=truth,
                              methods=methods)
    server.mark_ready(record_id, size_bytes=1_000, sha256=None, video=VIDEO, thumbnail_key=None, preview_key=None,
                    analysis=summary.to_json())
    return server.set_ground_truth(record_id, GroundTruthFile(keys.ground_truth("truth.csv"), "truth.csv", 10))


def figures_of(at: AppTest):
    """The figures table: the one with an MAE column."""
    return next(d.value for d in at.dataframe if "MAE (bpm)" in d.value.columns)


def test_no_ground_truth_says_where_to_attach_it() -> None:
    at, _ = evaluate_page()
    assert any("None of your recordings has ground truth" in i.value for i in at.info)


def test_figures_plots_grouping_csv_and_reanalysis(tmp_path: Path) -> None:
    at, user_id = evaluate_page()
    repo = SqliteRepository(demo.start_demo([]).db_path, user_id)
    add(repo, "a.avi", hr=70.0, truth=72.0, subject="S1")
    add(repo, "b.avi", hr=80.0, truth=78.0, subject="S2")
    clip = make_clip(tmp_path / "clip.avi", ClipSpec(seconds=10.0, size=(160, 120)))
    truth = write_ground_truth_csv(clip, tmp_path / "truth.csv")
    late = add(repo, "late.avi", hr=71.0, truth=None,
               objects={"video": clip.path.read_bytes(), "truth.csv": truth.read_bytes()})
    at.run()
    assert not at.exception, at.exception
    assert any("1 recording has ground truth but no comparison" in w.value for w in at.warning)
    figures = figures_of(at)
    assert list(figures["Recordings"]) == [2] and list(figures["MAE (bpm)"]) == ["2.0 ± 0.0"]
    assert list(figures["Within 5 bpm (%)"]) == ["100"]
    assert len(at.get("vega_lite_chart")) == 2  # Bland–Altman, estimate against truth
    assert len(at.get("download_button")) == 2

    at.segmented_control(key=state_keys.EVALUATE_GROUPING).set_value("subject").run()
    assert not at.exception, at.exception
    assert list(figures_of(at)["Group"]) == ["S1", "S2"]

    next(b for b in at.button if b.key == state_keys.EVALUATE_REANALYSE).click().run()
    assert not at.exception, at.exception
    assert any("Re-analysed 1 recording with POS" in s.value for s in at.success)
    analysed = AnalysisSummary.from_json(repo.get(late.id).analysis)
    assert analysed.ground_truth_hr_bpm is not None and abs(analysed.ground_truth_hr_bpm - 72.0) < 3.0
    assert not any("no comparison" in w.value for w in at.warning)
    # The re-analysis kept every method's estimate: POS over all three recordings, CHROM and GREEN over it alone
    # (the figures are still broken down by subject).
    assert figures_of(at).groupby("Method")["Recordings"].sum().to_dict() == {"POS": 3, "CHROM": 1, "GREEN": 1}


def test_three_methods_side_by_side() -> None:
    at, user_id = evaluate_page()
    repo = SqliteRepository(demo.start_demo([]).db_path, user_id)
    add(repo, "a.avi", hr=70.0, truth=72.0, every=True)
    add(repo, "b.avi", hr=80.0, truth=78.0, every=True)
    add(repo, "old.avi", hr=60.0, truth=61.0)  # saved before every method was kept: POS alone
    at.run()
    assert not at.exception, at.exception
    figures = figures_of(at)
    assert list(figures["Method"]) == ["POS", "CHROM", "GREEN"]
    assert list(figures["Recordings"]) == [3, 2, 2]
    assert list(figures["MAE (bpm)"]) == ["1.7 ± 0.3", "4.0 ± 1.4", "2.0 ± 0.7"]
    assert list(figures["Mean SNR (dB)"]) == ["5.0", "9.0", "4.0"]  # old.avi saved no pulse: no SNR of its own
    table = next(d.value for d in at.dataframe if "Truth (bpm)" in d.value.columns)
    assert list(table["Recording"]) == ["a.avi", "b.avi", "old.avi"]
    assert list(table["CHROM (bpm)"])[:2] == [74.0, 84.0] and list(table["GREEN error (bpm)"])[:2] == [-3.0, 1.0]
    assert table["CHROM (bpm)"].isna().tolist()[2]  # the old analysis holds POS only
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2
    for chart in charts:  # Bland–Altman and the scatter colour their points by method, all three
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
        assert {m for f in frames if "Method" in f.columns for m in f["Method"]} == {"POS", "CHROM", "GREEN"}
