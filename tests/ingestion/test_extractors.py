"""Extraction of web pages, PDFs, CSVs, plain text and markdown; fixtures are built in the tests."""

from __future__ import annotations

import io

import pytest
from fpdf import FPDF
from pypdf import PdfWriter

from ingestion.extractors import CSV_ROWS_PER_SECTION, ExtractedDocument, ExtractionError, extract


def texts(doc: ExtractedDocument) -> str:
    return "\n\n".join(section.text for section in doc.sections)


def make_pdf(*pages: str, title: str = "") -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


# --- HTML ------------------------------------------------------------------------------

ARTICLE_PAGE = """<!doctype html>
<html><head><title>Brewing Guide | Coffee Site</title><style>p { color: red }</style>
<script>var tracking = "script text";</script></head>
<body class="has-cookie-banner">
  <header><a href="/">Coffee Site logo</a><nav><a>Home</a><a>Shop</a></nav></header>
  <div id="cookie-consent">We use cookies. Accept all?</div>
  <div class="gdpr-notice">Your privacy matters to us.</div>
  <main>
    <article>
      <header><h1>Brewing Guide</h1><p>By Ann Barista</p></header>
      <p>Good coffee starts   with
         fresh beans and <b>clean</b> water.</p>
      <h2>Grinding</h2>
      <p>Grind just before brewing.<br>Use a burr grinder.</p>
      <ul><li>Coarse for French press</li><li>Fine for espresso</li></ul>
      <div style="display: none">Hidden by style</div>
      <p hidden>Hidden by attribute</p>
      <span aria-hidden="true">Hidden from readers</span>
      <h3>Burr sizes</h3>
      <table><tr><th>Burr</th><th>Size</th></tr><tr><td>Conical</td><td>38 mm</td></tr></table>
      <h2>Water</h2>
      <p>Use water at 94 degrees.</p>
      <aside>Related: tea guides</aside>
      <form><label>Newsletter</label><input name="email"></form>
      <noscript>Enable JavaScript</noscript>
    </article>
  </main>
  <div class="sidebar-promo">Buy our mugs</div>
  <footer>Copyright Coffee Site</footer>
</body></html>"""


def test_html_keeps_the_main_content_and_drops_boilerplate():
    doc = extract(ARTICLE_PAGE.encode(), "text/html", source_name="https://example.com/guide")

    text = texts(doc)
    assert doc.kind == "html"
    assert "Good coffee starts with fresh beans and clean water." in text
    assert "Use water at 94 degrees." in text
    for boilerplate in [
        "Coffee Site logo", "Home", "We use cookies", "Your privacy", "Hidden by style", "Hidden by attribute",
        "Hidden from readers", "Related: tea", "Newsletter", "Enable JavaScript", "Buy our mugs", "Copyright",
        "script text", "color: red",
    ]:  # fmt: skip
        assert boilerplate not in text


def test_html_headings_become_the_heading_path_of_the_text_under_them():
    doc = extract(ARTICLE_PAGE.encode(), "text/html", source_name="guide")

    by_path = {section.heading_path: section.text for section in doc.sections}
    assert by_path[("Brewing Guide",)].startswith("By Ann Barista\n\nGood coffee")
    assert by_path[("Brewing Guide", "Grinding")] == (
        "Grind just before brewing.\nUse a burr grinder.\n\n- Coarse for French press\n\n- Fine for espresso"
    )
    assert by_path[("Brewing Guide", "Grinding", "Burr sizes")] == "Burr | Size\nConical | 38 mm"
    # A new h2 closes the h3 before it.
    assert by_path[("Brewing Guide", "Water")] == "Use water at 94 degrees."


def test_html_title_comes_from_the_title_tag_then_the_first_h1_then_the_source_name():
    assert extract(ARTICLE_PAGE.encode(), "text/html", source_name="x").title == "Brewing Guide | Coffee Site"
    no_title = b"<html><body><h1>Only a heading</h1><p>Body text.</p></body></html>"
    assert extract(no_title, "text/html", source_name="x").title == "Only a heading"
    bare = b"<p>Just a paragraph.</p>"
    assert extract(bare, "text/html", source_name="https://example.com/a").title == "https://example.com/a"


