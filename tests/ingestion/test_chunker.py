"""Chunking, measured with the real embedding tokenizer: every chunk fits the model's window."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest

from ingestion.chunker import MAX_CHARS_PER_TOKEN, Chunk, chunk_document, document_text, embedding_text
from ingestion.embedder import local_embedder
from ingestion.extractors import ExtractedDocument, Section, extract

ANIMALS = ["fox", "heron", "badger", "otter", "lynx", "moose", "raven"]
PLACES = ["river", "marsh", "ridge", "forest", "meadow", "glacier"]


@pytest.fixture(scope="module")
def count_tokens():
    return local_embedder().count_tokens


def sentence(n: int) -> str:
    return f"On day {n} the {ANIMALS[n % 7]} crossed the {PLACES[n % 6]} and rested near stone {n * 7}."


def paragraph(first: int, count: int) -> str:
    return " ".join(sentence(n) for n in range(first, first + count))


def assert_fits(chunks: list[Chunk], doc: ExtractedDocument, count_tokens, max_tokens: int) -> None:
    for chunk in chunks:
        measured = count_tokens(embedding_text(chunk, doc.title))
        assert measured <= max_tokens, (measured, chunk)
        assert chunk.token_count == measured
        assert len(chunk.text) <= max_tokens * MAX_CHARS_PER_TOKEN


def section_spans(doc: ExtractedDocument) -> list[tuple[int, int]]:
    spans, offset = [], 0
    for section in doc.sections:
        spans.append((offset, offset + len(section.text)))
        offset += len(section.text) + 2
    return spans


def long_document() -> ExtractedDocument:
    return ExtractedDocument(
        title="Field Journal",
        kind="html",
        sections=[
            Section(text="\n\n".join(paragraph(p * 10, 10) for p in range(6)), heading_path=("Field Journal",)),
            Section(text=paragraph(100, 25), heading_path=("Field Journal", "Spring")),
            Section(text=paragraph(200, 3), heading_path=("Field Journal", "Spring", "Notes")),
            Section(text=paragraph(300, 25), heading_path=("Field Journal", "Summer")),
        ],
    )


def test_every_chunk_fits_the_limit_by_the_real_tokenizer(count_tokens):
    doc = long_document()

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    assert len(chunks) > 8
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert_fits(chunks, doc, count_tokens, 200)
    # Chunks are filled, not cut needlessly small.
    assert max(c.token_count for c in chunks) > 160


def test_limits_come_from_settings_by_default(count_tokens, settings):
    settings.CHUNK_MAX_TOKENS = 90
    settings.CHUNK_OVERLAP_TOKENS = 0
    doc = long_document()

    chunks = chunk_document(doc, count_tokens=count_tokens)

    assert_fits(chunks, doc, count_tokens, 90)
    assert max(c.token_count for c in chunks) > 70


def test_char_spans_point_at_the_chunk_text(count_tokens):
    doc = long_document()
    full = document_text(doc)

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=120, overlap_tokens=30)

    assert full == "\n\n".join(s.text for s in doc.sections)
    for chunk in chunks:
        assert full[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text == chunk.text.strip()


def test_chunks_never_cross_heading_paths_and_keep_them(count_tokens):
    doc = long_document()
    spans = section_spans(doc)

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    for chunk in chunks:
        (section,) = [s for s, (a, b) in zip(doc.sections, spans, strict=True) if a <= chunk.char_start < b]
        assert chunk.char_end <= spans[doc.sections.index(section)][1]
        assert chunk.heading_path == section.heading_path
    # The three-sentence "Notes" section stays on its own rather than joining its neighbours.
    notes = [c for c in chunks if c.heading_path == ("Field Journal", "Spring", "Notes")]
    assert [c.text for c in notes] == [doc.sections[2].text]


def test_consecutive_chunks_of_a_section_overlap_by_whole_sentences(count_tokens):
    doc = ExtractedDocument(title="T", kind="text", sections=[Section(text=paragraph(0, 60))])
    full = document_text(doc)

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=150, overlap_tokens=40)

    assert len(chunks) >= 4
    for before, after in pairwise(chunks):
        shared = full[after.char_start : before.char_end]
        assert after.char_start < before.char_end, "no overlap"
        assert after.char_start > before.char_start
        assert 0 < count_tokens(shared) - 2 <= 40
        assert re.fullmatch(r"(On day \d+ [^.]+\.\s?)+", shared), shared


def test_overlap_zero_gives_back_to_back_chunks(count_tokens):
    doc = ExtractedDocument(title="T", kind="text", sections=[Section(text=paragraph(0, 60))])

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=150, overlap_tokens=0)

    for before, after in pairwise(chunks):
        assert after.char_start == before.char_end + 1
    assert " ".join(c.text for c in chunks) == doc.sections[0].text


def test_long_sentences_overlap_by_their_last_words(count_tokens):
    words = " ".join(f"word{n}" for n in range(600))  # one "sentence" of about 1800 word pieces
    doc = ExtractedDocument(title="T", kind="text", sections=[Section(text=words)])

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=100, overlap_tokens=20)

    assert_fits(chunks, doc, count_tokens, 100)
    for before, after in pairwise(chunks):
        assert before.char_start < after.char_start < before.char_end
        assert after.text.startswith("word")  # cut at a space, not inside a word


def test_chunks_end_at_paragraph_breaks_when_they_can(count_tokens):
    first, second = paragraph(0, 8), paragraph(50, 8)
    assert 100 < count_tokens(first) < 150 and 100 < count_tokens(second) < 150
    doc = ExtractedDocument(title="T", kind="text", sections=[Section(text=f"{first}\n\n{second}")])

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=0)

    assert [c.text for c in chunks] == [first, second]


def test_small_sections_under_the_same_heading_are_chunked_together(count_tokens):
    doc = extract(b"One.\n\nTwo.\n\nThree.", "text/plain", source_name="a.txt")

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    assert [c.text for c in chunks] == ["One.\n\nTwo.\n\nThree."]


def test_page_numbers_are_kept_and_pages_never_merge(count_tokens):
    doc = ExtractedDocument(
        title="Report",
        kind="pdf",
        sections=[
            Section(text="Short first page.", page=1),
            Section(text=paragraph(0, 30), page=2),
            Section(text="Short last page.", page=3),
        ],
    )

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    assert chunks[0].text == "Short first page." and chunks[0].page == 1
    assert chunks[-1].text == "Short last page." and chunks[-1].page == 3
    middle = chunks[1:-1]
    assert len(middle) >= 2 and {c.page for c in middle} == {2}
    assert_fits(chunks, doc, count_tokens, 200)


def test_a_giant_word_is_cut_to_fit(count_tokens):
    cjk = "\u6771\u4eac\u5927\u962a" * 400  # no spaces, one word piece per character
    blob = "Q" * 20_000  # the tokenizer reads any word over 100 characters as one [UNK]
    doc = ExtractedDocument(title="T", kind="text", sections=[Section(text=cjk), Section(text=blob, page=2)])

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=100, overlap_tokens=20)

    assert_fits(chunks, doc, count_tokens, 100)
    assert "".join(c.text for c in chunks if c.page is None) == cjk
    assert "".join(c.text for c in chunks if c.page == 2) == blob
    assert max(c.token_count for c in chunks) == 100


def test_deep_heading_paths_leave_room_for_text(count_tokens):
    headings = tuple(f"Heading number {n} with a rather long and wordy name" for n in range(12))
    doc = ExtractedDocument(title="T", kind="text", sections=[Section(text=paragraph(0, 8), heading_path=headings)])

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=120, overlap_tokens=20)

    assert_fits(chunks, doc, count_tokens, 120)
    assert all(c.heading_path and c.heading_path[-1] == headings[-1] for c in chunks)


def test_a_limit_too_small_for_the_title_is_an_error(count_tokens):
    doc = ExtractedDocument(title="A title of many many words " * 5, kind="text", sections=[Section(text="x")])

    with pytest.raises(ValueError, match="no room"):
        chunk_document(doc, count_tokens=count_tokens, max_tokens=10)


def test_embedding_text_prefixes_the_title_and_heading_path():
    chunk = Chunk(0, "Body.", ("Guide", "Install", "Linux"), None, None, None, 0, 5, 0)

    assert embedding_text(chunk, "My Guide") == "My Guide \u203a Guide \u203a Install \u203a Linux\n\nBody."
    # A first heading repeating the title is said once.
    assert embedding_text(chunk, "guide") == "guide \u203a Install \u203a Linux\n\nBody."
    bare = Chunk(0, "Body.", (), None, None, None, 0, 5, 0)
    assert embedding_text(bare, "") == "Body."


# --- CSV -------------------------------------------------------------------------------


def csv_document(rows: int, *, giant_row: int | None = None) -> ExtractedDocument:
    lines = ["id;species;habitat;note"]
    for n in range(1, rows + 1):
        note = paragraph(n, 40) if n == giant_row else sentence(n)
        lines.append(f"{n};{ANIMALS[n % 7]};{PLACES[n % 6]};{note}")
    return extract("\n".join(lines).encode(), "text/csv", source_name="sightings.csv")


def table_rows(chunk: Chunk) -> list[str]:
    return chunk.text.split("\n")[1:]


def test_csv_schema_is_one_chunk_and_table_chunks_repeat_the_header(count_tokens):
    doc = csv_document(120)

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    schema, *tables = chunks
    assert schema.text == doc.sections[0].text and schema.row_start is None
    assert len(tables) > 3
    assert all(c.text.startswith("id | species | habitat | note\n") for c in tables)
    assert_fits(chunks, doc, count_tokens, 200)


def test_csv_chunks_hold_whole_rows_numbered_without_gaps(count_tokens):
    doc = csv_document(120)
    full = document_text(doc)

    tables = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)[1:]

    expected_next = 1
    for chunk in tables:
        assert chunk.row_start == expected_next
        rows = table_rows(chunk)
        assert [int(row.split(" | ")[0]) for row in rows] == list(range(chunk.row_start, chunk.row_end + 1))
        assert "\n".join(rows) == full[chunk.char_start : chunk.char_end]
        expected_next = chunk.row_end + 1
    assert expected_next == 121


def test_csv_giant_row_is_cut_into_pieces_under_the_header(count_tokens):
    doc = csv_document(10, giant_row=5)

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=120, overlap_tokens=40)

    assert_fits(chunks, doc, count_tokens, 120)
    pieces = [c for c in chunks if (c.row_start, c.row_end) == (5, 5)]
    assert len(pieces) > 3
    assert all(c.text.startswith("id | species | habitat | note\n") for c in pieces)
    giant_line = doc.sections[1].text.split("\n")[5]
    assert " ".join(table_rows(c)[0] for c in pieces) == giant_line
    # The rows around it are chunked whole.
    assert {c.row_end for c in chunks if c.row_end and c.row_end < 5} == {4}
    assert min(c.row_start for c in chunks if c.row_start and c.row_start > 5) == 6


def test_csv_header_too_wide_for_a_chunk_is_shortened(count_tokens):
    columns = [f"measurement_{n}_of_the_station" for n in range(60)]
    body = ",".join(columns) + "\n" + ",".join(str(n) for n in range(60))
    doc = extract(body.encode(), "text/csv", source_name="wide.csv")

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    assert_fits(chunks, doc, count_tokens, 200)
    tables = [c for c in chunks if c.row_start == 1]
    assert tables and all(c.text.split("\n")[0].endswith(" \u2026") for c in tables)
    # The schema lists 60 columns: too long for one chunk, it is split between lines.
    schemas = [c for c in chunks if c.row_start is None]
    assert len(schemas) > 1
    assert all(line.startswith(("Table with", "- measurement_")) for c in schemas for line in c.text.split("\n"))


def test_extracted_pages_and_pdfs_chunk_within_the_limit(count_tokens):
    html = "<main><h1>Guide</h1>" + "".join(f"<h2>Part {p}</h2><p>{paragraph(p * 20, 20)}</p>" for p in range(4))
    doc = extract(f"<title>Guide</title>{html}</main>".encode(), "text/html", source_name="g.html")

    chunks = chunk_document(doc, count_tokens=count_tokens, max_tokens=200, overlap_tokens=40)

    assert_fits(chunks, doc, count_tokens, 200)
    assert {c.heading_path for c in chunks} == {("Guide", f"Part {p}") for p in range(4)}
    assert embedding_text(chunks[0], doc.title).startswith("Guide \u203a Part 0\n\nOn day 0 ")
