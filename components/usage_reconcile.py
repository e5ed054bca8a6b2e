"""The bucket check: discrepancies between the bucket and the metadata, and confirmed repairs.

Used for the caller's own prefix and, by the admin section, for the whole
bucket. Nothing is changed until the user confirms in a dialog.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext
from components.feedback import NoticeKind, notify, user_errors
from components.tables import show_table
from components.text import literal
from lib.units import human_bytes
from lib.usage import (
    KIND_LABELS,
    Discrepancy,
    Kind,
    RepairResult,
    reconcile,
    repair,
    row_access,
)

Recheck = Callable[[], None]
"""Runs the check again after a repair and stores the result where the section reads it."""

_ACTIONS = {
    Kind.ORPHAN: ("Delete {n} orphaned file(s)…", ":material/delete:"),
    Kind.MISSING: ("Mark {n} missing recording(s) failed…", ":material/report:"),
    Kind.STALE_PENDING: ("Clean {n} stale upload(s)…", ":material/cleaning_services:"),
}
_CONSEQUENCES = {
    Kind.ORPHAN: "These files are permanently deleted from the bucket. No recording refers to them, "
                 "so nothing on My files changes. This cannot be undone.",
    Kind.MISSING: "These recordings are marked failed, so nobody tries to play or analyse them. "
                  "Delete them on My files, or upload the recording again.",
    Kind.STALE_PENDING: "Any partial files of these uploads are deleted from the bucket and the recordings "
                        "are marked failed. Only do this if no upload is still running in another tab.",
}


def render_own_check(ctx: UserContext) -> None:
    """The caller's prefix against the caller's rows."""
    st.subheader("Bucket check")
    st.caption("Compares the files in your storage area with your recordings: files no recording refers "
               "to (orphans), recordings whose file is missing or has the wrong size, and uploads stuck "
               f"pending for over {ctx.services.settings.stale_pending_s // 60} minutes.")

    def check() -> None:
        st.session_state[state_keys.USAGE_CHECK] = reconcile(ctx.services.store, ctx.repo, ctx.user_id,
                                                    ctx.services.settings)

    if st.button("Check bucket against metadata", key=state_keys.USAGE_CHECK_BUTTON,
                 icon=":material/fact_check:"):
        with user_errors("Checking the bucket"), st.spinner("Listing your files and records…"):
            check()
    found = st.session_state.get(state_keys.USAGE_CHECK)
    if found is not None:
        summary = (f"Checked {found.objects_checked} file(s) against {found.rows_checked} record(s) "
                   f"at {found.checked_at:%H:%M:%S} UTC.")
        render_findings(ctx, list(found.discrepancies), summary, recheck=check, key="own")


def render_findings(ctx: UserContext, found: list[Discrepancy], summary: str, *, recheck: Recheck,
                    key: str, show_user: bool = False) -> None:
    """The discrepancy table and one repair button per kind present."""
    if not found:
        st.success(f"The bucket and the metadata agree. {summary}", icon=":material/verified:")
        return
    st.warning(f"{len(found)} discrepancy(ies) found. {summary}", icon=":material/warning:")
    show_table(_table(found, show_user))
    kinds = [k for k in Kind if any(d.kind is k for d in found)]
    for column, kind in zip(st.columns(len(_ACTIONS)), kinds, strict=False):
        label, icon = _ACTIONS[kind]
        count = sum(1 for d in found if d.kind is kind)
        if column.button(label.format(n=count), key=state_keys.usage_repair(key, kind.value), icon=icon):
            st.session_state[state_keys.USAGE_CONFIRMING] = (key, kind.value)
    # The open dialog is kept in session state, not in the button's one-run True, so it is
    # still there on the rerun its own buttons cause.
    if st.session_state.get(state_keys.USAGE_CONFIRMING, ("", ""))[0] == key:
        kind = Kind(st.session_state[state_keys.USAGE_CONFIRMING][1])
        _DIALOGS[kind](ctx, [d for d in found if d.kind is kind], recheck)


def _table(found: list[Discrepancy], show_user: bool) -> pd.DataFrame:
    rows = [{
        **({"User": d.user_id} if show_user else {}),
        "Kind": KIND_LABELS[d.kind],
        "File": d.key,
        "Size": human_bytes(d.size_bytes),
        "Detail": d.detail,
    } for d in found]
    return pd.DataFrame(rows)


def _confirm(kind: Kind, ctx: UserContext, items: list[Discrepancy], recheck: Recheck) -> None:
    total = sum(d.size_bytes for d in items)
    st.markdown(f"**{len(items)} item(s), {human_bytes(total)}.** {_CONSEQUENCES[kind]}")
    show_table(pd.DataFrame({"File": [d.key for d in items], "Detail": [d.detail for d in items]}))
    confirm, cancel = st.columns(2)
    if confirm.button("Yes, go ahead", type="primary", key=state_keys.usage_repair("confirm", kind.value),
                      width="stretch"):
        _close()
        with user_errors("Repairing"):
            result = repair(kind, items, store=ctx.services.store, rows_for=row_access(ctx.repo, ctx.server),
                            caller=ctx.caller)
            notify(*_notice(kind, result))
            recheck()
            st.rerun()
    if cancel.button("Cancel", key=state_keys.usage_repair("cancel", kind.value), width="stretch"):
        _close()
        st.rerun()


def _close() -> None:
    st.session_state.pop(state_keys.USAGE_CONFIRMING, None)


@st.dialog("Delete orphaned files?", on_dismiss=_close)
def _confirm_orphans(ctx: UserContext, items: list[Discrepancy], recheck: Recheck) -> None:
    _confirm(Kind.ORPHAN, ctx, items, recheck)


@st.dialog("Mark missing recordings failed?", on_dismiss=_close)
def _confirm_missing(ctx: UserContext, items: list[Discrepancy], recheck: Recheck) -> None:
    _confirm(Kind.MISSING, ctx, items, recheck)


@st.dialog("Clean stale uploads?", on_dismiss=_close)
def _confirm_stale(ctx: UserContext, items: list[Discrepancy], recheck: Recheck) -> None:
    _confirm(Kind.STALE_PENDING, ctx, items, recheck)


_DIALOGS = {Kind.ORPHAN: _confirm_orphans, Kind.MISSING: _confirm_missing, Kind.STALE_PENDING: _confirm_stale}


def _notice(kind: Kind, result: RepairResult) -> tuple[str, NoticeKind]:
    verb = {Kind.ORPHAN: "deleted", Kind.MISSING: "marked failed", Kind.STALE_PENDING: "cleaned"}[kind]
    text = f"{len(result.done)} {KIND_LABELS[kind].lower()}(s) {verb}."
    if result.skipped:
        text += f" {len(result.skipped)} skipped ({literal(result.skipped[0][1])})."
    if result.errors:
        return f"{text} {len(result.errors)} failed: {literal(result.errors[0][1])}", NoticeKind.ERROR
    return text, NoticeKind.SUCCESS
