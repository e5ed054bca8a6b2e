"""My files: "Move to study …" in a recording's detail panel, for someone who owns both spaces (lib.moves decides
which spaces those are and does the move)."""

from __future__ import annotations

import streamlit as st

from components import files_table, state_keys
from components.context import UserContext
from components.feedback import NoticeKind, notify, user_errors
from components.text import literal
from lib.moves import PERSONAL_SPACE, SpaceChoice, move_record, move_targets
from lib.records import FileRecord


def render_move(record: FileRecord, ctx: UserContext) -> None:
    """The move picker, when the caller may move ``record`` somewhere (nothing otherwise)."""
    targets: list[SpaceChoice] | None = None
    with user_errors("Loading the studies this recording can move to"):
        targets = move_targets(ctx.repo, record)
    if not targets:
        return
    with st.expander("Move to study …", icon=":material/drive_file_move:"):
        st.caption("Moves the original, preview, thumbnail and ground truth to the other space's storage; the "
                   "recording keeps its id, research fields, analysis and audit history, and both spaces' audit "
                   "trails record the move. Its members (and no one else) see it there.")
        by_key = {t.study_id or "": t for t in targets}
        chosen = st.selectbox("Move to", list(by_key), format_func=lambda k: _label(by_key[k]),
                              key=state_keys.files_record("move_to", record.id))
        if st.button("Move", key=state_keys.files_record("move", record.id), icon=":material/drive_file_move:"):
            _move(record, by_key[chosen], ctx)


def _label(space: SpaceChoice) -> str:
    return f"My files ({PERSONAL_SPACE})" if space.study_id is None else space.name


def _move(record: FileRecord, target: SpaceChoice, ctx: UserContext) -> None:
    with st.spinner(f"Moving {literal(record.original_name)} to {literal(_label(target))}…"), \
            user_errors("Moving the recording"):
        result = move_record(ctx.services.store, ctx.repo, ctx.server, record.id, target.study_id, trail=ctx.audit,
                             study_quota_bytes=ctx.services.settings.study_quota_bytes)
        notify(literal(result.summary()), NoticeKind.WARNING if result.left_behind else NoticeKind.SUCCESS)
        files_table.link_cache().forget(record.id)  # its links name the old keys
        files_table.clear_selection()
        st.rerun()
