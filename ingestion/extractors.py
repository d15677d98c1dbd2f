"""Turn a fetched body (HTML, PDF, CSV, plain text, markdown) into titled sections of text.

Sections keep the structure the chunker needs: the heading path above the text, the PDF
page it came from, the CSV rows it holds. Every failure a user could act on is an
`ExtractionError` whose `message` says what is wrong with the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from bs4 import (
    BeautifulSoup,
    CData,
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)
from django.conf import settings
from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

logger = logging.getLogger(__name__)

# Rows per "table" section; the chunker splits them further, on row boundaries.
CSV_ROWS_PER_SECTION = 500
CSV_EXAMPLE_VALUES = 3
CSV_EXAMPLE_MAX_CHARS = 40
CSV_DELIMITERS = ",;\t|"
CSV_FIELD_MAX_CHARS = 16 * 1024 * 1024
TITLE_MAX_CHARS = 300


@dataclass
class Section:
    """A run of text under one heading path (and on one PDF page).

    kind is "text", "table" or "schema". A "table" section is a header line followed by
    one line per data row, rows `row_start`..`row_end` (1-based data row numbers), cells
    separated by " | "; the chunker relies on that layout. A "schema" section describes a
    CSV file: its columns, their types, the row count and a few example values.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    row_start: int | None = None
    row_end: int | None = None
    kind: str = "text"


@dataclass
class ExtractedDocument:
    title: str
    kind: str  # "html", "pdf", "csv", "text" or "markdown"
    sections: list[Section]


