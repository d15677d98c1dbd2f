"""Property-based tests (hypothesis) for the parts that read hostile input: the chunker,
the fetcher's address guard and the markdown renderer. Bounded: a fixed number of
examples each, no deadline flakiness on a loaded 2-core machine, no example database.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chat.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, markdown_to_safe_html
from ingestion.chunker import chunk_document, document_text, embedding_text
from ingestion.embedder import local_embedder
from ingestion.extractors import ExtractedDocument, Section
from ingestion.fetcher import FetchError, SafeFetcher

BOUNDED = hypothesis_settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# The chunker.

WORDS = st.sampled_from(
    ["budget", "the", "river", "x" * 80, "naïve", "東京", "🙂", "3.14", "end.", "Why?", "a-b_c", "\t", "  "]
)
TEXT = st.one_of(
    st.lists(st.one_of(WORDS, st.sampled_from(["\n", "\n\n", ". ", "\n- "])), max_size=400).map("".join),
    st.text(max_size=2000),
)
SECTIONS = st.lists(
    st.builds(
        Section,
        text=TEXT,
        heading_path=st.lists(st.text(max_size=40), max_size=3).map(tuple),
        page=st.one_of(st.none(), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=5,
)


@pytest.fixture(scope="module")
def count_tokens():
    return local_embedder().count_tokens


@BOUNDED
@given(sections=SECTIONS, title=st.text(max_size=80), max_tokens=st.integers(48, 256), overlap=st.integers(0, 40))
def test_chunks_fit_point_into_the_document_and_lose_no_words(count_tokens, sections, title, max_tokens, overlap):
    doc = ExtractedDocument(title=title, kind="text", sections=sections)
    full = document_text(doc)

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=max_tokens, overlap_tokens=overlap)

    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    covered = bytearray(len(full))
    for chunk in chunks:
        assert count_tokens(embedding_text(chunk, doc.title)) <= max_tokens
        assert chunk.text == full[chunk.char_start : chunk.char_end]
        assert chunk.text.strip(), "no empty chunks"
        covered[chunk.char_start : chunk.char_end] = b"\x01" * (chunk.char_end - chunk.char_start)
    lost = [char for char, seen in zip(full, covered, strict=True) if not seen and not char.isspace()]
    assert not lost, f"characters in no chunk: {''.join(lost)[:80]!r}"


# The fetcher's address guard: fake DNS answers; every connection attempt is recorded and refused.


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The oracle, written apart from the fetcher: where would a connection really go?"""
    if isinstance(address, ipaddress.IPv6Address):
        nat64 = address in ipaddress.IPv6Network("64:ff9b::/96")
        embedded = (
            address.ipv4_mapped
            or address.sixtofour
            or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if nat64 else None)
        )
        if embedded is not None:
            return _public(embedded)
    return address.is_global and not address.is_multicast and not address.is_reserved


@contextmanager
def no_dialling() -> Any:
    attempts: list[str] = []

    def connect(sock: socket.socket, address: Any) -> None:
        attempts.append(address[0])
        raise ConnectionRefusedError("the fuzz test never dials")

    def lookup(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a DNS lookup behind the fetcher's back: {args}")

    with patch.object(socket.socket, "connect", connect), patch.object(socket, "getaddrinfo", lookup):
        yield attempts


def resolver_for(addresses: list[Any]) -> Any:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (str(a), port, 0, 0))
            if a.version == 6
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (str(a), port))
            for a in addresses
        ]

    return resolve


SPECIAL = st.sampled_from([
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "255.255.255.255", "224.0.0.1", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "2002:7f00:1::1", "64:ff9b::a9fe:a9fe", "::", "ff02::1", "93.184.216.34", "2606:4700::1111",
    "::ffff:8.8.8.8", "198.18.0.1", "192.0.2.1",
]).map(ipaddress.ip_address)  # fmt: skip


