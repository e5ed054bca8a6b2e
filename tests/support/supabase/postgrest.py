"""PostgREST (``/rest/v1``): a request on a table or function, as SQL run as the caller.

select/insert/upsert/update/delete on ``public`` tables and views with the
filters of :mod:`filters`, ``order``, ``limit``/``offset``, ``Prefer:
count=exact | return=representation | resolution=merge-duplicates |
resolution=ignore-duplicates`` with ``on_conflict``, the single-object
``Accept`` header, and ``rpc/<function>``. Each request runs in one
transaction with ``set local role <jwt role>`` and ``request.jwt.claims`` set,
so the real grants and row-level security of ``sql/`` answer, as in Supabase.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.support.supabase.database import ConnectionPool
from tests.support.supabase.filters import column_names, ident, order_by, select_list, where
from tests.support.supabase.protocol import HttpError, Request, Response, postgrest_error
from tests.support.supabase.tokens import USER_AUDIENCE, ProjectKeys, audience_of

API_ROLES = frozenset({"anon", "authenticated", "service_role"})
"""The database roles a JWT may switch to."""
JWT_AUDIENCE = USER_AUDIENCE
"""PostgREST's ``jwt-aud``: a token that names an audience must name this one (API keys name none)."""
RESOLUTIONS = frozenset({"merge-duplicates", "ignore-duplicates"})
"""``Prefer: resolution=...``: the two ways an insert becomes an upsert."""
COUNT_PREFERENCES = frozenset({"exact", "planned", "estimated"})
SINGLE_OBJECT = "application/vnd.pgrst.object+json"
_STATUS_BY_SQLSTATE = {
    "23505": 409, "23503": 409, "23514": 400, "23502": 400, "22P02": 400, "22007": 400, "22008": 400,
    "42P01": 404, "42883": 404, "42703": 400, "P0001": 400, "40001": 409, "25006": 405,
}


