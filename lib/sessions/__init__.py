"""Browser sessions the server keeps, so a reload, a new tab or a deep link stays signed in.

The browser holds one HttpOnly cookie with an opaque random id (:data:`SESSION_COOKIE`); the
server keeps the rest: who, the sign-in service's tokens encrypted with a key from settings
(:class:`TokenCipher`), when it was created and last used, and from which address and browser.
A session ends at sign-out (revoked), after :attr:`Settings.session_idle_timeout_s` unused, or
:attr:`Settings.session_lifetime_s` after sign-in, whichever comes first.

Two stores keep the same rows the same way (:class:`SessionStore`): :class:`SqliteSessionStore`
in demo mode, :class:`PostgrestSessionStore` in cloud mode (``public.app_sessions``, sql/006), so
a session outlives an app restart and any app process of the lab can resume it.

Sign-in happens over Streamlit's websocket, which cannot set a cookie, so it goes in two steps:
the sign-in page :meth:`SessionStore.open`\\ s a session and gets a one-time ticket (valid
:data:`TICKET_TTL_S`); the browser posts the ticket to the app's own route
(:mod:`lib.session_routes`), whose answer sets the cookie. Only a hash of the cookie's id and of
the ticket is stored: a copy of the database alone does not let anyone act as a user.

One module each: ``base`` (the cipher, the values, the interface), ``sqlite`` and ``postgrest`` (which
loads postgrest); the names below load their module on first use (lib.lazy).
"""

from lib.lazy import lazy_exports

_EXPORTS = {  # name -> its module; each loads on first use (lib.lazy)
    "SESSION_COOKIE": "base",
    "TICKET_TTL_S": "base",
    "SECRET_BYTES": "base",
    "USER_AGENT_CHARS": "base",
    "TokenCipher": "base",
    "ClientInfo": "base",
    "StoredSession": "base",
    "Resumed": "base",
    "SessionStore": "base",
    "describe_device": "base",
    "SqliteSessionStore": "sqlite",
    "PostgrestSessionStore": "postgrest",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
