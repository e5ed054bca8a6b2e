"""My files: find, play, download, share and delete recordings through presigned links."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from components import consent_view, export_dialog, files_actions, files_table
from components.audit_view import render_personal_audit
from components.context import UserContext, user_context
from components.feedback import show_notice, user_errors
from components.files_detail import render_detail
from components.files_space import render_space_picker
from lib.records import FileRecord, ListQuery, Status
from lib.studies import RecordRights, Study, record_rights


def render() -> None:
    ctx = user_context()
    st.title("My files")
    show_notice()
    study = render_space_picker(ctx.repo)
    study_id = study.id if study else None
    _attention(ctx, study_id)
    filters = files_table.render_filters()
    page = None
    with user_errors("Loading your recordings"):
        page = ctx.repo.list(replace(filters.query(files_table.current_page(filters)), study_id=study_id))
        if page.records == () and page.page > page.page_count:  # the last page emptied (deletions)
            page = ctx.repo.list(replace(filters.query(page.page_count), study_id=study_id))
    if page is None:
        return
    files_table.remember_tags(page.records)
    if not page.records:
        st.info("No recordings match these filters." if _filtered(filters) else
                "No recordings yet. Upload some on the Upload page.", icon=":material/video_library:")
        _below_the_list(ctx, study)
        return
    selected = files_table.render_table(page, store=ctx.services.store, repo=ctx.repo)
    files_table.render_pager(page)
    files_actions.render_toolbar(selected, replace(filters.query(1), study_id=study_id), ctx,
                                 deletable=all(_rights(r, study, ctx.user_id).delete for r in selected))
    if len(selected) == 1:
        with user_errors("Opening the recording"):
            record = ctx.repo.get(selected[0].id)  # fresh: the row may have changed since listing
            render_detail(record, ctx, _rights(record, study, ctx.user_id))
    _below_the_list(ctx, study)
    export_dialog.render_export_dialog()


def _below_the_list(ctx: UserContext, study: Study | None) -> None:
    """The personal space's erased recordings and audit trail, and the confirmation dialogs still waiting for an
    answer."""
    if study is None:
        consent_view.render_personal_erasures(ctx)
        render_personal_audit(ctx.audit.log, ctx.repo)
    files_actions.render_delete_dialog()
    consent_view.render_withdraw_dialog()


def _rights(record: FileRecord, study: Study | None, user_id: str) -> RecordRights:
    return record_rights(record.study_id, study.role if study else None, uploader_id=record.user_id,
                         caller_id=user_id)


def _attention(ctx: UserContext, study_id: str | None) -> None:
    """Failed and pending uploads are easy to miss in a long list: say how many there are."""
    with user_errors("Counting unfinished uploads"):
        unfinished = ctx.repo.list(ListQuery(statuses=(Status.FAILED, Status.PENDING), page_size=1,
                                             study_id=study_id)).total
        if unfinished:
            st.warning(f"{unfinished} upload{'s' if unfinished != 1 else ''} failed or did not finish. Filter by "
                       "status *failed*/*pending* and select one to see why, retry or discard it.",
                       icon=":material/warning:")


def _filtered(filters: files_table.Filters) -> bool:
    return bool(filters.text or filters.statuses or filters.tags or filters.date_from or filters.lossless
                is not None)


if __name__ == "__main__":  # run by st.navigation
    render()
