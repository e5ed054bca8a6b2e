"""The stand-in's side of PostgreSQL: a small connection pool, and accounts in ``auth.users``."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support.supabase.protocol import postgrest_error

PBKDF2_ITERATIONS = 1_000
"""Deliberately low: test passwords only, and tests must be fast."""
POOL_SIZE = 8
"""Idle connections kept; a burst beyond it opens (and then closes) more."""


class ConnectionPool:
    """A few autocommit connections reused across requests (each request is one transaction)."""

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
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


def normalise_email(email: str) -> str:
    """GoTrue stores and looks up addresses trimmed and lower-cased."""
    return email.strip().lower()


class Accounts:
    """``auth.users``: the rows GoTrue owns, read and written with the pool's (superuser) connections."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def find(self, *, email: str | None = None, user_id: str | None = None) -> dict[str, Any] | None:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if email is not None:
                cur.execute("select * from auth.users where email = %s", (normalise_email(email),))
            else:
                cur.execute("select * from auth.users where id = %s", (user_id,))
            return cur.fetchone()

    def create(self, email: str, password: str, *, confirmed: bool,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new account; unconfirmed ones are stamped as if a confirmation e-mail went out."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "insert into auth.users (email, encrypted_password, email_confirmed_at, confirmation_sent_at,"
                " raw_user_meta_data) values (%s, %s, case when %s then now() end,"
                " case when %s then null else now() end, %s) returning *",
                (normalise_email(email), hash_password(password), confirmed, confirmed, Jsonb(metadata or {})),
            )
            row = cur.fetchone()
        assert row is not None
        return row

    def confirm(self, *, email: str | None = None, user_id: str | None = None) -> None:
        """Mark the address confirmed, as following the link in the confirmation e-mail does."""
        column, value = ("email", normalise_email(email)) if email is not None else ("id", user_id)
        with self.pool.connection() as conn:
            conn.execute(sql.SQL("update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()),"
                                 " updated_at = now() where {} = %s").format(sql.Identifier(column)), (value,))

    def merge_app_metadata(self, user_id: str, values: dict[str, Any]) -> None:
        """What GoTrue's admin update does with ``app_metadata``: merged into the stored object."""
        with self.pool.connection() as conn:
            conn.execute("update auth.users set raw_app_meta_data = raw_app_meta_data || %s, updated_at = now()"
                         " where id = %s", (Jsonb(values), user_id))

    def resend_confirmation(self, user_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("update auth.users set confirmation_sent_at = now() where id = %s", (user_id,))

    def touch_sign_in(self, user_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (user_id,))

    def delete_all(self) -> None:
        """Every account and, by cascade, every row that belongs to one."""
        with psycopg.connect(self.pool.dsn, autocommit=True) as conn:
            conn.execute("truncate auth.users cascade")
