"""A Supabase stand-in for tests: GoTrue (auth) and a PostgREST subset over a real PostgreSQL.

There is no Supabase server on the test machines. This threaded HTTP server
answers what supabase-py 2.34 sends, closely enough that ``SupabaseAuth`` and
``SupabaseRepository`` run unchanged against it:

- ``/auth/v1``: ``token?grant_type=password|refresh_token``, ``signup``, ``user``,
  ``logout``, ``recover``. Users live in the test database's ``auth.users``;
  access tokens are HS256 JWTs (sub, email, role, aud, exp, session_id).
  Errors carry GoTrue's shape and codes (``invalid_credentials``,
  ``email_not_confirmed``, ``user_already_exists``, ``weak_password``,
  ``over_request_rate_limit``, ``refresh_token_not_found``, ``bad_jwt``...).
- ``/rest/v1/<table>`` and ``/rest/v1/rpc/<fn>``: select/insert/update/delete with
  PostgREST filters (eq, neq, gt, gte, lt, lte, like, ilike, is, in, cs, cd,
  or/and, not.), order, limit/offset, Prefer count=exact / return=..., and
  the single-object Accept header. Each request runs in one transaction with
  ``set local role <jwt role>`` and ``request.jwt.claims`` set, so the real
  grants and row-level security of ``sql/`` answer, as in Supabase.

Control (tests): ``create_user``, ``confirm_email``, ``set_rate_limited``,
``set_require_confirmation``, ``set_access_token_lifetime``,
``recovery_requests``; over HTTP for other processes under ``/_standin/...``
with the service-role key.

Run standalone (e2e in cloud mode)::

    python -m tests.support.supabase_standin --pg-dsn "host=... dbname=..." --port 54321
    python -m tests.support.supabase_standin --throwaway-pg --user demo@lab.test:secret123

It prints one JSON line (url, anon_key, service_role_key) once it is serving.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from supabase import create_client

from lib.repository import SupabaseRepository

API_VERSION = "2024-01-01"
API_ROLES = frozenset({"anon", "authenticated", "service_role"})
DEFAULT_LIFETIME_S = 3600
REFRESH_REUSE_INTERVAL_S = 10
"""GoTrue lets a just-rotated refresh token be reused this long (parallel tabs, timers)."""
MIN_PASSWORD_LENGTH = 6
PBKDF2_ITERATIONS = 1_000
"""Deliberately low: test passwords only, and tests must be fast."""
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILTER_OPS = {
    "eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
    "like": "like", "ilike": "ilike", "cs": "@>", "cd": "<@", "ov": "&&",
    "match": "~", "imatch": "~*",
}
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict", "or", "and",
                             "not.or", "not.and"})


class HttpError(Exception):
    """An error response: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message") or body.get("msg"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def gotrue_error(status: int, code: str, message: str, **extra: Any) -> HttpError:
    # With the 2024-01-01 API version header the client reads "code"; older ones "error_code".
    return HttpError(status, {"code": code, "error_code": code, "msg": message, **extra},
                     {"X-Supabase-Api-Version": API_VERSION})


def postgrest_error(status: int, code: str, message: str, details: str | None = None,
                    hint: str | None = None) -> HttpError:
    return HttpError(status, {"code": code, "message": message, "details": details, "hint": hint})


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    try:
        _, iterations, salt, expected = (stored or "").split("$")
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class RefreshToken:
    user_id: str
    session_id: str
    revoked_at: float | None = None


@dataclass
class StandinState:
    """Mutable switches and in-memory GoTrue state, guarded by ``lock``."""

    access_token_lifetime_s: int = DEFAULT_LIFETIME_S
    rate_limited: bool = False
    require_confirmation: bool = False
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    recovery_requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ConnectionPool:
    """A few autocommit connections reused across requests (each request is one transaction)."""

    def __init__(self, dsn: str, size: int = 8) -> None:
        self.dsn = dsn
        self.size = size
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self.dsn, autocommit=True, options="-c timezone=UTC")
            except psycopg.OperationalError as exc:
                raise postgrest_error(503, "PGRST000", "Could not connect with the database",
                                      str(exc).splitlines()[0]) from exc
        healthy = True
        try:
            yield conn
        except psycopg.OperationalError:
            healthy = False
            raise
        finally:
            with self._lock:
                if healthy and not conn.closed and len(self._idle) < self.size:
                    self._idle.append(conn)
                else:
                    conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()