def test_html_without_main_uses_the_article():
    page = b"<body><div class='promo'>Sale today</div><article><p>The story itself.</p></article></body>"

    doc = extract(page, "text/html", source_name="x")

    assert texts(doc) == "The story itself."


def test_html_with_an_empty_main_falls_back_to_the_body():
    page = b"<body><main></main><div><p>Rendered outside main.</p></div></body>"

    assert texts(extract(page, "text/html", source_name="x")) == "Rendered outside main."


def test_html_with_only_boilerplate_has_no_readable_text():
    page = b"<html><head><title>App</title></head><body><nav>Menu</nav><script>app()</script></body></html>"

    with pytest.raises(ExtractionError) as error:
        extract(page, "text/html", source_name="x")
    assert error.value.message == "The page has no readable text."


def test_html_is_decoded_with_the_declared_or_embedded_charset():
    body = "<p>Caf\u00e9 cr\u00e8me</p>".encode("cp1252")
    assert texts(extract(body, "text/html; charset=windows-1252", source_name="x")) == "Caf\u00e9 cr\u00e8me"
    assert texts(extract(body, "text/html", charset="cp1252", source_name="x")) == "Caf\u00e9 cr\u00e8me"
    with_meta = b'<meta charset="windows-1252">' + body
    assert texts(extract(with_meta, "text/html", source_name="x")) == "Caf\u00e9 cr\u00e8me"


def test_html_keeps_preformatted_text_as_is():
    page = b"<main><pre>def f():\n    return 1</pre></main>"

    assert texts(extract(page, "text/html", source_name="x")) == "def f():\n    return 1"


def test_html_deeply_nested_page_is_read_without_recursion():
    page = ("<div>" * 3000 + "<p>Deep text.</p>" + "</div>" * 3000).encode()

    assert texts(extract(page, "text/html", source_name="x")) == "Deep text."


# --- PDF -------------------------------------------------------------------------------


def test_pdf_is_read_page_by_page():
    body = make_pdf(
        "Annual report. The first page introduces the company.",
        "The warehouse in Tromso holds exactly 4217 pallets of cloudberries.",
        "The third page lists the board members.",
    )

    doc = extract(body, "application/pdf", source_name="report.pdf")

    assert doc.kind == "pdf"
    assert [section.page for section in doc.sections] == [1, 2, 3]
    assert [section.page for section in doc.sections if "4217 pallets" in section.text] == [2]
    assert doc.title == "Annual report. The first page introduces the company."


def test_pdf_title_comes_from_the_metadata_when_present():
    doc = extract(make_pdf("Body text.", title="Cloudberry Logistics 2025"), "application/pdf", source_name="a.pdf")

    assert doc.title == "Cloudberry Logistics 2025"


def test_pdf_with_a_user_password_is_refused():
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.cell(text="Secret plans")
    pdf.set_encryption(owner_password="owner", user_password="pw")

    with pytest.raises(ExtractionError) as error:
        extract(bytes(pdf.output()), "application/pdf", source_name="secret.pdf")
    assert error.value.message == "The PDF is password-protected."


def test_pdf_encrypted_with_an_aes_user_password_is_refused():
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf("Secret plans")))
    writer.encrypt("pw", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)

    with pytest.raises(ExtractionError, match="password-protected"):
        extract(out.getvalue(), "application/pdf", source_name="secret.pdf")


def test_pdf_encrypted_with_only_an_owner_password_is_read():
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf("Open to all readers.")))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)

    doc = extract(out.getvalue(), "application/pdf", source_name="open.pdf")

    assert texts(doc) == "Open to all readers."


