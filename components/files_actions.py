"""My files: actions on one or many recordings — delete (after a dialog), dataset export, CSV export,
retry or discard a failed upload, re-analyse.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from components import export_dialog, files_table, jobs_view, state_keys, upload_card, upload_jobs
from components.check_progress import run_and_wait
from components.context import UserContext, user_context
from components.feedback import NoticeKind, notify, user_errors
from components.text import literal
from lib import uploads
from lib.library import REANALYSIS_KEY, delete_records, export_csv, reanalysis_task, save_reanalysis
from lib.records import FileRecord, ListQuery, Status
from lib.uploads import JobStatus, UploadJob

DIALOG_NAMES_SHOWN = 10


# --- delete ----------------------------------------------------------------------------------------


def ask_delete(records: Sequence[FileRecord]) -> None:
    """Button callback: open the confirmation dialog for these records."""
    st.session_state[state_keys.FILES_CONFIRM_DELETE] = tuple((r.id, r.original_name) for r in records)


def _forget_delete() -> None:
    st.session_state.pop(state_keys.FILES_CONFIRM_DELETE, None)


def render_delete_dialog() -> None:
    """Keep the confirmation dialog open while a deletion is waiting for an answer."""
    pending = st.session_state.get(state_keys.FILES_CONFIRM_DELETE)
    if pending:
        _confirm_delete(tuple(pending))


@st.dialog("Delete recordings", icon=":material/delete_forever:", on_dismiss=_forget_delete)
def _confirm_delete(pending: tuple[tuple[str, str], ...]) -> None:
    count = len(pending)
    noun = "recording" if count == 1 else f"{count} recordings"
    st.markdown(f"Delete {'this' if count == 1 else 'these'} {noun}? The original, thumbnail, preview and "
                "ground truth are removed from storage, and the metadata with them. **This cannot be undone.**")
    names = [name for _id, name in pending]
    shown = "\n".join(f"- {literal(name)}" for name in names[:DIALOG_NAMES_SHOWN])
    more = f"\n- … and {count - DIALOG_NAMES_SHOWN} more" if count > DIALOG_NAMES_SHOWN else ""
    st.markdown(shown + more)
    confirm, cancel = st.columns(2)
    if cancel.button("Cancel", key=state_keys.FILES_DIALOG_CANCEL, width="stretch"):
        _forget_delete()
        st.rerun()
    if confirm.button("Delete", key=state_keys.FILES_DIALOG_CONFIRM, type="primary", icon=":material/delete:",
                      width="stretch"):
        _delete([record_id for record_id, _name in pending])


def _delete(ids: list[str]) -> None:
    ctx = user_context()
    bar = st.progress(0.0, text="Deleting…")
    with user_errors("Deleting"):
        report = delete_records(ctx.services.store, ctx.repo, ctx.server, ids, trail=ctx.audit,
                                progress=lambda done, total: bar.progress(done / total, text=f"Deleted {done} "
                                                                          f"of {total}"))
        upload_jobs.records_deleted(report.deleted)  # the Upload page must not call them stored any more
        notify(literal(report.summary()), NoticeKind.SUCCESS if report.ok else NoticeKind.WARNING)
        _forget_delete()
        files_table.clear_selection()
        st.rerun()


# --- bulk toolbar ------------------------------------------------------------------------------------


def render_toolbar(selected: Sequence[FileRecord], query: ListQuery, ctx: UserContext, *,
                   deletable: bool = True) -> None:
    """Delete the selected rows (when the caller may delete every one of them: ``deletable``); export the
    selection or the filtered list as a dataset; the list as CSV; start a batch job over the selection or the
    filter."""
    count, delete, dataset, export, batch = st.columns([3, 2, 2, 2, 2], vertical_alignment="center")
    count.caption(f"{len(selected)} selected" if selected else "Select rows to open or delete them.")
    delete.button(f"Delete selected ({len(selected)})" if selected else "Delete selected",
                  key=state_keys.FILES_DELETE_SELECTED, icon=":material/delete:",
                  disabled=not selected or not deletable, on_click=ask_delete, args=(tuple(selected),), width="stretch",
                  help=None if deletable else "Members delete what they uploaded, owners any recording; viewers none.")
    dataset.button("Export dataset", key=state_keys.FILES_DATASET, icon=":material/dataset:",
                   on_click=export_dialog.ask_export, args=(tuple(selected), query), width="stretch",
                   help="The selected recordings (or all that match the filter) as a dataset: UBFC-rPPG, BIDS-style "
                        "or plain, with ground truth and checksums.")
    repo, trail = ctx.repo, ctx.audit
    # Deferred: the CSV of all matching rows is built (and its audit entry written) only when the button is clicked.
    export.download_button("Export CSV", data=lambda: export_csv(repo, query, trail=trail),
                           file_name="pulsevault-recordings.csv", mime="text/csv", key=state_keys.FILES_EXPORT,
                           icon=":material/download:",
                           on_click="ignore", width="stretch")
    with batch:
        jobs_view.render_start(selected, query, ctx)


# --- failed and pending uploads ------------------------------------------------------------------------


def retry(job: UploadJob, record: FileRecord, ctx: UserContext) -> None:
    """Store the kept local copy again; the job's new attempt replaces the failed row."""
    bar = st.progress(0.0, text="Starting the upload…")
    job = upload_jobs.put(uploads.retry_failed(job, record, upload_card.backends(ctx), upload_jobs.workspace(),
                                               progress=lambda p: bar.progress(p.fraction, text=p.describe())))
    if job.status is JobStatus.READY:
        notify(f"{literal(job.display_name)} is stored and ready.")
    else:
        notify(f"The upload of {literal(record.original_name)} failed again. {literal(job.message)}",
               NoticeKind.ERROR)
    files_table.clear_selection()  # the failed row is gone; the new one is listed first
    st.rerun()


