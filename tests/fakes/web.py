"""A fake web server on 127.0.0.1 serving generated documents, good and bad, for the ingestion tests.

Documents (each with an ETag and a Last-Modified, answering 304 to a matching
If-None-Match or If-Modified-Since): `/article.html` (an article with nav, cookie banner,
footer, script and style around h1/h2/h3 headings), `/report.pdf` (three pages of text,
PDF_PAGE2_FACT on page 2), `/data.csv` (a header and 50 rows, CSV_FACT_ROW among them),
`/notes.md`, `/notes.txt`, `/latin1.csv` (latin-1, `;`, ragged rows, no charset),
`/encrypted.pdf`, `/malformed.pdf` (cut in half), `/scanned.pdf` (a drawn rectangle, no
text), `/image.png`, `/binary.html` (binary labelled text/html), `/html-labelled-pdf`,
`/empty`, `/gzip/article.html` and `/deflate/article.html` (the article, compressed).

Bad behaviour: `/status/<code>` (429 and 503 with `Retry-After: 7`), `/slow` (sleeps
`slow_seconds` before the headers), `/drip` (a byte every `drip_interval` for
`drip_seconds`), `/redirect/1` (three hops to the article: an absolute path, a relative
one, an absolute URL), `/loop/a` (a redirect loop), `/redirect/metadata` (to the cloud
metadata address), `/redirect/file` (to a file: URL), `/oversized` (`oversize_bytes`
with no Content-Length), `/declared-huge` (a Content-Length of 10 GB), `/bomb` (a gzip
body inflating to BOMB_INFLATED_BYTES), `/gzip/truncated`, `/brotli` (an encoding
nobody asked for).

`hits` counts requests per path, `full_bodies` the 200 answers with a document's body;
`requests` keeps each request's path and headers. `set_content` changes a document (a
new ETag and a later Last-Modified), to test "the content changed". With an `ssl_context`
the server speaks https and records the SNI names it was asked for in `sni_names`.
"""

from __future__ import annotations

import collections
import functools
import gzip
import hashlib
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from fpdf import FPDF

ARTICLE_TITLE = "The Zephyr Lighthouse"
ARTICLE_FACT = "The Zephyr lighthouse on Corvel Island was first lit on 14 March 1887."
# Text in the page's chrome (nav, cookie banner, footer, script, style) that extraction must drop.
ARTICLE_NOISE = ("NAV-NOISE", "COOKIE-NOISE", "FOOTER-NOISE", "SCRIPT-NOISE", "STYLE-NOISE")
PDF_PAGE2_FACT = "The Marlow Institute measured a tidal range of 7.3 metres at Port Elsa in 1962."
CSV_FACT_ROW = ("Quillon", "Veloria", "48213", "1632", "Famous for its glass bells")
MARKDOWN_FACT = "Field station Tern-4 recorded 212 arctic terns on 3 June."
TEXT_FACT = "The night ferry to Skarvholm leaves at 23:40 from pier 9."
LATIN1_FACT = "Société Générale de Bière;Zürich;1897"
BOMB_INFLATED_BYTES = 120 * 1024 * 1024
STARTED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str
    modified: datetime = STARTED
    content_encoding: str = ""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


