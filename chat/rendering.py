"""Model output to safe HTML: markdown-it-py renders, Pygments highlights, nh3 sanitises.

Everything the model writes is untrusted. Raw HTML in the markdown is escaped by the
parser and whatever survives is filtered again by nh3's allowlist, so scripts, event
handlers and `javascript:` links never reach the page. Images are not rendered:
fetching them would let model output make the browser call other origins.
"""

from __future__ import annotations

import html
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True, classprefix="hl-")

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "ol": {"start"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return html.escape(code)
    return highlight(code, lexer, _FORMATTER)


def _image_as_text(self: object, tokens: list, idx: int, options: object, env: object) -> str:
    token = tokens[idx]
    alt = "".join(child.content for child in (token.children or []))
    return html.escape(f"[image: {alt}]" if alt else "[image]")


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "highlight": _highlight}).enable(
    ["table", "strikethrough"]
)
_MARKDOWN.add_render_rule("image", _image_as_text)

ALIGN_CLASSES = {
    "td": {"align-left", "align-center", "align-right"},
    "th": {"align-left", "align-center", "align-right"},
}


def _cell_with_align_class(self: RendererHTML, tokens: list, idx: int, options: Any, env: Any) -> str:
    """Column alignment as a class, not a style attribute: the Content-Security-Policy allows no inline styles."""
    token = tokens[idx]
    style = token.attrGet("style")
    if style:
        token.attrs.pop("style")
        token.attrSet("class", "align-" + str(style).partition(":")[2].strip())
    return self.renderToken(tokens, idx, options, env)


_MARKDOWN.add_render_rule("th_open", _cell_with_align_class)
_MARKDOWN.add_render_rule("td_open", _cell_with_align_class)


def markdown_to_safe_html(text: str) -> str:
    rendered = _MARKDOWN.render(text)
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        allowed_classes=ALIGN_CLASSES,
    )
