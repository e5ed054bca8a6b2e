"""What a Markdown string shows: rendered by a CommonMark parser with GFM's extras (tables, strikethrough,
bare-link autolinks) and LaTeX, like Streamlit's, for tests of text that must show as text."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

_MARKDOWN = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"]).use(
    dollarmath_plugin)


def rendered(text: str) -> tuple[str, set[str]]:
    """(the visible text, the HTML tags used) of ``text`` rendered as Markdown."""
    out = _MARKDOWN.render(text)
    tags = set(re.findall(r"<(\w+)", out))
    visible = re.sub(r"<br />\n", "\n", out)
    visible = re.sub(r"</?(p|ul|ol|li)>\n?", "", visible)
    return html.unescape(visible).rstrip("\n"), tags