class ExtractionError(Exception):
    """The file cannot be turned into text; `message` tells the user why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


CONTENT_TYPE_KINDS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "csv",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
}


def extract(body: bytes, content_type: str, *, source_name: str, charset: str = "") -> ExtractedDocument:
    """Extract the readable text of `body`.

    `content_type` may carry parameters ("text/html; charset=utf-8"); an explicit `charset`
    wins over the one in `content_type`. Raises ExtractionError for unsupported, empty,
    encrypted or damaged files.
    """
    media_type, _, params = content_type.partition(";")
    kind = CONTENT_TYPE_KINDS.get(media_type.strip().lower())
    if kind is None:
        raise ExtractionError(f"Files of type {media_type.strip() or 'unknown'} are not supported.")
    if not charset:
        match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.IGNORECASE)
        charset = match.group(1) if match else ""
    if not body.strip():
        raise ExtractionError("The file is empty.")
    if kind == "html":
        return _extract_html(body, charset=charset, source_name=source_name)
    if kind == "pdf":
        return _extract_pdf(body, source_name=source_name)
    text = _decode(body, charset)
    if kind == "csv":
        return _extract_csv(text, source_name=source_name)
    if kind == "markdown":
        return _extract_markdown(text, source_name=source_name)
    return _extract_plain_text(text, source_name=source_name)


def _decode(body: bytes, charset: str) -> str:
    """Decode with the declared charset, else UTF-8 (with or without BOM), else Windows-1252, else Latin-1;
    a UTF-16 byte order mark wins over all of them."""
    candidates = [charset] if charset else []
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    candidates += ["utf-8-sig", "cp1252"]
    for encoding in candidates:
        try:
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
        return _clean_newlines(text.removeprefix("\ufeff"))
    # Latin-1 maps every byte, so this never fails.
    return _clean_newlines(body.decode("latin-1"))


def _clean_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _clip(text: str, limit: int = TITLE_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- HTML -----------------------------------------------------------------------------

# Dropped with everything inside: not the page's own content.
HTML_DROPPED_TAGS = [
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "nav", "footer", "aside", "form", "button", "select", "textarea", "input", "dialog", "head",
]  # fmt: skip
HTML_DROPPED_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
HTML_BOILERPLATE = re.compile(r"cookie|consent|gdpr|banner", re.IGNORECASE)
HTML_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements that end the paragraph before them and start a new one after them.
HTML_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "ul", "ol", "li", "dl", "dt", "dd", "blockquote",
    "figure", "figcaption", "address", "details", "summary", "hr", "table", "pre", "center", "body",
}  # fmt: skip


def _extract_html(body: bytes, *, charset: str, source_name: str) -> ExtractedDocument:
    try:
        soup = BeautifulSoup(body, "html.parser", from_encoding=charset or None)
    except (LookupError, RecursionError):
        soup = BeautifulSoup(body, "html.parser")
    title = _collapse(soup.title.get_text(" ")) if soup.title else ""
    _drop_boilerplate(soup)
    sections = []
    for root in _html_content_roots(soup):
        sections = _HtmlSectionBuilder().build(root)
        if sections:
            break
    if not sections:
        raise ExtractionError("The page has no readable text.")
    if not title:
        h1 = soup.find("h1")
        title = _collapse(h1.get_text(" ")) if h1 else ""
    return ExtractedDocument(title=_clip(title or source_name), kind="html", sections=sections)


def _drop_boilerplate(soup: BeautifulSoup) -> None:
    doomed: list[Tag] = list(soup.find_all(HTML_DROPPED_TAGS))
    for element in soup.find_all(True):
        if element.name in {"html", "body", "main", "article"}:
            continue
        if element.name == "header" and element.find_parent(["main", "article"]) is None:
            doomed.append(element)  # the site's masthead; an article's own header holds its title
        elif _html_is_hidden(element) or element.get("role") in HTML_DROPPED_ROLES:
            doomed.append(element)
        elif _html_is_banner(element) and element.find(["main", "article"]) is None:
            doomed.append(element)
    for element in doomed:
        if not element.decomposed:
            element.decompose()


def _html_is_hidden(element: Tag) -> bool:
    return (
        element.has_attr("hidden")
        or str(element.get("aria-hidden", "")).lower() == "true"
        or bool(HTML_HIDDEN_STYLE.search(str(element.get("style", ""))))
    )


def _html_is_banner(element: Tag) -> bool:
    classes: Any = element.get("class") or []
    names = " ".join([str(element.get("id", "")), *(classes if isinstance(classes, list) else [classes])])
    return bool(HTML_BOILERPLATE.search(names))


_ROLE_MAIN: dict[str, Any] = {"role": "main"}


def _html_content_roots(soup: BeautifulSoup) -> Iterator[Tag | BeautifulSoup]:
    """The main content first; the whole body if that turns out empty (pages misuse <main>)."""
    main = soup.find("main") or soup.find(None, _ROLE_MAIN)
    if isinstance(main, Tag):
        yield main
    articles = soup.find_all("article")
    if len(articles) == 1:
        yield articles[0]
    yield soup.body or soup


class _HtmlSectionBuilder:
    """Walks the content in document order: a section per heading, paragraphs inside it."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.headings: list[tuple[int, str]] = []
        self.paragraphs: list[str] = []
        self.inline: list[str] = []

    def build(self, root: Tag | BeautifulSoup) -> list[Section]:
        # An explicit stack, not recursion: deeply nested pages must not hit the recursion limit.
        stack: list[tuple[PageElement, bool]] = [(child, True) for child in reversed(list(root.children))]
        while stack:
            node, entering = stack.pop()
            if isinstance(node, NavigableString):
                if not isinstance(node, Comment | CData | Declaration | Doctype | ProcessingInstruction):
                    self.inline.append(re.sub(r"\s+", " ", str(node)))
                continue
            if not isinstance(node, Tag):
                continue
            if not entering:
                self._end_paragraph()
                continue
            name = node.name
            if name in HTML_HEADINGS:
                self._heading(HTML_HEADINGS[name], _collapse(node.get_text(" ")))
            elif name == "br":
                self.inline.append("\n")
            elif name == "pre":
                self._end_paragraph()
                self._add_paragraph(_tidy_lines(node.get_text()))
            elif name == "table":
                self._end_paragraph()
                self._add_paragraph(_html_table_text(node))
            else:
                block = name in HTML_BLOCKS
                if block:
                    self._end_paragraph()
                    if name == "li":
                        self.inline.append("- ")
                    stack.append((node, False))
                stack.extend((child, True) for child in reversed(list(node.children)))
        self._end_section()
        return self.sections

    def _heading(self, level: int, text: str) -> None:
        if not text:
            return
        self._end_section()
        self.headings = [(lvl, t) for lvl, t in self.headings if lvl < level] + [(level, text)]

    def _end_paragraph(self) -> None:
        text = _tidy_lines("".join(self.inline), collapse=True)
        self.inline = []
        if text.strip("- "):
            self._add_paragraph(text)

    def _add_paragraph(self, text: str) -> None:
        if text:
            self.paragraphs.append(text)

    def _end_section(self) -> None:
        self._end_paragraph()
        if self.paragraphs:
            heading_path = tuple(text for _, text in self.headings)
            self.sections.append(Section(text="\n\n".join(self.paragraphs), heading_path=heading_path))
        self.paragraphs = []


def _tidy_lines(text: str, *, collapse: bool = False) -> str:
    """Strip each line, drop empty ones (a blank line would read as a paragraph break)."""
    lines = (_collapse(line) if collapse else line.rstrip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line.strip())