def article_html() -> bytes:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{ARTICLE_TITLE} – Coastal Heritage</title>
<style>body {{ font-family: serif; }} .noise::after {{ content: "STYLE-NOISE"; }}</style>
<script>window.analytics = "SCRIPT-NOISE";</script>
</head>
<body>
<nav><a href="/">Home</a> <a href="/lighthouses">Lighthouses</a> <a href="/about">About</a> NAV-NOISE</nav>
<div class="cookie-banner" id="cookie-consent" role="dialog">We use cookies to improve your visit. COOKIE-NOISE
<button>Accept all</button></div>
<main><article>
<h1>{ARTICLE_TITLE}</h1>
<p>The lighthouse stands on the northern cliff of Corvel Island and guided ships for over a century.</p>
<h2>History</h2>
<p>{ARTICLE_FACT} Its lens came from a workshop in Paris and weighed almost two tonnes.</p>
<h3>The first keepers</h3>
<p>Three families kept the light in turns, rowing supplies across the strait every fortnight.</p>
<h2>The light today</h2>
<p>Since 1994 the light runs automatically, and the keepers' house is a small museum.</p>
</article></main>
<footer>© 2026 Coastal Heritage Society. Privacy · Terms FOOTER-NOISE</footer>
<script src="/static/app.js"></script>
</body>
</html>
""".encode()


def _pdf() -> FPDF:
    pdf = FPDF()
    pdf.set_creation_date(STARTED)
    pdf.set_font("Helvetica", size=12)
    return pdf


def report_pdf() -> bytes:
    pages = [
        "Annual report of the Marlow Institute. This first page introduces the coastal survey.",
        f"Tides. {PDF_PAGE2_FACT} The measurements were repeated every spring.",
        "Outlook. The survey continues with new gauges on the eastern shore.",
    ]
    pdf = _pdf()
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    pdf = _pdf()
    pdf.set_encryption(owner_password="owner-secret", user_password="reader-secret")
    pdf.add_page()
    pdf.multi_cell(0, 10, "This text needs a password to be read.")
    return bytes(pdf.output())


def scanned_pdf() -> bytes:
    """A page with only a drawn shape: no text layer, like a scan without OCR."""
    pdf = _pdf()
    pdf.add_page()
    pdf.set_fill_color(80, 80, 80)
    pdf.rect(20, 20, 120, 80, style="F")
    return bytes(pdf.output())


def data_csv() -> bytes:
    rows = [("city", "country", "population", "founded", "note")]
    for index in range(50):
        rows.append((f"Town {index:02d}", "Veloria", str(1000 + index * 37), str(1700 + index), "Quiet market town"))
    rows[31] = CSV_FACT_ROW
    return "".join(",".join(row) + "\n" for row in rows).encode()


def latin1_csv() -> bytes:
    # Ragged on purpose: rows with fewer and more fields than the header.
    lines = ["nom;ville;année", LATIN1_FACT, "Brasserie Müller;Genève", "Café Noël;Besançon;1921;fermé"]
    lines += [f"Fromagerie n°{index};Liège;{1900 + index}" for index in range(10)]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n"


def markdown() -> bytes:
    text = f"# Field notes\n\n## Birds\n\n{MARKDOWN_FACT}\n\n## Weather\n\n- Wind from the north\n- Clear nights\n"
    return text.encode()


def plain_text() -> bytes:
    return f"Timetable notes\n\n{TEXT_FACT}\nThe morning boat leaves at 07:15.\n".encode()


def png() -> bytes:
    """A valid PNG of one pixel."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@functools.cache
