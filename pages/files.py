"""My files: find, play, download, share and delete recordings through presigned links."""

from __future__ import annotations

import streamlit as st

from components import export_dialog, files_actions, files_table
from components.context import UserContext, user_context
from components.feedback import show_notice, user_errors
from components.files_detail import render_detail
from lib.records import ListQuery, Status


def render() -> None:
    ctx = user_context()
    st.title("My files")
    show_notice()
    _attention(ctx)
    filters = files_table.render_filters()
    page = None
    with user_errors("Loading your recordings"):
        page = ctx.repo.list(filters.query(files_table.current_page(filters)))
        if page.records == () and page.page > page.page_count:  # the last page emptied (deletions)
            page = ctx.repo.list(filters.query(page.page_count))
    if page is None:
        return
    files_table.remember_tags(page.records)
    if not page.records:
        st.info("No recordings match these filters." if _filtered(filters) else
                "No recordings yet. Upload some on the Upload page.", icon=":material/video_library:")
        files_actions.render_delete_dialog()
        return
    selected = files_table.render_table(page, store=ctx.services.store, repo=ctx.repo)
    files_table.render_pager(page)
    files_actions.render_toolbar(selected, filters.query(1), ctx)
    if len(selected) == 1:
        with user_errors("Opening the recording"):
            render_detail(ctx.repo.get(selected[0].id), ctx)  # fresh: the row may have changed since listing
    files_actions.render_delete_dialog()
    export_dialog.render_export_dialog()


def _attention(ctx: UserContext) -> None:
    """Failed and pending uploads are easy to miss in a long list: say how many there are."""
    with user_errors("Counting unfinished uploads"):
        unfinished = ctx.repo.list(ListQuery(statuses=(Status.FAILED, Status.PENDING), page_size=1)).total
        if unfinished:
            st.warning(f"{unfinished} upload{'s' if unfinished != 1 else ''} failed or did not finish. Filter by "
                       "status *failed*/*pending* and select one to see why, retry or discard it.",
                       icon=":material/warning:")


def _filtered(filters: files_table.Filters) -> bool:
    return bool(filters.text or filters.statuses or filters.tags or filters.date_from or filters.lossless
                is not None)


if __name__ == "__main__":  # run by st.navigation
    render()
