"""PostgREST's query-string grammar as SQL: filters (``col=op.value``), logic trees (``or=(...)``),
``select`` and ``order``. Values are always bound as parameters, never spliced into the SQL."""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from tests.support.supabase.protocol import postgrest_error

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""The column names the stand-in accepts (no quoting, no JSON paths, no embedding)."""
FILTER_OPS = {
    "eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
    "like": "like", "ilike": "ilike", "cs": "@>", "cd": "<@", "ov": "&&",
    "match": "~", "imatch": "~*",
}
"""PostgREST operator → SQL operator, for those that take one bound value."""
IS_VALUES = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}
LOGIC_KEYS = frozenset({"or", "and", "not.or", "not.and"})
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"}) | LOGIC_KEYS
"""Query parameters that are not column filters."""
ORDER_WORDS = {"asc": "asc", "desc": "desc", "nullsfirst": "nulls first", "nullslast": "nulls last"}


def split_top(text: str, sep: str = ",") -> list[str]:
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


def unquote(value: str) -> str:
    """A double-quoted filter value without its quotes and backslash escapes."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def ident(name: str) -> sql.Identifier:
    """A column name as an SQL identifier; anything else is a 400, never SQL."""
    if not IDENTIFIER.match(name):
        raise postgrest_error(400, "PGRST100", f"'{name}' is not a column name the stand-in accepts")
    return sql.Identifier(name)


def condition(column: str, expr: str, params: list[Any]) -> sql.Composable:
    """``col`` + ``[not.]op.value`` as SQL, values always bound as parameters."""
    negate = expr.startswith("not.")
    if negate:
        expr = expr[4:]
    op, _, value = expr.partition(".")
    col = ident(column)
    if op == "is":
        literal = IS_VALUES.get(value.lower())
        if literal is None:
            raise postgrest_error(400, "PGRST100", f"is.{value} is not supported")
        cond: sql.Composable = sql.SQL("{} is " + literal).format(col)
    elif op == "in":
        items = [unquote(v) for v in split_top(value.strip()[1:-1])] if value.startswith("(") else []
        if not items:
            cond = sql.SQL("false")
        else:
            params.extend(items)
            cond = sql.SQL("{} in ({})").format(col, sql.SQL(", ").join(sql.Placeholder() * len(items)))
    elif op in FILTER_OPS:
        value = unquote(value)
        if op in {"like", "ilike"}:
            value = value.replace("*", "%")
        params.append(value)
        cond = sql.SQL("{} " + FILTER_OPS[op] + " {}").format(col, sql.Placeholder())
    else:
        raise postgrest_error(400, "PGRST100", f"operator '{op}' is not supported by the stand-in")
    return sql.SQL("not ({})").format(cond) if negate else cond


def logic(kind: str, inner: str, params: list[Any]) -> sql.Composable:
    """``or=(a.eq.1,and(b.eq.2,c.eq.3))`` style trees."""
    negate = kind.startswith("not.")
    joiner = " or " if kind.removeprefix("not.") == "or" else " and "
    conditions = []
    for item in split_top(inner):
        match = re.match(r"^(not\.)?(and|or)\((.*)\)$", item, re.S)
        if match:
            conditions.append(logic((match.group(1) or "") + match.group(2), match.group(3), params))
        else:
            column, _, expr = item.partition(".")
            conditions.append(condition(column, expr, params))
    combined = sql.SQL("(") + sql.SQL(joiner).join(conditions) + sql.SQL(")")
    return sql.SQL("not {}").format(combined) if negate else combined


def where(params: list[tuple[str, str]], values: list[Any]) -> sql.Composable:
    """Every filter and logic tree of the query string, and-ed; their values appended to ``values``."""
    conditions: list[sql.Composable] = []
    for key, raw in params:
        if key in LOGIC_KEYS:
            if not (raw.startswith("(") and raw.endswith(")")):
                raise postgrest_error(400, "PGRST100", f"malformed logic tree '{raw}'")
            conditions.append(logic(key, raw[1:-1], values))
        elif key not in RESERVED_PARAMS:
            conditions.append(condition(key, raw, values))
    return sql.SQL(" and ").join(conditions) if conditions else sql.SQL("true")


def select_list(params: dict[str, str]) -> sql.Composable:
    """``select=a,b`` (or ``*``) as a column list."""
    raw = params.get("select", "*").strip() or "*"
    if raw == "*":
        return sql.SQL("*")
    return sql.SQL(", ").join(ident(c.strip()) for c in raw.split(","))


def column_names(raw: str) -> list[str]:
    """``columns=`` or ``on_conflict=`` (``a,b`` or ``"a","b"``) as checked column names."""
    names = [name.strip().strip('"') for name in raw.split(",")]
    for name in names:
        ident(name)
    return names


def order_by(raw: str | None) -> sql.Composable:
    """``order=a.desc.nullslast,b`` as an ``order by`` clause (empty without one)."""
    if not raw:
        return sql.SQL("")
    terms = []
    for term in raw.split(","):
        column, *mods = term.split(".")
        unknown = [m for m in mods if m and m not in ORDER_WORDS]
        if unknown:
            raise postgrest_error(400, "PGRST100", f"'{unknown[0]}' is not an order modifier")
        words = [ORDER_WORDS[m] for m in mods if m]
        terms.append(sql.SQL(" ").join([ident(column), *[sql.SQL(w) for w in words]]))
    return sql.SQL(" order by ") + sql.SQL(", ").join(terms)