def _html_table_text(table: Tag) -> str:
    rows = []
    for row in table.find_all("tr"):
        cells = [_collapse(cell.get_text(" ")) for cell in row.find_all(["td", "th"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# --- PDF ------------------------------------------------------------------------------

PDF_DAMAGED = "The PDF is damaged or not a PDF."


def _extract_pdf(body: bytes, *, source_name: str) -> ExtractedDocument:
    started = time.monotonic()
    limit: float = settings.PDF_TIME_LIMIT
    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("The PDF is password-protected.")
        page_count = len(reader.pages)
    except ExtractionError:
        raise
    except (FileNotDecryptedError, DependencyError, NotImplementedError) as exc:
        # Encrypted with a scheme pypdf cannot open even with the empty password.
        raise ExtractionError("The PDF is password-protected.") from exc
    except Exception as exc:
        # pypdf meets broken files with many kinds of errors, not only PyPdfError.
        raise ExtractionError(PDF_DAMAGED) from exc
    if page_count == 0:
        raise ExtractionError(PDF_DAMAGED)

    sections = []
    failed_pages = 0
    for number, page in enumerate(reader.pages, start=1):
        if time.monotonic() - started > limit:
            raise ExtractionError(
                f"Reading the PDF took longer than {limit:g} seconds; it may be too large or too complex."
            )
        try:
            text = page.extract_text()
        except Exception:
            # One broken page should not cost the others.
            logger.warning("Could not read page %d of %s", number, source_name, exc_info=True)
            failed_pages += 1
            continue
        text = _tidy_pdf_text(text)
        if text:
            sections.append(Section(text=text, page=number))
    if not sections:
        if failed_pages == page_count:
            raise ExtractionError(PDF_DAMAGED)
        raise ExtractionError("The PDF has no text layer (it may be a scan); text recognition is not supported.")
    return ExtractedDocument(title=_pdf_title(reader, sections, source_name), kind="pdf", sections=sections)


def _tidy_pdf_text(text: str) -> str:
    text = _clean_newlines(text)
    lines = [re.sub(r"[ \t\f\v\xa0]+", " ", line).strip() for line in text.split("\n")]
    # Keep at most one blank line: it marks a paragraph break for the chunker.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _pdf_title(reader: PdfReader, sections: list[Section], source_name: str) -> str:
    try:
        metadata: Any = reader.metadata or {}
        title = _collapse(str(metadata.get("/Title") or ""))
    except Exception:
        title = ""  # broken metadata is no reason to fail a readable PDF
    if not title:
        title = sections[0].text.split("\n", 1)[0].strip()
    return _clip(title or source_name)


# --- CSV ------------------------------------------------------------------------------


def _extract_csv(text: str, *, source_name: str) -> ExtractedDocument:
    if not text.strip():
        raise ExtractionError("The CSV file is empty.")
    delimiter = _csv_delimiter(text)
    frame = _csv_read(text, delimiter)
    if frame.empty:
        raise ExtractionError("The CSV file has a header but no data rows.")
    frame = frame.map(_collapse)
    columns = list(frame.columns)

    sections = [Section(text=_csv_schema(frame, delimiter), kind="schema")]
    header = " | ".join(columns)
    lines = [" | ".join(row).rstrip() for row in frame.itertuples(index=False, name=None)]
    for start in range(0, len(lines), CSV_ROWS_PER_SECTION):
        block = lines[start : start + CSV_ROWS_PER_SECTION]
        sections.append(
            Section(
                text="\n".join([header, *block]),
                row_start=start + 1,
                row_end=start + len(block),
                kind="table",
            )
        )
    return ExtractedDocument(title=_clip(source_name), kind="csv", sections=sections)


def _csv_delimiter(text: str) -> str:
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on ragged files: take the candidate found most often per line.
    lines = [line for line in sample.split("\n")[:50] if line.strip()]
    counts = {d: sum(line.count(d) for line in lines) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_read(text: str, delimiter: str) -> pd.DataFrame:
    """Every cell as a string, one row per record; blank lines are skipped.

    Records are parsed with the csv module, not pandas' readers: with a ragged first data
    row those silently drop cells (or take a column as the index). Short rows are padded
    with empty cells; the extra cells of long rows are joined, with the delimiter, into the
    last column, so no value is lost.
    """
    # Long text cells are legitimate; the csv module's default limit is 128 KiB per field.
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_MAX_CHARS))
    try:
        records = [record for record in csv.reader(io.StringIO(text), delimiter=delimiter) if record]
    except csv.Error as exc:
        raise ExtractionError(f"The CSV file could not be read: {exc}.") from exc
    if not records:
        raise ExtractionError("The CSV file is empty.")
    header, rows = records[0], records[1:]
    width = len(header)
    rows = [_csv_fit_width(row, width, delimiter) for row in rows]
    return pd.DataFrame(rows, columns=_csv_column_names(header), dtype=str)


def _csv_fit_width(row: list[str], width: int, delimiter: str) -> list[str]:
    if len(row) <= width:
        return [*row, *[""] * (width - len(row))]
    return [*row[: width - 1], delimiter.join(row[width - 1 :])]


def _csv_column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        name = _collapse(raw) or f"column {position}"
        if name in names:
            name = f"{name} ({position})"
        names.append(name)
    return names


def _csv_schema(frame: pd.DataFrame, delimiter: str) -> str:
    rows, columns = len(frame), len(frame.columns)
    lines = [f"Table with {rows} row{'s' if rows != 1 else ''} and {columns} column{'s' if columns != 1 else ''}:"]
    for name in frame.columns:
        values = frame[name]
        filled = values[values != ""]
        kind = _csv_column_type(filled, decimal_comma=delimiter != ",")
        examples = [_clip(v, CSV_EXAMPLE_MAX_CHARS) for v in filled.drop_duplicates().head(CSV_EXAMPLE_VALUES)]
        line = f"- {name} ({kind})"
        if examples:
            line += ": " + ", ".join(examples)
        lines.append(line)
    return "\n".join(lines)


CSV_DATE = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?.*)?|\d{1,2}[./]\d{1,2}[./]\d{2,4})$")
CSV_BOOLEANS = {"true", "false", "yes", "no", "y", "n", "0", "1"}