def gzip_bomb() -> bytes:
    """About 120 KB of gzip that inflates to BOMB_INFLATED_BYTES of zeros, made once per process."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(BOMB_INFLATED_BYTES // len(zeros))]
    parts.append(compressor.flush())
    return b"".join(parts)


def default_documents() -> dict[str, Document]:
    article = article_html()
    report = report_pdf()
    return {
        "/article.html": Document(article, "text/html; charset=utf-8"),
        "/report.pdf": Document(report, "application/pdf"),
        "/data.csv": Document(data_csv(), "text/csv; charset=utf-8"),
        "/latin1.csv": Document(latin1_csv(), "text/csv"),
        "/notes.md": Document(markdown(), "text/markdown; charset=utf-8"),
        "/notes.txt": Document(plain_text(), "text/plain; charset=utf-8"),
        "/encrypted.pdf": Document(encrypted_pdf(), "application/pdf"),
        "/malformed.pdf": Document(report[: len(report) // 2], "application/pdf"),
        "/scanned.pdf": Document(scanned_pdf(), "application/pdf"),
        "/image.png": Document(png(), "image/png"),
        "/binary.html": Document(bytes(range(256)) * 8, "text/html; charset=utf-8"),
        "/html-labelled-pdf": Document(article, "application/pdf"),
        "/empty": Document(b"", "text/html; charset=utf-8"),
        "/gzip/article.html": Document(gzip.compress(article, mtime=0), "text/html; charset=utf-8", STARTED, "gzip"),
        "/deflate/article.html": Document(zlib.compress(article), "text/html; charset=utf-8", STARTED, "deflate"),
        "/gzip/truncated": Document(gzip.compress(article, mtime=0)[:400], "text/html", STARTED, "gzip"),
        "/brotli": Document(b"\x0b\x02\x80hello\x03", "text/plain", STARTED, "br"),
    }


class FakeWeb:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self._defaults = default_documents()
        self.documents: dict[str, Document] = dict(self._defaults)
        self.hits: collections.Counter[str] = collections.Counter()
        self.full_bodies: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sni_names: list[str | None] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._switches_to_defaults()

    def _switches_to_defaults(self) -> None:
        self.slow_seconds = 2.0
        self.drip_interval = 0.05
        self.drip_seconds = 5.0
        self.oversize_bytes = 4 * 1024 * 1024

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> FakeWeb:
        fake = self
        gzip_bomb()  # made now: compressing it on the first request can outlast a client's read timeout

        class Handler(_Handler):
            server_fake = fake

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.ssl_context is not None:
            self.ssl_context.sni_callback = lambda _sock, name, _context: self.sni_names.append(name)
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        server = self._server
        # A short poll interval makes stop() quick.
        threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), name="fake-web", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        with self._lock:
            self.documents = dict(self._defaults)
            self.hits.clear()
            self.full_bodies.clear()
            self.requests.clear()
            self.sni_names.clear()
        self._switches_to_defaults()

    def set_content(self, path: str, body: bytes, content_type: str | None = None) -> None:
        """Change a document: a new ETag and a Last-Modified at least a second later than before."""
        with self._lock:
            old = self.documents.get(path, Document(b"", "text/plain"))
            # Last-Modified has whole seconds: a change must move it on by at least one.
            modified = max(datetime.now(UTC).replace(microsecond=0), old.modified + timedelta(seconds=1))
            self.documents[path] = replace(old, body=body, content_type=content_type or old.content_type,
                                           modified=modified)  # fmt: skip

    def _count(self, counter: collections.Counter[str], path: str) -> None:
        with self._lock:
            counter[path] += 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that give up (timeouts, size limits) hang up mid-answer; that is the point."""


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeWeb
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        fake = self.server_fake
        path = urlsplit(self.path).path
        fake._count(fake.hits, path)
        with fake._lock:
            fake.requests.append((path, {name.lower(): value for name, value in self.headers.items()}))
            document = fake.documents.get(path)
        self.close_connection = True
        if document is not None:
            return self._document(path, document)
        if path.startswith("/status/") and path[8:].isdigit():
            return self._status(int(path[8:]))
        route = getattr(self, "_route_" + path.strip("/").replace("/", "_").replace("-", "_"), None)
        if route is None:
            return self._status(404)
        route()

    def _document(self, path: str, document: Document) -> None:
        fake = self.server_fake
        if self._not_modified(document):
            self.send_response(304)
            self.send_header("ETag", document.etag)
            self.send_header("Last-Modified", format_datetime(document.modified, usegmt=True))
            self.send_header("Connection", "close")
            self.end_headers()
            return
        fake._count(fake.full_bodies, path)
        self.send_response(200)
        self.send_header("Content-Type", document.content_type)
        self.send_header("Content-Length", str(len(document.body)))
        if document.content_encoding:
            self.send_header("Content-Encoding", document.content_encoding)
        self.send_header("ETag", document.etag)
        self.send_header("Last-Modified", format_datetime(document.modified, usegmt=True))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(document.body)

    def _not_modified(self, document: Document) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or document.etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                return document.modified <= parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
        return False

    def _status(self, status: int, headers: dict[str, str] | None = None) -> None:
        body = f"<html><body><h1>Error {status}</h1></body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status in (429, 503):
            self.send_header("Retry-After", "7")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._status(status, {"Location": location})

    def _route_redirect_1(self) -> None:
        self._redirect("/redirect/2")

    def _route_redirect_2(self) -> None:
        self._redirect("3", status=301)

    def _route_redirect_3(self) -> None:
        self._redirect(f"http://{self.headers['Host']}/article.html", status=307)

    def _route_redirect_file(self) -> None:
        self._redirect("file:///etc/passwd")

    def _route_loop_a(self) -> None:
        self._redirect("/loop/b")

    def _route_loop_b(self) -> None:
        self._redirect("/loop/a")

    def _route_redirect_metadata(self) -> None:
        self._redirect("http://169.254.169.254/latest/meta-data")

    def _route_slow(self) -> None:
        time.sleep(self.server_fake.slow_seconds)
        self._document("/slow", self.server_fake.documents["/article.html"])

    def _route_drip(self) -> None:
        fake = self.server_fake
        self._stream_headers("text/plain; charset=utf-8")
        stop = time.monotonic() + fake.drip_seconds
        while time.monotonic() < stop:
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(fake.drip_interval)

    def _route_oversized(self) -> None:
        self._stream_headers("text/plain; charset=utf-8")
        block = b"All work and no play makes Jack a dull boy.\n" * 1000
        sent = 0
        while sent < self.server_fake.oversize_bytes:
            self.wfile.write(block)
            sent += len(block)

    def _route_declared_huge(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(10 * 1024**3))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"a" * 1024)

    def _route_bomb(self) -> None:
        body = gzip_bomb()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _stream_headers(self, content_type: str) -> None:
        """Headers of a body with no Content-Length: it ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
