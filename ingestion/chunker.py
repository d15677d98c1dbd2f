"""Split an extracted document into chunks the embedding model reads whole.

Sizes are counted in the embedding model's own word pieces (`count_tokens`), on the text
the model will actually see: `embedding_text(chunk, title)`, the chunk prefixed with the
document title and its heading path, special tokens included. Every chunk fits in
`max_tokens` of those; the model ignores whatever lies past its window, so a chunk that
did not fit would be indexed by its beginning only.

Chunks follow the document's structure: they never span two pages or two heading paths,
long sections are split at paragraph breaks, then sentence ends, then line breaks, then
spaces, and consecutive chunks of a section share about `overlap_tokens` (whole sentences
where possible). CSV tables are split between rows only, each chunk repeating the header
line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import groupby

from django.conf import settings

from ingestion.extractors import ExtractedDocument, Section

SECTION_SEPARATOR = "\n\n"
HEADING_SEPARATOR = " › "
TITLE_MAX_CHARS = 100
HEADING_MAX_CHARS = 80
# The tokenizer maps a word of more than 100 characters (or an unknown symbol) to a single
# [UNK], so a token limit alone would let a base64 blob make a 100 kB chunk. Chunks are
# capped in characters too; ordinary prose has 4 to 5 characters per word piece.
MAX_CHARS_PER_TOKEN = 10

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]")
WORD = re.compile(r"\S+")
LINE_BREAK = re.compile(r"\n")


@dataclass
class Chunk:
    """A piece of a document, the unit that is embedded and retrieved.

    `char_start`/`char_end` are offsets into `document_text(doc)`, the sections' texts
    joined with "\\n\\n". For text chunks `text == document_text(doc)[char_start:char_end]`;
    a CSV table chunk's text is the header line, a newline, then that span (its rows).
    `token_count` counts the word pieces of `embedding_text(chunk, title)`, special
    tokens included. `row_start`/`row_end` are 1-based data row numbers of CSV chunks.
    """

    index: int
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    row_start: int | None
    row_end: int | None
    char_start: int
    char_end: int
    token_count: int


def document_text(doc: ExtractedDocument) -> str:
    """The text that chunk offsets point into."""
    return SECTION_SEPARATOR.join(section.text for section in doc.sections)


def embedding_text(chunk: Chunk, title: str) -> str:
    """What the model embeds for a chunk: the title and headings joined by HEADING_SEPARATOR,
    a blank line, then the chunk's text.

    The title and headings are clipped to a few dozen characters; a heading equal to the
    one before it (often the page's h1 repeats its title) is left out.
    """
    parts = [_clip(title.strip(), TITLE_MAX_CHARS)] if title.strip() else []
    for heading in chunk.heading_path:
        heading = _clip(heading.strip(), HEADING_MAX_CHARS)
        if heading and (not parts or heading.casefold() != parts[-1].casefold()):
            parts.append(heading)
    prefix = HEADING_SEPARATOR.join(parts)
    return f"{prefix}{SECTION_SEPARATOR}{chunk.text}" if prefix else chunk.text


def chunk_document(
    doc: ExtractedDocument,
    *,
    count_tokens: Callable[[str], int],
    max_tokens: int | None = None,
    overlap_tokens: int | None = None,
) -> list[Chunk]:
    """Chunks of `doc` in reading order, numbered from 0.

    Consecutive text sections with the same heading path and page are chunked as one run;
    "table" and "schema" sections are chunked on their own. Raises ValueError when
    `max_tokens` leaves no room for text after the title.
    """
    max_tokens = settings.CHUNK_MAX_TOKENS if max_tokens is None else max_tokens
    overlap_tokens = settings.CHUNK_OVERLAP_TOKENS if overlap_tokens is None else overlap_tokens
    full_text = document_text(doc)
    chunks: list[Chunk] = []
    for run, start in _runs(doc.sections):
        budget = _Budget(count_tokens, max_tokens=max_tokens, title=doc.title, template=run[0])
        if run[0].kind == "table":
            pieces = budget.table_chunks(run[0], start)
        else:
            end = start + sum(len(s.text) for s in run) + len(SECTION_SEPARATOR) * (len(run) - 1)
            by_lines = run[0].kind == "schema"
            pieces = budget.text_chunks(
                full_text[start:end], start, overlap_tokens=0 if by_lines else overlap_tokens, by_lines=by_lines
            )
        for piece in pieces:
            chunks.append(replace(piece, index=len(chunks)))
    return chunks


def _runs(sections: list[Section]) -> Iterator[tuple[list[Section], int]]:
    """Sections to chunk together, with the offset of the first in the document text."""
    offset = 0
    positioned = []
    for section in sections:
        positioned.append((section, offset))
        offset += len(section.text) + len(SECTION_SEPARATOR)

    def run_key(item: tuple[Section, int]) -> object:
        section, start = item
        if section.kind != "text":
            return (section.kind, start)  # never merged
        return ("text", section.heading_path, section.page)

    for _, group in groupby(positioned, key=run_key):
        items = list(group)
        run = [section for section, _ in items]
        if any(section.text.strip() for section in run):
            yield run, items[0][1]


@dataclass
class _Unit:
    """The smallest span packed into chunks: a sentence, or a part of a sentence too long for one chunk."""

    start: int
    end: int
    cost: int  # word pieces, special tokens excluded
    paragraph_start: bool


class _Budget:
    """Measures text against the limit, for the chunks of one heading path and page."""

    def __init__(self, count_tokens: Callable[[str], int], *, max_tokens: int, title: str, template: Section) -> None:
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.max_chars = max_tokens * MAX_CHARS_PER_TOKEN
        self.title = title
        self.template = Chunk(0, "", template.heading_path, template.page, None, None, 0, 0, 0)
        self.special_tokens = count_tokens("")
        self._measured: tuple[str | None, int] = (None, 0)
        self.room = self._room()
        # Deep heading paths take too much of the window: keep the innermost headings.
        while self.room < max_tokens // 2 and self.template.heading_path:
            self.template = replace(self.template, heading_path=self.template.heading_path[1:])
            self.room = self._room()
        if self.room < 1:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text after the title {title!r}")

    def _room(self) -> int:
        return self.max_tokens - self.count_tokens(embedding_text(self.template, self.title))

    def cost(self, text: str) -> int:
        return self.count_tokens(text) - self.special_tokens

    def measure(self, text: str) -> int:
        """Word pieces of the chunk's embedding text, special tokens included."""
        # A chunk is measured when packed and again when made: remember the last one.
        if self._measured[0] != text:
            self._measured = (text, self.count_tokens(embedding_text(replace(self.template, text=text), self.title)))
        return self._measured[1]

    def chunk(self, text: str, start: int, end: int, *, rows: tuple[int | None, int | None] = (None, None)) -> Chunk:
        token_count = self.measure(text)
        # Every path here is built to fit; a failure is a bug in this module, not in the input.
        assert token_count <= self.max_tokens, (token_count, self.max_tokens)
        return replace(
            self.template,
            text=text,
            row_start=rows[0],
            row_end=rows[1],
            char_start=start,
            char_end=end,
            token_count=token_count,
        )

    # --- Text ---------------------------------------------------------------------------

    def text_chunks(self, text: str, offset: int, *, overlap_tokens: int, by_lines: bool) -> list[Chunk]:
        units = list(self._units(text, by_lines=by_lines))
        # Leave at least half of each chunk to new text.
        overlap_tokens = max(0, min(overlap_tokens, self.room // 2))
        chunks = []
        i = 0
        carry: tuple[int, int] | None = None  # (start, cost) of the text repeated from the chunk before
        while i < len(units):
            start, used = carry or (units[i].start, 0)
            j = i
            while j < len(units) and used + units[j].cost <= self.room and units[j].end - start <= self.max_chars:
                used += units[j].cost
                j += 1
            if j < len(units):
                j = self._paragraph_end(units, i, j, carry_cost=carry[1] if carry else 0)
            # Costs add up exactly for this tokenizer, but check the real count anyway.
            while j > i and self.measure(text[start : units[j - 1].end]) > self.max_tokens:
                j -= 1
            if j == i:
                if carry is None:  # every unit fits on its own; unreachable unless count_tokens is odd
                    raise AssertionError(f"a unit of {units[i].cost} tokens does not fit in {self.room}")
                carry = None  # the overlap leaves no room for the next unit: go without it
                continue
            end = units[j - 1].end
            chunks.append(self.chunk(text[start:end], offset + start, offset + end))
            carry = self._overlap(text, units, i, j, start, overlap_tokens) if j < len(units) else None
            i = j
        return chunks

    def _paragraph_end(self, units: list[_Unit], i: int, j: int, *, carry_cost: int) -> int:
        """End the chunk at the last paragraph break in its second half, if there is one."""
        used = carry_cost + sum(u.cost for u in units[i:j])
        for k in range(j - 1, i, -1):
            used -= units[k].cost
            if used < self.room // 2:
                break
            if units[k].paragraph_start:
                return k
        return j

    def _overlap(
        self, text: str, units: list[_Unit], i: int, j: int, start: int, overlap_tokens: int
    ) -> tuple[int, int] | None:
        """Where the next chunk starts: the last whole units of this one worth at most
        `overlap_tokens`, else the last words of its last unit."""
        if overlap_tokens <= 0:
            return None
        k, cost = j, 0
        while k - 1 > i and cost + units[k - 1].cost <= overlap_tokens:
            k -= 1
            cost += units[k].cost
        if k < j:
            return units[k].start, cost
        last = units[j - 1]
        words = [m.span() for m in WORD.finditer(text, max(last.start, start), last.end)]
        cost, first = 0, len(words)
        for w_start, w_end in reversed(words[1:]):
            word_cost = self.cost(text[w_start:w_end])
            if cost + word_cost > overlap_tokens:
                break
            cost += word_cost
            first -= 1
        return (words[first][0], cost) if first < len(words) else None

    def _units(self, text: str, *, by_lines: bool) -> Iterator[_Unit]:
        for p_start, p_end in _spans(text, PARAGRAPH_BREAK, 0, len(text)):
            paragraph_start = True
            pieces = _lines(text, p_start, p_end) if by_lines else _sentences(text, p_start, p_end)
            levels = ("word", "char") if by_lines else ("line", "word", "char")
            for s_start, s_end in pieces:
                for start, end, cost in self._fitted(text, s_start, s_end, levels, self.room, self.max_chars):
                    yield _Unit(start, end, cost, paragraph_start)
                    paragraph_start = False

    def _fitted(
        self, text: str, start: int, end: int, levels: tuple[str, ...], room: int, max_chars: int
    ) -> Iterator[tuple[int, int, int]]:
        """(start, end, cost) spans of text[start:end], each within `room` tokens and `max_chars`,
        split at the first of `levels` ("line", "word", "char") that makes them fit."""
        cost = self.cost(text[start:end])
        if (cost <= room and end - start <= max_chars) or not levels:
            yield start, end, cost
            return
        level, deeper = levels[0], levels[1:]
        if level == "char":
            yield from self._hard_split(text, start, end, room, max_chars)
            return
        parts = _lines(text, start, end) if level == "line" else [m.span() for m in WORD.finditer(text, start, end)]
        for part_start, part_end in parts:
            yield from self._fitted(text, part_start, part_end, deeper, room, max_chars)

    def _hard_split(self, text: str, start: int, end: int, room: int, max_chars: int) -> Iterator[tuple[int, int, int]]:
        """A single word too long for a chunk (a run of CJK characters, a URL with no breaks):
        cut it into the longest pieces that fit, anywhere. The only split that ignores words."""
        while start < end:
            low, high = 1, min(end - start, max_chars)
            # The longest prefix that fits (one character always does: it is at most one word piece).
            while low < high:
                middle = (low + high + 1) // 2
                if self.cost(text[start : start + middle]) <= room:
                    low = middle
                else:
                    high = middle - 1
            yield start, start + low, self.cost(text[start : start + low])
            start += low

    # --- CSV tables ---------------------------------------------------------------------

    def table_chunks(self, section: Section, offset: int) -> list[Chunk]:
        """Rows packed under a copy of the header line; a chunk never splits a row unless the
        row alone is too long for a chunk."""
        text = section.text
        header_end = text.find("\n")
        if header_end < 0:
            return []
        header = self._table_header(text[:header_end])
        header_cost = self.cost(header)
        rows = _lines_with_empty(text, header_end + 1, len(text))
        first_row = section.row_start
        room = self.room - header_cost
        max_chars = self.max_chars - len(header) - 1

        chunks: list[Chunk] = []
        i = 0
        costs = [self.cost(text[s:e]) for s, e in rows]
        while i < len(rows):
            j, used = i, 0
            while j < len(rows) and used + costs[j] <= room and rows[j][1] - rows[i][0] <= max_chars:
                used += costs[j]
                j += 1
            while j > i + 1 and self.measure(f"{header}\n{text[rows[i][0] : rows[j - 1][1]]}") > self.max_tokens:
                j -= 1
            numbers = (first_row + i, first_row + max(i, j - 1)) if first_row is not None else (None, None)
            if j == i or (j == i + 1 and self.measure(f"{header}\n{text[rows[i][0] : rows[i][1]]}") > self.max_tokens):
                # A single row too long for a chunk: cut it at spaces (then anywhere), each
                # piece under the header, all of them numbered as that row.
                for start, end in self._row_pieces(text, *rows[i], header=header, room=room, max_chars=max_chars):
                    chunks.append(self._table_chunk(header, text, start, end, offset, numbers))
                i += 1
                continue
            chunks.append(self._table_chunk(header, text, rows[i][0], rows[j - 1][1], offset, numbers))
            i = j
        return chunks

    def _row_pieces(
        self, text: str, start: int, end: int, *, header: str, room: int, max_chars: int
    ) -> Iterator[tuple[int, int]]:
        """Consecutive words of one row, packed into the longest pieces that fit under the header."""
        words = list(self._fitted(text, start, end, ("word", "char"), room, max_chars))
        i = 0
        while i < len(words):
            j, used = i, 0
            while j < len(words) and used + words[j][2] <= room and words[j][1] - words[i][0] <= max_chars:
                used += words[j][2]
                j += 1
            while j > i + 1 and self.measure(f"{header}\n{text[words[i][0] : words[j - 1][1]]}") > self.max_tokens:
                j -= 1
            j = max(j, i + 1)  # each word was fitted to the room on its own
            yield words[i][0], words[j - 1][1]
            i = j

    def _table_chunk(
        self, header: str, text: str, start: int, end: int, offset: int, rows: tuple[int | None, int | None]
    ) -> Chunk:
        return self.chunk(f"{header}\n{text[start:end]}", offset + start, offset + end, rows=rows)

    def _table_header(self, header: str) -> str:
        """The header line, cut (at a space when possible) if it would take more than half a chunk."""
        room, max_chars = self.room // 2, self.max_chars // 2
        if self.cost(header) <= room and len(header) <= max_chars:
            return header
        _, end, _ = next(self._hard_split(header, 0, len(header), room - 1, max_chars - 2))
        cut = header.rfind(" ", 0, end)
        return header[: cut if cut > 0 else end].rstrip(" |") + " …"


def _spans(text: str, separator: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """Spans of text[start:end] between matches of `separator`, stripped, empty ones left out."""
    spans = []
    position = start
    for match in separator.finditer(text, start, end):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, end))
    return [span for span in (_strip(text, s, e) for s, e in spans) if span[0] < span[1]]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    position = start
    for match in SENTENCE_END.finditer(text, start, end):
        spans.append((position, match.end()))
        position = match.end()
    spans.append((position, end))
    return [span for span in (_strip(text, s, e) for s, e in spans) if span[0] < span[1]]


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return _spans(text, LINE_BREAK, start, end)


def _lines_with_empty(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Every line, empty ones too: in a table each line is a row, and rows are counted."""
    spans = []
    position = start
    while True:
        newline = text.find("\n", position, end)
        if newline < 0:
            spans.append((position, end))
            return spans
        spans.append((position, newline))
        position = newline + 1


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
