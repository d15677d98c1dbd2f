"""Export as Markdown and JSON, and import of the JSON: the whole tree, strictly checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chat import transfer
from chat.models import Conversation, Message
from chat.transfer import (
    ConversationImportError,
    conversation_export_data,
    conversation_export_markdown,
    conversation_import,
)
from tests.conftest import make_conversation

pytestmark = pytest.mark.django_db

CITATION = {"number": 1, "title": "Guide", "url": "https://example.org/guide", "page": 3, "excerpt": "a passage"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def branched_conversation(owner, llama=None) -> Conversation:
    """Two turns; the first answered side by side in two columns, the first column
    regenerated (two versions), the user picked column 1, and an edited second prompt."""
    conversation = make_conversation(
        owner,
        title="Trip to Paris",
        system_prompt="Answer briefly.",
        temperature=0.3,
        max_tokens=256,
        selected_models=["ollama/llama3.2:1b", "ollama/qwen2.5:0.5b"],
    )

    def add(**fields: Any) -> Message:
        return Message.objects.create(conversation=conversation, **fields)

    prompt = add(role="user", content="What to see in Paris?")
    add(role="assistant", parent=prompt, column=0, is_current=False, content="Old answer", model_label="ollama/a")
    add(
        role="assistant",
        parent=prompt,
        column=0,
        content="**The Louvre** [1]",
        model=llama,
        model_label="ollama/llama3.2:1b",
        prompt_tokens=12,
        completion_tokens=5,
        first_token_ms=80,
        latency_ms=900,
        citations=[CITATION],
    )
    chosen = add(
        role="assistant",
        parent=prompt,
        column=1,
        content="Eiffel tower",
        model_label="ollama/qwen2.5:0.5b",
        status="stopped",
    )
    prompt.chosen_reply = chosen
    prompt.save()
    add(role="user", parent=prompt, is_current=False, content="And food?")
    second = add(role="user", parent=prompt, content="And where to eat?")
    add(role="assistant", parent=second, content="", status="error", error="Ollama is down", error_code="refused")
    return conversation


def without_dates(data: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    data.pop("exported_at")
    data["conversation"].pop("created_at")
    for message in data["messages"]:
        message.pop("created_at")
    return data


def test_json_export_has_the_whole_tree_with_local_ids(alice, llama) -> None:
    conversation = branched_conversation(alice, llama)

    data = conversation_export_data(conversation=conversation)

    assert data["format"] == "multi-llm-chat/conversation" and data["version"] == 1
    assert data["conversation"]["system_prompt"] == "Answer briefly."
    assert (data["conversation"]["temperature"], data["conversation"]["max_tokens"]) == (0.3, 256)
    messages = data["messages"]
    assert [m["id"] for m in messages] == [1, 2, 3, 4, 5, 6, 7]
    assert [m["parent"] for m in messages] == [None, 1, 1, 1, 1, 1, 6]
    assert [m["is_current"] for m in messages] == [True, False, True, True, False, True, True]
    assert messages[0]["chosen_reply"] == 4
    answer = messages[2]
    assert answer["model"] == "ollama/llama3.2:1b" and answer["citations"] == [CITATION]
    assert (answer["prompt_tokens"], answer["completion_tokens"], answer["first_token_ms"], answer["latency_ms"]) == (
        12,
        5,
        80,
        900,
    )
    assert messages[6]["status"] == "error" and messages[6]["error"] == "Ollama is down"


def test_export_import_export_round_trip_gives_the_same_content(alice, bob, llama) -> None:
    original = branched_conversation(alice, llama)
    exported = conversation_export_data(conversation=original)

    imported = conversation_import(owner=bob, raw=json.dumps(exported).encode())
    again = conversation_export_data(conversation=imported)

    assert imported.owner == bob and imported.pk != original.pk
    assert without_dates(again) == without_dates(exported)
    rendered = imported.messages.get(content="**The Louvre** [1]")
    assert rendered.model == llama, "known models are linked again"
    assert "<strong>The Louvre</strong>" in rendered.content_html


def test_markdown_export_shows_the_branch_on_screen(alice, llama) -> None:
    markdown = conversation_export_markdown(conversation=branched_conversation(alice, llama))

    assert markdown.startswith("# Trip to Paris\n")
    assert "> Answer briefly." in markdown and "temperature 0.3, max tokens 256" in markdown
    assert "What to see in Paris?" in markdown and "And where to eat?" in markdown
    assert "And food?" not in markdown and "Old answer" not in markdown
    assert "### ollama/llama3.2:1b (5 tokens · first token 80 ms · 0.9 s)" in markdown
    assert "### ollama/qwen2.5:0.5b (stopped)" in markdown
    assert "1. [Guide](<https://example.org/guide>), page 3" in markdown
    assert "> Error: Ollama is down" in markdown


def test_export_views_download_files(alice, llama) -> None:
    conversation = branched_conversation(alice, llama)
    client = logged_in(alice)

    as_json = client.get(f"/c/{conversation.uuid}/export.json")
    as_markdown = client.get(f"/c/{conversation.uuid}/export.md")

    assert as_json["Content-Type"].startswith("application/json")
    assert 'attachment; filename="trip-to-paris-' in as_json["Content-Disposition"]
    assert json.loads(as_json.content)["conversation"]["title"] == "Trip to Paris"
    assert as_markdown["Content-Type"].startswith("text/markdown")
    assert as_markdown.content.decode().startswith("# Trip to Paris")
    assert client.get(f"/c/{conversation.uuid}/export.txt").status_code == 404


def test_import_view_makes_a_new_conversation_of_the_importer(alice, bob, llama) -> None:
    exported = conversation_export_data(conversation=branched_conversation(alice, llama))
    upload = SimpleUploadedFile("trip.json", json.dumps(exported).encode(), content_type="application/json")

    response = logged_in(bob).post("/c/import/", {"file": upload})

    imported = Conversation.objects.get(owner=bob)
    assert response.status_code == 302 and response["Location"] == imported.get_absolute_url()
    assert imported.title == "Trip to Paris" and imported.messages.count() == 7
    assert Conversation.objects.filter(owner=alice).count() == 1


def valid_file(**conversation: Any) -> dict[str, Any]:
    return {
        "format": "multi-llm-chat/conversation",
        "version": 1,
        "conversation": {"title": "T", **conversation},
        "messages": [
            {"id": 1, "parent": None, "role": "user", "content": "hi"},
            {"id": 2, "parent": 1, "role": "assistant", "content": "hello", "model": "x/y"},
        ],
    }


def with_message(index: int, **fields: Any) -> dict[str, Any]:
    data = valid_file()
    data["messages"][index].update(fields)
    return data


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8 text"),
        (b"{not json", "not valid JSON (line 1, column 2"),
        (b"[]", "not a Multi-LLM Chat conversation export"),
        (json.dumps({**valid_file(), "version": 7}).encode(), "version 7"),
        (json.dumps({**valid_file(), "extra": 1}).encode(), "the file: has fields this format does not know: extra"),
        (json.dumps(valid_file(temperature=5)).encode(), "conversation.temperature: must be empty (null) or a number"),
        (json.dumps(valid_file(max_tokens=0)).encode(), "conversation.max_tokens"),
        (json.dumps(valid_file(title=7)).encode(), "conversation.title: must be text"),
        (json.dumps({**valid_file(), "messages": {}}).encode(), "messages: must be a list"),
        (json.dumps(with_message(1, role="system")).encode(), 'messages[1].role: must be "user" or "assistant"'),
        (json.dumps(with_message(1, parent=9)).encode(), "messages[1].parent: 9 is not the id of an earlier user"),
        (json.dumps(with_message(1, id=1)).encode(), "messages[1].id: 1 is used by an earlier message"),
        (json.dumps(with_message(1, id="2")).encode(), "messages[1].id: must be a whole number"),
        (json.dumps(with_message(1, status="great")).encode(), "messages[1].status: must be one of"),
        (json.dumps(with_message(1, completion_tokens=-1)).encode(), "messages[1].completion_tokens"),
        (json.dumps(with_message(1, citations="none")).encode(), "messages[1].citations"),
        (
            json.dumps(with_message(1, secret=True)).encode(),
            "messages[1]: has fields this format does not know: secret",
        ),
        (json.dumps(with_message(0, chosen_reply=1)).encode(), "messages[0].chosen_reply: 1 is not an answer"),
        (json.dumps(with_message(1, chosen_reply=1)).encode(), "messages[1].chosen_reply: must be empty"),
        (json.dumps(with_message(1, parent=2)).encode(), "messages[1].parent"),
    ],
)
def test_bad_files_are_refused_with_a_clear_reason_and_nothing_saved(alice, raw, expected) -> None:
    with pytest.raises(ConversationImportError) as error:
        conversation_import(owner=alice, raw=raw)

    assert expected in error.value.detail
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_a_file_over_the_size_cap_is_refused(alice, monkeypatch) -> None:
    monkeypatch.setattr(transfer, "IMPORT_MAX_BYTES", 100)
    raw = json.dumps(valid_file(system_prompt="x" * 200)).encode()
    upload = SimpleUploadedFile("big.json", raw, content_type="application/json")

    response = logged_in(alice).post("/c/import/", {"file": upload}, follow=True)

    assert "Could not import big.json: The file is larger than" in response.content.decode()
    assert not Conversation.objects.exists()


def test_the_import_page_explains_a_bad_file(alice) -> None:
    upload = SimpleUploadedFile("notes.json", b'{"hello": 1}', content_type="application/json")

    response = logged_in(alice).post("/c/import/", {"file": upload}, follow=True)

    page = response.content.decode()
    assert "Could not import notes.json: This is not a Multi-LLM Chat conversation export" in page
    assert logged_in(alice).post("/c/import/", follow=True).status_code == 200


def test_a_streaming_answer_is_imported_as_interrupted(alice) -> None:
    conversation = conversation_import(owner=alice, raw=json.dumps(with_message(1, status="streaming")).encode())

    assert conversation.messages.get(role="assistant").status == "interrupted"


def test_nobody_exports_another_users_conversation(alice, bob) -> None:
    secret = make_conversation(bob, title="Bob's")
    client = logged_in(alice)

    assert client.get(f"/c/{secret.uuid}/export.json").status_code == 404
    assert client.get(f"/c/{secret.uuid}/export.md").status_code == 404


def test_import_never_writes_into_an_existing_conversation(alice, bob) -> None:
    bobs = make_conversation(bob, title="Bob's")
    upload = SimpleUploadedFile("x.json", json.dumps(valid_file()).encode(), content_type="application/json")

    logged_in(alice).post("/c/import/", {"file": upload, "conversation": str(bobs.uuid)})

    assert bobs.messages.count() == 0
    assert Conversation.objects.get(owner=alice).messages.count() == 2


def test_an_export_holding_nul_and_lone_surrogates_imports_clean(alice) -> None:
    """Once a 500: `\\u0000` in a JSON export reached PostgreSQL. Every text of the file goes
    through the same checks as typed text; citations (stored as JSON) too."""
    data = valid_file(title="Tr\u0000ip", system_prompt="Be\u0000 brief")
    data["messages"][0]["content"] = "hi\u0000 there \ud800"
    data["messages"][1].update(model="x/\u0000y", citations=[{"title": "Doc\u0000", "excerpt": "\udfff"}])

    conversation = conversation_import(owner=alice, raw=json.dumps(data).encode())

    assert (conversation.title, conversation.system_prompt) == ("Trip", "Be brief")
    prompt, answer = conversation.messages.order_by("id")
    assert prompt.content == "hi there \ufffd"
    assert answer.model_label == "x/y" and answer.citations == [{"title": "Doc", "excerpt": "\ufffd"}]
