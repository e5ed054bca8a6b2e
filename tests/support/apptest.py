"""AppTest helpers: app.py run in this process (demo mode), signed in through the real form."""

from __future__ import annotations

import uuid

from streamlit.testing.v1 import AppTest

from components import state_keys
from lib.auth import DemoAuth
from lib.demo import DEMO_EMAIL, DEMO_PASSWORD, start_demo
from tests.support.app_server import REPO

APP = str(REPO / "app.py")
TIMEOUT_S = 120
SEED_TIMEOUT_S = 180
"""The demo's sample recording is seeded by a background thread after start."""


def new_app(timeout_s: float = TIMEOUT_S) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout_s)
    at.run()
    assert not at.exception, at.exception
    return at


def sign_in(at: AppTest, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> AppTest:
    """Fill the Sign in form (not the sign-up or reset ones) and submit it."""
    form = [t for t in at.text_input if t.form_id == "sign_in"]
    next(t for t in form if t.label == "E-mail").input(email)
    next(t for t in form if t.label == "Password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def signed_in_app(page: str | None = None, *, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD,
                  timeout_s: float = TIMEOUT_S) -> AppTest:
    """A signed-in session, switched to ``page`` (e.g. ``"pages/files.py"``) when given."""
    at = sign_in(new_app(timeout_s), email, password)
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def new_demo_account() -> tuple[str, str, str]:
    """A fresh account in the running demo backends: (e-mail, password, user id).

    Tests that count or reconcile a user's recordings use one, so what other
    tests left in the shared demo account cannot change their figures.
    """
    email = f"tester-{uuid.uuid4().hex[:10]}@lab.test"
    password = "pulse-test-password"
    user_id = DemoAuth(start_demo([]).db_path).ensure_account(email, password)
    return email, password, user_id


def store_anyway(at: AppTest) -> AppTest:
    """Tick "Store it anyway" on every card whose recording the quick look cannot use (the generated test
    clips have no face, so their quick look finds no pulse) and rerun."""
    prefix = state_keys.upload_card("keep_doubtful", "")
    for box in at.checkbox:
        if (box.key or "").startswith(prefix) and not box.value:
            box.check()
    at.run()
    assert not at.exception, at.exception
    return at


def select_rows(at: AppTest, *rows: int, table: str = state_keys.files_table("")) -> AppTest:
    """Select these row positions of the table on screen whose key starts with ``table`` (My files' unless
    told), as a click in the browser would."""
    prefix = table
    [key] = [k for k in at._session_state.filtered_state if str(k).startswith(prefix)]  # the table on screen
    at.session_state[key] = {"selection": {"rows": list(rows), "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    return at
