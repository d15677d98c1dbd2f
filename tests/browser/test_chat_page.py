"""The chat page in headless Chromium, against Daphne and the fake Ollama."""

from __future__ import annotations

import re

import pytest

from chat.models import Conversation, Message
from tests.browser.conftest import log_in
from tests.fakes.ollama import FakeOllama

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_ANSWER = "Paris is the capital of France. " * 12


def test_a_streamed_answer_is_shown_and_still_there_after_reload(alice, ollama_provider, fake_ollama, page) -> None:
    fake_ollama.reply = lambda messages: LONG_ANSWER.strip()
    fake_ollama.token_delay = 0.03
    log_in(page, "alice", "alice-password-123")

    page.fill("#prompt", "What is the capital of France?")
    page.press("#prompt", "Enter")

    assistant = page.locator("article.message.assistant").last
    assistant.locator(".content").filter(has_text="Paris").wait_for()
    partial = assistant.locator(".content").inner_text()
    assert 0 < len(partial) < len(LONG_ANSWER.strip()), "the answer must appear while it is being written"
    assert page.locator("#stop").is_visible()
    page.wait_for_selector('article.message.assistant[data-status="complete"]')
    assert assistant.locator(".content").inner_text().strip() == LONG_ANSWER.strip()
    assert page.locator("#prompt").input_value() == ""
    assert re.search(r"/c/[0-9a-f-]{36}/$", page.url)
    assert page.locator("#conversation-list li.current").inner_text() == "What is the capital of France?"

    page.reload()

    assert page.locator("article.message.user .content").inner_text() == "What is the capital of France?"
    saved = page.locator('article.message.assistant[data-status="complete"] .content')
    assert saved.inner_text().strip() == LONG_ANSWER.strip()
    assert page.locator("#conversation-title").inner_text() == "What is the capital of France?"
    message = Message.objects.get(role="assistant")
    assert message.status == "complete" and message.completion_tokens == len(LONG_ANSWER.split())


def test_reload_during_a_stream_shows_the_whole_answer(alice, ollama_provider, fake_ollama, page) -> None:
    fake_ollama.reply = lambda messages: LONG_ANSWER.strip()
    fake_ollama.token_delay = 0.05
    log_in(page, "alice", "alice-password-123")
    page.fill("#prompt", "Tell me slowly")
    page.press("#prompt", "Enter")
    page.locator("article.message.assistant .content").filter(has_text="Paris").wait_for()

    page.reload()

    page.wait_for_selector('article.message.assistant[data-status="complete"]')
    assert page.locator("article.message.assistant .content").inner_text().strip() == LONG_ANSWER.strip()
    assert page.locator("article.message.assistant").count() == 1


def test_stop_keeps_the_partial_answer(alice, ollama_provider, fake_ollama, page) -> None:
    fake_ollama.reply = lambda messages: LONG_ANSWER.strip()
    fake_ollama.token_delay = 0.05
    log_in(page, "alice", "alice-password-123")
    page.fill("#prompt", "Go on and on")
    page.press("#prompt", "Enter")
    page.locator("article.message.assistant .content").filter(has_text="Paris").wait_for()

    page.click("#stop")

    page.wait_for_selector('article.message.assistant[data-status="stopped"]')
    assert page.locator("article.message.assistant .status-badge").inner_text() == "Stopped"
    kept = page.locator("article.message.assistant .content").inner_text().strip()
    assert kept and LONG_ANSWER.startswith(kept) and len(kept) < len(LONG_ANSWER.strip())


def test_an_upstream_failure_is_shown_in_the_conversation(alice, ollama_provider, fake_ollama, page) -> None:
    fake_ollama.drop_after = 4
    log_in(page, "alice", "alice-password-123")
    page.fill("#prompt", "This answer will break off")
    page.press("#prompt", "Enter")

    page.wait_for_selector('article.message.assistant[data-status="interrupted"]')

    assistant = page.locator("article.message.assistant")
    assert assistant.locator(".status-badge").inner_text() == "Interrupted"
    assert "dropped the connection" in assistant.locator(".message-error").inner_text()
    assert assistant.locator(".content").inner_text().strip() == "You said: This answer"


HOSTILE = (
    'Look: <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2">\n\n'
    "[click me](javascript:window.__pwned=3) and ![pixel](http://127.0.0.1:9/pixel.png)\n\n"
    "```js\nconsole.log('<b>code</b>')\n```"
)


def test_model_output_with_scripts_renders_inert(alice, ollama_provider, fake_ollama: FakeOllama, page) -> None:
    fake_ollama.reply = lambda messages: HOSTILE
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, "alice", "alice-password-123")
    page.fill("#prompt", "Say something nasty")
    page.press("#prompt", "Enter")
    page.wait_for_selector('article.message.assistant[data-status="complete"]')

    for when in ("live", "after reload"):
        content = page.locator("article.message.assistant .content")
        assert content.locator("script, img, iframe").count() == 0, when
        assert content.locator("[onerror], [onclick], [onload]").count() == 0, when
        hrefs = [content.locator("a").nth(i).get_attribute("href") for i in range(content.locator("a").count())]
        assert not any((href or "").lower().startswith("javascript:") for href in hrefs), when
        assert content.locator("pre code .hl-nx, pre code .hl-s1").count() > 0, f"code is highlighted ({when})"
        assert page.evaluate("window.__pwned") is None, when
        page.reload()
    assert dialogs == []
    assert Conversation.objects.get().owner == alice
