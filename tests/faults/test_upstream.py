"""Upstream faults end to end through the chat websocket with an OpenAI-protocol provider:
a failure before the first token is retried and the user sees a whole answer; a stream that
breaks after text has reached the user is never retried (that would repeat text) and keeps
its partial text as `interrupted`. (Ollama's down, slow, dropping and garbage cases are in
tests/chat/test_consumer.py.)
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from models_registry.models import Provider
from models_registry.services import provider_sync_models
from tests.conftest import make_conversation, open_socket, text_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


@pytest.fixture
async def cloud(fake_openai):
    provider = await Provider.objects.acreate(name="cloud", kind="openai_compatible", base_url=fake_openai.url)
    await sync_to_async(provider_sync_models)(provider=provider)
    return provider


async def ask(alice, content: str) -> list[dict]:
    conversation = await sync_to_async(make_conversation)(alice)
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await ws.send({"type": "send", "content": content, "models": ["cloud/gpt-4o-mini"]})
    frames = await ws.receive_until(lambda f: f["type"] == "message.done", timeout=20)
    await ws.close()
    return frames


async def test_a_failure_before_the_first_token_is_retried_unseen(alice, cloud, fake_openai) -> None:
    fake_openai.status, fake_openai.fail_times = 503, 1

    frames = await ask(alice, "try twice")

    done = frames[-1]
    assert done["status"] == "complete" and text_of(frames, done["message"]) == "You said: try twice"
    assert not [f for f in frames if f["type"] == "error"]
    assert len(fake_openai.chat_requests) == 2


async def test_a_stream_broken_after_text_is_kept_as_interrupted_and_not_retried(alice, cloud, fake_openai) -> None:
    fake_openai.drop_after = 2

    frames = await ask(alice, "break after a little")

    done = frames[-1]
    saved = await Message.objects.aget(pk=done["message"])
    assert done["status"] == saved.status == "interrupted"
    assert saved.content and "You said: break after a little".startswith(saved.content)
    assert text_of(frames, done["message"]) == saved.content, "the user saw exactly what was kept"
    assert next(f for f in frames if f["type"] == "error")["code"] == "interrupted"
    assert len(fake_openai.chat_requests) == 1, "a retry would repeat text the user has seen"
