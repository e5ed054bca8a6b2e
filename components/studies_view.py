"""The Studies page's pieces: a new study, the study picker, members and roles (owners manage them), and the
study's recordings. What each role may do is lib.studies' rule; the stores enforce it again."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state_keys
from components.feedback import notify, user_errors
from components.tables import show_table
from components.text import literal
from lib.audit import AuditTrail
from lib.records import ListQuery
from lib.repository import Repository
from lib.studies import (
    FORMER_MEMBER,
    ROLE_RANK,
    Action,
    Invite,
    Member,
    Role,
    Study,
    add_member,
    allows,
    change_role,
    delete_study,
    remove_member,
)
from lib.units import human_bytes

ROLES_STRONGEST_FIRST = sorted(Role, key=lambda r: -ROLE_RANK[r])
"""How roles are offered: owner, member, viewer."""
ROLE_HELP = ("Viewer: sees, plays and downloads the study's recordings. Member: also uploads and edits research "
             "fields of any recording. Owner: also manages members and deletes any recording.")
STUDY_RECORDINGS_SHOWN = 200
"""The newest recordings of a study the page lists."""


def render_new_study(repo: Repository) -> None:
    """The "New study" form: the caller becomes its owner, and the page shows it."""
    with st.expander("New study", icon=":material/add:"), \
            st.form(state_keys.STUDIES_NEW, clear_on_submit=True, border=False):
        name = st.text_input("Name", placeholder="e.g. Sleep lab 2025")
        description = st.text_area("Description", placeholder="What is recorded, under which protocol")
        if st.form_submit_button("Create study", icon=":material/add:"):
            with user_errors("Creating the study"):
                study = repo.create_study(name, description)
                st.session_state[state_keys.STUDIES_SELECTED] = study.id
                notify(f"Study {literal(study.name)} created; you are its owner. Add members below.")
                st.rerun()


def pick_study(studies: list[Study]) -> Study:
    """The study to show: the one picked last time, if the caller is still in it."""
    by_id = {s.id: s for s in studies}
    if st.session_state.get(state_keys.STUDIES_SELECTED) not in by_id:
        st.session_state[state_keys.STUDIES_SELECTED] = studies[0].id
    chosen = st.selectbox("Study", list(by_id), key=state_keys.STUDIES_SELECTED,
                          format_func=lambda i: f"{by_id[i].name} ({by_id[i].role.value})")
    study = by_id[chosen]
    if study.description:
        st.caption(literal(study.description))
    return study


def render_members(repo: Repository, study: Study, user_id: str, trail: AuditTrail) -> None:
    st.subheader("Members")
    members: list[Member] = []
    with user_errors("Loading the members"):
        members = repo.members(study.id)
    show_table(pd.DataFrame({"E-mail": [m.email for m in members], "Role": [m.role.value for m in members],
                             "Added": [m.added_at for m in members]}),
               column_config={"Added": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    if allows(study.role, Action.MANAGE_MEMBERS):
        add, change, remove = st.columns(3)
        with add:
            _add_member_form(repo, study, trail)
        with change:
            _change_role_form(repo, study, members, trail)
        with remove:
            _remove_member_form(repo, study, members, trail)
        render_invites(repo, study)
    me = next((m for m in members if m.user_id == user_id), None)
    if me is not None:
        _leave_button(repo, study, me, trail)


def _add_member_form(repo: Repository, study: Study, trail: AuditTrail) -> None:
    with st.form(state_keys.STUDIES_ADD, clear_on_submit=True):
        st.markdown("**Add a member**")
        email = st.text_input("E-mail", placeholder="colleague@lab.org",
                              help="The address they sign in to PulseVault with: they join at once. An address "
                                   "with no account yet is invited, and joins when they sign up with it.")
        role = st.selectbox("Role", ROLES_STRONGEST_FIRST, index=1, format_func=lambda r: r.value, help=ROLE_HELP)
        if st.form_submit_button("Add", icon=":material/person_add:"):
            with user_errors("Adding the member"):
                added = add_member(repo, study.id, email, role, trail=trail)
                notify(_added_message(added, study))
                st.rerun()


def _added_message(added: Member | Invite, study: Study) -> str:
    if isinstance(added, Invite):
        return (f"{literal(added.email)} has no PulseVault account yet: invited to {literal(study.name)} as "
                f"{added.role.value}. They join when they sign up with that address and confirm it.")
    return f"{literal(added.email)} joined {literal(study.name)} as {added.role.value}."


def render_invites(repo: Repository, study: Study) -> None:
    """An owner's view of the study's pending invitations, and cancelling one."""
    invites: list[Invite] = []
    with user_errors("Loading the invitations"):
        invites = repo.invites(study.id)
    if not invites:
        return
    st.markdown("**Pending invitations**")
    st.caption("Addresses with no account yet: each joins when someone signs up with it and confirms it.")
    show_table(pd.DataFrame({"E-mail": [i.email for i in invites], "Role": [i.role.value for i in invites],
                             "Invited": [i.invited_at for i in invites]}),
               column_config={"Invited": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    with st.form(state_keys.STUDIES_CANCEL_INVITE):
        email = st.selectbox("Invitation", [i.email for i in invites])
        if st.form_submit_button("Cancel invitation", icon=":material/cancel:") and email is not None:
            with user_errors("Cancelling the invitation"):
                repo.cancel_invite(study.id, email)
                notify(f"The invitation of {literal(email)} to {literal(study.name)} was cancelled.")
                st.rerun()


def _change_role_form(repo: Repository, study: Study, members: list[Member], trail: AuditTrail) -> None:
    by_id = {m.user_id: m for m in members}
    with st.form(state_keys.STUDIES_ROLE):
        st.markdown("**Change a role**")
        who = st.selectbox("Member", list(by_id), format_func=lambda i: by_id[i].email)
        role = st.selectbox("New role", ROLES_STRONGEST_FIRST, format_func=lambda r: r.value, help=ROLE_HELP)
        if st.form_submit_button("Change role", icon=":material/manage_accounts:") and who is not None:
            with user_errors("Changing the role"):
                change_role(repo, study.id, by_id[who], role, trail=trail)
                notify(f"{literal(by_id[who].email)} is now {role.value} of {literal(study.name)}.")
                st.rerun()


def _remove_member_form(repo: Repository, study: Study, members: list[Member], trail: AuditTrail) -> None:
    by_id = {m.user_id: m for m in members}
    with st.form(state_keys.STUDIES_REMOVE):
        st.markdown("**Remove a member**")
        who = st.selectbox("Member", list(by_id), format_func=lambda i: by_id[i].email)
        sure = st.checkbox("They lose access to the study's recordings at once")
        if st.form_submit_button("Remove", icon=":material/person_remove:") and who is not None:
            if not sure:
                st.warning("Tick the box to confirm the removal.")
                return
            with user_errors("Removing the member"):
                remove_member(repo, study.id, by_id[who], trail=trail)
                notify(f"{literal(by_id[who].email)} was removed from {literal(study.name)}.")
                st.rerun()


def _leave_button(repo: Repository, study: Study, me: Member, trail: AuditTrail) -> None:
    if st.button("Leave this study", icon=":material/logout:", key=state_keys.STUDIES_LEAVE):
        with user_errors("Leaving the study"):
            remove_member(repo, study.id, me, trail=trail)
            st.session_state.pop(state_keys.STUDIES_SELECTED, None)
            notify(f"You left {literal(study.name)}.")
            st.rerun()


def render_recordings(repo: Repository, study: Study) -> None:
    """The study's newest recordings, with who uploaded each."""
    st.subheader("Recordings")
    st.caption("Play, download and edit them in My files: choose this study at the top of the page.")
    with user_errors("Loading the study's recordings"):
        page = repo.list(ListQuery(study_id=study.id, page_size=STUDY_RECORDINGS_SHOWN))
        if not page.records:
            st.info("No recordings in this study yet.", icon=":material/video_library:")
            return
        emails = {m.user_id: m.email for m in repo.members(study.id)}
        rows = page.records
        show_table(pd.DataFrame({
            "Name": [r.original_name for r in rows], "Subject": [r.research.subject_id for r in rows],
            "Session": [r.research.session_label for r in rows], "Status": [r.status.value for r in rows],
            "Size": [human_bytes(r.size_bytes) for r in rows],
            "Uploaded by": [emails.get(r.user_id, FORMER_MEMBER) for r in rows],
            "Uploaded": [r.created_at for r in rows]}),
            column_config={"Uploaded": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
        if page.total > len(rows):
            st.caption(f"The newest {len(rows)} of {page.total} recordings.")


def render_delete_study(repo: Repository, study: Study, trail: AuditTrail) -> None:
    """An owner deletes an empty study (its recordings first: their objects must leave the bucket)."""
    if not allows(study.role, Action.MANAGE_MEMBERS):
        return
    with st.expander("Delete this study", icon=":material/delete_forever:"), \
            st.form(state_keys.STUDIES_DELETE, border=False):
        sure = st.checkbox(f"Delete {literal(study.name)} and every membership in it")
        if st.form_submit_button("Delete study", icon=":material/delete_forever:"):
            if not sure:
                st.warning("Tick the box to confirm deleting the study.")
                return
            with user_errors("Deleting the study"):
                delete_study(repo, study.id, trail=trail)
                st.session_state.pop(state_keys.STUDIES_SELECTED, None)
                notify(f"Study {literal(study.name)} deleted.")
                st.rerun()
