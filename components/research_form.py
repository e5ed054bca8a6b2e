"""The research-fields form (subject, session, tags, notes): one form for the Upload card, the Large
files tab and My files, and the one place typed tags become a tuple.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lib.records import ResearchFields

KeyFor = Callable[[str], str]
"""Widget key of one field (``"subject"``, ``"session"``, ``"tags"``, ``"notes"``) for this form."""
NOTES_HEIGHT_PX = 68
"""Two lines of notes: enough to start typing, the box grows with the text."""


def render_research_fields(key_for: KeyFor, initial: ResearchFields | None = None) -> ResearchFields:
    """Draw the four fields (inside the caller's container or ``st.form``) and return what they hold."""
    initial = initial or ResearchFields()
    subject, session, tags = st.columns(3)
    subject_id = subject.text_input("Subject id", value=initial.subject_id, key=key_for("subject"),
                                    placeholder="e.g. S07")
    session_label = session.text_input("Session label", value=initial.session_label, key=key_for("session"),
                                       placeholder="e.g. baseline, exercise")
    tag_text = tags.text_input("Tags", value=", ".join(initial.tags), key=key_for("tags"),
                               placeholder="comma-separated, e.g. daylight, glasses")
    notes = st.text_area("Notes", value=initial.notes, key=key_for("notes"), height=NOTES_HEIGHT_PX)
    return ResearchFields(subject_id=subject_id.strip(), session_label=session_label.strip(),
                          notes=notes.strip(), tags=parse_tags(tag_text))


def parse_tags(text: str) -> tuple[str, ...]:
    """``" rest, rest ,, daylight "`` → ``("rest", "daylight")``: trimmed, no blanks, first occurrence kept."""
    seen: dict[str, None] = {}
    for tag in text.split(","):
        if tag.strip():
            seen.setdefault(tag.strip(), None)
    return tuple(seen)