@BOUNDED
@given(addresses=st.lists(st.one_of(SPECIAL, st.ip_addresses()), min_size=1, max_size=4, unique=True))
def test_guard_dials_only_public_addresses(addresses) -> None:
    with no_dialling() as attempts:
        with pytest.raises(FetchError) as caught:
            SafeFetcher(resolver=resolver_for(addresses), allowlist=[], connect_timeout=0.2, read_timeout=0.2).fetch(
                "http://fuzz.example/page"
            )

    if all(_public(address) for address in addresses):
        assert caught.value.code != "blocked_address", (addresses, caught.value.message)
        assert attempts and {ipaddress.ip_address(a) for a in attempts} <= set(addresses)
    else:
        assert caught.value.code == "blocked_address", (addresses, caught.value.code)
        assert attempts == [], f"dialled {attempts} though one answer is not public"


def _ipv4_spellings(address: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    value, octets = int(address), address.packed
    return st.sampled_from([
        str(value), hex(value), "0" + oct(value)[2:], ".".join(hex(b) for b in octets),
        ".".join("0" + oct(b)[2:] for b in octets), f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}",
        f"{octets[0]}.{octets[1]}.{int.from_bytes(octets[2:], 'big')}", f"[::ffff:{address}]",
    ])  # fmt: skip


@BOUNDED
@given(data=st.data(), address=st.one_of(SPECIAL, st.ip_addresses(v=4)).filter(lambda a: a.version == 4))
@example(data=None, address=ipaddress.ip_address("127.0.0.1"))
def test_literal_addresses_in_any_spelling_are_judged_by_where_they_lead(data, address) -> None:
    spelling = data.draw(_ipv4_spellings(address)) if data is not None else "0x7f000001"
    assume(not _public(address))

    with no_dialling() as attempts:
        with pytest.raises(FetchError) as caught:
            SafeFetcher(resolver=resolver_for([]), allowlist=[], connect_timeout=0.2).fetch(f"http://{spelling}/x")

    assert caught.value.code in {"blocked_address", "bad_url"}, (spelling, caught.value.code)
    assert attempts == []


# The markdown renderer.

HOSTILE = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))", "[x](java\tscript:alert(1))", "[x](&#106;avascript:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)", "[x](vbscript:msgbox)", "![i](https://evil.example/x.png)",
    "<a href='javascript:alert(1)'>a</a>", "<svg onload=alert(1)>", "<iframe src=//evil.example>",
    '"><script>alert(1)</script>', "<style>body{}</style>", "```html\n<script>x</script>\n```",
    "<details open ontoggle=alert(1)>", "[x](  javascript:alert(1))", "<a href=\"&#x6A;avascript:x\">y</a>",
    "| a | b |\n|---|---|\n| <b onclick=x>c</b> | d |", "[link](<javascript:alert(1)>)", "<!-- x --><x onclick=y>",
    "[a]: javascript:alert(1)\n\n[a]", "<form action=//evil.example><input>", "\x00<script>", "`<script>`",
])  # fmt: skip
MARKDOWN = st.lists(st.one_of(HOSTILE, st.text(max_size=30), st.sampled_from(["\n", "\n\n", "*", "[", "](", ")"])),
                    max_size=12).map("".join)  # fmt: skip
SAFE_SCHEMES = ("http:", "https:", "mailto:")
URL_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*:")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))


@BOUNDED
@given(text=MARKDOWN)
@example(text="[[x](javascript:alert(1))](x)")  # a relative href "%5Bx%5D(javascript:...)": no scheme, safe
@example(text="[x](javascript:alert(1))")
def test_rendered_markdown_has_no_script_handlers_or_dangerous_urls(text) -> None:
    parser = _Elements()
    parser.feed(markdown_to_safe_html(text))
    parser.close()

    for tag, attrs in parser.elements:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) | ({"target", "rel"} if tag == "a" else set()), name
            if name == "href":
                squeezed = "".join(ch for ch in (value or "") if ch.isprintable() and not ch.isspace()).lower()
                # A scheme as browsers parse one (WHATWG URL): a letter, then letters, digits, + - .
                scheme = URL_SCHEME.match(squeezed)
                assert scheme is None or scheme.group(0) in SAFE_SCHEMES, value
            if name == "style":
                assert (value or "").replace(" ", "").rstrip(";") in {"", "text-align:left", "text-align:right",
                                                                        "text-align:center"}, value  # fmt: skip
