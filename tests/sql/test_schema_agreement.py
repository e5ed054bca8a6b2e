"""The demo's SQLite schema and ``public.user_files``, ``public.studies``, ``public.study_members`` (and
``public.jobs``) as ``sql/`` defines them agree column for column: same names, the SQLite type each
PostgreSQL type is stored as, and the same nullability. A column added, dropped or loosened on one side
only fails here, before a demo-mode row and a cloud row can mean different things.
"""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import pytest

from lib.errors import KeyOwnershipError
from lib.jobs.store import JOBS_SQLITE_SCHEMA
from lib.keys import check_record_key
from lib.repository.sqlite import SQLITE_SCHEMA, register_functions

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
    "date": "text",  # ISO-8601 YYYY-MM-DD
}
"""How each PostgreSQL column type of user_files is stored in SQLite."""


TABLES = ("user_files", "studies", "study_members", "recording_tombstones")
"""The tables both stores hold."""


def postgres_columns(dsn: str, table: str = "user_files") -> dict[str, Column]:
    """public.<table> after sql/ is applied, each column's type mapped to its SQLite storage."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select column_name, data_type, is_nullable from information_schema.columns "
            "where table_schema = 'public' and table_name = %s", (table,)
        ).fetchall()
    assert rows, f"public.{table} does not exist after applying sql/"
    unmapped = {data_type for _, data_type, _ in rows} - SQLITE_TYPE_OF.keys()
    assert not unmapped, f"say how these PostgreSQL types are stored in SQLite: {unmapped}"
    return {name: (SQLITE_TYPE_OF[data_type], nullable == "YES") for name, data_type, nullable in rows}


def sqlite_columns(schema: str, table: str = "user_files") -> dict[str, Column]:
    """``table`` as a fresh SQLite database built from ``schema`` declares it."""
    conn = sqlite3.connect(":memory:")
    try:
        register_functions(conn)
        conn.executescript(schema)
        rows = conn.execute(f"pragma table_info({table})").fetchall()
    finally:
        conn.close()
    # (cid, name, type, notnull, default, pk); a primary key is never null in PostgreSQL.
    return {name: (declared.lower(), not (notnull or pk)) for _, name, declared, notnull, _, pk in rows}


def disagreements(postgres: dict[str, Column], sqlite: dict[str, Column]) -> dict[str, tuple[object, object]]:
    """column → (PostgreSQL side, SQLite side) for every column the two define differently."""
    return {name: (postgres.get(name), sqlite.get(name))
            for name in postgres.keys() | sqlite.keys() if postgres.get(name) != sqlite.get(name)}


@pytest.mark.parametrize("table", TABLES)
def test_sqlite_schema_matches_sql(pg_dsn, table):
    assert disagreements(postgres_columns(pg_dsn, table), sqlite_columns(SQLITE_SCHEMA, table)) == {}


def test_sqlite_schema_matches_sql_jobs(pg_dsn):
    assert disagreements(postgres_columns(pg_dsn, "jobs"), sqlite_columns(JOBS_SQLITE_SCHEMA, "jobs")) == {}


def test_a_column_on_one_side_only_is_a_disagreement(pg_dsn):
    postgres = postgres_columns(pg_dsn)
    widened = SQLITE_SCHEMA.replace("  analysis         text,", "  analysis         text,\n  camera text,")
    narrowed = SQLITE_SCHEMA.replace("  analysis         text,\n", "")
    loosened = SQLITE_SCHEMA.replace("bucket           text not null,", "bucket           text,")
    assert disagreements(postgres, sqlite_columns(widened)) == {"camera": (None, ("text", True))}
    assert disagreements(postgres, sqlite_columns(narrowed)) == {"analysis": (("text", True), None)}
    assert disagreements(postgres, sqlite_columns(loosened)) == {"bucket": (("text", False), ("text", True))}


USER, RECORD, OTHER, STUDY = (str(uuid.UUID(int=n)) for n in (0x1111, 0x2222, 0x3333, 0x4444))
# The patterns sql/003_trust.sql passes for each key column.
SQL_FILE_PATTERNS = {"original": r"original\.[a-z0-9]{1,10}", "thumbnail": r"thumb\.jpg",
                     "preview": r"preview\.mp4", "ground_truth": r"ground_truth\.(csv|txt)"}


@pytest.mark.parametrize("kind", list(SQL_FILE_PATTERNS))
@pytest.mark.parametrize("key", [
    "recordings/{u}/2024/05/{r}/original.mp4", "recordings/{u}/2024/05/{r}/original.mkv",
    "recordings/{u}/1999/12/{r}/original.abcdefghij", "recordings/{u}/2024/05/{r}/original.abcdefghijk",
    "recordings/{u}/2024/05/{r}/thumb.jpg", "recordings/{u}/2024/05/{r}/preview.mp4",
    "recordings/{u}/2024/05/{r}/ground_truth.csv", "recordings/{u}/2024/05/{r}/ground_truth.txt",
    "recordings/{u}/2024/05/{r}/ground_truth.tsv", "recordings/{u}/2024/05/{o}/original.mp4",
    "recordings/{o}/2024/05/{r}/original.mp4", "recordings/{u}/../{o}/2024/05/{r}/original.mp4",
    "recordings/{u}/2024/05/{r}//original.mp4", "recordings/{u}/2024/00/{r}/original.mp4",
    "recordings/{u}/2024/05/{r}/original.mp4\n", "recordings/{u}/2024/05/{r}/Original.mp4",
])
@pytest.mark.parametrize("study", [None, STUDY])
def test_the_database_and_lib_keys_agree_on_the_key_layout(pg_dsn, kind, key, study):
    """sql/003_trust.sql, sql/005_studies.sql and lib.keys.check_record_key (which the SQLite schema calls)
    accept the same keys, in a personal space and in a study."""
    key = key.format(u=USER, r=RECORD, o=OTHER)
    if study is not None:  # the same shapes under the study's prefix
        key = key.replace(f"recordings/{USER}/", f"studies/{STUDY}/")
        key = key.replace(f"recordings/{OTHER}/", f"studies/{OTHER}/")
    with psycopg.connect(pg_dsn) as conn:
        in_sql = conn.execute("select public.user_files_key_ok(%s, %s, %s, %s, %s)",
                              (key, USER, study, RECORD, SQL_FILE_PATTERNS[kind])).fetchone()[0]
    try:
        in_lib = check_record_key(key, USER, RECORD, kind, study) == key
    except KeyOwnershipError:
        in_lib = False
    assert in_sql == in_lib
