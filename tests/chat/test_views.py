"""Pages: login, the chat home, a conversation, and who may see what."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.models import Message
from models_registry.models import LLMModel
from tests.conftest import make_conversation

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/", "/c/new/", "/c/00000000-0000-0000-0000-000000000000/"])
def test_every_page_needs_a_login(path) -> None:
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_with_the_right_password_opens_the_chat(alice) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-123"})

    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_password_says_so(alice) -> None:
    response = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert b"do not match" in response.content


def test_logout_ends_the_session(alice) -> None:
    client = logged_in(alice)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_sidebar_lists_own_conversations_newest_first(alice, bob) -> None:
    make_conversation(alice, title="Older")
    make_conversation(alice, title="Newer")
    make_conversation(bob, title="Bob's secret")

    page = logged_in(alice).get("/").content.decode()

    assert page.index("Newer") < page.index("Older")
    assert "Bob&#x27;s secret" not in page and "Bob's secret" not in page


def test_other_user_gets_404_for_conversation(alice, bob) -> None:
    conversation = make_conversation(alice, title="Alice's plans")

    assert logged_in(bob).get(f"/c/{conversation.uuid}/").status_code == 404
    assert logged_in(alice).get(f"/c/{conversation.uuid}/").status_code == 200


def test_conversation_page_shows_history_with_statuses_and_safe_html(alice, llama) -> None:
    conversation = make_conversation(alice, title="History")
    prompt = Message.objects.create(conversation=conversation, role="user", content="<b>hi</b>")
    Message.objects.create(
        conversation=conversation,
        parent=prompt,
        role="assistant",
        content="partial",
        status=Message.Status.INTERRUPTED,
        error="Ollama dropped the connection during the answer.",
        model=llama,
        model_label=llama.model_id,
    )

    page = logged_in(alice).get(f"/c/{conversation.uuid}/").content.decode()

    assert "&lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi</b>" not in page
    assert "Interrupted" in page and "dropped the connection" in page
    assert 'data-status="interrupted"' in page


def test_model_picker_offers_enabled_available_models(alice, ollama_provider) -> None:
    LLMModel.objects.filter(name="qwen2.5:0.5b").update(enabled=False)

    page = logged_in(alice).get("/").content.decode()

    assert 'value="ollama/llama3.2:1b"' in page
    assert "qwen2.5:0.5b" not in page


def test_without_models_the_page_says_how_to_connect_one(alice, settings) -> None:
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:9"

    page = logged_in(alice).get("/").content.decode()

    assert "No model is available yet" in page
    assert "OLLAMA_BASE_URL" in page and "ollama pull" in page and "http://127.0.0.1:9" in page
    assert 'id="composer"' not in page


def test_new_conversation_is_created_for_the_user(alice) -> None:
    client = logged_in(alice)

    response = client.post("/c/new/")

    assert response.status_code == 201
    conversation = alice.conversations.get()
    assert response.json() == {"id": str(conversation.uuid), "url": f"/c/{conversation.uuid}/", "title": "New chat"}


def test_new_conversation_needs_post_and_csrf(alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.get("/c/new/").status_code == 405
    assert client.post("/c/new/").status_code == 403
    assert not alice.conversations.exists()