class SupabaseStandin:
    """The stand-in server. ``start()`` serves on a thread; ``url``/``anon_key`` are what the app needs."""

    def __init__(self, pg_dsn: str, *, host: str = "127.0.0.1", port: int = 0,
                 jwt_secret: str | None = None) -> None:
        self.pg_dsn = pg_dsn
        self.jwt_secret = jwt_secret or secrets.token_urlsafe(32)
        self.state = StandinState()
        self.pool = ConnectionPool(pg_dsn)
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self.anon_key = self._api_key("anon")
        self.service_role_key = self._api_key("service_role")

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __repr__(self) -> str:
        return f"SupabaseStandin(url={self.url!r})"

    def _api_key(self, role: str) -> str:
        now = int(time.time())
        claims = {"iss": "supabase-standin", "role": role, "iat": now, "exp": now + 10 * 365 * 86400}
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> SupabaseStandin:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="supabase-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.pool.close()

    def __enter__(self) -> SupabaseStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control -------------------------------------------------------------

    def set_rate_limited(self, value: bool) -> None:
        self.state.rate_limited = value

    def set_require_confirmation(self, value: bool) -> None:
        self.state.require_confirmation = value

    def set_access_token_lifetime(self, seconds: int) -> None:
        self.state.access_token_lifetime_s = seconds

    @property
    def recovery_requests(self) -> list[str]:
        return list(self.state.recovery_requests)

    def reset(self) -> None:
        """Back to defaults, with no users, rows, sessions or tokens."""
        with self.state.lock:
            self.state.access_token_lifetime_s = DEFAULT_LIFETIME_S
            self.state.rate_limited = False
            self.state.require_confirmation = False
            self.state.refresh_tokens.clear()
            self.state.sessions.clear()
            self.state.recovery_requests.clear()
        self.pool.close()
        with psycopg.connect(self.pg_dsn, autocommit=True) as conn:
            conn.execute("truncate auth.users cascade")

    def create_user(self, email: str, password: str, *, confirmed: bool = True) -> str:
        """Create an account directly (no e-mail); returns its id."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "insert into auth.users (email, encrypted_password, email_confirmed_at) "
                "values (%s, %s, case when %s then now() end) returning id",
                (email.strip().lower(), hash_password(password), confirmed),
            ).fetchone()
        assert row is not None
        return str(row[0])

    def new_user_repository(self, name: str | None = None) -> SupabaseRepository:
        """A new confirmed account, signed in through a real supabase-py client, as its repository."""
        email, password = f"{name or uuid.uuid4().hex[:10]}@lab.test", "password-123"
        user_id = self.create_user(email, password)
        client = create_client(self.url, self.anon_key)
        client.auth.sign_in_with_password({"email": email, "password": password})
        return SupabaseRepository(client, user_id)

    def confirm_email(self, email: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("update auth.users set email_confirmed_at = now() where email = %s",
                         (email.strip().lower(),))

    def access_token_for(self, user_id: str, email: str = "", *, lifetime_s: int | None = None) -> str:
        """A signed access token for a user, without a session (for tests of expiry and RLS)."""
        return self._access_token({"id": user_id, "email": email}, str(uuid.uuid4()), lifetime_s)[0]

    # --- tokens --------------------------------------------------------------

    def _access_token(self, user: dict[str, Any], session_id: str,
                      lifetime_s: int | None = None) -> tuple[str, int, int]:
        now = int(time.time())
        lifetime = self.state.access_token_lifetime_s if lifetime_s is None else lifetime_s
        claims = {
            "iss": f"{self.url}/auth/v1", "sub": str(user["id"]), "aud": "authenticated",
            "exp": now + lifetime, "iat": now, "email": user.get("email") or "", "phone": "",
            "app_metadata": {"provider": "email", "providers": ["email"]}, "user_metadata": {},
            "role": "authenticated", "aal": "aal1",
            "amr": [{"method": "password", "timestamp": now}], "session_id": session_id,
            "is_anonymous": False,
        }
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256"), lifetime, now + lifetime

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims of a JWT we issued; raises jwt.PyJWTError."""
        return jwt.decode(token, self.jwt_secret, algorithms=["HS256"], options={"verify_aud": False})


