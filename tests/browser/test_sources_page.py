"""Attaching sources in the page and getting an answer with citations, in headless Chromium."""

from __future__ import annotations

import pytest

from ingestion.models import Source
from tests.browser.conftest import console_errors, log_in
from tests.fakes.web import PDF_PAGE2_FACT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_attach_a_pdf_and_a_csv_then_ask_and_see_citations(alice, ollama_provider, fake_ollama, web, page) -> None:
    log_in(page, "alice", "alice-password-123")

    for path in ("/report.pdf", "/data.csv"):
        page.fill("#attach-url", web.url(path))
        page.click("#attach button[type=submit]")
    page.wait_for_function(
        "document.querySelectorAll('#source-list li[data-status=ready]').length === 2", timeout=60_000
    )
    assert "chunks" in page.locator("#source-list li").first.inner_text()

    page.fill("#prompt", "What tidal range did the Marlow Institute measure?")
    page.press("#prompt", "Enter")
    page.wait_for_selector('article.message.assistant[data-status="complete"]')

    citations = page.locator("article.message.assistant .citations li")
    assert citations.count() >= 1
    labels = [citations.nth(i).locator("summary").inner_text() for i in range(citations.count())]
    assert any("page 2" in label for label in labels), labels
    assert PDF_PAGE2_FACT in fake_ollama.chat_requests[-1]["messages"][0]["content"]

    page.reload()
    assert page.locator("article.message.assistant .citations li").count() == citations.count()
    assert page.locator("#source-list li[data-status=ready]").count() == 2


def test_a_blocked_address_fails_with_its_reason_in_the_page(alice, ollama_provider, web, page) -> None:
    log_in(page, "alice", "alice-password-123")

    page.fill("#attach-url", web.url("/redirect/metadata"))
    page.click("#attach button[type=submit]")

    page.wait_for_selector("#source-list li[data-status=failed]", timeout=30_000)
    assert "169.254.169.254" in page.locator("#source-list li .source-error").inner_text()
    assert Source.objects.get().status == "failed"


def test_a_file_over_the_upload_cap_is_refused_with_its_reason_in_the_page(alice, ollama_provider, page) -> None:
    log_in(page, "alice", "alice-password-123")
    too_big = b"x" * (25 * 1024 * 1024 + 1)  # FETCH_MAX_BYTES is 25 MB in the served app
    console_errors(page).expect(r"status of 413 \(Request Entity Too Large\)")

    page.set_input_files("#attach-file", files=[{"name": "big.txt", "mimeType": "text/plain", "buffer": too_big}])
    page.click("#attach button[type=submit]")

    page.wait_for_selector("#attach-error:not([hidden])", timeout=60_000)
    assert page.locator("#attach-error").inner_text() == "The file is larger than 25 MB, the most a source can be."
    assert not Source.objects.exists()
