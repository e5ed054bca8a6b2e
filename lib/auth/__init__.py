"""Signing in: one :class:`AuthProvider` interface, two implementations.

* :class:`SupabaseAuth` (cloud mode) drives one supabase-py ``Client`` that
  belongs to one browser session. Signing in switches that client's PostgREST
  ``Authorization`` header to the user's JWT, so the metadata repository built
  on the same client runs as the user and row-level security decides.
* :class:`DemoAuth` (demo mode) keeps accounts and sessions in the demo SQLite
  database, with scrypt password hashes and opaque random tokens.

Who is an administrator comes from where only the server can write it: in
Supabase the user's ``app_metadata`` (``{"role": "admin"}``, set with the
service role or in the dashboard; a user can change ``user_metadata`` but never
``app_metadata``), read from GoTrue's answer when the session is made or
refreshed; in demo mode the account's ``role`` column, which only
:meth:`DemoAuth.ensure_account` (the server seeding accounts) sets. Never an
e-mail address: anyone can sign up with one that is not taken yet.

Password sign-ins in both go through one :class:`lib.throttle.SignInThrottle`
per process (per e-mail and per client address, with backoff).

Both raise the same :mod:`lib.errors` classes with the same messages, so the
sign-in page does not care which one it talks to. ``str(exc)`` says what
happened and what to do; it never carries a token, a password or a server
trace.

One module each: ``base`` (the interface, values, messages and shared rules), ``supabase``, ``demo``.
The names below load their module on first use (lib.lazy), so a demo-mode process never imports
supabase-py.
"""

from lib.lazy import lazy_exports

_EXPORTS = {  # name -> its module; each loads on first use (lib.lazy)
    "MSG_INVALID_CREDENTIALS": "base",
    "MSG_EMAIL_NOT_CONFIRMED": "base",
    "MSG_RATE_LIMITED": "base",
    "MSG_EMAIL_RATE_LIMITED": "base",
    "MSG_UNAVAILABLE": "base",
    "MSG_ACCOUNT_EXISTS": "base",
    "MSG_SESSION_EXPIRED": "base",
    "MSG_DEMO_NO_RESET": "base",
    "MSG_SIGNUP_DISABLED": "base",
    "MIN_PASSWORD_LENGTH": "base",
    "MAX_PASSWORD_LENGTH": "base",
    "MAX_EMAIL_LENGTH": "base",
    "ADMIN_ROLE": "base",
    "RESEARCHER_ROLE": "base",
    "DEFAULT_MARGIN_S": "base",
    "Session": "base",
    "Caller": "base",
    "SignUpResult": "base",
    "AuthProvider": "base",
    "normalize_email": "base",
    "check_new_password": "base",
    "DemoAuth": "demo",
    "DEMO_ACCESS_TTL_S": "demo",
    "DEMO_REFRESH_TTL_S": "demo",
    "hash_password": "demo",
    "SupabaseAuth": "supabase",
    "new_supabase_client": "supabase",
    "translate_supabase_error": "supabase",
    "SUPABASE_TIMEOUT": "supabase",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
