"""The browser loses its connection in the middle of an answer and comes back: the page shows
the whole answer once, as the upstream sent it and as it was saved (issue 8, faults)."""

from __future__ import annotations

import pytest

from chat.models import Message
from tests.browser.conftest import console_errors, log_in
from tests.fakes.ollama import FakeOllama, split_tokens

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER = " ".join(f"word{index:03d}" for index in range(120)) + "."

# Keeps every socket the page opens, so the test can cut them as a dropped network would.
TRACK_SOCKETS = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) { super(...args); window.__sockets.push(this); }
};
"""
CUT_SOCKETS = "window.__sockets.filter((s) => s.readyState <= 1).forEach((s) => s.close()); window.__sockets.length"


def _content(page) -> str:
    return page.locator("article.message.assistant .content").inner_text().strip()


@pytest.mark.parametrize("outages", [1, 3])
def test_connection_lost_mid_answer_shows_the_whole_answer_once(
    alice, ollama_provider, fake_ollama: FakeOllama, outages: int, page
) -> None:  # fmt: skip
    sent: list[str] = []
    fake_ollama.reply = lambda messages: sent.append(ANSWER) or ANSWER
    fake_ollama.token_delay = 0.12  # 120 tokens: about 14 s of streaming
    page.context.add_init_script(TRACK_SOCKETS)
    # The outages make the browser log each failed reconnection attempt.
    console_errors(page).expect(r"WebSocket connection to '.*' failed")
    log_in(page, "alice", "alice-password-123")
    page.fill("#prompt", "Count slowly")
    page.press("#prompt", "Enter")
    page.locator("article.message.assistant .content").filter(has_text="word005").wait_for()

    seen_while_offline = []
    for _ in range(outages):
        assert page.locator("article.message.assistant").get_attribute("data-status") == "streaming"
        before = page.evaluate("window.__sockets.length")
        page.context.set_offline(True)
        assert page.evaluate(CUT_SOCKETS) == before
        page.wait_for_timeout(1200)  # the upstream keeps streaming; the page gets none of it
        seen_while_offline.append(_content(page))
        reconnected = page.evaluate("n => window.__sockets.slice(n).some((s) => s.readyState === 1)", before)
        assert not reconnected, "offline, the page cannot reconnect"
        page.context.set_offline(False)
        page.wait_for_function(
            "n => window.__sockets.length > n && window.__sockets.at(-1).readyState === 1", arg=before, timeout=15_000
        )
        assert _content(page) and ANSWER.startswith(_content(page)), "no duplicate text after the reconnect"

    page.wait_for_selector('article.message.assistant[data-status="complete"]', timeout=30_000)
    shown = _content(page)
    message = Message.objects.get(role="assistant")
    assert sent == [ANSWER] and "".join(split_tokens(ANSWER)) == ANSWER
    assert message.status == "complete"
    assert message.content == ANSWER
    assert shown == ANSWER, "the page shows what the upstream sent, nothing missing or repeated"
    # The outages were real: the page had only part of the answer while it was cut off.
    assert all(len(text) < len(ANSWER) for text in seen_while_offline), seen_while_offline
    assert page.locator("article.message.assistant").count() == 1
    assert page.locator("article.message.user").count() == 1
    page.reload()
    assert _content(page) == ANSWER
