"""The audit trail of a study, for its owners, and of the personal space, for its user: filter by recording, subject,
person (a study's), action and dates; export the filtered entries as CSV. What may be read is the store's rule
(row-level security in the cloud: a study's entries for its owners, the personal space's for its user only)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state_keys
from components.feedback import user_errors
from components.tables import show_table
from lib.audit import ACTION_LABELS, AuditAction, AuditEntry, AuditFilter, AuditLog, describe, entries_csv
from lib.records import ListQuery
from lib.repository import Repository
from lib.studies import Action, Study, allows

RECORDINGS_OFFERED = 500
"""The newest recordings of a study the recording filter offers (older ones: filter by subject)."""
ANY = ""
"""The filters' "no filter" choice."""


def render_audit(log: AuditLog, repo: Repository, study: Study) -> None:
    """The study's audit trail, for its owners only (nobody else reads it)."""
    if not allows(study.role, Action.MANAGE_MEMBERS):
        return
    st.subheader("Audit trail")
    st.caption("Every playback and download link issued, share link, research edit, consent change, upload, "
               "re-analysis, deletion, move, export and membership change in this study: who, when, from which "
               "address. Entries are never changed or deleted.")
    _trail(log, repo, study)


def render_personal_audit(log: AuditLog, repo: Repository) -> None:
    """The personal space's audit trail, for its user (it holds only what they did there); read only when asked
    for, so My files' reruns do not read it each time."""
    if not st.toggle("Show the audit trail of your personal space", key=state_keys.AUDIT_PERSONAL,
                     help="Who viewed, downloaded, shared, edited, moved or deleted your personal recordings: "
                          "only you act there."):
        return
    st.subheader("Audit trail of your personal space")
    st.caption("Every playback and download link issued, share link, research edit, consent change, upload, "
               "re-analysis, deletion, move and export of your personal recordings: when, and from which address. "
               "Entries are never changed or deleted.")
    _trail(log, repo, None)


def _trail(log: AuditLog, repo: Repository, study: Study | None) -> None:
    where = _filters(repo, study)
    if where is None:
        return
    entries: list[AuditEntry] | None = None
    with user_errors("Reading the audit trail"):
        entries = log.entries(where)
    if entries is None:
        return
    if not entries:
        st.info("No entries match these filters.", icon=":material/policy:")
        return
    _table(entries)
    caption = f"{len(entries)} entries" + (" (the newest; narrow the filters for older ones)"
                                           if len(entries) >= where.limit else "")
    st.caption(caption)
    name = study.id if study else "personal"
    st.download_button("Export CSV", data=entries_csv(entries), file_name=f"pulsevault-audit-{name}.csv",
                       mime="text/csv", key=state_keys.AUDIT_EXPORT, icon=":material/download:", on_click="ignore")


def _filters(repo: Repository, study: Study | None) -> AuditFilter | None:
    """The filter the widgets say (None when they cannot be read: the message is shown). The personal space has
    no person filter: only its user acts there."""
    recordings: dict[str, str] = {ANY: "All recordings"}
    people: dict[str, str] = {ANY: "Anyone"}
    with user_errors("Loading the recordings and members"):
        page = repo.list(ListQuery(study_id=study.id if study else None, page_size=RECORDINGS_OFFERED))
        recordings |= {r.id: f"{r.original_name} ({r.research.subject_id or 'no subject'}, {r.id[:8]})"
                       for r in page.records}
        if study is not None:
            people |= {m.user_id: m.email for m in repo.members(study.id)}
    recording_col, subject_col, person_col = st.columns(3)
    record_id = recording_col.selectbox("Recording", list(recordings), format_func=recordings.__getitem__,
                                        key=state_keys.AUDIT_RECORDING,
                                        help="Recordings there now; a deleted or moved-out one's entries show "
                                             "with all recordings.")
    subject = subject_col.text_input("Subject id", key=state_keys.AUDIT_SUBJECT, placeholder="e.g. 12",
                                     help="The recordings' subject id as it was when each entry was written: "
                                          "\"who has seen subject 12's recordings\" is subject 12 with the "
                                          "actions viewed and downloaded.")
    actor = None
    if study is not None:
        actor = person_col.selectbox("Person", list(people), format_func=people.__getitem__,
                                     key=state_keys.AUDIT_PERSON,
                                     help="Members now; former members' entries show with every person.")
    actions_col, from_col, to_col = st.columns([3, 1, 1])
    actions = actions_col.multiselect("Actions", list(AuditAction), format_func=ACTION_LABELS.__getitem__,
                                      key=state_keys.AUDIT_ACTIONS, placeholder="Every action")
    date_from = from_col.date_input("From", value=None, key=state_keys.AUDIT_FROM)
    date_to = to_col.date_input("To", value=None, key=state_keys.AUDIT_TO)
    if date_from and date_to and date_from > date_to:
        st.warning("The start date is after the end date.", icon=":material/event_busy:")
        return None
    return AuditFilter(study_id=study.id if study else None, record_id=record_id or None, subject_id=subject or "",
                       actor_id=actor or None, actions=tuple(actions), date_from=date_from, date_to=date_to)


def _table(entries: list[AuditEntry]) -> None:
    show_table(pd.DataFrame({
        "When": [e.at for e in entries], "Who": [e.actor_email or e.actor_id for e in entries],
        "Action": [ACTION_LABELS[e.action] for e in entries],
        "Recording": [str(e.detail.get("name", "")) for e in entries],
        "Subject": [e.subject_id for e in entries], "Detail": [describe(e) for e in entries],
        "Address": [e.client_address for e in entries]}),
        column_config={"When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})
