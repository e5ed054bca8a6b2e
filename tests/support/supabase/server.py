"""The stand-in's HTTP server: the gateway's API-key check, routing to GoTrue and PostgREST, and the
controls tests use (in process, or over ``/_standin/...`` with the service-role key)."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from supabase import create_client

from lib.repository import SupabaseRepository
from tests.support.supabase.database import Accounts, ConnectionPool
from tests.support.supabase.gotrue import GoTrue, GoTrueState
from tests.support.supabase.postgrest import PostgREST
from tests.support.supabase.protocol import HttpError, Request, Response, gateway_error, postgrest_error
from tests.support.supabase.tokens import ProjectKeys

NEW_USER_PASSWORD = "password-123"
"""The password of the accounts ``new_user_repository`` creates."""


class SupabaseStandin:
    """The stand-in server. ``start()`` serves on a thread; ``url``/``anon_key`` are what the app needs."""

    def __init__(self, pg_dsn: str, *, host: str = "127.0.0.1", port: int = 0,
                 jwt_secret: str | None = None) -> None:
        self.pg_dsn = pg_dsn
        self.keys = ProjectKeys.create(jwt_secret)
        self.pool = ConnectionPool(pg_dsn)
        self.accounts = Accounts(self.pool)
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self.gotrue = GoTrue(self.accounts, self.keys, issuer=f"{self.url}/auth/v1")
        self.postgrest = PostgREST(self.pool, self.keys)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def anon_key(self) -> str:
        return self.keys.anon_key

    @property
    def service_role_key(self) -> str:
        return self.keys.service_role_key

    @property
    def jwt_secret(self) -> str:
        return self.keys.secret

    @property
    def state(self) -> GoTrueState:
        """GoTrue's switches, sessions and refresh tokens (tests revoke tokens through it)."""
        return self.gotrue.state

    def __repr__(self) -> str:
        return f"SupabaseStandin(url={self.url!r})"

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> SupabaseStandin:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="supabase-standin", daemon=True)
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
        """On: sign-up answers an unconfirmed user and no session, and sign-in says "Email not confirmed"
        until ``confirm_email`` (or the admin API's ``email_confirm``), as a real project does."""
        self.state.require_confirmation = value

    def set_access_token_lifetime(self, seconds: int) -> None:
        self.state.access_token_lifetime_s = seconds

    @property
    def recovery_requests(self) -> list[str]:
        return list(self.state.recovery_requests)

    def reset(self) -> None:
        """Back to defaults, with no users, rows, sessions or tokens."""
        self.state.reset()
        self.pool.close()
        self.accounts.delete_all()

    def create_user(self, email: str, password: str, *, confirmed: bool = True) -> str:
        """Create an account directly (no e-mail); returns its id."""
        return str(self.accounts.create(email, password, confirmed=confirmed)["id"])

    def confirm_email(self, email: str) -> None:
        """What following the link in the confirmation e-mail does."""
        self.accounts.confirm(email=email)

    def new_user_repository(self, name: str | None = None) -> SupabaseRepository:
        """A new confirmed account, signed in through a real supabase-py client, as its repository."""
        email = f"{name or uuid.uuid4().hex[:10]}@lab.test"
        user_id = self.create_user(email, NEW_USER_PASSWORD)
        client = create_client(self.url, self.anon_key)
        client.auth.sign_in_with_password({"email": email, "password": NEW_USER_PASSWORD})
        return SupabaseRepository(client, user_id)

    def access_token_for(self, user_id: str, email: str = "", *, lifetime_s: int | None = None) -> str:
        """A signed access token for a user, without a session (for tests of expiry and RLS)."""
        return self.gotrue.access_token(user_id, email, str(uuid.uuid4()), lifetime_s)[0]

    # --- routing ---------------------------------------------------------------

    def route(self, request: Request) -> Response:
        """The gateway: only the project's API keys pass, then the service the path names answers."""
        _check_api_key(self.keys, request)
        for prefix, service in (("/auth/v1/", self.gotrue.handle), ("/rest/v1/", self.postgrest.handle),
                                ("/_standin/", self._control)):
            if request.path.startswith(prefix):
                return service(_below(request, prefix))
        raise HttpError(404, {"message": "no Route matched with those values"})

    def _control(self, request: Request) -> Response:
        """Test control over HTTP for other processes (e2e); needs the service-role key."""
        if request.headers.get("apikey") != self.service_role_key:
            raise HttpError(403, {"message": "the control API needs the service-role key"})
        body = request.json_object()
        if (request.method, request.path) == ("POST", "settings"):
            if "rate_limited" in body:
                self.set_rate_limited(bool(body["rate_limited"]))
            if "require_confirmation" in body:
                self.set_require_confirmation(bool(body["require_confirmation"]))
            if "access_token_lifetime_s" in body:
                self.set_access_token_lifetime(int(body["access_token_lifetime_s"]))
            return 200, {}, {}
        if (request.method, request.path) == ("GET", "recovery_requests"):
            return 200, self.recovery_requests, {}
        raise HttpError(404, {"message": "no such control"})


def _check_api_key(keys: ProjectKeys, request: Request) -> None:
    # Kong's key-auth in front of every Supabase service: the key must be one
    # of the project's two, whatever else the secret may have signed.
    key = request.headers.get("apikey")
    if not key:
        raise gateway_error("No API key found in request", "No `apikey` request header or url param was found.")
    if not keys.is_api_key(key):
        raise gateway_error("Invalid API key", "Double check your Supabase `anon` or `service_role` API key.")


def _below(request: Request, prefix: str) -> Request:
    return Request(request.method, request.path.removeprefix(prefix), request.params, request.headers,
                   request.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "supabase-standin"
    disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output is for test failures."""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

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

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        standin: SupabaseStandin = self.server.standin  # type: ignore[attr-defined]
        try:
            request = Request(self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True),
                              self.headers, self._body())
            self._send(*standin.route(request))
        except HttpError as exc:
            self._send(exc.status, exc.body, exc.headers)
        except Exception as exc:  # a stand-in bug must show up as a 500, not a hung client
            self._send(500, {"code": "STANDIN", "message": f"{type(exc).__name__}: {exc}"})
