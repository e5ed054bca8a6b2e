"""The demo's SQLite schema and ``public.user_files`` as ``sql/`` defines it agree
column for column: same names, the SQLite type each PostgreSQL type is stored
as, and the same nullability. A column added, dropped or loosened on one side
only fails here, before a demo-mode row and a cloud row can mean different things.
"""

from __future__ import annotations

import sqlite3

import psycopg

from lib.repository.sqlite import SQLITE_SCHEMA

Column = tuple[str, bool]
"""(declared SQLite type, nullable) of one column."""

SQLITE_TYPE_OF = {
    "uuid": "text",
    "text": "text",
    "integer": "integer",
    "bigint": "integer",
    "double precision": "real",
    "boolean": "integer",  # 0/1
    "ARRAY": "text",  # text[] → a JSON list
    "jsonb": "text",  # JSON text
    "timestamp with time zone": "text",  # fixed-width ISO-8601 UTC, so text order is time order
}
"""How each PostgreSQL column type of user_files is stored in SQLite."""


def postgres_columns(dsn: str) -> dict[str, Column]:
    """public.user_files after sql/ is applied, each column's type mapped to its SQLite storage."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select column_name, data_type, is_nullable from information_schema.columns "
            "where table_schema = 'public' and table_name = 'user_files'"
        ).fetchall()
    assert rows, "public.user_files does not exist after applying sql/"
    unmapped = {data_type for _, data_type, _ in rows} - SQLITE_TYPE_OF.keys()
    assert not unmapped, f"say how these PostgreSQL types are stored in SQLite: {unmapped}"
    return {name: (SQLITE_TYPE_OF[data_type], nullable == "YES") for name, data_type, nullable in rows}


def sqlite_columns(schema: str) -> dict[str, Column]:
    """user_files as a fresh SQLite database built from ``schema`` declares it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(schema)
        rows = conn.execute("pragma table_info(user_files)").fetchall()
    finally:
        conn.close()
    # (cid, name, type, notnull, default, pk); a primary key is never null in PostgreSQL.
    return {name: (declared.lower(), not (notnull or pk)) for _, name, declared, notnull, _, pk in rows}


def disagreements(postgres: dict[str, Column], sqlite: dict[str, Column]) -> dict[str, tuple[object, object]]:
    """column → (PostgreSQL side, SQLite side) for every column the two define differently."""
    return {name: (postgres.get(name), sqlite.get(name))
            for name in postgres.keys() | sqlite.keys() if postgres.get(name) != sqlite.get(name)}


def test_sqlite_schema_matches_sql_user_files(pg_dsn):
    assert disagreements(postgres_columns(pg_dsn), sqlite_columns(SQLITE_SCHEMA)) == {}


def test_a_column_on_one_side_only_is_a_disagreement(pg_dsn):
    postgres = postgres_columns(pg_dsn)
    widened = SQLITE_SCHEMA.replace("  analysis         text,", "  analysis         text,\n  camera text,")
    narrowed = SQLITE_SCHEMA.replace("  analysis         text,\n", "")
    loosened = SQLITE_SCHEMA.replace("bucket           text not null,", "bucket           text,")
    assert disagreements(postgres, sqlite_columns(widened)) == {"camera": (None, ("text", True))}
    assert disagreements(postgres, sqlite_columns(narrowed)) == {"analysis": (("text", True), None)}
    assert disagreements(postgres, sqlite_columns(loosened)) == {"bucket": (("text", False), ("text", True))}
