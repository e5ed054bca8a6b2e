"""Consent in My files' detail panel: the recording's consent state and date (editable by its uploader or a study
owner), and Withdraw, which erases it after a confirmation. The rules are lib.consent's; the erasure lib.erasure's.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import files_table, state_keys, upload_jobs
from components.context import UserContext, user_context
from components.feedback import NoticeKind, notify, user_errors
from components.tables import show_table
from components.text import literal
from lib.consent import CONSENT_LABELS, SETTABLE, change_consent
from lib.erasure import withdraw
from lib.errors import PulseVaultError
from lib.records import FileRecord, Tombstone


def render_consent(record: FileRecord, ctx: UserContext, editable: bool) -> None:
    """The consent the recording is held under; the form and Withdraw for those who may change it."""
    with st.expander(f"Consent: {CONSENT_LABELS[record.consent]}", icon=":material/verified_user:"):
        when = f"given on {record.consent_date:%Y-%m-%d}" if record.consent_date else "date not recorded"
        st.caption(f"{CONSENT_LABELS[record.consent]} ({when}). Only shareable recordings get share links.")
        if not editable:
            st.caption("Its uploader or an owner of the study changes it.")
            return
        _consent_form(record, ctx)
        st.button("Withdraw consent and erase…", key=state_keys.files_record("withdraw", record.id),
                  icon=":material/person_remove:", on_click=ask_withdraw, args=(record,),
                  help="The participant withdrew: the recording, its preview, thumbnail, ground truth and analysis "
                       "are erased; a tombstone (ids and dates only) is kept.")


def _consent_form(record: FileRecord, ctx: UserContext) -> None:
    with st.form(state_keys.files_record("consent", record.id), border=False):
        state_col, date_col = st.columns(2)
        consent = state_col.selectbox("Consent", SETTABLE, index=SETTABLE.index(record.consent),
                                      format_func=CONSENT_LABELS.__getitem__,
                                      key=state_keys.files_record("consent_state", record.id))
        given_on = date_col.date_input("Consent given on", value=record.consent_date, format="YYYY-MM-DD",
                                       key=state_keys.files_record("consent_date", record.id))
        if st.form_submit_button("Save consent", icon=":material/save:"):
            with user_errors("Saving the consent"):
                change_consent(ctx.repo, record.id, consent, given_on, trail=ctx.audit)
                notify(f"Consent of {literal(record.original_name)} saved: {CONSENT_LABELS[consent]}.")
                st.rerun()


def render_withdrawn(record: FileRecord, editable: bool) -> None:
    """A recording whose erasure did not finish: say so, and offer to run it again."""
    st.error(f"Consent for this recording was withdrawn, but its erasure did not finish: "
             f"{literal(record.error or '')}", icon=":material/person_remove:")
    if editable:
        st.button("Withdraw again", key=state_keys.files_record("withdraw", record.id), type="primary",
                  icon=":material/refresh:", on_click=ask_withdraw, args=(record,))


def ask_withdraw(record: FileRecord) -> None:
    """Button callback: open the confirmation dialog for this recording."""
    st.session_state[state_keys.FILES_CONFIRM_WITHDRAW] = (record.id, record.original_name)


def _forget() -> None:
    st.session_state.pop(state_keys.FILES_CONFIRM_WITHDRAW, None)


def render_withdraw_dialog() -> None:
    """Keep the confirmation dialog open while a withdrawal waits for an answer."""
    pending = st.session_state.get(state_keys.FILES_CONFIRM_WITHDRAW)
    if pending:
        _confirm_withdraw(*pending)


@st.dialog("Withdraw consent", icon=":material/person_remove:", on_dismiss=_forget)
def _confirm_withdraw(record_id: str, name: str) -> None:
    st.markdown(f"Erase **{literal(name)}** because its participant withdrew consent? The original, preview, "
                "thumbnail, ground truth and analysis are removed from storage and the database, and PulseVault "
                "checks the bucket holds nothing of it. A tombstone keeps only its id, study, subject id and who "
                "erased it when. **This cannot be undone.**")
    confirm, cancel = st.columns(2)
    if cancel.button("Cancel", key=state_keys.FILES_WITHDRAW_CANCEL, width="stretch"):
        _forget()
        st.rerun()
    if confirm.button("Withdraw and erase", key=state_keys.FILES_WITHDRAW_CONFIRM, type="primary",
                      icon=":material/delete_forever:", width="stretch"):
        _withdraw(record_id, name)


def _withdraw(record_id: str, name: str) -> None:
    ctx = user_context()
    with user_errors("Withdrawing"), st.spinner("Erasing…"):
        try:
            withdraw(ctx.services.store, ctx.repo, ctx.server, record_id, trail=ctx.audit)
        except PulseVaultError as exc:  # shown after the rerun, above the row that stays withdrawn
            notify(f"Withdrawing {literal(name)} did not finish. {literal(exc)}", NoticeKind.ERROR)
        else:
            upload_jobs.records_deleted((record_id,))
            notify(f"{literal(name)} is erased: nothing of it is left in storage; its tombstone is kept.")
            files_table.clear_selection()
        _forget()
        st.rerun()


def consent_label(record: FileRecord) -> str:
    """The consent line of the properties table."""
    label = CONSENT_LABELS[record.consent]
    return f"{label}, given on {record.consent_date:%Y-%m-%d}" if record.consent_date else label


def render_personal_erasures(ctx: UserContext) -> None:
    """What is kept of the recordings erased from the personal space (their tombstones), when there are any."""
    stones: list[Tombstone] = []
    with user_errors("Loading the erased recordings"):
        stones = ctx.repo.tombstones(None)
    if not stones:
        return
    with st.expander(f"Erased recordings ({len(stones)})", icon=":material/person_remove:"):
        st.caption("What is kept of each recording erased after its consent was withdrawn: ids and dates only.")
        show_table(pd.DataFrame({"Record id": [t.id for t in stones], "Subject": [t.subject_id for t in stones],
                                 "Why": [t.reason.value for t in stones], "Erased": [t.erased_at for t in stones]}),
                   column_config={"Erased": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
