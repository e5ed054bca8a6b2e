"""The Studies page's retention and erasure record, for a study's owners: the retention period, the recordings
past it (erased in one confirmed step, each verified against the bucket: lib.erasure) and the tombstones of every
recording erased from the study."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext
from components.feedback import NoticeKind, notify, user_errors
from components.studies_view import FORMER_MEMBER
from components.tables import show_table
from components.text import literal
from lib.erasure import erase_past_retention, past_retention
from lib.records import FileRecord, Tombstone
from lib.studies import Action, Study, allows


def render_retention(ctx: UserContext, study: Study) -> None:
    """Owners only: the period, what is past it, and what was erased."""
    if not allows(study.role, Action.MANAGE_MEMBERS):
        return
    st.subheader("Retention and erasures")
    _period_form(ctx, study)
    expired: list[FileRecord] = []
    with user_errors("Listing the recordings past the retention period"):
        expired = past_retention(ctx.repo, study.id)
    if study.retention_days is not None:
        _expired(ctx, study, expired)
    _tombstones(ctx, study)


def _period_form(ctx: UserContext, study: Study) -> None:
    with st.form(state_keys.STUDIES_RETENTION, border=False):
        days = st.number_input("Retention period (days; 0 for none)", min_value=0, step=1,
                               value=study.retention_days or 0,
                               help="Recordings uploaded longer ago than this are listed here for you to erase.")
        if st.form_submit_button("Save retention period", icon=":material/schedule:"):
            with user_errors("Saving the retention period"):
                ctx.repo.set_retention(study.id, int(days) or None)
                notify(f"Retention period of {literal(study.name)}: "
                       f"{f'{int(days)} days' if days else 'none'}.")
                st.rerun()


def _expired(ctx: UserContext, study: Study, expired: list[FileRecord]) -> None:
    if not expired:
        st.caption(f"No recording is older than the retention period ({study.retention_days} days).")
        return
    st.warning(f"{len(expired)} recording{'s are' if len(expired) != 1 else ' is'} past the retention period "
               f"({study.retention_days} days).", icon=":material/schedule:")
    show_table(pd.DataFrame({"Name": [r.original_name for r in expired],
                             "Subject": [r.research.subject_id for r in expired],
                             "Status": [r.status.value for r in expired],
                             "Uploaded": [r.created_at for r in expired]}),
               column_config={"Uploaded": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    with st.form(state_keys.STUDIES_ERASE_EXPIRED, border=False):
        sure = st.checkbox(f"Erase these {len(expired)} recording(s) for good: their files, ground truth and "
                           "analysis; a tombstone keeps only ids and dates")
        if st.form_submit_button("Erase recordings past retention", type="primary", icon=":material/delete_forever:"):
            if not sure:
                st.warning("Tick the box to confirm the erasure.")
                return
            _erase(ctx, study, len(expired))


def _erase(ctx: UserContext, study: Study, count: int) -> None:
    bar = st.progress(0.0, text="Erasing…")
    with user_errors("Erasing the recordings past retention"):
        report = erase_past_retention(ctx.services.store, ctx.repo, ctx.server, study.id, trail=ctx.audit,
                                      progress=lambda done, total: bar.progress(done / total,
                                                                                text=f"Erased {done} of {total}"))
        notify(literal(report.summary()), NoticeKind.SUCCESS if report.ok else NoticeKind.WARNING)
        st.rerun()


def _tombstones(ctx: UserContext, study: Study) -> None:
    stones: list[Tombstone] = []
    with user_errors("Loading the erased recordings"):
        stones = ctx.repo.tombstones(study.id)
        emails = {m.user_id: m.email for m in ctx.repo.members(study.id)}
    if not stones:
        st.caption("No recording of this study has been erased.")
        return
    st.markdown(f"**Erased recordings** ({len(stones)}): what is kept of them, no personal data.")
    show_table(pd.DataFrame({"Record id": [t.id for t in stones], "Subject": [t.subject_id for t in stones],
                             "Why": [t.reason.value for t in stones], "Erased": [t.erased_at for t in stones],
                             "By": [emails.get(t.erased_by, FORMER_MEMBER) for t in stones]}),
               column_config={"Erased": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
