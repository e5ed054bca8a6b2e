"""Studies: a lab's recordings shared by role. The values (a study, a member) and the one home of the
rules: which role may do what, and how a study's name is checked.

Roles, weakest first: **viewer** (see, play, download), **member** (also upload and edit the research fields
of any recording in the study, delete their own), **owner** (also manage members and roles, delete any
recording and the study). Every user also has a personal space (``study_id`` None) that is theirs alone.

In the cloud, row-level security (``sql/005_studies.sql``) enforces the same rules on the user's own token;
the server's writes (service role, not limited by RLS) and demo mode's SQLite ask :func:`allows` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from lib.audit import AuditAction, AuditEvent, AuditTrail
from lib.auth import normalize_email
from lib.errors import AccessDenied, ValidationError
from lib.records import ListQuery

if TYPE_CHECKING:
    from lib.repository import Repository

MAX_NAME_CHARS = 200
"""Longest study name (``sql/005_studies.sql`` checks the same)."""
MAX_DESCRIPTION_CHARS = 5_000
"""Longest study description (``sql/005_studies.sql`` checks the same)."""


class Role(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    OWNER = "owner"


ROLE_RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.OWNER: 3}
"""Each role holds the rights of every weaker one (``public.study_role_rank`` in SQL)."""


class Action(StrEnum):
    """What a member may be allowed to do in a study."""

    VIEW = "view"
    """See the study, its members and recordings; play and download them."""
    UPLOAD = "upload"
    EDIT_RESEARCH = "edit_research"
    """Change the research fields (subject, session, notes, tags) of any recording in the study."""
    DELETE_OWN = "delete_own"
    """Delete a recording one uploaded."""
    DELETE_ANY = "delete_any"
    MANAGE_MEMBERS = "manage_members"
    """Add and remove members, change roles, rename or delete the study."""
    SHARE = "share"
    """Make a link anyone can download a recording with (beyond the study's members)."""
    RUN_JOBS = "run_jobs"
    """Start a batch job over the study's recordings (it writes their analyses), and cancel one's own."""
    CANCEL_ANY_JOB = "cancel_any_job"
    """Cancel a batch job another member started over the study."""
    MOVE = "move"
    """Move a recording into or out of the study (the other space must be the mover's too: :func:`may_move`)."""


WEAKEST_ROLE_FOR = {
    Action.VIEW: Role.VIEWER,
    Action.UPLOAD: Role.MEMBER,
    Action.EDIT_RESEARCH: Role.MEMBER,
    Action.DELETE_OWN: Role.MEMBER,
    Action.DELETE_ANY: Role.OWNER,
    Action.MANAGE_MEMBERS: Role.OWNER,
    Action.SHARE: Role.MEMBER,
    Action.RUN_JOBS: Role.MEMBER,
    Action.CANCEL_ANY_JOB: Role.OWNER,
    Action.MOVE: Role.OWNER,
}
"""The weakest role that may do each action."""


@dataclass(frozen=True)
class Study:
    """A study as one member sees it: with the caller's own role in it."""

    id: str
    name: str
    description: str
    role: Role
    created_at: datetime
    retention_days: int | None = None


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    role: Role
    added_at: datetime


@dataclass(frozen=True)
class Invite:
    """An address invited into a study that no confirmed account has yet: it joins with ``role`` when an
    account confirms the address (claimed by the database, sql/010_study_ops.sql, or the demo's store)."""

    email: str
    role: Role
    invited_at: datetime


@dataclass(frozen=True)
class UploaderUsage:
    """What one uploader's ready recordings hold in one study."""

    study_id: str
    user_id: str
    bytes: int
    recordings: int


@dataclass(frozen=True)
class StudyOverview:
    """One study as an administrator sees it in the overview of every study."""

    id: str
    name: str
    owner_email: str
    """The account that created it ('' once that account is gone)."""
    members: int
    bytes: int
    recordings: int
    created_at: datetime


def role_of(value: str | None) -> Role | None:
    """A stored role as a Role (None: not a member)."""
    return None if value is None else Role(value)


def allows(role: Role | None, action: Action) -> bool:
    """Whether a member with ``role`` (None: not a member) may do ``action``."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[WEAKEST_ROLE_FOR[action]]


def studies_allowing(studies: list[Study], action: Action) -> list[Study]:
    """The studies among ``studies`` (each with the caller's role) where the caller may do ``action``."""
    return [s for s in studies if allows(s.role, action)]


def may_delete(study_id: str | None, role: Role | None, *, uploader_id: str, caller_id: str) -> bool:
    """Who deletes a recording: in a personal space (``study_id`` None) its uploader alone; in a study its
    uploader (while still a member) or an owner. ``role`` is the caller's in the study."""
    if study_id is None:
        return uploader_id == caller_id
    if allows(role, Action.DELETE_ANY):
        return True
    return allows(role, Action.DELETE_OWN) and uploader_id == caller_id


def may_cancel_job(study_id: str | None, role: Role | None, *, creator_id: str, caller_id: str) -> bool:
    """Who cancels a batch job: its creator (a personal job's only reader), or in a study an owner. ``role`` is
    the caller's in the job's study."""
    if caller_id == creator_id and (study_id is None or role is not None):
        return True
    return study_id is not None and allows(role, Action.CANCEL_ANY_JOB)


def owns_space(study_id: str | None, role: Role | None, *, uploader_id: str, caller_id: str) -> bool:
    """Whether the caller owns a recording's space: a study's owner; a personal space (``study_id`` None) is its
    uploader's alone. ``role`` is the caller's in the study."""
    if study_id is None:
        return uploader_id == caller_id
    return allows(role, Action.MOVE)


def may_move(source: str | None, source_role: Role | None, target: str | None, target_role: Role | None, *,
             uploader_id: str, caller_id: str) -> bool:
    """Who moves a recording from the space ``source`` into ``target`` (each a study id, None: the uploader's
    personal space): someone who owns both (sql/012_moves.sql's move_recording checks the same)."""
    return source != target and all(
        owns_space(study, role, uploader_id=uploader_id, caller_id=caller_id)
        for study, role in ((source, source_role), (target, target_role)))


@dataclass(frozen=True)
class RecordRights:
    """What the caller may do with one recording they can see (seeing, playing and downloading it, always)."""

    edit_research: bool
    share: bool
    delete: bool
    manage_files: bool
    """Ground truth, re-analysis, retry or discard of an unfinished upload: the server writes these to the
    uploader's own rows only, so only the uploader (still allowed to upload there) manages them."""


def record_rights(study_id: str | None, role: Role | None, *, uploader_id: str, caller_id: str) -> RecordRights:
    """The caller's rights on a recording: everything in their personal space; by role in a study. (Changing its
    consent and withdrawing it go with ``delete``: lib.consent.)"""
    if study_id is None:
        return RecordRights(edit_research=True, share=True, delete=True, manage_files=True)
    uploader = uploader_id == caller_id
    return RecordRights(
        edit_research=allows(role, Action.EDIT_RESEARCH), share=allows(role, Action.SHARE),
        delete=may_delete(study_id, role, uploader_id=uploader_id, caller_id=caller_id),
        manage_files=uploader and allows(role, Action.UPLOAD))


def require(role: Role | None, action: Action) -> None:
    """AccessDenied, in words, unless ``role`` allows ``action``."""
    if not allows(role, action):
        needed = WEAKEST_ROLE_FOR[action]
        raise AccessDenied(f"That needs the {needed.value} role in this study"
                           f"{'' if role is None else f'; you are a {role.value}'}. Ask one of its owners.")


def study_name(name: str) -> str:
    """The name a study is stored under (trimmed), or ValidationError saying what is wrong."""
    cleaned = " ".join(str(name).replace("\x00", "").split())
    if not cleaned:
        raise ValidationError("Give the study a name.")
    if len(cleaned) > MAX_NAME_CHARS:
        raise ValidationError(f"A study's name has at most {MAX_NAME_CHARS} characters.")
    return cleaned


def study_description(description: str) -> str:
    """The description a study is stored with, or ValidationError if it is too long."""
    cleaned = str(description).replace("\x00", "").strip()
    if len(cleaned) > MAX_DESCRIPTION_CHARS:
        raise ValidationError(f"A study's description has at most {MAX_DESCRIPTION_CHARS} characters.")
    return cleaned


def invitee_email(email: str) -> str:
    """The address a member is added by (trimmed, lower case), or ValidationError if it is not one."""
    if not (email or "").strip():
        raise ValidationError("Enter the e-mail address the person signs in to PulseVault with.")
    return normalize_email(email)


# --- membership changes, each with its audit entry ------------------------------------------------------


def add_member(repo: Repository, study_id: str, email: str, role: Role, *, trail: AuditTrail) -> Member | Invite:
    """Add the account with ``email``, or invite an address with none (an owner), audited; if the entry cannot be
    written, they are removed (the invitation cancelled) again."""
    added = repo.add_member(study_id, email, role)
    if isinstance(added, Invite):
        trail.after(AuditEvent(AuditAction.MEMBER_ADD, study_id, detail={
                        "member_email": added.email, "role": added.role.value, "invited": True}),
                    undo=lambda: repo.cancel_invite(study_id, added.email))
        return added
    trail.after(_membership(AuditAction.MEMBER_ADD, study_id, added, role=added.role.value),
                undo=lambda: repo.remove_member(study_id, added.user_id))
    return added


def change_role(repo: Repository, study_id: str, member: Member, role: Role, *, trail: AuditTrail) -> None:
    """Give ``member`` another role (an owner), audited; if the entry cannot be written, the old role is back."""
    repo.set_role(study_id, member.user_id, role)
    trail.after(_membership(AuditAction.MEMBER_ROLE, study_id, member, role_before=member.role.value,
                            role=Role(role).value),
                undo=lambda: repo.set_role(study_id, member.user_id, member.role))


def remove_member(repo: Repository, study_id: str, member: Member, *, trail: AuditTrail) -> None:
    """Remove ``member`` (an owner), or leave (anyone, themselves). The entry is written first: one who leaves
    could not add themselves back if it failed afterwards."""
    if member.user_id != repo.user_id:  # refused before the entry says it happened
        require(repo.study(study_id).role, Action.MANAGE_MEMBERS)
    trail.before(_membership(AuditAction.MEMBER_REMOVE, study_id, member, role=member.role.value))
    repo.remove_member(study_id, member.user_id)


def delete_study(repo: Repository, study_id: str, *, trail: AuditTrail) -> None:
    """Delete an empty study (an owner), audited. Refusals come before the entry (a study that still holds
    recordings says so); the entry is written first, since a deleted study cannot be put back. The study's trail
    stays (the audit log has no foreign keys), readable from then on by an administrator at the database: its
    former owners are members no more."""
    study = repo.study(study_id)
    require(study.role, Action.MANAGE_MEMBERS)
    if repo.list(ListQuery(study_id=study.id, page_size=1)).total:
        raise ValidationError(MSG_STUDY_NOT_EMPTY.format(name=study.name))
    members = repo.members(study.id)
    trail.before(AuditEvent(AuditAction.STUDY_DELETE, study.id, detail={
        "study_name": study.name, "members": [{"email": m.email, "role": m.role.value} for m in members]}))
    repo.delete_study(study.id)


def _membership(action: AuditAction, study_id: str, member: Member, **detail: str) -> AuditEvent:
    return AuditEvent(action, study_id, detail={"member_id": member.user_id, "member_email": member.email, **detail})


MSG_ALREADY_INVITED = ("{email} is invited already; they join when they sign up with that address. Cancel the "
                       "invitation first to invite them with another role.")
MSG_INVITE_NOT_FOUND = "That invitation does not exist (any more): it was cancelled, or the person has joined."
MSG_ALREADY_MEMBER = "{email} is already a member of this study; change their role in the table instead."
FORMER_MEMBER = "(no longer a member)"
"""Who uploaded a study's recording, when that person has left the study."""
MSG_LAST_OWNER = "A study needs an owner: make someone else an owner first."
MSG_MOVE_NOT_ALLOWED = ("Only someone who owns both spaces moves a recording: an owner of each study, and for a "
                        "personal space its uploader.")
MSG_STUDY_NOT_FOUND = "That study does not exist, or you are not a member of it."
MSG_STUDY_NOT_EMPTY = ("{name} still holds recordings: delete them first (in My files, with this study chosen), "
                       "then delete the study.")
"""A study is deleted only once its recordings (and their objects in the bucket) are gone."""