@pytest.mark.parametrize("body", [make_pdf("Cut short. " * 40)[:600], b"%PDF-1.7 garbage", b"hello, not a pdf"])
def test_pdf_that_is_damaged_or_not_a_pdf_is_refused(body):
    with pytest.raises(ExtractionError) as error:
        extract(body, "application/pdf", source_name="broken.pdf")
    assert error.value.message == "The PDF is damaged or not a PDF."


def test_pdf_without_a_text_layer_is_refused():
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 80, 40)

    with pytest.raises(ExtractionError) as error:
        extract(bytes(pdf.output()), "application/pdf", source_name="scan.pdf")
    assert error.value.message == ("The PDF has no text layer (it may be a scan); text recognition is not supported.")


def test_pdf_reading_stops_at_the_time_limit(settings):
    settings.PDF_TIME_LIMIT = 1e-9

    with pytest.raises(ExtractionError, match="took longer than"):
        extract(make_pdf("One.", "Two."), "application/pdf", source_name="slow.pdf")


# --- CSV -------------------------------------------------------------------------------


def test_csv_gives_a_schema_then_the_rows_under_their_header():
    body = b"city,population,founded\nOslo,709037,1040-01-01\nBergen,291940,1070-01-01\nTromso,78745,1794-01-01\n"

    doc = extract(body, "text/csv", source_name="cities.csv")

    schema, table = doc.sections
    assert doc.kind == "csv" and doc.title == "cities.csv"
    assert schema.kind == "schema"
    assert schema.text == (
        "Table with 3 rows and 3 columns:\n"
        "- city (text): Oslo, Bergen, Tromso\n"
        "- population (integer): 709037, 291940, 78745\n"
        "- founded (date): 1040-01-01, 1070-01-01, 1794-01-01"
    )
    assert table.kind == "table"
    assert (table.row_start, table.row_end) == (1, 3)
    assert table.text == (
        "city | population | founded\nOslo | 709037 | 1040-01-01\nBergen | 291940 | 1070-01-01\n"
        "Tromso | 78745 | 1794-01-01"
    )


def test_csv_in_latin1_with_semicolons_and_ragged_rows():
    body = "name;city;amount\nJ\u00f8rgen;K\u00f6ln;1,5\nAnn;Paris\nB\u00e9a;Lyon;3;late;extra\n".encode("latin-1")

    doc = extract(body, "text/csv", source_name="people.csv")

    schema, table = doc.sections
    assert schema.text.startswith("Table with 3 rows and 3 columns:\n- name (text): J\u00f8rgen, Ann, B\u00e9a")
    # The short row is padded with an empty cell; the long row's extra cells stay in its last column.
    assert (
        table.text
        == "name | city | amount\nJ\u00f8rgen | K\u00f6ln | 1,5\nAnn | Paris |\nB\u00e9a | Lyon | 3;late;extra"
    )


def test_csv_whose_first_data_row_is_too_long_loses_no_cell():
    doc = extract(b"x,y\n1,2,3\n4,5\n", "text/csv", source_name="a.csv")

    assert doc.sections[1].text == "x | y\n1 | 2,3\n4 | 5"


def test_csv_with_a_utf8_bom_tabs_and_quoted_cells():
    body = '\ufeffid\tnote\n1\t"two\tcells, one\nvalue"\n2\tplain\n'.encode()

    doc = extract(body, "text/csv", source_name="notes.tsv")

    assert doc.sections[1].text == "id | note\n1 | two cells, one value\n2 | plain"


def test_csv_column_types_include_numbers_with_a_decimal_comma():
    body = b"price;when;ok;label\n1,50;2024-01-02;yes;a\n2;2024-02-03 10:00;no;b\n"

    schema = extract(body, "text/csv", source_name="p.csv").sections[0].text

    assert "- price (number)" in schema
    assert "- when (date)" in schema
    assert "- ok (boolean)" in schema
    assert "- label (text)" in schema


