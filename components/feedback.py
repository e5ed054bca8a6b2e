"""Showing failures to researchers: a clear message, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from components.text import literal
from lib.errors import PulseVaultError

log = logging.getLogger("pulsevault")

_FLASH_KEY = "pv_flash"


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


def flash(message: str, kind: str = "info") -> None:
    """Keep a message to show once after the next rerun (Markdown: quote user text with ``literal``)."""
    st.session_state[_FLASH_KEY] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(_FLASH_KEY, (None, None))
    if message:
        {"info": st.info, "success": st.success, "warning": st.warning, "error": st.error}[kind](message)