# --- HTTP plumbing ------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "supabase-standin"
    disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms delayed-ACK stall

    @property
    def standin(self) -> SupabaseStandin:
        return self.server.standin  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output is for test failures."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise postgrest_error(400, "PGRST102", "Empty or invalid json") from None

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        try:
            body = self._body()
            self._check_api_key()
            status, payload, headers = _route(self, method, parts.path, params, body)
            self._send(status, payload, headers)
        except HttpError as exc:
            self._send(exc.status, exc.body, exc.headers)
        except Exception as exc:  # a stand-in bug must show up as a 500, not a hung client
            self._send(500, {"code": "STANDIN", "message": f"{type(exc).__name__}: {exc}"})

    def _check_api_key(self) -> None:
        key = self.headers.get("apikey")
        if not key:
            raise HttpError(401, {"message": "No API key found in request"})
        try:
            self.standin.decode(key)
        except jwt.PyJWTError:
            raise HttpError(401, {"message": "Invalid API key"}) from None

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:].strip() if value.lower().startswith("bearer ") else None


def _route(handler: _Handler, method: str, path: str, params: list[tuple[str, str]],
           body: Any) -> tuple[int, Any, dict[str, str]]:
    if path.startswith("/auth/v1/"):
        return _gotrue(handler, method, path.removeprefix("/auth/v1/"), dict(params), body)
    if path.startswith("/rest/v1/"):
        return _postgrest(handler, method, path.removeprefix("/rest/v1/"), params, body)
    if path.startswith("/_standin/"):
        return _control(handler, method, path.removeprefix("/_standin/"), body)
    raise HttpError(404, {"message": "no route"})


# --- GoTrue -------------------------------------------------------------------


def _user_json(row: dict[str, Any], *, identities: bool = True) -> dict[str, Any]:
    user_id = str(row["id"])
    created = _iso(row["created_at"])
    identity = {
        "id": user_id, "identity_id": str(uuid.uuid5(uuid.NAMESPACE_URL, user_id)), "user_id": user_id,
        "identity_data": {"email": row["email"], "sub": user_id, "email_verified": False},
        "provider": "email", "created_at": created, "last_sign_in_at": _iso(row.get("last_sign_in_at")),
        "updated_at": _iso(row.get("updated_at")),
    }
    return {
        "id": user_id, "aud": "authenticated", "role": "authenticated", "email": row["email"], "phone": "",
        "email_confirmed_at": _iso(row.get("email_confirmed_at")),
        "confirmed_at": _iso(row.get("email_confirmed_at")),
        "confirmation_sent_at": _iso(row.get("confirmation_sent_at")),
        "last_sign_in_at": _iso(row.get("last_sign_in_at")),
        "app_metadata": row.get("raw_app_meta_data") or {"provider": "email", "providers": ["email"]},
        "user_metadata": row.get("raw_user_meta_data") or {},
        "identities": [identity] if identities else [],
        "created_at": created, "updated_at": _iso(row.get("updated_at")), "is_anonymous": False,
    }


def _find_user(standin: SupabaseStandin, *, email: str | None = None,
               user_id: str | None = None) -> dict[str, Any] | None:
    with standin.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        if email is not None:
            cur.execute("select * from auth.users where email = %s", (email.strip().lower(),))
        else:
            cur.execute("select * from auth.users where id = %s", (user_id,))
        return cur.fetchone()


def _new_session(standin: SupabaseStandin, user: dict[str, Any]) -> dict[str, Any]:
    session_id = str(uuid.uuid4())
    with standin.state.lock:
        standin.state.sessions.add(session_id)
    return _session_json(standin, user, session_id)


def _session_json(standin: SupabaseStandin, user: dict[str, Any], session_id: str) -> dict[str, Any]:
    with standin.pool.connection() as conn:
        conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (user["id"],))
    refresh = secrets.token_urlsafe(24)
    with standin.state.lock:
        standin.state.refresh_tokens[refresh] = RefreshToken(str(user["id"]), session_id)
    access, lifetime, expires_at = standin._access_token(user, session_id)
    fresh = _find_user(standin, user_id=str(user["id"])) or user
    return {"access_token": access, "token_type": "bearer", "expires_in": lifetime, "expires_at": expires_at,
            "refresh_token": refresh, "user": _user_json(fresh)}


