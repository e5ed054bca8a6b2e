"""AppTest of the Upload page: a dropped file gets a card (thumbnail, preview, properties,
badges, quick-look pulse), uploads to ready; bad files and duplicates are explained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.demo import DEMO_EMAIL, DEMO_PASSWORD, start_demo
from lib.records import Status
from lib.repository import SqliteRepository, SqliteServerRecords
from tests.support import videos
from tests.support.apptest import select_rows, store_anyway
from tests.support.audit import trail_of

TIMEOUT_S = 120


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


def _clip(folder: Path, frames: int) -> bytes:
    """A tiny MJPG AVI; the frame count makes its bytes unique, so tests never see each other's files.

    Its odd size keeps it apart from other modules' clips too: AppTests share one demo account per process.
    """
    path = videos.write_opencv(folder / f"clip{frames}.avi", "MJPG", frames=frames, size=(66, 50))
    assert path is not None
    return path.read_bytes()


def _signed_in_upload_page() -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, at.exception
    email = next(t for t in at.text_input if t.label == "E-mail")
    password = next(t for t in at.text_input if t.label == "Password")
    email.input(DEMO_EMAIL)
    password.input(DEMO_PASSWORD)
    _click(at, "Sign in")
    at.switch_page("pages/upload.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Upload"
    return at


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def _drop(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="pv_user_upload_files").set_value([(n, b, "video/x-msvideo") for n, b in files])
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def _demo_rows() -> list:
    demo = start_demo([])  # already running in this process: returns the same backends
    return list(SqliteRepository(demo.db_path, demo.user_id).iter_all())


@pytest.fixture
def consent_required(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from components.context import get_services

    monkeypatch.setenv("PULSEVAULT_REQUIRE_CONSENT", "true")
    get_services.clear()  # settings are read once per process; rebuild them with the new switch
    yield
    monkeypatch.delenv("PULSEVAULT_REQUIRE_CONSENT")
    get_services.clear()


def test_upload_page_starts_with_folder_and_file_droppers() -> None:
    at = _signed_in_upload_page()
    uploaders = {u.key: u for u in at.file_uploader}
    assert uploaders["pv_user_upload_files"].accept_multiple_files
    assert uploaders["pv_user_upload_folder"].accept_directory
    assert any("Nothing added yet" in i for i in _texts(at.info))


def test_dropped_avi_is_checked_previewed_and_uploaded_to_ready(clip_dir: Path) -> None:
    at = _drop(_signed_in_upload_page(), ("lab rec 1.avi", _clip(clip_dir, 30)))

    markdown = " ".join(_texts(at.markdown))
    assert "**lab rec 1.avi**" in markdown
    assert "Lossy" in markdown and "H.264 preview proxy" in markdown
    assert any("weakens" in w for w in _texts(at.warning))  # lossy compression and the pulse
    assert at.get("video"), "the playable preview"
    assert at.get("image"), "the thumbnail"
    table = at.dataframe[0].value
    assert dict(zip(table["Property"], table["Value"], strict=True))["Codec"] == "mjpeg"
    assert "Quick-look pulse" in [e.label for e in at.expander]
    # A generated clip has no face: the quick look finds no pulse, so it is stored only when asked to.
    assert any("cannot read a heart rate" in w for w in _texts(at.warning))
    assert [b.label for b in at.button if b.label.startswith("Upload all")] == ["Upload all (0)"]
    assert next(b for b in at.button if b.label == "Upload").disabled
    assert any("Store it anyway" in c for c in _texts(at.caption))
    store_anyway(at)
    assert [b.label for b in at.button if b.label.startswith("Upload all")] == ["Upload all (1)"]

    at.text_input(key=next(k for k in _keys(at) if k.startswith("pv_user_upload_subject_"))).input("S07")
    _click(at, "Upload")
    assert any("Stored and ready" in s for s in _texts(at.success))
    assert any("stored and ready" in t.value for t in at.get("toast"))
    assert "Summary" in _texts(at.subheader)
    [row] = [r for r in _demo_rows() if r.original_name == "lab rec 1.avi"]
    assert row.status is Status.READY and row.research.subject_id == "S07"
    assert row.preview_key is not None and row.analysis is not None

    at.run()  # a later rerun shows the stored card, not the local files (they are gone)
    assert not at.exception, at.exception
    assert any("Stored and ready" in s for s in _texts(at.success))


def _keys(at: AppTest) -> list[str]:
    return [t.key for t in at.text_input if t.key]


def test_text_renamed_mp4_is_refused_and_nothing_stored(clip_dir: Path) -> None:
    before = len(_demo_rows())
    at = _drop(_signed_in_upload_page(), ("notes.mp4", b"subject 07, heart rate 72 bpm\n" * 40))
    assert any("plain text" in e for e in _texts(at.error))
    labels = [b.label for b in at.button]
    assert "Upload" not in labels and "Discard" in labels
    assert len(_demo_rows()) == before
    _click(at, "Discard")
    assert "Discarded" in at.dataframe[-1].value["Status"].tolist()


def test_same_file_twice_offers_skip_or_upload_anyway(clip_dir: Path) -> None:
    data = _clip(clip_dir, 31)
    at = store_anyway(_drop(_signed_in_upload_page(), ("first.avi", data), ("second.avi", data)))
    _click(at, "Upload all (2)")
    [prompt] = [w for w in _texts(at.warning) if "already stored as first.avi" in w]
    assert prompt.count("upload it anyway") == 1 and "Skip it" not in prompt  # one question, asked once
    assert {"Skip", "Upload anyway"} <= {b.label for b in at.button}
    assert len([r for r in _demo_rows() if r.original_name in ("first.avi", "second.avi")]) == 1
    _click(at, "Skip")
    statuses = at.dataframe[-1].value.set_index("File")["Status"].to_dict()
    assert statuses == {"first.avi": "Ready", "second.avi": "Skipped (already stored)"}


def test_consent_is_required_when_the_settings_say_so(clip_dir: Path, consent_required: None) -> None:
    at = store_anyway(_drop(_signed_in_upload_page(), ("consent.avi", _clip(clip_dir, 32))))
    upload = next(b for b in at.button if b.label == "Upload")
    assert upload.disabled
    assert any("consent" in c for c in _texts(at.caption))
    next(c for c in at.checkbox if (c.key or "").startswith("pv_user_upload_consent_")).check()  # the card's
    at.run()
    _click(at, "Upload")
    assert any("Stored and ready" in s for s in _texts(at.success))


def test_folder_upload_keeps_file_names_without_their_folders(clip_dir: Path) -> None:
    at = _signed_in_upload_page()
    at.file_uploader(key="pv_user_upload_folder").set_value(
        [("session 3/cam/front.avi", _clip(clip_dir, 33), "video/x-msvideo")]
    )
    at.run()
    assert not at.exception, at.exception
    assert "**front.avi**" in " ".join(_texts(at.markdown))
    assert not any("Stored as" in c for c in _texts(at.caption))  # a folder is not a renamed file
    _click(store_anyway(at), "Upload")
    [row] = [r for r in _demo_rows() if r.original_name == "front.avi"]
    assert row.status is Status.READY


def test_large_files_tab_is_there_and_the_uploaders_stop_at_its_threshold() -> None:
    from components.context import get_services
    from components.direct_upload import DIRECT_TAB
    from lib.settings import MIB
    from lib.units import human_bytes

    at = _signed_in_upload_page()
    settings = get_services().settings
    assert [t.label for t in at.tabs][:3] == ["Files", "A whole folder", DIRECT_TAB]
    limit = settings.direct_upload_threshold_bytes
    assert limit < settings.max_upload_bytes  # otherwise there would be nothing to send through the tab
    for key in ("pv_user_upload_files", "pv_user_upload_folder"):
        assert at.file_uploader(key=key).proto.max_upload_size_mb == limit // MIB
    hint = f"Files over {human_bytes(limit)} go through the {DIRECT_TAB} tab, straight from your browser to storage."
    assert hint in _texts(at.caption)


def _stored_card(clip_dir: Path, name: str, frames: int) -> tuple[AppTest, str]:
    """A signed-in Upload page with one file stored through its card; returns the page and the record id."""
    at = store_anyway(_drop(_signed_in_upload_page(), (name, _clip(clip_dir, frames))))
    _click(at, "Upload")
    assert any("Stored and ready" in s for s in _texts(at.success))
    [row] = [r for r in _demo_rows() if r.original_name == name]
    return at, row.id


def test_a_recording_deleted_in_my_files_is_not_called_stored_on_the_upload_page(clip_dir: Path) -> None:
    at, record_id = _stored_card(clip_dir, "deleted later.avi", 34)
    at.switch_page("pages/files.py").run()
    at.text_input(key="pv_user_files_search").input("deleted later").run()
    select_rows(at, 0)
    next(b for b in at.button if b.key == f"pv_user_files_delete_{record_id}").click()
    at.run()
    next(b for b in at.button if b.key == "pv_user_files_dialog_confirm").click()
    at.run()
    assert not [r for r in _demo_rows() if r.id == record_id]

    at.switch_page("pages/upload.py").run()
    assert not at.exception, at.exception
    assert not any("Stored and ready" in s for s in _texts(at.success))
    assert any("has been deleted since" in i for i in _texts(at.info))
    assert at.dataframe[-1].value.set_index("File")["Status"].to_dict()["deleted later.avi"] == "Deleted"


def test_a_recording_deleted_elsewhere_is_noticed_by_its_card(clip_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lib.library import delete_records
    from lib.storage import ObjectStore
    from lib.uploads import steps

    at, record_id = _stored_card(clip_dir, "deleted elsewhere.avi", 35)
    demo = start_demo([])
    repo = SqliteRepository(demo.db_path, demo.user_id)
    report = delete_records(ObjectStore(demo.s3), repo, SqliteServerRecords(demo.db_path, demo.user_id), [record_id],
                            trail=trail_of(repo))
    assert report.ok  # say, from another browser tab
    monkeypatch.setattr(steps, "RECHECK_STORED_S", 0.0)  # not 30 s later: now
    at.run()
    assert not at.exception, at.exception
    assert not any("Stored and ready" in s for s in _texts(at.success))
    assert any("has been deleted since" in i for i in _texts(at.info))


def test_the_check_runs_on_a_check_worker_not_in_the_web_process(clip_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking in this (the web) process is made impossible; the card still gets its check, from a worker."""
    from components.context import get_services
    from lib.checks import run as check_run
    from lib.pipeline import check as pipeline_check

    def in_the_web_process(*_args, **_kwargs):
        raise AssertionError("a recording was checked in the web process")

    monkeypatch.setattr(pipeline_check, "check_recording", in_the_web_process)
    monkeypatch.setattr(check_run, "check_recording", in_the_web_process)
    at = _drop(_signed_in_upload_page(), ("worker rec.avi", _clip(clip_dir, 32)))
    assert "**worker rec.avi**" in " ".join(_texts(at.markdown))
    assert at.get("video") and at.get("image")  # the worker's preview and thumbnail, shown by the web process
    assert "Quick-look pulse" in [e.label for e in at.expander]
    waiting, running, workers = get_services().checks.counts()
    assert (waiting, running) == (0, 0) and workers >= 1  # the worker that ran it idles until it exits
