"""The Account page's signed-in browsers (issue 19); the deep link (issue 21, item 9) is in the e2e tier."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from lib.demo import start_demo
from lib.sessions import SqliteSessionStore, TokenCipher
from tests.support.apptest import new_demo_account, signed_in_app


def _live_rows(user_id: str) -> list[str]:
    """The ids of the user's live kept sessions (the e2e tier shows a revoked tab falling back to sign-in)."""
    store = SqliteSessionStore(start_demo([]).db_path, TokenCipher.for_process(), idle_timeout_s=3_600,
                               lifetime_s=86_400)
    return [s.id for s in store.list_for(user_id)]


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_account_lists_this_browser_and_signs_out_everywhere() -> None:
    email, password, user_id = new_demo_account()
    elsewhere = signed_in_app(email=email, password=password)  # another browser of the same user
    at = signed_in_app("pages/account.py", email=email, password=password)
    assert any(s.value == "Signed-in browsers" for s in at.subheader)
    assert "this browser" in _markdown(at)
    assert sum(b.label == "Sign out" and b.key.startswith("revoke_") for b in at.button) == 1  # the other one

    next(b for b in at.button if b.label == "Sign out everywhere").click()
    at.run()
    assert not at.exception
    assert any(b.label == "Sign in" for b in at.button)
    assert elsewhere.session_state["pv_session_row"] not in _live_rows(user_id)


def test_revoking_another_browser_leaves_this_one_signed_in() -> None:
    email, password, user_id = new_demo_account()
    elsewhere = signed_in_app(email=email, password=password)
    at = signed_in_app("pages/account.py", email=email, password=password)
    next(b for b in at.button if b.key.startswith("revoke_")).click()
    at.run()
    assert not any(b.key.startswith("revoke_") for b in at.button if b.key)
    assert any(b.label == "Sign out everywhere" for b in at.button)
    assert _live_rows(user_id) == [at.session_state["pv_session_row"]]
    assert elsewhere.session_state["pv_session_row"] not in _live_rows(user_id)

