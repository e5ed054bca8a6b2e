"""User-supplied text shown as text: the one helper every component uses for it.

Names, notes, tags, subjects, sessions, e-mail addresses and error messages
that quote them come from users (a recording's name can be set by anyone who
can name a file). Most Streamlit elements render their text as Markdown:
``st.markdown``, ``st.caption``, ``st.success``/``error``/…, ``st.toast``,
titles, widget labels and ``help`` tooltips. Unescaped, ``![x](https://…)``
loads a remote image in the reader's browser, ``[x](…)`` makes a link,
``$…$`` LaTeX, ``:red[…]`` colour; HTML is dropped. :func:`literal` escapes
every ASCII punctuation character with a backslash (CommonMark's escape), so
the text shows character for character and none of that happens. Where a
whole element is user text, :func:`show_text` renders it with ``st.text``,
which is never Markdown. Dataframe cells are plain text already.
"""

from __future__ import annotations

import re
import string

import streamlit as st

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def literal(text: object) -> str:
    """``text`` escaped for any element that renders Markdown: it shows exactly as typed, on one line per line."""
    escaped = _PUNCTUATION.sub(r"\\\1", str(text))
    # A lone newline is a soft break (shown as a space); keep the user's line breaks as hard ones.
    return escaped.replace("\r\n", "\n").replace("\n", "\\\n")


def show_text(text: object) -> None:
    """A paragraph of user text, never interpreted as Markdown."""
    st.text(str(text))
