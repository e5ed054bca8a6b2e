"""Telling researchers what happened: failures as a clear message (never a traceback), and the one way
to show a message after the rerun an action ends with (:func:`notify`, shown by :func:`show_notice`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from components import state_keys
from components.text import literal
from lib.errors import PulseVaultError

log = logging.getLogger("pulsevault")


@contextmanager
def user_errors(action: str) -> Iterator[None]:
    """Run a block; show what went wrong as ``st.error`` instead of raising.

    A :class:`PulseVaultError` is already phrased for the user, and shown as
    text (it may quote a file name or another user-supplied string). Anything else
    is a bug: it is logged with its traceback on the server (where secrets
    never reach, see lib.settings) and the page gets a short message.
    """
    try:
        yield
    except PulseVaultError as exc:
        st.error(f"{action} failed. {literal(exc)}", icon=":material/error:")
    except Exception:
        log.exception("%s failed unexpectedly", action)
        st.error(
            f"{action} failed unexpectedly. Nothing was changed that cannot be repaired; "
            "please try again, and if it keeps happening, look at the server log.",
            icon=":material/error:",
        )


class NoticeKind(StrEnum):
    """How a notice is drawn: green, blue, orange or red."""

    SUCCESS = "success"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    """A message kept for the next run: an action that ends with ``st.rerun()`` would lose anything it drew."""

    message: str
    kind: NoticeKind


_DRAW = {NoticeKind.SUCCESS: st.success, NoticeKind.INFO: st.info, NoticeKind.WARNING: st.warning,
         NoticeKind.ERROR: st.error}


def notify(message: str, kind: NoticeKind = NoticeKind.SUCCESS) -> None:
    """Show ``message`` once, at the top of the page, on the next run (a later notice replaces it). It is
    Markdown: quote user text with :func:`components.text.literal`."""
    st.session_state[state_keys.NOTICE] = Notice(message, kind)


def slot() -> DeltaGenerator:
    """A container drawn on every run, filled or left empty (an empty one takes no room).

    Streamlit places elements by their position on the page: an element drawn on one run and not the next
    moves everything after it, and the browser rebuilds what moved, which loses its state (a Large files
    upload in flight, an open expander). What is drawn only sometimes goes in a slot."""
    return st.container()


def show_notice() -> None:
    """Draw the kept notice, if any, and forget it; every page calls this under its title (drawn by the frame,
    above the page, Streamlit's AppTest would not show it after the first run)."""
    notice: Notice | None = st.session_state.pop(state_keys.NOTICE, None)
    with slot():
        if notice is not None:
            _DRAW[notice.kind](notice.message)
