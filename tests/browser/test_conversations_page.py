"""Managing conversations in headless Chromium: rename, pin, delete, search, settings, export and import."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Conversation, Message
from chat.transfer import conversation_export_data
from tests.browser.conftest import log_in
from tests.conftest import make_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def with_turn(conversation: Conversation, prompt: str, answer: str) -> Conversation:
    question = Message.objects.create(conversation=conversation, role="user", content=prompt)
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        parent=question,
        content=answer,
        content_html=f"<p>{answer}</p>",
        model_label="ollama/llama3.2:1b",
        completion_tokens=7,
        latency_ms=300,
    )
    return conversation


def item(page, conversation: Conversation):
    return page.locator(f'#conversation-list li[data-conversation-id="{conversation.uuid}"]')


def test_rename_inline(alice, page) -> None:
    conversation = with_turn(make_conversation(alice, title="Untitled idea"), "hi", "hello")
    log_in(page, "alice", "alice-password-123")
    page.goto(conversation.get_absolute_url())

    item(page, conversation).hover()
    item(page, conversation).locator("button.rename").click()
    title_input = item(page, conversation).locator(".rename-form input")
    title_input.fill("Plans for the garden")
    title_input.press("Enter")

    item(page, conversation).locator(".conversation-link").filter(has_text="Plans for the garden").wait_for()
    assert page.locator("#conversation-title").inner_text() == "Plans for the garden"
    page.wait_for_function("document.title.startsWith('Plans for the garden')")
    assert Conversation.objects.get(pk=conversation.pk).title == "Plans for the garden"

    item(page, conversation).locator("button.rename").click()
    title_input.fill("Not this")
    title_input.press("Escape")
    assert item(page, conversation).locator(".conversation-link").inner_text() == "Plans for the garden"
    page.reload()
    assert item(page, conversation).locator(".conversation-link").inner_text() == "Plans for the garden"


def test_pin_moves_a_conversation_to_the_top(alice, page) -> None:
    old = make_conversation(alice, title="Old but important")
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=40))
    make_conversation(alice, title="Recent chat")
    log_in(page, "alice", "alice-password-123")
    labels = page.locator("#conversation-list .group-label")
    assert labels.all_inner_texts()[0].lower() == "today"

    item(page, old).hover()
    item(page, old).locator("button.pin").click()

    page.locator('#conversation-list .group-label[data-group="pinned"]').wait_for()
    first = page.locator("#conversation-list .conversation-item").first
    assert first.locator(".conversation-link").inner_text() == "Old but important"
    assert Conversation.objects.get(pk=old.pk).pinned

    first.hover()
    first.locator("button.unpin").click()
    page.locator('#conversation-list .group-label[data-group="pinned"]').wait_for(state="detached")
    assert not Conversation.objects.get(pk=old.pk).pinned


def test_delete_asks_for_confirmation(alice, page) -> None:
    keep = make_conversation(alice, title="Keep me")
    doomed = make_conversation(alice, title="Delete me")
    log_in(page, "alice", "alice-password-123")
    page.goto(keep.get_absolute_url())
    questions: list[str] = []

    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    item(page, doomed).hover()
    item(page, doomed).locator("a.delete").click()
    page.wait_for_timeout(300)
    assert Conversation.objects.filter(pk=doomed.pk).exists()
    assert questions and "Delete “Delete me”?" in questions[0]

    page.once("dialog", lambda dialog: dialog.accept())
    item(page, doomed).hover()
    item(page, doomed).locator("a.delete").click()
    item(page, doomed).wait_for(state="detached")
    assert not Conversation.objects.filter(pk=doomed.pk).exists()
    assert page.url.endswith(keep.get_absolute_url())

    page.once("dialog", lambda dialog: dialog.accept())
    item(page, keep).locator("a.delete").click()  # the current conversation: back to a new chat
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))
    assert not Conversation.objects.filter(owner=alice).exists()
    assert page.locator("#conversation-list").inner_text().strip() == "No conversations yet."


def test_search_highlights_matches_and_clearing_brings_the_list_back(alice, bob, page) -> None:
    with_turn(make_conversation(alice, title="Weekend"), "Ideas for a picnic?", "Bring sandwiches and lemonade.")
    with_turn(make_conversation(alice, title="Work"), "Summarise the report", "The report says sales grew.")
    with_turn(make_conversation(bob, title="Bob's lemonade stand"), "lemonade prices", "cheap")
    log_in(page, "alice", "alice-password-123")

    page.fill("#conversation-search", "lemonad")

    hits = page.locator("#conversation-list .search-hit")
    hits.first.wait_for()
    assert hits.count() == 1
    assert hits.first.locator(".hit-title").inner_text() == "Weekend"
    assert hits.first.locator(".hit-snippet mark").inner_text() == "lemonade"

    page.fill("#conversation-search", "no such thing anywhere")
    page.locator("#conversation-list .empty").filter(has_text="No conversation matches").wait_for()

    page.fill("#conversation-search", "")
    page.locator('#conversation-list .group-label[data-group="today"]').wait_for()
    assert page.locator("#conversation-list .conversation-item").count() == 2

    hits_link = page.locator("#conversation-list .conversation-link").filter(has_text="Work")
    hits_link.click()
    page.wait_for_url("**/c/*/")
    assert page.locator("#conversation-title").inner_text() == "Work"


def test_export_then_import_gives_the_same_conversation(alice, page, tmp_path) -> None:
    original = with_turn(
        make_conversation(alice, title="Round trip", system_prompt="Be brief.", temperature=0.4),
        "What is 2+2?",
        "It is **4**.",
    )
    log_in(page, "alice", "alice-password-123")
    page.goto(original.get_absolute_url())

    with page.expect_download() as markdown_download:
        page.click("#export-md")
    markdown = open(markdown_download.value.path(), encoding="utf-8").read()
    assert markdown.startswith("# Round trip") and "What is 2+2?" in markdown
    with page.expect_download() as json_download:
        page.click("#export-json")
    exported = tmp_path / json_download.value.suggested_filename
    json_download.value.save_as(exported)
    assert exported.name.startswith("round-trip-") and exported.suffix == ".json"

    page.set_input_files("#import-file", str(exported))
    page.click("#import-submit")

    page.wait_for_url(lambda url: "/c/" in url and str(original.uuid) not in url)
    page.locator(".flash").filter(has_text="Imported “Round trip”").wait_for()
    imported = Conversation.objects.exclude(pk=original.pk).get(owner=alice)
    assert page.locator("article.message.assistant .content").inner_text().strip() == "It is 4."
    assert page.locator("#system-prompt").input_value() == "Be brief."

    def comparable(conversation: Conversation) -> dict:
        data = conversation_export_data(conversation=conversation)
        data.pop("exported_at")
        data["conversation"].pop("created_at")
        for message in data["messages"]:
            message.pop("created_at")
        return data

    assert comparable(imported) == comparable(original)
    assert json.loads(exported.read_text())["messages"][1]["content"] == "It is **4**."


def test_a_bad_import_file_is_explained(alice, page, tmp_path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"format": "something else"}')
    log_in(page, "alice", "alice-password-123")

    page.set_input_files("#import-file", str(bad))
    page.click("#import-submit")

    notice = page.locator(".flash-error")
    notice.wait_for()
    assert "Could not import notes.json: This is not a Multi-LLM Chat conversation export" in notice.inner_text()
    assert not Conversation.objects.exists()


def test_settings_panel_sets_the_system_prompt_and_temperature_for_answers(
    alice, ollama_provider, fake_ollama, page
) -> None:
    log_in(page, "alice", "alice-password-123")

    page.click("#settings-panel summary")
    page.fill("#system-prompt", "Answer like a pirate.")
    page.fill("#temperature", "0.3")
    page.fill("#max-tokens", "100")
    page.click("#settings-save")
    page.locator(".flash").filter(has_text="Settings saved").wait_for()
    page.fill("#prompt", "Hello there")
    page.press("#prompt", "Enter")
    page.wait_for_selector('article.message.assistant[data-status="complete"]')

    request = fake_ollama.chat_requests[-1]
    assert request["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert (request["options"]["temperature"], request["options"]["num_predict"]) == (0.3, 100)
    page.click("#settings-panel summary")
    page.fill("#preset-name", "Pirate")
    page.click("#preset-save")
    page.locator(".flash").filter(has_text="Preset “Pirate” saved").wait_for()
    assert page.locator("#preset option").all_text_contents() == ["Pirate"]


def test_show_more_loads_the_next_page_of_the_sidebar(alice, page) -> None:
    Conversation.objects.bulk_create(Conversation(owner=alice, title=f"Chat number {i}") for i in range(55))
    log_in(page, "alice", "alice-password-123")
    items = page.locator("#conversation-list .conversation-item")
    assert items.count() == 50

    page.click("#conversation-list .sidebar-more button")

    page.wait_for_function("document.querySelectorAll('#conversation-list .conversation-item').length === 55")
    assert page.locator("#conversation-list .sidebar-more").count() == 0
    assert page.locator("#conversation-list .group-label").all_inner_texts() == ["TODAY"]
