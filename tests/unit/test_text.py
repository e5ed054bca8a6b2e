"""components.text.literal (issue 14, attack 9): user text in any Markdown-rendering element shows as text.

Checked with a real CommonMark parser with GFM's extras (tables, strikethrough, bare-link autolinks) and
LaTeX: whatever the text, the escaped form renders to exactly that text, with no element but paragraphs
and line breaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.text import literal
from tests.support.markdown import rendered

HOSTILE = [
    "![x](https://evil.example/x.png)",
    "[click me](https://evil.example) and <https://evil.example>",
    "**bold** _it_ `code` ~~gone~~ $x^2$ $$y$$",
    "<img src=x onerror=alert(1)> &lt; &amp;",
    "# heading\n> quote\n- item\n+ item\n1. first\n2) second\n===\n---",
    "a | b\n--|--\n1 | 2",
    "www.evil.example and https://evil.example/x",
    ":red[red] :material/warning: \\*escaped\\*",
    "Sitzung 3 – Müller, take 2 (rest).avi",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_itself(text: str) -> None:
    visible, tags = rendered(literal(text))
    assert visible == text
    assert tags <= {"p", "br"}


def test_prose_punctuation_stays_readable_in_the_source() -> None:
    message = "That e-mail address and password don't match an account. Check both (and try again): ok?"
    assert literal(message) == message


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=60))
def test_any_text_renders_as_itself(text: str) -> None:
    text = text.strip()  # Markdown drops leading and trailing blanks of a paragraph
    if not text or "\n" in text:
        return
    visible, tags = rendered(literal(text))
    assert tags <= {"p", "br"}
    assert " ".join(visible.split()) == " ".join(text.split())  # runs of blanks collapse, as in HTML
