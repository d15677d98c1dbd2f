"""Model output becomes safe HTML, whatever the model writes."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chat.rendering import markdown_to_safe_html
from chat.services import title_from_message


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        '<div onclick="alert(1)">x</div>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "```html\n<script>alert(1)</script>\n```",
        "<svg onload=alert(1)>",
    ],
)
def test_hostile_markup_renders_inert(hostile) -> None:
    elements = parse_elements(markdown_to_safe_html(hostile))

    assert {tag for tag, _ in elements} <= {"p", "a", "pre", "code", "span"}
    for tag, attrs in elements:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def parse_elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every element a browser would build from `html`, with its attributes."""
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def test_markdown_renders_tables_lists_and_highlighted_code() -> None:
    html = markdown_to_safe_html(
        "# Title\n\n- one\n- two\n\n|a|b|\n|-|-|\n|1|2|\n\n```python\ndef f():\n    return 1\n```"
    )

    assert "<h1>Title</h1>" in html and "<li>one</li>" in html and "<table>" in html
    assert '<code class="language-python">' in html and '<span class="hl-k">def</span>' in html


def test_links_open_in_a_new_tab_without_referrer() -> None:
    html = markdown_to_safe_html("[docs](https://example.com/docs)")

    assert 'href="https://example.com/docs"' in html
    assert 'target="_blank"' in html and "noopener" in html and "noreferrer" in html


def test_images_are_not_fetched() -> None:
    html = markdown_to_safe_html("![a chart](https://tracker.example/pixel.png)")

    assert "tracker.example" not in html and "[image: a chart]" in html


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("Short question?", "Short question?"),
        ("\n\n  First line\nsecond line", "First line"),
        ("word " * 30, "word word word word word word word word word word word word…"),
    ],
)
def test_title_comes_from_the_first_line(content, title) -> None:
    assert title_from_message(content) == title


def test_single_newlines_stay_line_breaks() -> None:
    assert markdown_to_safe_html("roses are red\nviolets are blue") == "<p>roses are red<br>\nviolets are blue</p>\n"
