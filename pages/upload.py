"""Upload: drop recordings, see each checked, previewed and pulse-analysed, then store them."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import state_keys, upload_jobs
from components.check_progress import CheckBars, follow
from components.context import user_context
from components.direct_upload import DIRECT_TAB, default_tab, render_direct_upload, too_large_hint, uploader_limit_mb
from components.feedback import show_notice
from components.ground_truth import FOLDER_HELP, GROUND_TRUTH_TYPES, split_folder
from components.upload_card import render_card
from components.upload_summary import render_summary, render_toolbar
from components.upload_target import render_target
from lib.media import ALLOWED_EXTENSIONS
from lib.units import human_bytes
from lib.uploads import JobStatus

# Hides the sizes Streamlit's uploaders write in decimal units (the page states them in the app's own).
# A comment, not a docstring: Streamlit's "magic" would draw a bare string on the page.
UPLOADER_CSS = Path(__file__).resolve().parents[1] / "assets" / "uploader.css"


def render() -> None:
    ctx = user_context()
    settings = ctx.services.settings
    st.title("Upload")
    show_notice()
    st.caption(
        f"Drop recordings ({', '.join(ALLOWED_EXTENSIONS)}), up to {human_bytes(settings.max_upload_bytes)} "
        "each. Every file is checked, previewed and given a quick-look pulse estimate before it is stored."
    )
    st.html(UPLOADER_CSS)
    study_id = render_target(ctx.repo)
    # Streamlit refuses bigger files in the browser, before the server holds any of them in memory.
    limit_mb, hint = uploader_limit_mb(settings), too_large_hint(settings)
    files_tab, folder_tab, direct_tab = st.tabs(["Files", "A whole folder", DIRECT_TAB],
                                                default=default_tab(settings), key=state_keys.UPLOAD_TAB)
    with files_tab:
        files = st.file_uploader("Recordings", accept_multiple_files=True, key=state_keys.UPLOAD_FILES,
                                 max_upload_size=limit_mb, help=hint)
        if hint:
            st.caption(hint)
    with folder_tab:
        # A dataset's folder holds its ground truth too: videos become jobs, the ground truth beside them is
        # paired with them by the dataset's layout; anything else in the folder is not even sent.
        folder = st.file_uploader("A folder of recordings", accept_multiple_files="directory",
                                  type=[*ALLOWED_EXTENSIONS, *GROUND_TRUTH_TYPES], key=state_keys.UPLOAD_FOLDER,
                                  max_upload_size=limit_mb, help=f"{hint or ''} {FOLDER_HELP}".strip())
        if hint:
            st.caption(hint)
        folder_videos = split_folder(folder or [])
    with direct_tab:
        render_direct_upload(ctx, study_id)
    jobs = upload_jobs.sync([*(files or []), *folder_videos], study_id)
    if not jobs:
        st.info("Nothing added yet. Drag recordings onto the box above, pick a whole folder, or send large "
                f"ones through the {DIRECT_TAB} tab.", icon=":material/upload_file:")
        return
    toolbar = st.container()  # filled after the cards, once their checks have run
    batch = upload_jobs.queued()
    checking: list[CheckBars] = []
    jobs = [render_card(job, ctx, checking) for job in jobs if not job.dismissed]
    with toolbar:
        render_toolbar(jobs, settings)
    if len(batch) > 1 and not upload_jobs.queued():
        ready = sum(1 for j in jobs if j.id in batch and j.status is JobStatus.READY)
        st.toast(f"Uploads finished: {ready} of {len(batch)} stored and ready.", icon=":material/done_all:")
    render_summary(list(upload_jobs.jobs().values()))
    follow(ctx.services.checks, checking)  # last: it waits here (asleep) until a check ends, then reruns


if __name__ == "__main__":  # run by st.navigation
    render()
