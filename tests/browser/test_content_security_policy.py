"""The pages work under the Content-Security-Policy, with no violation reported by Chromium."""

from __future__ import annotations

import time

import pytest

from models_registry.models import Provider
from tests.browser.conftest import console_errors, log_in
from tests.conftest import make_user
from tests.fakes.ollama import FakeOllama

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLE_AND_CODE = "| name | price |\n|:-----|------:|\n| tea | 3 |\n\n```python\nprint('hi')\n```"

# Runs before any page script (Playwright's init scripts are not subject to the page's CSP).
CATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def watch(page) -> list[str]:
    """CSP complaints on the browser's console (Chromium logs them as browser messages, which only
    the DevTools protocol's Log domain sees), plus the violation events of every page loaded."""
    console: list[str] = []
    devtools = page.context.new_cdp_session(page)
    devtools.on("Log.entryAdded", lambda event: console.append(event["entry"]["text"]))
    devtools.send("Log.enable")
    page.context.add_init_script(CATCH_VIOLATIONS)
    return console


def wait_until(page, expression: str, timeout: float = 10) -> None:
    """Poll by evaluating from outside (DevTools), which the policy allows: Playwright's own
    `wait_for_function` polls with eval inside the page, which the policy blocks."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {expression}"
        page.wait_for_timeout(50)


def csp_messages(console: list[str]) -> list[str]:
    return [text for text in console if "Content Security Policy" in text]


def test_chat_streams_over_the_websocket_under_the_policy(
    alice, ollama_provider, fake_ollama: FakeOllama, page_under_csp
) -> None:
    page = page_under_csp
    fake_ollama.reply = lambda messages: TABLE_AND_CODE
    console = watch(page)

    response = page.goto("/accounts/login/")
    policy = response.headers["content-security-policy"]
    log_in(page, "alice", "alice-password-123")
    page.fill("#prompt", "Prices?")
    page.press("#prompt", "Enter")
    page.wait_for_selector('article.message.assistant[data-status="complete"]')

    assert "script-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "connect-src 'self' ws://127.0.0.1:" in policy and "unsafe-inline" not in policy
    content = page.locator("article.message.assistant .content")
    assert content.locator("pre code .hl-nb").count() > 0, "code is highlighted"
    price = content.locator("td.align-right")
    assert price.inner_text() == "3"
    assert price.evaluate("cell => getComputedStyle(cell).textAlign") == "right", "alignment without inline style"
    page.reload()
    page.wait_for_selector('article.message.assistant[data-status="complete"]')
    assert page.evaluate("window.__csp") == [] and csp_messages(console) == []


def test_admin_pages_run_under_the_policy(fake_ollama: FakeOllama, page_under_csp) -> None:
    page = page_under_csp
    make_user("root", is_staff=True, is_superuser=True)
    Provider.objects.create(name="ollama", kind=Provider.Kind.OLLAMA, base_url=fake_ollama.url)
    console = watch(page)
    log_in(page, "root", "root-password-123")

    for path in (
        "/admin/",
        "/admin/models_registry/provider/",
        "/admin/models_registry/provider/add/",
        "/admin/models_registry/llmmodel/pull/",
    ):
        page.goto(path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__csp") == [], path
    assert csp_messages(console) == []


def test_the_policy_blocks_an_injected_inline_handler(alice, page_under_csp) -> None:
    """The control: what the policy forbids is both blocked and seen by the watcher above."""
    page = page_under_csp
    console = watch(page)
    console_errors(page).expect(r"Executing inline event handler violates the following Content Security Policy")
    log_in(page, "alice", "alice-password-123")

    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<img src="data:," onload="window.__ran = 1">')""")
    wait_until(page, "window.__csp.length > 0")

    assert page.evaluate("window.__ran") is None
    assert page.evaluate("window.__csp")[0].startswith("script-src")
    deadline = time.monotonic() + 5  # the console message follows the event
    while not csp_messages(console) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert any("inline event handler" in text for text in csp_messages(console)), console
