"""Side by side in headless Chromium: parallel columns, picking an answer, blind votes,
regenerated versions and edited branches, against Daphne and the fake Ollama."""

from __future__ import annotations

import itertools

import pytest

from chat.models import Conversation, Message, Vote
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LLAMA = "ollama/llama3.2:1b"
QWEN = "ollama/qwen2.5:0.5b"
LONG_ANSWER = "Side by side answers stream at the same time. " * 8


def pick_models(page, *model_ids: str, blind: bool = False) -> None:
    page.click("#model-picker summary")
    for box in page.locator('#model-picker input[name="models"]').all():
        if box.get_attribute("value") in model_ids and not box.is_checked():
            box.check()
    for box in page.locator('#model-picker input[name="models"]').all():
        if box.get_attribute("value") not in model_ids and box.is_checked():
            box.uncheck()
    if blind:
        page.check("#blind")
    page.click("#model-picker summary")


def ask(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def answers(page):
    return page.locator(".turn").last.locator(".replies > article.message.assistant")


def wait_all_complete(page, count: int) -> None:
    page.wait_for_function(
        """count => {
            const turns = document.querySelectorAll('.turn');
            const last = turns[turns.length - 1];
            const done = last ? last.querySelectorAll('.replies > article[data-status="complete"]') : [];
            return done.length === count;
        }""",
        arg=count,
    )


def test_two_models_stream_side_by_side_and_stack_on_a_narrow_screen(alice, ollama_provider, fake_ollama, page) -> None:
    fake_ollama.reply = lambda messages: LONG_ANSWER.strip()
    fake_ollama.token_delay = 0.04
    log_in(page, "alice", "alice-password-123")
    pick_models(page, LLAMA, QWEN)

    ask(page, "Compare yourselves")

    answers(page).nth(1).locator(".content").filter(has_text="stream").wait_for()
    streaming = [answers(page).nth(i).get_attribute("data-status") for i in range(2)]
    partial = [len(answers(page).nth(i).locator(".content").inner_text()) for i in range(2)]
    assert streaming == ["streaming", "streaming"], "both answers are written at the same time"
    assert all(0 < n < len(LONG_ANSWER.strip()) for n in partial)
    wait_all_complete(page, 2)
    answers(page).nth(1).locator("button.choose").wait_for()  # the finished turn, with its actions
    assert [answers(page).nth(i).locator(".who").inner_text() for i in range(2)] == [LLAMA, QWEN]
    for i in range(2):
        assert answers(page).nth(i).locator(".content").inner_text().strip() == LONG_ANSWER.strip()
        stats = answers(page).nth(i).locator(".stats").inner_text()
        assert "tokens" in stats and "first token" in stats and "tokens/s" in stats
    left, right = (answers(page).nth(i).bounding_box() for i in range(2))
    assert left["x"] < right["x"] and abs(left["y"] - right["y"]) < 2, "columns side by side"

    page.set_viewport_size({"width": 600, "height": 900})

    top, bottom = (answers(page).nth(i).bounding_box() for i in range(2))
    assert abs(top["x"] - bottom["x"]) < 2 and top["y"] < bottom["y"], "stacked on a narrow screen"
    assert Conversation.objects.get().selected_models == [LLAMA, QWEN]


def test_continue_with_this_sends_the_next_turn_to_that_model_only(alice, ollama_provider, fake_ollama, page) -> None:
    log_in(page, "alice", "alice-password-123")
    pick_models(page, LLAMA, QWEN)
    ask(page, "First question")
    wait_all_complete(page, 2)

    answers(page).nth(1).locator("button.choose").click()

    page.locator("article.message.chosen .chosen-badge").wait_for()
    assert page.locator("article.message.chosen .who").inner_text() == QWEN
    assert page.locator("#model-summary").inner_text() == QWEN
    assert not page.locator(f'#model-picker input[value="{LLAMA}"]').is_checked()
    ask(page, "Second question")
    page.wait_for_function("document.querySelectorAll('.turn').length === 2")
    wait_all_complete(page, 1)
    assert answers(page).count() == 1 and answers(page).locator(".who").inner_text() == QWEN
    first_prompt = Message.objects.get(content="First question")
    assert first_prompt.chosen_reply.model_label == QWEN
    assert fake_ollama.chat_requests[-1]["model"] == "qwen2.5:0.5b"
    assert fake_ollama.chat_requests[-1]["messages"][1]["content"] == "You said: First question"


def test_blind_vote_hides_names_until_the_vote_then_reveals_them(alice, ollama_provider, fake_ollama, page) -> None:
    log_in(page, "alice", "alice-password-123")
    assert not page.locator("#blind-toggle").is_visible(), "blind needs two models or more"
    pick_models(page, LLAMA, QWEN, blind=True)
    assert page.locator("#blind-toggle").is_visible()
    ask(page, "Who is better?")
    wait_all_complete(page, 2)
    page.locator(".vote-bar").wait_for()

    labels = [answers(page).nth(i).locator(".who").inner_text() for i in range(2)]
    assert labels == ["Model A", "Model B"]
    shown = page.locator("#messages").inner_html()
    assert "llama" not in shown and "qwen" not in shown, "no model name anywhere in the conversation's HTML"
    assert page.locator("button.choose").count() == 0

    page.locator(".vote-bar button", has_text="Model B").click()

    page.locator(".vote-result").wait_for()
    revealed = [answers(page).nth(i).locator(".who").inner_text() for i in range(2)]
    assert sorted(revealed) == [LLAMA, QWEN]
    assert page.locator(".vote-result").inner_text() == f"You voted: {revealed[1]} was best."
    vote = Vote.objects.get()
    assert vote.owner == alice and vote.winner_model == revealed[1]

    page.goto("/leaderboard/")
    assert page.locator("tbody tr").first.get_attribute("data-model") == revealed[1]


def test_regenerate_adds_a_version_and_the_arrows_move_between_them(alice, ollama_provider, fake_ollama, page) -> None:
    counter = itertools.count(1)
    fake_ollama.reply = lambda messages: f"Answer number {next(counter)}"
    log_in(page, "alice", "alice-password-123")
    ask(page, "Give me an answer")
    wait_all_complete(page, 1)
    assert answers(page).locator(".content").inner_text().strip() == "Answer number 1"

    answers(page).locator("button.regenerate").click()

    page.locator(".version-count", has_text="2/2").wait_for()
    wait_all_complete(page, 1)
    assert answers(page).locator(".content").inner_text().strip() == "Answer number 2"

    answers(page).locator("button.version-prev").click()

    page.locator(".version-count", has_text="1/2").wait_for()
    assert answers(page).locator(".content").inner_text().strip() == "Answer number 1"
    assert list(Message.objects.filter(role="assistant").order_by("id").values_list("is_current", flat=True)) == [
        True,
        False,
    ]

    page.reload()
    assert answers(page).locator(".content").inner_text().strip() == "Answer number 1"
    answers(page).locator("button.version-next").click()
    page.locator(".version-count", has_text="2/2").wait_for()
    assert answers(page).locator(".content").inner_text().strip() == "Answer number 2"


def test_editing_a_prompt_starts_a_branch_and_the_arrows_switch_branches(
    alice, ollama_provider, fake_ollama, page
) -> None:
    log_in(page, "alice", "alice-password-123")
    ask(page, "First version")
    wait_all_complete(page, 1)
    ask(page, "Follow-up")
    page.wait_for_function("document.querySelectorAll('.turn').length === 2")
    wait_all_complete(page, 1)

    first = page.locator(".turn").first.locator("article.message.user")
    first.locator("button.edit-message").click()
    first.locator(".editor textarea").fill("Second version")
    first.locator(".editor textarea").press("Enter")

    page.locator(".version-count", has_text="2/2").wait_for()
    page.wait_for_function("document.querySelectorAll('.turn').length === 1")
    wait_all_complete(page, 1)
    assert page.locator(".turn article.message.user .content").inner_text() == "Second version"
    assert answers(page).locator(".content").inner_text().strip() == "You said: Second version"

    page.locator(".turn").first.locator("article.message.user button.version-prev").click()

    page.wait_for_function("document.querySelectorAll('.turn').length === 2")
    users = page.locator("article.message.user .content")
    assert [users.nth(i).inner_text() for i in range(2)] == ["First version", "Follow-up"]
    assert page.locator(".turn").first.locator(".version-count").inner_text() == "1/2"


CODE_ANSWER = "Here you go:\n\n```python\nprint('hello')\n```\n\n" + "More words to read. " * 60


def test_reading_and_writing_habits(alice, ollama_provider, fake_ollama, page) -> None:
    fake_ollama.reply = lambda messages: CODE_ANSWER
    fake_ollama.token_delay = 0.02
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.set_viewport_size({"width": 1000, "height": 500})
    log_in(page, "alice", "alice-password-123")
    empty = page.locator("#empty-state")
    assert LLAMA in empty.inner_text() and QWEN in empty.inner_text() and "None attached" in empty.inner_text()

    page.fill("#prompt", "line one")
    page.press("#prompt", "Shift+Enter")
    page.type("#prompt", "line two")
    assert page.locator("#prompt").input_value() == "line one\nline two", "Shift+Enter adds a line"
    assert page.locator("article.message").count() == 0
    page.press("#prompt", "Enter")

    page.locator("article.message.assistant .content").filter(has_text="More words").wait_for()
    page.wait_for_function("(() => { const m = document.getElementById('messages'); "
                           "return m.scrollHeight > m.clientHeight + 200; })()")  # fmt: skip
    at_bottom = "m => m.scrollHeight - m.scrollTop - m.clientHeight < 40"
    assert page.locator("#messages").evaluate(at_bottom), "the view follows the stream"
    page.locator("#messages").evaluate("m => { m.scrollTop = 0; m.dispatchEvent(new Event('scroll')); }")
    page.wait_for_timeout(400)
    assert page.locator("#messages").evaluate("m => m.scrollTop") == 0, "scrolled up: the view stays put"
    page.wait_for_selector('article.message.assistant[data-status="complete"]')
    assert page.locator("#messages").evaluate("m => m.scrollTop") == 0

    page.locator("button.copy-code").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print('hello')\n"
    page.locator("article.message.user button.copy-message").click()
    assert page.evaluate("navigator.clipboard.readText()") == "line one\nline two"


def test_older_turns_load_when_scrolling_up(alice, llama, page) -> None:
    conversation = Conversation.objects.create(owner=alice, title="Long one")
    parent = None
    for i in range(60):
        parent = Message.objects.create(conversation=conversation, role="user", content=f"question {i}", parent=parent)
        Message.objects.create(conversation=conversation, role="assistant", content=f"answer {i}", parent=parent,
                               model=llama, model_label=llama.model_id, content_html=f"<p>answer {i}</p>")  # fmt: skip
    log_in(page, "alice", "alice-password-123")
    page.goto(conversation.get_absolute_url())
    assert page.locator(".turn").count() == 50
    assert page.locator(".turn").first.locator("article.message.user .content").inner_text() == "question 10"

    page.locator("#messages").evaluate("m => { m.scrollTop = 0; }")

    page.wait_for_function("document.querySelectorAll('.turn').length === 60")
    assert page.locator(".turn").first.locator("article.message.user .content").inner_text() == "question 0"
    assert page.locator(".older-turns").count() == 0
