"""User-supplied text shown as text: the one helper every component uses for it.

Names, notes, tags, subjects, sessions, e-mail addresses and error messages
that quote them come from users (anyone who can name a file names a
recording). Most Streamlit elements render their text as Markdown:
``st.markdown``, ``st.caption``, ``st.success``/``error``/…, ``st.toast``,
titles, widget labels and ``help`` tooltips. Unescaped, ``![x](https://…)``
loads a remote image in the reader's browser, ``[x](…)`` or ``www.…`` makes
a link, ``$…$`` is LaTeX, ``**…**`` bold, a leading ``#`` a heading.

:func:`literal` backslash-escapes (CommonMark's escape, shown as the bare
character) every character that can start one of those constructs: the
inline ones wherever they are, the block ones (``#``, ``>``, list markers,
``=``/``-`` underlines) at the start of a line, and the ``www.`` / ``://`` of
bare links. Prose punctuation (``. , ' " : ; ( ) ? -`` mid-line) needs no
escape and keeps messages searchable. Dataframe cells and ``st.text``/
``st.code`` are never Markdown and need nothing.
"""

from __future__ import annotations

import re

_INLINE = re.compile(r"([\\`*_{}\[\]<>$~|&])")
"""Escapes, code, emphasis, links and images, HTML and autolinks, LaTeX, strikethrough, tables, entities."""
_LINE_START = re.compile(r"^([ \t]*)([#>+=-]|\d{1,9}(?=[.)]))", re.MULTILINE)
"""Headings, block quotes, bullets, setext underlines and ordered-list numbers at the start of a line."""
_BARE_LINK = re.compile(r"(?i)(?<=www)\.|:(?=//)")
"""What makes ``www.example.org`` or ``https://…`` a link without any markup."""


def literal(text: object) -> str:
    """``text`` for any element that renders Markdown: it shows exactly as typed, line breaks kept."""
    escaped = _INLINE.sub(r"\\\1", str(text))
    escaped = _LINE_START.sub(_escape_line_start, escaped)
    escaped = _BARE_LINK.sub(lambda m: "\\" + m.group(0), escaped)
    # A lone newline is a soft break (shown as a space); keep the user's line breaks as hard ones.
    return escaped.replace("\r\n", "\n").replace("\n", "\\\n")


def _escape_line_start(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker.isdigit():  # "12." or "12)": escape what follows the number
        return indent + marker + "\\"
    return indent + "\\" + marker