def _require_not_limited(standin: SupabaseStandin, code: str = "over_request_rate_limit") -> None:
    if standin.state.rate_limited:
        message = "email rate limit exceeded" if code == "over_email_send_rate_limit" else \
            "Request rate limit reached"
        raise gotrue_error(429, code, message)


def _gotrue(handler: _Handler, method: str, path: str, query: dict[str, str],
            body: Any) -> tuple[int, Any, dict[str, str]]:
    standin = handler.standin
    body = body if isinstance(body, dict) else {}
    headers = {"X-Supabase-Api-Version": API_VERSION}
    if method == "POST" and path == "token":
        grant = query.get("grant_type")
        _require_not_limited(standin)
        if grant == "password":
            return 200, _password_grant(standin, body), headers
        if grant == "refresh_token":
            return 200, _refresh_grant(standin, str(body.get("refresh_token") or "")), headers
        raise gotrue_error(400, "validation_failed", "unsupported_grant_type")
    if method == "POST" and path == "signup":
        _require_not_limited(standin, "over_email_send_rate_limit")
        return 200, _signup(standin, body), headers
    if method == "GET" and path == "user":
        user, _ = _authenticated_user(handler)
        return 200, _user_json(user), headers
    if method == "POST" and path == "logout":
        _logout(handler, query.get("scope", "global"))
        return 204, None, headers
    if method == "POST" and path == "recover":
        _require_not_limited(standin, "over_email_send_rate_limit")
        with standin.state.lock:
            standin.state.recovery_requests.append(str(body.get("email") or "").strip().lower())
        return 200, {}, headers
    if method == "GET" and path == "health":
        return 200, {"name": "GoTrue", "version": "standin"}, headers
    raise gotrue_error(404, "not_found", f"{method} /auth/v1/{path} is not part of the stand-in")


def _password_grant(standin: SupabaseStandin, body: dict[str, Any]) -> dict[str, Any]:
    email, password = str(body.get("email") or ""), str(body.get("password") or "")
    user = _find_user(standin, email=email) if email else None
    if user is None or not verify_password(password, user["encrypted_password"]):
        raise gotrue_error(400, "invalid_credentials", "Invalid login credentials")
    if user["email_confirmed_at"] is None:
        raise gotrue_error(400, "email_not_confirmed", "Email not confirmed")
    return _new_session(standin, user)