def render_unfinished(record: FileRecord, ctx: UserContext, *, can_discard: bool) -> None:
    """Why an upload failed (or is still pending), with Retry and Discard where they make sense."""
    if record.status is Status.FAILED:
        st.error(f"This upload failed: {literal(record.error or 'no reason was recorded.')}", icon=":material/error:")
    else:
        st.info("This upload has not finished. If it is not running any more, discard it and upload the file "
                "again.", icon=":material/hourglass_top:")
    job = upload_jobs.job_to_retry(record.id)
    retry_col, discard_col, hint = st.columns([1, 1, 3], vertical_alignment="center")
    if job is not None and retry_col.button("Retry", key=state_keys.files_record("retry", record.id),
                                            icon=":material/refresh:", type="primary"):
        retry(job, record, ctx)
    discard_col.button("Discard", key=state_keys.files_record("discard", record.id), icon=":material/delete:",
                       on_click=ask_delete, args=((record,),), disabled=not can_discard)
    if job is None:
        hint.caption("The local copy is not in this session any more: upload the file again from the Upload page.")
    elif not can_discard:
        hint.caption("Still uploading; it can be discarded once it has been pending for a while.")


# --- re-analyse ---------------------------------------------------------------------------------------


def reanalyse_on_workers(record_id: str, method: str, ctx: UserContext) -> FileRecord:
    """Run the quick look again on the check workers, following its bars here; save what it found."""
    services = ctx.services
    task = reanalysis_task(services.store, ctx.repo, ctx.server, record_id, method=method,
                           band=services.settings.hr_band_hz)
    outcome = run_and_wait(services.checks, REANALYSIS_KEY.format(record_id=record_id), ctx.repo.user_id, task)
    return save_reanalysis(ctx.repo, ctx.server, record_id, task, outcome, trail=ctx.audit)


def run_reanalysis(record: FileRecord, method: str, ctx: UserContext) -> None:
    """My files' Re-analyse: :func:`reanalyse_on_workers`, then say so."""
    with user_errors("Re-analysing"):
        reanalyse_on_workers(record.id, method, ctx)
        notify(f"{literal(record.original_name)} was re-analysed ({method}).")
        st.rerun()
