"""Ground truth of one stored recording: in My files what is attached (its original name and size), attach
or replace a file (checked before anything is stored, lib.ground_truth_files), remove it; on the Upload
card, once the recording is stored, the file its folder paired with it (lib.folder_pairing) is attached
by itself, or an optional uploader attaches one."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from components import state_keys, upload_jobs
from components.context import UserContext
from components.feedback import user_errors
from components.text import literal
from components.upload_jobs import UploadedFileLike
from lib.folder_pairing import is_ground_truth, is_video, pair_folder
from lib.ground_truth_files import TruthUpload, attach_ground_truth, remove_ground_truth
from lib.keys import GROUND_TRUTH_SUFFIXES
from lib.records import FileRecord
from lib.units import human_bytes

GROUND_TRUTH_TYPES = sorted({suffix.rsplit(".", 1)[-1] for suffix in GROUND_TRUTH_SUFFIXES})
"""What the file picker offers: the last extension of every readable ground-truth ending."""
FORMATS_HELP = (
    "UBFC-rPPG (ground_truth.txt or gtdump.xmp), PURE (.json), iBVP (_bvp.csv), COHFACE (.h5/.hdf5), "
    "a CSV with a time column or a stated rate, a mean heart rate (one number, or rows of recording name and "
    "HR), or BIDS physiology: choose the _physio.tsv.gz together with its _physio.json sidecar."
)
FOLDER_HELP = (
    "Ground truth in the folder is paired with its video by the dataset's layout: UBFC-rPPG (vid.avi with "
    "ground_truth.txt or gtdump.xmp), BIDS (_physio.tsv.gz with its sidecar), iBVP (_bvp.csv), or a file with "
    "the video's name (PURE's .json, a CSV), or the one file beside the only video in its folder."
)


def render_ground_truth(record: FileRecord, ctx: UserContext) -> None:
    """The Ground truth section of the detail panel."""
    with st.expander("Ground truth", icon=":material/ecg_heart:", expanded=record.ground_truth_key is None):
        _show_notice(record.id)
        if record.ground_truth_key:
            name_col, remove_col = st.columns([4, 1], vertical_alignment="center")
            name_col.markdown(f"**{record.ground_truth_name or 'ground truth'}** · "
                              f"{human_bytes(record.ground_truth_bytes)}")
            if remove_col.button("Remove", key=state_keys.ground_truth("remove", record.id), icon=":material/delete:"):
                _remove(record, ctx)
        else:
            st.caption("No ground truth attached. Attach the reference signal or heart rate recorded with this "
                       "video, and the quick look compares its estimate with it.")
        _picker(record, ctx, "files", "Replace" if record.ground_truth_key else "Attach")


def split_folder(files: Sequence[UploadedFileLike]) -> list[UploadedFileLike]:
    """A picked folder's videos, each to be a job; its ground-truth files are paired with them for their
    cards (``upload_jobs.paired_truth``), and the page says what was paired and what was left alone."""
    videos = [f for f in files if is_video(f.name)]
    truths = {f.name: f for f in files if is_ground_truth(f.name) and not is_video(f.name)}
    by_name = {f.name: f for f in videos}
    pairing = pair_folder([*by_name, *truths])
    upload_jobs.set_paired_truth({by_name[p.video].file_id: [truths[t] for t in p.truth] for p in pairing.pairs})
    if truths:
        with st.expander("Ground truth found in the folder", icon=":material/ecg_heart:"):
            st.caption(f"{pairing.summary()} Paired files are attached once their recording is stored; attach "
                       "the others in My files.")
            for pair in pairing.pairs:
                st.markdown(f"- {literal(pair.describe())}")
    return videos


def render_card_ground_truth(record: FileRecord, ctx: UserContext, *,
                             paired: Sequence[UploadedFileLike] = ()) -> None:
    """On an Upload card once stored: the ground truth its folder paired with it is attached (once); or the
    researcher attaches one now (optional). My files manages it later."""
    if paired and not st.session_state.get(state_keys.ground_truth_auto(record.id)):
        st.session_state[state_keys.ground_truth_auto(record.id)] = True
        _attach(record, [TruthUpload(_file_name(f.name), f.getvalue()) for f in paired], ctx)
    name = st.session_state.get(state_keys.ground_truth_attached(record.id))
    _show_notice(record.id)
    if name:
        st.caption(f"Ground truth attached: {name}. Replace or remove it in My files.")
        return
    with st.expander("Ground truth (optional)", icon=":material/ecg_heart:"):
        _picker(record, ctx, "upload", "Attach")


def _picker(record: FileRecord, ctx: UserContext, place: str, label: str) -> None:
    with st.form(state_keys.ground_truth("form", record.id, place), border=False, clear_on_submit=True):
        files = st.file_uploader("Ground-truth file", type=GROUND_TRUTH_TYPES, accept_multiple_files=True,
                                 key=state_keys.ground_truth("file", record.id, place), help=FORMATS_HELP)
        if st.form_submit_button(label, icon=":material/upload_file:"):
            _attach(record, [TruthUpload(f.name, f.getvalue()) for f in files or []], ctx)


def _file_name(path: str) -> str:
    """A folder upload names files by their path in it; the stored ground truth keeps the file's own name."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _show_notice(record_id: str) -> None:
    kind, message = st.session_state.pop(state_keys.ground_truth_notice(record_id), (None, None))
    if message:
        (st.warning if kind == "warning" else st.success)(message)


def _attach(record: FileRecord, files: list[TruthUpload], ctx: UserContext) -> None:
    with st.spinner("Checking and storing the ground truth…"), user_errors("Attaching the ground truth"):
        attached = attach_ground_truth(ctx.services.store, ctx.repo, ctx.server, ctx.services.settings, record.id,
                                       files)
        st.session_state[state_keys.ground_truth_attached(record.id)] = attached.record.ground_truth_name
        warned = attached.sync is not None and attached.sync.warning is not None
        st.session_state[state_keys.ground_truth_notice(record.id)] = (
            "warning" if warned else "success",
            f"Ground truth attached to {record.original_name}. {attached.describe()} Re-analyse (My files or "
            "Evaluate) to compare the quick look with it.")
        st.rerun()


def _remove(record: FileRecord, ctx: UserContext) -> None:
    with user_errors("Removing the ground truth"):
        remove_ground_truth(ctx.services.store, ctx.repo, ctx.server, record.id)
        st.session_state.pop(state_keys.ground_truth_attached(record.id), None)
        st.session_state[state_keys.ground_truth_notice(record.id)] = (
            "success", f"Ground truth removed from {record.original_name}.")
        st.rerun()