class PostgREST:
    """The REST service: ``handle`` answers one request below ``/rest/v1/``."""

    def __init__(self, pool: ConnectionPool, keys: ProjectKeys) -> None:
        self.pool = pool
        self.keys = keys

    def handle(self, request: Request) -> Response:
        if request.path.startswith("rpc/"):
            return self._rpc(request, request.path.removeprefix("rpc/"))
        table = sql.SQL("public.{}").format(ident(request.path))
        verbs = {"GET": self._read, "HEAD": self._read, "POST": self._insert, "PATCH": self._update,
                 "DELETE": self._delete}
        verb = verbs.get(request.method)
        if verb is None:
            raise postgrest_error(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        return verb(request, table)

    # --- verbs -------------------------------------------------------------------

    def _read(self, request: Request, table: sql.Composable) -> Response:
        flat, values = request.query, []
        condition = where(request.params, values)
        limit = int(flat["limit"]) if "limit" in flat else None
        offset = int(flat.get("offset", 0))
        statement = sql.SQL("select to_jsonb(s) from (select {} from {} where {}{}{}) s").format(
            select_list(flat), table, condition, order_by(flat.get("order")),
            sql.SQL(" limit {} offset {}").format(sql.Literal(limit), sql.Literal(offset)),
        )
        count_sql = sql.SQL("select count(*) from {} where {}").format(table, condition) \
            if request.prefer().get("count") in COUNT_PREFERENCES else None
        rows, total = self._run(request, statement, values, count_sql)
        return _respond(request, rows, 200, total, offset)

    def _insert(self, request: Request, table: sql.Composable) -> Response:
        rows = request.body if isinstance(request.body, list) else [request.body]
        if not rows or not all(isinstance(r, dict) for r in rows):
            raise postgrest_error(400, "PGRST102", "insert needs a JSON object or a list of objects")
        flat = request.query
        names = column_names(flat["columns"]) if "columns" in flat else list(dict.fromkeys(k for r in rows for k in r))
        resolution = request.prefer().get("resolution")
        conflict = self._on_conflict(request, names, resolution)
        statement = sql.SQL(
            "with r as (insert into {t} ({cols})"
            " select {cols} from jsonb_populate_recordset(null::{t}, %s::jsonb){conflict}"
            " returning {back}) select {out}"
        ).format(t=table, cols=sql.SQL(", ").join(ident(n) for n in names), conflict=conflict,
                 back=_read_back(request), out=_returning(request))
        inserted, _ = self._run(request, statement, [Jsonb(rows)])
        status, body, headers = _respond(request, inserted, 201, _affected(request, inserted))
        if resolution in RESOLUTIONS:
            headers["Preference-Applied"] = f"resolution={resolution}"
        return status, body, headers

    def _on_conflict(self, request: Request, names: list[str], resolution: str | None) -> sql.Composable:
        """PostgREST's upsert: with a resolution preference, ``on conflict`` on ``on_conflict=`` or the
        primary key; ``merge-duplicates`` updates every column the body names, ``ignore-duplicates``
        skips the row. Without a preference ``on_conflict`` is ignored and a duplicate is a 409."""
        if resolution not in RESOLUTIONS:
            return sql.SQL("")
        target = column_names(request.query["on_conflict"]) if "on_conflict" in request.query \
            else self._primary_key(request.path)
        if not target:
            return sql.SQL("")
        clause = sql.SQL(" on conflict ({}) ").format(sql.SQL(", ").join(ident(c) for c in target))
        if resolution == "ignore-duplicates" or not names:
            return clause + sql.SQL("do nothing")
        updates = sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(ident(n)) for n in names)
        return clause + sql.SQL("do update set ") + updates

    def _primary_key(self, table: str) -> list[str]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "select a.attname from pg_index i join pg_attribute a"
                " on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
                " where i.indrelid = to_regclass(%s) and i.indisprimary order by a.attnum",
                (f"public.{table}",),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _update(self, request: Request, table: sql.Composable) -> Response:
        if not isinstance(request.body, dict) or not request.body:
            raise postgrest_error(400, "PGRST102", "PATCH needs a JSON object")
        values: list[Any] = []
        condition = where(request.params, values)
        names = sql.SQL(", ").join(ident(c) for c in request.body)
        statement = sql.SQL(
            "with r as (update {t} set ({names}) ="
            " (select {names} from jsonb_populate_record(null::{t}, %s::jsonb))"
            " where {where} returning {back}) select {out}"
        ).format(t=table, names=names, where=condition, back=_read_back(request), out=_returning(request))
        rows, _ = self._run(request, statement, [Jsonb(request.body), *values])
        return _respond(request, rows, 200, _affected(request, rows))

    def _delete(self, request: Request, table: sql.Composable) -> Response:
        values: list[Any] = []
        statement = sql.SQL("with r as (delete from {} where {} returning {}) select {}").format(
            table, where(request.params, values), _read_back(request), _returning(request))
        rows, _ = self._run(request, statement, values)
        return _respond(request, rows, 200, _affected(request, rows))

    def _rpc(self, request: Request, name: str) -> Response:
        func = sql.SQL("public.{}").format(ident(name))
        args = request.body if request.method == "POST" and isinstance(request.body, dict) else request.query
        values = [json.dumps(v) if isinstance(v, dict | list) else v for v in args.values()]
        named = [sql.SQL("{} => {}").format(ident(key), sql.Placeholder()) for key in args]
        call = sql.SQL("{}({})").format(func, sql.SQL(", ").join(named))
        with self.pool.connection() as conn:
            found = conn.execute("select bool_or(proretset) from pg_proc where proname = %s "
                                 "and pronamespace = 'public'::regnamespace", (name,)).fetchone()
        if found is None or found[0] is None:
            raise postgrest_error(404, "PGRST202", f"Could not find the function public.{name} in the schema cache")
        if found[0]:
            rows, _ = self._run(request, sql.SQL("select to_jsonb(f) from {} f").format(call), values)
            return 200, rows, {}
        rows, _ = self._run(request, sql.SQL("select to_jsonb({})").format(call), values)
        return 200, rows[0] if rows else None, {}

    # --- running as the caller ------------------------------------------------------

    def _run(self, request: Request, statement: sql.Composable, values: list[Any],
             count_statement: sql.Composable | None = None) -> tuple[list[Any], int | None]:
        """Run as the caller: their role, their claims, one transaction; rows of to_jsonb."""
        role, claims = self._role_and_claims(request)
        with self.pool.connection() as conn:
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                    conn.execute("select set_config('request.jwt.claims', %s, true), "
                                 "set_config('request.method', %s, true)", (json.dumps(claims), request.method))
                    rows = [r[0] for r in conn.execute(statement, values).fetchall()]
                    total = None
                    if count_statement is not None:
                        total = conn.execute(count_statement, values).fetchone()[0]  # type: ignore[index]
            except psycopg.Error as exc:
                raise _pg_error(exc, role) from exc
        return rows, total

    def _role_and_claims(self, request: Request) -> tuple[str, dict[str, Any]]:
        token = request.bearer() or request.headers.get("apikey")
        try:
            claims = self.keys.verify(token or "")
        except jwt.ExpiredSignatureError:
            raise _jwt_error("PGRST303", "JWT expired") from None
        except jwt.PyJWTError as exc:
            raise _jwt_error("PGRST301", f"JWSError {type(exc).__name__}") from None
        _check_audience(claims)
        role = claims.get("role", "anon")
        if role not in API_ROLES:
            raise _jwt_error("PGRST301", f"role \"{role}\" is not allowed")
        return role, claims