def _refresh_grant(standin: SupabaseStandin, token: str) -> dict[str, Any]:
    with standin.state.lock:
        record = standin.state.refresh_tokens.get(token)
        if record is None or record.session_id not in standin.state.sessions:
            raise gotrue_error(400, "refresh_token_not_found",
                               "Invalid Refresh Token: Refresh Token Not Found")
        now = time.time()
        if record.revoked_at is not None and now - record.revoked_at > REFRESH_REUSE_INTERVAL_S:
            raise gotrue_error(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
        record.revoked_at = record.revoked_at or now
    user = _find_user(standin, user_id=record.user_id)
    if user is None:
        raise gotrue_error(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    return _session_json(standin, user, record.session_id)


def _signup(standin: SupabaseStandin, body: dict[str, Any]) -> dict[str, Any]:
    email = str(body.get("email") or "").strip().lower()
    password = str(body.get("password") or "")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise gotrue_error(400, "validation_failed", "Unable to validate email address: invalid format")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise gotrue_error(422, "weak_password",
                           f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                           weak_password={"reasons": ["length"]})
    existing = _find_user(standin, email=email)
    confirm = standin.state.require_confirmation
    if existing is not None and not confirm:
        raise gotrue_error(422, "user_already_exists", "User already registered")
    if existing is not None:
        # GoTrue hides existing accounts when confirmation is on: a fake user with no identities.
        fake = {**existing, "id": uuid.uuid4(), "email_confirmed_at": None, "last_sign_in_at": None}
        return _user_json(fake, identities=False)
    with standin.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "insert into auth.users (email, encrypted_password, email_confirmed_at, confirmation_sent_at,"
            " raw_user_meta_data) values (%s, %s, case when %s then null else now() end,"
            " case when %s then now() end, %s) returning *",
            (email, hash_password(password), confirm, confirm, Jsonb(body.get("data") or {})),
        )
        user = cur.fetchone()
    assert user is not None
    return _user_json(user) if confirm else _new_session(standin, user)


def _authenticated_user(handler: _Handler) -> tuple[dict[str, Any], dict[str, Any]]:
    token = handler.bearer()
    if not token:
        raise gotrue_error(401, "no_authorization", "This endpoint requires a Bearer token")
    try:
        claims = handler.standin.decode(token)
    except jwt.ExpiredSignatureError:
        raise gotrue_error(403, "bad_jwt", "invalid JWT: unable to parse or verify signature, "
                                           "token has invalid claims: token is expired") from None
    except jwt.PyJWTError:
        raise gotrue_error(403, "bad_jwt", "invalid JWT: unable to parse or verify signature") from None
    if not claims.get("sub"):
        raise gotrue_error(403, "bad_jwt", "invalid claim: missing sub claim")
    with handler.standin.state.lock:
        active = claims.get("session_id") in handler.standin.state.sessions
    if not active:
        raise gotrue_error(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    user = _find_user(handler.standin, user_id=claims["sub"])
    if user is None:
        raise gotrue_error(403, "user_not_found", "User from sub claim in JWT does not exist")
    return user, claims


def _logout(handler: _Handler, scope: str) -> None:
    user, claims = _authenticated_user(handler)
    state = handler.standin.state
    with state.lock:
        mine = {t.session_id for t in state.refresh_tokens.values() if t.user_id == str(user["id"])}
        if scope == "local":
            ended = {claims["session_id"]}
        elif scope == "others":
            ended = mine - {claims["session_id"]}
        else:
            ended = mine | {claims["session_id"]}
        state.sessions -= ended
        for token in [t for t, r in state.refresh_tokens.items() if r.session_id in ended]:
            del state.refresh_tokens[token]


def _control(handler: _Handler, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
    """Test control over HTTP for other processes (e2e); needs the service-role key."""
    standin = handler.standin
    if handler.headers.get("apikey") != standin.service_role_key:
        raise HttpError(403, {"message": "the control API needs the service-role key"})
    body = body if isinstance(body, dict) else {}
    if method == "POST" and path == "users":
        user_id = standin.create_user(body["email"], body["password"], confirmed=body.get("confirmed", True))
        return 201, {"id": user_id}, {}
    if method == "POST" and path == "settings":
        if "rate_limited" in body:
            standin.set_rate_limited(bool(body["rate_limited"]))
        if "require_confirmation" in body:
            standin.set_require_confirmation(bool(body["require_confirmation"]))
        if "access_token_lifetime_s" in body:
            standin.set_access_token_lifetime(int(body["access_token_lifetime_s"]))
        return 200, {}, {}
    if method == "GET" and path == "recovery_requests":
        return 200, standin.recovery_requests, {}
    raise HttpError(404, {"message": "no such control"})


# --- PostgREST ----------------------------------------------------------------


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside double quotes and parentheses."""
    parts: list[str] = []
    depth, quoted, escaped, current = 0, False, False, []
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == sep:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p != ""]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _ident(name: str) -> sql.Identifier:
    if not IDENTIFIER.match(name):
        raise postgrest_error(400, "PGRST100", f"'{name}' is not a column name the stand-in accepts")
    return sql.Identifier(name)


def _condition(column: str, expr: str, params: list[Any]) -> sql.Composable:
    """``col`` + ``[not.]op.value`` as SQL, values always bound as parameters."""
    negate = expr.startswith("not.")
    if negate:
        expr = expr[4:]
    op, _, value = expr.partition(".")
    col = _ident(column)
    if op == "is":
        literal = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}.get(value.lower())
        if literal is None:
            raise postgrest_error(400, "PGRST100", f"is.{value} is not supported")
        cond: sql.Composable = sql.SQL("{} is " + literal).format(col)
    elif op == "in":
        items = [_unquote(v) for v in _split_top(value.strip()[1:-1])] if value.startswith("(") else []
        if not items:
            cond = sql.SQL("false")
        else:
            params.extend(items)
            cond = sql.SQL("{} in ({})").format(col, sql.SQL(", ").join(sql.Placeholder() * len(items)))
    elif op in FILTER_OPS:
        value = _unquote(value)
        if op in {"like", "ilike"}:
            value = value.replace("*", "%")
        params.append(value)
        cond = sql.SQL("{} " + FILTER_OPS[op] + " {}").format(col, sql.Placeholder())
    else:
        raise postgrest_error(400, "PGRST100", f"operator '{op}' is not supported by the stand-in")
    return sql.SQL("not ({})").format(cond) if negate else cond


def _logic(kind: str, inner: str, params: list[Any]) -> sql.Composable:
    """``or=(a.eq.1,and(b.eq.2,c.eq.3))`` style trees."""
    negate = kind.startswith("not.")
    joiner = " or " if kind.removeprefix("not.") == "or" else " and "
    conditions = []
    for item in _split_top(inner):
        match = re.match(r"^(not\.)?(and|or)\((.*)\)$", item, re.S)
        if match:
            conditions.append(_logic((match.group(1) or "") + match.group(2), match.group(3), params))
        else:
            column, _, expr = item.partition(".")
            conditions.append(_condition(column, expr, params))
    combined = sql.SQL("(") + sql.SQL(joiner).join(conditions) + sql.SQL(")")
    return sql.SQL("not {}").format(combined) if negate else combined


def _where(params: list[tuple[str, str]], values: list[Any]) -> sql.Composable:
    conditions: list[sql.Composable] = []
    for key, raw in params:
        if key in {"or", "and", "not.or", "not.and"}:
            if not (raw.startswith("(") and raw.endswith(")")):
                raise postgrest_error(400, "PGRST100", f"malformed logic tree '{raw}'")
            conditions.append(_logic(key, raw[1:-1], values))
        elif key not in RESERVED_PARAMS:
            conditions.append(_condition(key, raw, values))
    return sql.SQL(" and ").join(conditions) if conditions else sql.SQL("true")


def _select_list(params: dict[str, str]) -> sql.Composable:
    raw = params.get("select", "*").strip() or "*"
    if raw == "*":
        return sql.SQL("*")
    return sql.SQL(", ").join(_ident(c.strip()) for c in raw.split(","))


def _order(raw: str | None) -> sql.Composable:
    if not raw:
        return sql.SQL("")
    terms = []
    for term in raw.split(","):
        column, *mods = term.split(".")
        words = [{"asc": "asc", "desc": "desc", "nullsfirst": "nulls first", "nullslast": "nulls last"}[m]
                 for m in mods if m]
        terms.append(sql.SQL(" ").join([_ident(column), *[sql.SQL(w) for w in words]]))
    return sql.SQL(" order by ") + sql.SQL(", ").join(terms)


def _prefer(handler: _Handler) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for header in handler.headers.get_all("Prefer") or []:
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key:
                prefs[key] = value
    return prefs


def _role_and_claims(handler: _Handler) -> tuple[str, dict[str, Any]]:
    token = handler.bearer() or handler.headers.get("apikey")
    try:
        claims = handler.standin.decode(token or "")
    except jwt.ExpiredSignatureError:
        raise postgrest_error(401, "PGRST303", "JWT expired") from None
    except jwt.PyJWTError as exc:
        raise postgrest_error(401, "PGRST301", f"JWSError {type(exc).__name__}") from None
    role = claims.get("role", "anon")
    if role not in API_ROLES:
        raise postgrest_error(401, "PGRST301", f"role \"{role}\" is not allowed")
    return role, claims


_STATUS_BY_SQLSTATE = {
    "23505": 409, "23503": 409, "23514": 400, "23502": 400, "22P02": 400, "22007": 400, "22008": 400,
    "42P01": 404, "42883": 404, "42703": 400, "P0001": 400, "40001": 409, "25006": 405,
}


def _pg_error(exc: psycopg.Error, role: str) -> HttpError:
    state = exc.sqlstate or ""
    if state == "42501":
        status = 401 if role == "anon" else 403
    elif state in _STATUS_BY_SQLSTATE:
        status = _STATUS_BY_SQLSTATE[state]
    elif state[:2] in {"08", "53", "57"} or (isinstance(exc, psycopg.OperationalError) and not state):
        status = 503
    elif state[:2] in {"22", "23", "42"}:
        status = 400
    else:
        status = 500
    diag = exc.diag
    return postgrest_error(status, state or "PGRST000", diag.message_primary or str(exc),
                           diag.message_detail, diag.message_hint)


def _run(handler: _Handler, statement: sql.Composable, values: list[Any],
         count_statement: sql.Composable | None = None,
         count_values: list[Any] | None = None) -> tuple[list[Any], int | None]:
    """Run as the caller: their role, their claims, one transaction; rows of to_jsonb."""
    role, claims = _role_and_claims(handler)
    with handler.standin.pool.connection() as conn:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                conn.execute("select set_config('request.jwt.claims', %s, true), "
                             "set_config('request.method', %s, true)", (json.dumps(claims), handler.command))
                rows = [r[0] for r in conn.execute(statement, values).fetchall()]
                total = None
                if count_statement is not None:
                    total = conn.execute(count_statement, count_values or []).fetchone()[0]  # type: ignore[index]
        except psycopg.Error as exc:
            raise _pg_error(exc, role) from exc
    return rows, total


def _respond(handler: _Handler, rows: list[Any], status: int, prefs: dict[str, str],
             total: int | None = None, offset: int = 0) -> tuple[int, Any, dict[str, str]]:
    headers: dict[str, str] = {}
    if "count" in prefs or total is not None:
        shown = f"{offset}-{offset + len(rows) - 1}" if rows else "*"
        headers["Content-Range"] = f"{shown}/{total if total is not None else len(rows)}"
    else:
        headers["Content-Range"] = f"{offset}-{offset + len(rows) - 1}/*" if rows else "*/*"
    if handler.command != "GET" and prefs.get("return", "minimal") != "representation":
        return (204 if status == 200 else status), None, headers
    if (handler.headers.get("Accept") or "").startswith("application/vnd.pgrst.object+json"):
        if len(rows) != 1:
            raise postgrest_error(406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                                  f"The result contains {len(rows)} rows")
        return status, rows[0], headers
    return status, rows, headers


def _postgrest(handler: _Handler, method: str, path: str, params: list[tuple[str, str]],
               body: Any) -> tuple[int, Any, dict[str, str]]:
    prefs = _prefer(handler)
    if path.startswith("rpc/"):
        return _rpc(handler, method, path.removeprefix("rpc/"), params, body, prefs)
    table = sql.SQL("public.{}").format(_ident(path))
    flat = dict(params)
    values: list[Any] = []
    where = _where(params, values)
    selected = _select_list(flat)
    if method in {"GET", "HEAD"}:
        limit = int(flat["limit"]) if "limit" in flat else None
        offset = int(flat.get("offset", 0))
        statement = sql.SQL("select to_jsonb(s) from (select {} from {} where {}{}{}) s").format(
            selected, table, where, _order(flat.get("order")),
            sql.SQL(" limit {} offset {}").format(sql.Literal(limit), sql.Literal(offset)),
        )
        count_sql = sql.SQL("select count(*) from {} where {}").format(table, where) \
            if prefs.get("count") in {"exact", "planned", "estimated"} else None
        rows, total = _run(handler, statement, values, count_sql, list(values))
        return _respond(handler, rows, 200, prefs, total, offset)
    returning = prefs.get("return") == "representation"
    if method == "POST":
        statement = _insert_sql(table, flat, body, selected, returning)
        rows, _ = _run(handler, statement, [Jsonb(body if isinstance(body, list) else [body])])
        return _respond(handler, rows, 201, prefs, len(rows) if "count" in prefs else None)
    if method == "PATCH":
        if not isinstance(body, dict) or not body:
            raise postgrest_error(400, "PGRST102", "PATCH needs a JSON object")
        columns = [_ident(c) for c in body]
        names = sql.SQL(", ").join(columns)
        statement = sql.SQL(
            "with r as (update {t} set ({names}) ="
            " (select {names} from jsonb_populate_record(null::{t}, %s::jsonb))"
            " where {where} returning *) select {out}"
        ).format(t=table, names=names, where=where, out=_returning(selected, returning))
        rows, _ = _run(handler, statement, [Jsonb(body), *values])
        return _respond(handler, rows, 200, prefs, len(rows) if "count" in prefs else None)
    if method == "DELETE":
        statement = sql.SQL("with r as (delete from {} where {} returning *) select {}").format(
            table, where, _returning(selected, returning))
        rows, _ = _run(handler, statement, values)
        return _respond(handler, rows, 200, prefs, len(rows) if "count" in prefs else None)
    raise postgrest_error(405, "PGRST117", f"{method} is not supported by the stand-in")


def _returning(selected: sql.Composable, returning: bool) -> sql.Composable:
    # Without return=representation PostgREST does not read rows back, so the
    # SELECT policy is not consulted; count(*) keeps the statement's shape.
    if returning:
        return sql.SQL("to_jsonb(s) from (select {} from r) s").format(selected)
    return sql.SQL("null from r")


def _insert_sql(table: sql.Composable, flat: dict[str, str], body: Any, selected: sql.Composable,
                returning: bool) -> sql.Composable:
    rows = body if isinstance(body, list) else [body]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise postgrest_error(400, "PGRST102", "insert needs a JSON object or a list of objects")
    names = (
        flat["columns"].split(",") if "columns" in flat else list(dict.fromkeys(k for r in rows for k in r))
    )
    columns = sql.SQL(", ").join(_ident(n.strip().strip('"')) for n in names)
    return sql.SQL(
        "with r as (insert into {t} ({cols})"
        " select {cols} from jsonb_populate_recordset(null::{t}, %s::jsonb)"
        " returning *) select {out}"
    ).format(t=table, cols=columns, out=_returning(selected, returning))


def _rpc(handler: _Handler, method: str, name: str, params: list[tuple[str, str]], body: Any,
         prefs: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    func = sql.SQL("public.{}").format(_ident(name))
    args = body if method == "POST" and isinstance(body, dict) else dict(params)
    values: list[Any] = []
    named = []
    for key, value in args.items():
        named.append(sql.SQL("{} => {}").format(_ident(key), sql.Placeholder()))
        values.append(json.dumps(value) if isinstance(value, dict | list) else value)
    call = sql.SQL("{}({})").format(func, sql.SQL(", ").join(named))
    with handler.standin.pool.connection() as conn:
        found = conn.execute("select bool_or(proretset) from pg_proc where proname = %s "
                             "and pronamespace = 'public'::regnamespace", (name,)).fetchone()
    if found is None or found[0] is None:
        raise postgrest_error(404, "PGRST202",
                              f"Could not find the function public.{name} in the schema cache")
    if found[0]:
        statement = sql.SQL("select to_jsonb(f) from {} f").format(call)
        rows, _ = _run(handler, statement, values)
        return 200, rows, {}
    rows, _ = _run(handler, sql.SQL("select to_jsonb({})").format(call), values)
    return 200, rows[0] if rows else None, {}


# --- pytest fixtures ------------------------------------------------------------


@pytest.fixture(scope="module")
def supabase_standin_server(pg_dsn: str) -> Iterator[SupabaseStandin]:
    """One stand-in per test module over the session's PostgreSQL."""
    with SupabaseStandin(pg_dsn) as standin:
        yield standin


@pytest.fixture
def supabase_standin(supabase_standin_server: SupabaseStandin) -> SupabaseStandin:
    """The module's stand-in, reset: default switches, no users, no rows, no sessions."""
    supabase_standin_server.reset()
    return supabase_standin_server


# --- command line -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pg-dsn", help="PostgreSQL with the shim and sql/ applied (or --apply-schema)")
    source.add_argument("--throwaway-pg", action="store_true", help="start a private PostgreSQL cluster")
    parser.add_argument("--apply-schema", action="store_true", help="apply the shim and sql/ to --pg-dsn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jwt-secret", default=None)
    parser.add_argument("--access-token-lifetime", type=int, default=DEFAULT_LIFETIME_S)
    parser.add_argument("--require-confirmation", action="store_true")
    parser.add_argument("--user", action="append", default=[], metavar="EMAIL:PASSWORD",
                        help="create a confirmed account (repeatable)")
    args = parser.parse_args(argv)

    from tests.support.postgres import apply_schema, prepared_database

    with contextlib.ExitStack() as stack:
        if args.throwaway_pg:
            dsn = stack.enter_context(prepared_database())
        else:
            dsn = args.pg_dsn
            if args.apply_schema:
                apply_schema(dsn)
        standin = stack.enter_context(SupabaseStandin(dsn, host=args.host, port=args.port,
                                                      jwt_secret=args.jwt_secret))
        standin.set_access_token_lifetime(args.access_token_lifetime)
        standin.set_require_confirmation(args.require_confirmation)
        for spec in args.user:
            email, _, password = spec.partition(":")
            if _find_user(standin, email=email) is None:
                standin.create_user(email, password)
        print(json.dumps({"url": standin.url, "anon_key": standin.anon_key,
                          "service_role_key": standin.service_role_key, "pg_dsn": dsn}), flush=True)
        stopped = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopped.set())
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
