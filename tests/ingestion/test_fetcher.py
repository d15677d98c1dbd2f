"""SafeFetcher against the fake web server, and its guard against fake DNS answers.

Every test runs with `dialled`: each TCP connection is recorded, only 127.0.0.1 is really
dialled (anything else is refused on the spot, so no test ever reaches another address),
and a DNS lookup behind the fetcher's back fails the test.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingestion.fetcher import USER_AGENT, FetchError, FetchResult, SafeFetcher
from tests.fakes.web import (
    ARTICLE_FACT,
    CSV_FACT_ROW,
    LATIN1_FACT,
    MARKDOWN_FACT,
    TEXT_FACT,
    FakeWeb,
    article_html,
)

LOCAL = ["127.0.0.1"]


class FakeResolver:
    """A getaddrinfo stand-in: the n-th lookup gets the n-th answer (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        addresses = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]


class FailingResolver:
    def __init__(self, error: int) -> None:
        self.error = error

    def __call__(self, host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(self.error, "fake lookup failure")


@pytest.fixture(autouse=True)
def dialled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The (address, port) of every connection attempt; only 127.0.0.1 is really dialled."""
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        attempts.append(tuple(address[:2]))
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"the test does not dial {address[0]}")
        real_connect(sock, address)

    def lookup(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a DNS lookup behind the fetcher's back: {args}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return attempts


@pytest.fixture(scope="module")
def web_server() -> Iterator[FakeWeb]:
    server = FakeWeb().start()
    yield server
    server.stop()


@pytest.fixture
def web(web_server: FakeWeb) -> Iterator[FakeWeb]:
    web_server.reset()
    yield web_server
    web_server.reset()


def fetcher(**options: Any) -> SafeFetcher:
    return SafeFetcher(**{"allowlist": LOCAL, "read_timeout": 0.3, "connect_timeout": 0.5, **options})


def fetch_error(fetcher: SafeFetcher, url: str, **conditions: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, **conditions)
    return caught.value


# Good documents.


def test_article_is_fetched_as_html_with_its_validators(web: FakeWeb) -> None:
    result = fetcher().fetch(web.url("/article.html"))

    assert result.url == web.url("/article.html")
    assert (result.status, result.content_type, result.charset) == (200, "text/html", "utf-8")
    assert result.body == article_html()
    assert ARTICLE_FACT.encode() in result.body
    assert result.etag.startswith('"') and len(result.etag) == 18
    assert result.last_modified == "Mon, 05 Jan 2026 09:30:00 GMT"
    assert result.not_modified is False


@pytest.mark.parametrize(
    ("path", "content_type", "charset", "expected"),
    [
        ("/report.pdf", "application/pdf", "", b"%PDF-"),
        ("/data.csv", "text/csv", "utf-8", ",".join(CSV_FACT_ROW).encode()),
        ("/latin1.csv", "text/csv", "", LATIN1_FACT.encode("latin-1")),
        ("/notes.md", "text/markdown", "utf-8", MARKDOWN_FACT.encode()),
        ("/notes.txt", "text/plain", "utf-8", TEXT_FACT.encode()),
        # The fetcher does not open PDFs: broken ones are for the extractor to refuse.
        ("/encrypted.pdf", "application/pdf", "", b"%PDF-"),
        ("/malformed.pdf", "application/pdf", "", b"%PDF-"),
        ("/scanned.pdf", "application/pdf", "", b"%PDF-"),
    ],
)
def test_supported_documents_are_fetched_with_their_type(
    web: FakeWeb, path: str, content_type: str, charset: str, expected: bytes
) -> None:
    result = fetcher().fetch(web.url(path))

    assert (result.status, result.content_type, result.charset) == (200, content_type, charset)
    assert expected in result.body


@pytest.mark.parametrize("path", ["/gzip/article.html", "/deflate/article.html"])
def test_compressed_bodies_are_inflated(web: FakeWeb, path: str) -> None:
    result = fetcher().fetch(web.url(path))

    assert result.body == article_html()
    assert result.content_type == "text/html"


def test_request_says_who_it_is_and_what_it_accepts(web: FakeWeb) -> None:
    fetcher().fetch(web.url("/notes.txt"))

    [(path, headers)] = web.requests
    assert path == "/notes.txt"
    assert headers["host"] == f"127.0.0.1:{web.port}"
    assert headers["user-agent"] == USER_AGENT == "MultiLLMChat/1.0 (+ingestion)"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in headers and "if-modified-since" not in headers


# Content sniffing: the header alone is not trusted.


def test_html_labelled_as_pdf_is_html(web: FakeWeb) -> None:
    result = fetcher().fetch(web.url("/html-labelled-pdf"))

    assert result.content_type == "text/html"


@pytest.mark.parametrize(
    ("path", "body", "label", "content_type"),
    [
        ("/readme.md", b"# Readme\n\nPlain notes.\n", "text/plain", "text/markdown"),
        ("/export.csv", b"a,b\n1,2\n", "application/octet-stream", "text/csv"),
        ("/guide.md", b"# Guide\n\nWrite `<html>` and <body> tags first.\n", "text/markdown", "text/markdown"),
        ("/page", b"  <!DOCTYPE html><p>Hi</p>", "text/plain", "text/html"),
        ("/page", b"<p>A fragment</p>", "text/html", "text/html"),
        ("/download", b"Just some words.\n", "application/octet-stream", "text/plain"),
        ("/download", b"Just some words.\n", "", "text/plain"),
        ("/legacy.txt", "Caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1"), "text/plain", "text/plain"),
    ],
)
def test_type_is_sniffed_from_body_header_and_path(
    web: FakeWeb, path: str, body: bytes, label: str, content_type: str
) -> None:
    web.set_content(path, body, label)

    assert fetcher().fetch(web.url(path)).content_type == content_type


@pytest.mark.parametrize(
    ("path", "body", "label", "what"),
    [
        ("/data.json", b'{"a": 1}', "application/json", "a file of type application/json"),
        ("/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "a file of type image/svg+xml"),
        ("/fake.pdf", b"Not a PDF at all", "application/pdf", "a file of type application/pdf"),
        ("/archive", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "application/octet-stream", "binary data (labelled "),
    ],
)
def test_other_types_are_refused(web: FakeWeb, path: str, body: bytes, label: str, what: str) -> None:
    web.set_content(path, body, label)

    error = fetch_error(fetcher(), web.url(path))

    assert (error.code, error.permanent) == ("unsupported_type", True)
    assert f"serves {what}" in error.message


def test_image_is_refused(web: FakeWeb) -> None:
    error = fetch_error(fetcher(), web.url("/image.png"))

    assert (error.code, error.permanent) == ("unsupported_type", True)
    assert error.message == (
        f"The address {web.url('/image.png')} serves binary data (labelled image/png), which cannot be used; "
        "only web pages, PDF, CSV, Markdown and plain text files can."
    )


def test_binary_labelled_as_html_is_refused(web: FakeWeb) -> None:
    error = fetch_error(fetcher(), web.url("/binary.html"))

    assert (error.code, error.permanent) == ("unsupported_type", True)
    assert "serves binary data (labelled text/html)" in error.message


@pytest.mark.parametrize("body", [b"", b"  \n\t\n"])
def test_empty_page_is_an_error(web: FakeWeb, body: bytes) -> None:
    web.set_content("/empty", body)

    error = fetch_error(fetcher(), web.url("/empty"))

    assert (error.code, error.permanent) == ("empty", True)
    assert error.message == "The page is empty: the site sent nothing to read."


# Conditional requests.


def test_conditional_request_gets_304_until_the_content_changes(web: FakeWeb) -> None:
    url = web.url("/notes.txt")
    first = fetcher().fetch(url)

    unchanged = fetcher().fetch(url, etag=first.etag, last_modified=first.last_modified)

    assert unchanged == FetchResult(
        url=url,
        status=304,
        content_type="",
        charset="",
        body=b"",
        etag=first.etag,
        last_modified=first.last_modified,
        not_modified=True,
    )
    assert web.requests[-1][1]["if-none-match"] == first.etag
    assert web.requests[-1][1]["if-modified-since"] == first.last_modified
    assert (web.hits["/notes.txt"], web.full_bodies["/notes.txt"]) == (2, 1)

    web.set_content("/notes.txt", b"The night ferry now leaves at 23:55.\n")
    changed = fetcher().fetch(url, etag=first.etag, last_modified=first.last_modified)

    assert (changed.status, changed.not_modified) == (200, False)
    assert changed.body == b"The night ferry now leaves at 23:55.\n"
    assert changed.etag != first.etag and changed.last_modified != first.last_modified
    assert (web.hits["/notes.txt"], web.full_bodies["/notes.txt"]) == (3, 2)


def test_last_modified_alone_makes_a_conditional_request(web: FakeWeb) -> None:
    first = fetcher().fetch(web.url("/data.csv"))

    again = fetcher().fetch(web.url("/data.csv"), last_modified=first.last_modified)

    assert (again.status, again.not_modified, again.body) == (304, True, b"")
    assert web.full_bodies["/data.csv"] == 1


# HTTP errors.


@pytest.mark.parametrize(
    ("status", "permanent", "message", "retry_after"),
    [
        (404, True, "The page was not found (HTTP 404).", None),
        (410, True, "The page was not found (HTTP 410).", None),
        (401, True, "The page needs a login (HTTP 401); only pages anyone can open can be fetched.", None),
        (403, True, "The page needs a login (HTTP 403); only pages anyone can open can be fetched.", None),
        (400, True, "The site refused the request (HTTP 400).", None),
        (429, False, "The site is receiving too many requests (HTTP 429); try again later.", 7.0),
        (500, False, "The site had a problem answering (HTTP 500); try again later.", None),
        (502, False, "The site had a problem answering (HTTP 502); try again later.", None),
        (503, False, "The site had a problem answering (HTTP 503); try again later.", 7.0),
    ],
)
def test_http_errors_say_whether_retrying_helps(
    web: FakeWeb, status: int, permanent: bool, message: str, retry_after: float | None
) -> None:
    error = fetch_error(fetcher(), web.url(f"/status/{status}"))

    assert (error.code, error.permanent, error.message, error.retry_after) == (
        "http_error",
        permanent,
        message,
        retry_after,
    )


# Time and size limits.


def test_server_that_is_slow_to_answer_times_out(web: FakeWeb) -> None:
    started = time.monotonic()

    error = fetch_error(fetcher(read_timeout=0.3), web.url("/slow"))

    assert time.monotonic() - started < 1.0
    assert (error.code, error.permanent) == ("timeout", False)
    assert error.message == "127.0.0.1 took too long to answer (nothing for 0.3 seconds); try again later."


def test_slow_drip_body_stops_at_the_overall_deadline(web: FakeWeb) -> None:
    started = time.monotonic()

    error = fetch_error(fetcher(read_timeout=0.3), web.url("/drip"))

    # Every byte arrives well within the read timeout; only the deadline (4 * 0.3 s) stops it.
    assert 1.1 < time.monotonic() - started < 2.0
    assert (error.code, error.permanent) == ("timeout", False)
    assert error.message == (
        "Fetching from 127.0.0.1 took longer than 1.2 seconds in all and was stopped; try again later."
    )


def test_body_without_length_is_cut_at_the_byte_cap(web: FakeWeb) -> None:
    error = fetch_error(fetcher(max_bytes=1024 * 1024), web.url("/oversized"))

    assert (error.code, error.permanent) == ("too_large", True)
    assert error.message == "The file at 127.0.0.1 is larger than the limit of 1 MB."


def test_body_within_the_byte_cap_is_read_whole(web: FakeWeb) -> None:
    web.oversize_bytes = 200_000

    result = fetcher(max_bytes=1024 * 1024).fetch(web.url("/oversized"))

    assert len(result.body) == 220_000  # whole blocks of 44 000 bytes


def test_declared_length_over_the_cap_is_refused_before_reading(web: FakeWeb) -> None:
    started = time.monotonic()

    error = fetch_error(fetcher(), web.url("/declared-huge"))

    assert time.monotonic() - started < 0.5
    assert (error.code, error.permanent) == ("too_large", True)
    assert error.message == "The file at 127.0.0.1 is larger than the limit of 25 MB."


def test_gzip_bomb_is_refused_at_the_decompressed_cap(web: FakeWeb, settings: Any) -> None:
    settings.FETCH_MAX_DECOMPRESSED_BYTES = 100 * 1024 * 1024

    error = fetch_error(SafeFetcher(allowlist=LOCAL), web.url("/bomb"))

    assert (error.code, error.permanent) == ("decompression_bomb", True)
    assert error.message == (
        "The page unpacks to more than 100 MB, more than may be downloaded; it was refused (it may be a “zip bomb”)."
    )


def test_gzip_bomb_is_never_inflated_in_memory(web: FakeWeb) -> None:
    fetch_error(fetcher(), web.url("/bomb"))  # the server makes its bomb once, outside the measure
    tracemalloc.start()
    try:
        error = fetch_error(fetcher(max_decompressed_bytes=1024 * 1024), web.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.code == "decompression_bomb"
    assert peak < 8 * 1024 * 1024  # the bomb inflates to 120 MB


def test_truncated_gzip_is_a_transient_error(web: FakeWeb) -> None:
    error = fetch_error(fetcher(), web.url("/gzip/truncated"))

    assert (error.code, error.permanent) == ("http_error", False)
    assert error.message == "The page arrived damaged (its compressed data was cut off); try again later."


def test_encoding_that_was_not_asked_for_is_refused(web: FakeWeb) -> None:
    error = fetch_error(fetcher(), web.url("/brotli"))

    assert (error.code, error.permanent) == ("unsupported_type", True)
    assert error.message == "127.0.0.1 sent the file compressed as “br”, which cannot be read."


def test_refused_connection_is_transient(dialled: list[tuple[str, int]]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    error = fetch_error(fetcher(), f"http://127.0.0.1:{port}/")

    assert (error.code, error.permanent) == ("connect_failed", False)
    assert error.message == (
        "Could not connect to 127.0.0.1 (the connection was refused); the site may be down, try again later."
    )


# Redirects.


def test_redirect_chain_is_followed_to_the_article(web: FakeWeb) -> None:
    result = fetcher().fetch(web.url("/redirect/1"))

    assert result.url == web.url("/article.html")
    assert result.body == article_html()
    assert [path for path, _ in web.requests] == ["/redirect/1", "/redirect/2", "/redirect/3", "/article.html"]


def test_redirect_chain_longer_than_the_limit_is_refused(web: FakeWeb) -> None:
    error = fetch_error(fetcher(max_redirects=2), web.url("/redirect/1"))

    assert (error.code, error.permanent) == ("too_many_redirects", True)
    assert error.message == (
        "The address redirected more than 2 times (perhaps in a loop), so it was not followed further."
    )
    assert web.hits["/article.html"] == 0


def test_redirect_loop_gives_up_after_the_limit(web: FakeWeb) -> None:
    error = fetch_error(fetcher(max_redirects=5), web.url("/loop/a"))

    assert error.code == "too_many_redirects"
    assert web.hits["/loop/a"] + web.hits["/loop/b"] == 6


def test_redirect_to_the_metadata_service_is_refused_without_connecting(
    web: FakeWeb, dialled: list[tuple[str, int]]
) -> None:
    error = fetch_error(fetcher(), web.url("/redirect/metadata"))

    assert (error.code, error.permanent) == ("blocked_address", True)
    assert error.message == (
        "The page redirected to 169.254.169.254, which is a link-local address (such as a cloud metadata "
        "service); only public addresses can be fetched."
    )
    assert dialled == [("127.0.0.1", web.port)]


def test_redirect_to_another_scheme_is_refused(web: FakeWeb, dialled: list[tuple[str, int]]) -> None:
    error = fetch_error(fetcher(), web.url("/redirect/file"))

    assert (error.code, error.permanent) == ("bad_url", True)
    assert error.message == (
        "The page redirected to “file:///etc/passwd” is not a web address; only http:// and https:// addresses "
        "can be fetched."
    )
    assert dialled == [("127.0.0.1", web.port)]


def test_each_hop_is_resolved_once_and_keeps_the_host_name(web: FakeWeb, dialled: list[tuple[str, int]]) -> None:
    resolver = FakeResolver(["127.0.0.1"])

    result = fetcher(resolver=resolver).fetch(web.url("/redirect/1", host="site.example"))

    assert result.url == f"http://site.example:{web.port}/article.html"
    assert resolver.calls == ["site.example"] * 4
    assert dialled == [("127.0.0.1", web.port)] * 4
    assert {headers["host"] for _, headers in web.requests} == {f"site.example:{web.port}"}


# The address guard.

BLOCKED_ANSWERS = [
    ("10.0.0.5", "a private network address"),
    ("172.16.3.4", "a private network address"),
    ("192.168.1.20", "a private network address"),
    ("127.0.0.1", "a loopback address (this server itself)"),
    ("169.254.169.254", "a link-local address (such as a cloud metadata service)"),
    ("100.64.0.1", "a shared carrier network address"),
    ("224.0.0.1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"),
    ("255.255.255.255", "a broadcast address"),
    ("198.18.0.1", "a private network address"),
    ("240.0.0.1", "a private network address"),
    ("::1", "a loopback address (this server itself)"),
    ("::", "an unspecified address"),
    ("fd00::1", "a private network address"),
    ("fe80::1", "a link-local address (such as a cloud metadata service)"),
    ("fec0::1", "a private network address"),
    ("ff02::1", "a multicast address"),
    ("::ffff:127.0.0.1", "a loopback address (this server itself)"),
    ("::ffff:10.0.0.5", "a private network address"),
    ("2002:a00:5::1", "a private network address"),  # 6to4 around 10.0.0.5
    ("64:ff9b::a9fe:a9fe", "a link-local address (such as a cloud metadata service)"),  # NAT64 around 169.254.169.254
]


@pytest.mark.parametrize(("address", "kind"), BLOCKED_ANSWERS)
def test_host_resolving_to_a_non_public_address_is_refused_without_connecting(
    dialled: list[tuple[str, int]], address: str, kind: str
) -> None:
    resolver = FakeResolver([address])

    error = fetch_error(fetcher(resolver=resolver, allowlist=[]), "http://internal.example/admin")

    assert (error.code, error.permanent) == ("blocked_address", True)
    assert error.message == (
        f"The address internal.example resolves to {kind} ({address}); only public addresses can be fetched."
    )
    assert resolver.calls == ["internal.example"]
    assert dialled == []


def test_one_non_public_address_among_public_ones_is_enough_to_refuse(dialled: list[tuple[str, int]]) -> None:
    resolver = FakeResolver(["93.184.216.34", "2606:2800:220:1::1", "10.0.0.5"])

    error = fetch_error(fetcher(resolver=resolver), "https://mixed.example/")

    assert error.code == "blocked_address"
    assert "(10.0.0.5)" in error.message
    assert dialled == []


@pytest.mark.parametrize("address", ["93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_public_address_is_dialled(dialled: list[tuple[str, int]], address: str) -> None:
    """Public addresses pass, also behind NAT64 and 6to4 (the test refuses the connection itself)."""
    error = fetch_error(fetcher(resolver=FakeResolver([address])), "http://public.example/")

    assert (error.code, error.permanent) == ("connect_failed", False)
    assert dialled == [(address, 80)]


def test_dns_rebinding_cannot_swap_the_checked_address(dialled: list[tuple[str, int]]) -> None:
    resolver = FakeResolver(["93.184.216.34"], ["127.0.0.1"])

    error = fetch_error(fetcher(resolver=resolver, allowlist=[]), "http://rebind.example/")

    assert error.code == "connect_failed"
    assert resolver.calls == ["rebind.example"]
    assert dialled == [("93.184.216.34", 80)]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://2130706433/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://0x7f.0.0.1/", "127.0.0.1"),
        ("http://0X7F.0x0.0.01/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://127.0.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data", "169.254.169.254"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("https://10.0.0.5:8443/", "10.0.0.5"),
        ("http://[::1]/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("http://[0:0:0:0:0:ffff:7f00:1]/", "::ffff:127.0.0.1"),
        ("http://[fd00::1]:8080/", "fd00::1"),
    ],
)
def test_literal_addresses_in_any_notation_are_refused_without_resolving(
    dialled: list[tuple[str, int]], url: str, address: str
) -> None:
    resolver = FakeResolver(["93.184.216.34"])

    error = fetch_error(fetcher(resolver=resolver, allowlist=[]), url)

    assert (error.code, error.permanent) == ("blocked_address", True)
    assert f"({address})" in error.message or f"The address {address} is" in error.message
    assert error.message.endswith("; only public addresses can be fetched.")
    assert resolver.calls == []
    assert dialled == []


def test_literal_notation_is_normalised_before_connecting(web: FakeWeb, dialled: list[tuple[str, int]]) -> None:
    result = fetcher().fetch(f"http://0177.0.0.1:{web.port}/notes.txt")

    assert result.url == web.url("/notes.txt")
    assert dialled == [("127.0.0.1", web.port)]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "is not a valid web address."),
        ("example.com/page", "is not a web address; only http:// and https:// addresses can be fetched."),
        ("//example.com/page", "is not a web address; only http:// and https:// addresses can be fetched."),
        ("ftp://example.com/file", "is not a web address; only http:// and https:// addresses can be fetched."),
        ("file:///etc/passwd", "is not a web address; only http:// and https:// addresses can be fetched."),
        ("gopher://example.com:70/", "is not a web address; only http:// and https:// addresses can be fetched."),
        ("javascript:alert(1)", "is not a web address; only http:// and https:// addresses can be fetched."),
        ("http:///no-host", "has no host name."),
        ("http://exa mple.com/", "is not a valid web address."),
        ("http://example.com:99999/", "is not a valid web address."),
        ("http://example.com:0/", "has an invalid port."),
        ("http://[::1/", "is not a valid web address."),
        ("http://exa%6dple.com/", "has a host name that is not valid."),
        ("http://1.2.3.4.5/", "is not a valid IP address."),
        ("http://256.0.0.1/", "is not a valid IP address."),
        ("http://08.0.0.1/", "is not a valid IP address."),
        ("http://example.123/", "is not a valid IP address."),
    ],
)
def test_malformed_addresses_are_refused(dialled: list[tuple[str, int]], url: str, reason: str) -> None:
    resolver = FakeResolver(["93.184.216.34"])

    error = fetch_error(fetcher(resolver=resolver), url)

    assert (error.code, error.permanent) == ("bad_url", True)
    assert error.message == f"The address “{url}” {reason}"
    assert resolver.calls == [] and dialled == []


def test_password_in_the_address_is_refused_and_never_repeated(
    dialled: list[tuple[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ingestion.fetcher")

    error = fetch_error(fetcher(), "http://admin:hunter2@example.com/")

    assert (error.code, error.permanent) == ("bad_url", True)
    assert (
        error.message == "The address “http://…@example.com/” contains a user name or password, which is not allowed."
    )
    assert "hunter2" not in caplog.text
    assert dialled == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://@example.com/",
            "The address “http://…@example.com/” contains a user name or password, which is not allowed.",
        ),
        ("http://example.com\\@127.0.0.1/", "The address “http://…@127.0.0.1/” is not a valid web address."),
    ],
)
def test_addresses_with_an_at_sign_in_the_host_part_are_refused(
    dialled: list[tuple[str, int]], url: str, message: str
) -> None:
    resolver = FakeResolver(["93.184.216.34"])

    error = fetch_error(fetcher(resolver=resolver), url)

    assert (error.code, error.permanent, error.message) == ("bad_url", True, message)
    assert resolver.calls == [] and dialled == []


@pytest.mark.parametrize(
    ("error_number", "permanent", "message"),
    [
        (socket.EAI_NONAME, True, "The address nowhere.example could not be found (no such name)."),
        (socket.EAI_AGAIN, False, "The address nowhere.example could not be looked up right now; try again later."),
    ],
)
def test_lookup_failures_say_whether_retrying_helps(error_number: int, permanent: bool, message: str) -> None:
    error = fetch_error(fetcher(resolver=FailingResolver(error_number)), "http://nowhere.example/")

    assert (error.code, error.permanent, error.message) == ("dns_failed", permanent, message)


def test_international_host_name_is_looked_up_in_its_ascii_form(web: FakeWeb) -> None:
    resolver = FakeResolver(["127.0.0.1"])

    fetcher(resolver=resolver).fetch(f"http://bücher.example:{web.port}/notes.txt")

    assert resolver.calls == ["xn--bcher-kva.example"]
    assert web.requests[0][1]["host"] == f"xn--bcher-kva.example:{web.port}"


# The allowlist.


def test_allowlisted_host_name_may_resolve_to_a_private_address(dialled: list[tuple[str, int]]) -> None:
    resolver = FakeResolver(["10.0.0.5"])
    allowed = fetcher(resolver=resolver, allowlist=["wiki.internal"])

    reached = fetch_error(allowed, "http://wiki.internal/")
    refused = fetch_error(allowed, "http://other.internal/")

    assert reached.code == "connect_failed"  # the guard passed; the test refused the connection
    assert refused.code == "blocked_address"
    assert dialled == [("10.0.0.5", 80)]


def test_allowlisted_network_admits_only_its_addresses(dialled: list[tuple[str, int]]) -> None:
    allowed = fetcher(allowlist=["10.0.0.0/8"])

    assert fetch_error(allowed, "http://10.1.2.3/").code == "connect_failed"
    assert fetch_error(allowed, "http://192.168.1.1/").code == "blocked_address"
    assert fetch_error(allowed, "http://127.0.0.1/").code == "blocked_address"
    assert dialled == [("10.1.2.3", 80)]


@pytest.mark.parametrize("address", ["127.0.0.2", "::1", "10.0.0.5", "169.254.169.254"])
def test_allowlisted_loopback_address_does_not_open_other_addresses(
    dialled: list[tuple[str, int]], address: str
) -> None:
    error = fetch_error(fetcher(resolver=FakeResolver([address]), allowlist=LOCAL), "http://sneaky.example/")

    assert error.code == "blocked_address"
    assert dialled == []


def test_allowlist_comes_from_the_settings(web: FakeWeb, settings: Any) -> None:
    settings.FETCH_ALLOWLIST = []
    error = fetch_error(SafeFetcher(), web.url("/notes.txt"))
    assert error.code == "blocked_address"
    assert web.hits["/notes.txt"] == 0

    settings.FETCH_ALLOWLIST = ["127.0.0.1"]
    assert SafeFetcher().fetch(web.url("/notes.txt")).status == 200


def test_localhost_with_the_real_resolver_is_refused(dialled: list[tuple[str, int]]) -> None:
    error = fetch_error(SafeFetcher(allowlist=[]), "http://localhost:8000/admin/")

    assert error.code == "blocked_address"
    assert error.message.startswith("The address localhost resolves to a loopback address (this server itself)")
    assert dialled == []


def test_logs_never_hold_bodies_or_query_strings(web: FakeWeb, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ingestion.fetcher")

    fetcher().fetch(web.url("/article.html?token=s3cret-token"))
    fetch_error(fetcher(), web.url("/status/404?token=s3cret-token"))

    assert "Fetched http://127.0.0.1:" in caplog.text
    assert "lighthouse" not in caplog.text.lower()
    assert "s3cret-token" not in caplog.text


# https: the socket goes to the checked address, the certificate is checked against the name.

TLS_HOST = "docs.example.test"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A throwaway CA and a certificate for TLS_HOST: (certificate file, key file, CA in PEM)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fetcher test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_HOST)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    certificate_file, key_file = folder / "server.pem", folder / "server.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_web_server(tls_files: tuple[Path, Path, bytes]) -> Iterator[FakeWeb]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files[0], tls_files[1])
    server = FakeWeb(ssl_context=context).start()
    yield server
    server.stop()


@pytest.fixture
def tls_web(tls_web_server: FakeWeb) -> Iterator[FakeWeb]:
    tls_web_server.reset()
    yield tls_web_server
    tls_web_server.reset()


@pytest.fixture
def trusting(tls_files: tuple[Path, Path, bytes]) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=tls_files[2].decode())


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
    tls_web: FakeWeb, trusting: ssl.SSLContext, dialled: list[tuple[str, int]]
) -> None:
    resolver = FakeResolver(["127.0.0.1"])

    result = fetcher(resolver=resolver, ssl_context=trusting).fetch(tls_web.url("/notes.txt", host=TLS_HOST))

    assert result.url == f"https://{TLS_HOST}:{tls_web.port}/notes.txt"
    assert TEXT_FACT.encode() in result.body
    assert resolver.calls == [TLS_HOST]
    assert dialled == [("127.0.0.1", tls_web.port)]
    assert tls_web.sni_names == [TLS_HOST]
    assert tls_web.requests[0][1]["host"] == f"{TLS_HOST}:{tls_web.port}"


def test_https_certificate_for_another_name_is_refused(tls_web: FakeWeb, trusting: ssl.SSLContext) -> None:
    resolver = FakeResolver(["127.0.0.1"])

    error = fetch_error(fetcher(resolver=resolver, ssl_context=trusting), tls_web.url("/notes.txt", host="other.test"))

    assert (error.code, error.permanent) == ("connect_failed", True)
    assert error.message.startswith("The secure connection to other.test could not be verified (")
    assert tls_web.hits["/notes.txt"] == 0


def test_https_verifies_against_the_system_certificates_by_default(tls_web: FakeWeb) -> None:
    error = fetch_error(fetcher(resolver=FakeResolver(["127.0.0.1"])), tls_web.url("/notes.txt", host=TLS_HOST))

    assert (error.code, error.permanent) == ("connect_failed", True)
    assert "could not be verified" in error.message
    assert tls_web.hits["/notes.txt"] == 0