def _check_audience(claims: dict[str, Any]) -> None:
    """PostgREST with ``jwt-aud`` set: no ``aud`` passes; a string or any item of a list must match."""
    try:
        audience = audience_of(claims)
    except ValueError:
        raise _jwt_error("PGRST303", "The JWT 'aud' claim must be a string or an array of strings") from None
    if audience and JWT_AUDIENCE not in audience:
        raise _jwt_error("PGRST303", "JWT not in audience")


def _jwt_error(code: str, message: str) -> HttpError:
    error = postgrest_error(401, code, message)
    error.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{message}"'
    return error


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


def _read_back(request: Request) -> sql.Composable:
    """What a write returns: the ``select``\\ ed columns only, as PostgREST does, so a caller with column
    privileges writes with ``select=`` naming the columns it may read; nothing without return=representation."""
    if request.prefer().get("return") == "representation":
        return select_list(request.query)
    return sql.SQL("1")


def _returning(request: Request) -> sql.Composable:
    # Without return=representation PostgREST does not read rows back, so the
    # SELECT policy is not consulted; "null from r" keeps the statement's shape.
    if request.prefer().get("return") == "representation":
        return sql.SQL("to_jsonb(s) from (select {} from r) s").format(select_list(request.query))
    return sql.SQL("null from r")


def _affected(request: Request, rows: list[Any]) -> int | None:
    return len(rows) if "count" in request.prefer() else None


def _respond(request: Request, rows: list[Any], status: int, total: int | None = None,
             offset: int = 0) -> Response:
    prefs = request.prefer()
    headers: dict[str, str] = {}
    if "count" in prefs or total is not None:
        shown = f"{offset}-{offset + len(rows) - 1}" if rows else "*"
        headers["Content-Range"] = f"{shown}/{total if total is not None else len(rows)}"
    else:
        headers["Content-Range"] = f"{offset}-{offset + len(rows) - 1}/*" if rows else "*/*"
    if request.method not in {"GET", "HEAD"} and prefs.get("return", "minimal") != "representation":
        return (204 if status == 200 else status), None, headers
    if (request.headers.get("Accept") or "").startswith(SINGLE_OBJECT):
        if len(rows) != 1:
            raise postgrest_error(406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                                  f"The result contains {len(rows)} rows")
        return status, rows[0], headers
    return status, rows, headers
