"""Consent: the one home of its rules. Which state lets a recording be shared, who changes the state, and the
words for each refusal. ``sql/009_consent.sql`` enforces the same on a user's token; the demo's SQLite store and
the server's writes ask here. Erasing a withdrawn recording is ``lib.erasure``.

Who changes a recording's consent (and who withdraws it): its uploader in a personal space; in a study an owner,
or the uploader while still a member: :func:`lib.studies.may_delete`'s rule, so the people who may make the
recording disappear are exactly those who may say what it is held under. Consent is not a research field any
member edits: it is a statement about a participant's agreement, made by whoever holds it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from lib.audit import AuditAction, AuditEvent, AuditTrail
from lib.errors import AccessDenied, ValidationError
from lib.records import Consent, FileRecord
from lib.studies import Role, may_delete

if TYPE_CHECKING:
    from lib.repository import Repository

CONSENT_LABELS = {
    Consent.INTERNAL: "Internal use only",
    Consent.SHAREABLE: "Shareable with collaborators",
    Consent.WITHDRAWN: "Withdrawn (being erased)",
}
"""How each state is named on screen."""
SETTABLE = (Consent.INTERNAL, Consent.SHAREABLE)
"""The states a person sets; withdrawn is reached only by withdrawing (which erases the recording)."""

MSG_WITHDRAW_BY_ERASURE = "Withdrawing consent erases the recording: use Withdraw, not the consent setting."
MSG_ALREADY_WITHDRAWN = ("This recording's consent was withdrawn and it is being erased; finish that with "
                         "Withdraw again.")
MSG_CONSENT_NOT_ALLOWED = "Only the recording's uploader or an owner of its study changes its consent."
"""Both stores' refusal of a consent change by anyone else (sql/009's hint 'not_allowed')."""
MSG_SHARE_INTERNAL = ("{name} is held for internal use only, so no share link is made. If its participants "
                      "agreed to sharing with collaborators, its uploader or a study owner can set its consent to "
                      "shareable in the recording's details.")
MSG_SHARE_WITHDRAWN = "Consent for {name} was withdrawn: it is being erased and cannot be shared."
MSG_EXPORT_WITHDRAWN = "{name}: its consent was withdrawn (it is being erased), so it is never exported."
MSG_EXPORT_INTERNAL_AS_LINKS = (
    "{name} is held for internal use only. This export is too big for one browser download, so it would go out as "
    "a manifest of links that work for anyone who holds them, like a share link. Export it in a smaller set (a zip "
    "you download yourself), or have its uploader or a study owner set its consent to shareable if its participants "
    "agreed.")


def check_shareable(record: FileRecord) -> None:
    """Refuse (AccessDenied, in words) a share link for a recording whose consent does not allow sharing."""
    if record.consent is Consent.SHAREABLE:
        return
    template = MSG_SHARE_WITHDRAWN if record.consent is Consent.WITHDRAWN else MSG_SHARE_INTERNAL
    raise AccessDenied(template.format(name=record.original_name))


def export_refusal(record: FileRecord, *, as_links: bool) -> str | None:
    """Why ``record`` (a row the exporter can see, so a member of its space) is left out of an export, or None.

    Withdrawn: never. Internal use only: in a zip the exporter downloads themselves (a member, like any download),
    but not as a manifest's presigned links (``as_links``), which anyone holding the manifest can use until they
    expire: the same reach as a share link, which :func:`check_shareable` refuses for it.
    """
    if record.consent is Consent.WITHDRAWN:
        return MSG_EXPORT_WITHDRAWN.format(name=record.original_name)
    if as_links and record.consent is not Consent.SHAREABLE:
        return MSG_EXPORT_INTERNAL_AS_LINKS.format(name=record.original_name)
    return None


def may_manage_consent(record: FileRecord, role: Role | None, caller_id: str) -> bool:
    """Whether the caller (``role`` theirs in the recording's study) changes its consent or withdraws it."""
    return may_delete(record.study_id, role, uploader_id=record.user_id, caller_id=caller_id)


def check_consent_change(record: FileRecord, consent: Consent, role: Role | None, caller_id: str) -> None:
    """Refuse a consent change the caller may not make (``record`` is a row they can see), or to a state only
    erasure sets."""
    if Consent(consent) is Consent.WITHDRAWN:
        raise ValidationError(MSG_WITHDRAW_BY_ERASURE)
    if record.consent is Consent.WITHDRAWN:
        raise ValidationError(MSG_ALREADY_WITHDRAWN)
    if not may_manage_consent(record, role, caller_id):
        raise AccessDenied(MSG_CONSENT_NOT_ALLOWED)


def change_consent(repo: Repository, record_id: str, consent: Consent, consent_date: date | None, *,
                   trail: AuditTrail) -> FileRecord:
    """Set a recording's consent and its date (the store refuses whoever may not), with an audit entry of what
    changed (before and after, as a research edit's); if the entry cannot be written, the old consent is put back."""
    before = repo.get(record_id)
    after = repo.set_consent(record_id, consent, consent_date)
    changed = {name: {"before": _text(getattr(before, name)), "after": _text(getattr(after, name))}
               for name in ("consent", "consent_date") if getattr(before, name) != getattr(after, name)}
    if changed:
        trail.after(AuditEvent.about(AuditAction.CONSENT, before, changed=changed),
                    undo=lambda: repo.set_consent(record_id, before.consent, before.consent_date))
    return after


def _text(value: object) -> str | None:
    return None if value is None else str(value)