def test_csv_rows_are_grouped_into_table_sections_with_row_numbers():
    rows = "".join(f"{n},value {n}\n" for n in range(1, CSV_ROWS_PER_SECTION + 11))
    doc = extract(f"n,v\n{rows}".encode(), "text/csv", source_name="big.csv")

    tables = doc.sections[1:]
    assert [(t.row_start, t.row_end) for t in tables] == [(1, CSV_ROWS_PER_SECTION), (CSV_ROWS_PER_SECTION + 1, 510)]
    assert all(t.text.startswith("n | v\n") for t in tables)
    assert tables[1].text.split("\n")[1] == f"{CSV_ROWS_PER_SECTION + 1} | value {CSV_ROWS_PER_SECTION + 1}"


def test_csv_blank_or_empty_column_names_are_named_by_position():
    doc = extract(b"a,,a\n1,2,3\n", "text/csv", source_name="a.csv")

    assert doc.sections[1].text.split("\n")[0] == "a | column 2 | a (3)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n  \n", "The file is empty."),
        (b"only,a,header\n", "The CSV file has a header but no data rows."),
    ],
)
def test_csv_without_data_is_refused(body, message):
    with pytest.raises(ExtractionError) as error:
        extract(body, "text/csv", source_name="empty.csv")
    assert error.value.message == message


# --- Text and markdown -------------------------------------------------------------------


def test_markdown_headings_become_heading_paths():
    body = b"""---
title: Field Notes
---
# Birds

Seen at dawn: [a robin](https://example.com/robin) and ![owl picture](owl.png).

## Owls
Barn owls hunt at night.

```
# not a heading, a comment in code
```

Raptors
-------
Hawks circle.

### Eagles
Golden eagles nest high.
# Fish
Trout.
"""

    doc = extract(body, "text/markdown", source_name="notes.md")

    assert doc.kind == "markdown"
    assert doc.title == "Field Notes"
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        (("Birds",), "Seen at dawn: a robin and owl picture."),
        (("Birds", "Owls"), "Barn owls hunt at night.\n\n```\n# not a heading, a comment in code\n```"),
        (("Birds", "Raptors"), "Hawks circle."),
        (("Birds", "Raptors", "Eagles"), "Golden eagles nest high."),
        (("Fish",), "Trout."),
    ]


def test_markdown_title_falls_back_to_the_first_h1_then_the_source_name():
    assert extract(b"Intro.\n\n# Main Title\nText.", "text/markdown", source_name="a.md").title == "Main Title"
    assert extract(b"Just text.", "text/markdown", source_name="a.md").title == "a.md"


def test_plain_text_is_split_into_paragraphs():
    body = b"First paragraph\nwraps here.\r\n\r\nSecond paragraph.\n\n\n\nThird."

    doc = extract(body, "text/plain", source_name="notes.txt")

    assert doc.kind == "text" and doc.title == "notes.txt"
    assert [s.text for s in doc.sections] == ["First paragraph\nwraps here.", "Second paragraph.", "Third."]
    assert all(s.heading_path == () for s in doc.sections)


def test_text_is_decoded_with_the_charset_else_utf8_else_windows_1252():
    assert texts(extract("na\u00efve".encode(), "text/plain", source_name="a")) == "na\u00efve"
    assert texts(extract("na\u00efve \u20ac".encode("cp1252"), "text/plain", source_name="a")) == "na\u00efve \u20ac"
    koi8 = "\u043f\u0440\u0438\u0432\u0435\u0442".encode("koi8-r")
    assert texts(extract(koi8, "text/plain; charset=koi8-r", source_name="a")) == "\u043f\u0440\u0438\u0432\u0435\u0442"
    # An unknown charset name falls back instead of failing.
    assert texts(extract(b"plain", "text/plain", charset="no-such-charset", source_name="a")) == "plain"


def test_unsupported_content_type_is_refused():
    with pytest.raises(ExtractionError) as error:
        extract(b"\x89PNG", "image/png", source_name="a.png")
    assert error.value.message == "Files of type image/png are not supported."