def _csv_column_type(values: pd.Series, *, decimal_comma: bool) -> str:
    """A rough type, from up to 1000 non-empty values: what a reader needs to phrase questions."""
    sample = values.head(1000)
    if sample.empty:
        return "empty"
    checks: list[tuple[str, Callable[[str], bool]]] = [
        ("integer", lambda v: bool(re.fullmatch(r"[+-]?\d+", v))),
        ("number", lambda v: _is_number(v, decimal_comma=decimal_comma)),
        ("date", lambda v: bool(CSV_DATE.match(v))),
        ("boolean", lambda v: v.lower() in CSV_BOOLEANS),
    ]
    for name, check in checks:
        if all(check(v) for v in sample):
            return name
    return "text"


def _is_number(value: str, *, decimal_comma: bool) -> bool:
    if decimal_comma:
        value = value.replace(",", ".")
    try:
        float(value)
    except ValueError:
        return False
    return True


# --- Plain text and markdown ------------------------------------------------------------

MARKDOWN_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
MARKDOWN_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
MARKDOWN_FENCE = re.compile(r"^ {0,3}(```|~~~)")
MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _paragraphs(text: str) -> list[str]:
    return [p for p in (_tidy_lines(block) for block in re.split(r"\n[ \t]*\n", text)) if p]


def _extract_plain_text(text: str, *, source_name: str) -> ExtractedDocument:
    paragraphs = _paragraphs(text)
    if not paragraphs:
        raise ExtractionError("The file has no readable text.")
    return ExtractedDocument(title=_clip(source_name), kind="text", sections=[Section(text=p) for p in paragraphs])


def _extract_markdown(text: str, *, source_name: str) -> ExtractedDocument:
    text, front_title = _markdown_front_matter(text)
    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    body: list[str] = []
    first_h1 = ""

    def end_section() -> None:
        paragraphs = _paragraphs("\n".join(body))
        if paragraphs:
            sections.append(Section(text="\n\n".join(paragraphs), heading_path=tuple(t for _, t in headings)))
        body.clear()

    in_fence = False
    for line in text.split("\n"):
        if MARKDOWN_FENCE.match(line):
            in_fence = not in_fence
            body.append(line)
            continue
        heading: tuple[int, str] | None = None
        if not in_fence:
            atx = MARKDOWN_ATX.match(line)
            setext = MARKDOWN_SETEXT.match(line)
            if atx:
                heading = (len(atx.group(1)), atx.group(2).strip())
            elif setext and body and body[-1].strip() and not MARKDOWN_FENCE.match(body[-1]):
                # "Title\n=====" (h1) or "Title\n-----" (h2): the previous line was the heading.
                heading = (1 if setext.group(1)[0] == "=" else 2, body.pop().strip())
        if heading is None:
            body.append(line if in_fence else MARKDOWN_LINK.sub(r"\1", MARKDOWN_IMAGE.sub(r"\1", line)))
            continue
        level, title = heading
        title = _collapse(MARKDOWN_LINK.sub(r"\1", title))
        if not title:
            continue
        end_section()
        if level == 1 and not first_h1:
            first_h1 = title
        headings = [(lvl, t) for lvl, t in headings if lvl < level] + [(level, title)]
    end_section()
    if not sections:
        raise ExtractionError("The file has no readable text.")
    return ExtractedDocument(title=_clip(front_title or first_h1 or source_name), kind="markdown", sections=sections)


def _markdown_front_matter(text: str) -> tuple[str, str]:
    """Strip a leading YAML front matter block; return the text and its `title:`, if any."""
    match = re.match(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", text, re.DOTALL)
    if not match:
        return text, ""
    title = re.search(r"^title:[ \t]*(.+)$", match.group(1), re.MULTILINE)
    return text[match.end() :], (title.group(1).strip().strip("\"'") if title else "")
