"""Shared fixtures: the fake Ollama server, users alice and bob, and websocket helpers.

The tests run against the machine's real Postgres (DATABASE_URL) and Redis (REDIS_URL);
the README's test command sets both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client

from chat.models import Conversation
from models_registry.models import LLMModel, Provider
from models_registry.services import provider_sync_models
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI

ORIGIN = b"http://testserver"


@pytest.fixture(scope="session")
def fake_ollama_server() -> Iterator[FakeOllama]:
    server = FakeOllama().start()
    yield server
    server.stop()


@pytest.fixture
def fake_ollama(fake_ollama_server: FakeOllama) -> Iterator[FakeOllama]:
    """The session's fake Ollama, with every switch back at its default."""
    fake_ollama_server.reset()
    yield fake_ollama_server
    fake_ollama_server.reset()


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The session's fake OpenAI / Azure OpenAI server, with every switch back at its default."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


def make_user(username: str, **extra: Any) -> User:
    return User.objects.create_user(username=username, password=f"{username}-password-123", **extra)


@pytest.fixture
async def close_thread_connections() -> Any:
    """Close the database connections that async ORM calls opened in the executor thread."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice")


@pytest.fixture
def bob(db: None) -> User:
    return make_user("bob")


@pytest.fixture
def ollama_provider(db: None, fake_ollama: FakeOllama) -> Provider:
    """The `ollama` provider pointed at the fake, with its models synced."""
    provider = Provider.objects.create(name="ollama", kind=Provider.Kind.OLLAMA, base_url=fake_ollama.url)
    result = provider_sync_models(provider=provider)
    assert not result.error, result.error
    return provider


@pytest.fixture
def llama(ollama_provider: Provider) -> LLMModel:
    return LLMModel.objects.get(provider=ollama_provider, name="llama3.2:1b")


def make_conversation(owner: User, **extra: Any) -> Conversation:
    return Conversation.objects.create(owner=owner, **extra)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class ChatSocket:
    """A WebsocketCommunicator through the real ASGI app, with frame helpers."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.communicator.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_until(self, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
        """Frames up to and including the first that matches `predicate`."""
        frames: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; got {frames}")
            frame = await self.receive(timeout=remaining)
            frames.append(frame)
            if predicate(frame):
                return frames

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_socket(
    conversation_uuid: Any, *, user: User | None = None, origin: bytes | None = ORIGIN
) -> tuple[bool, int | None, ChatSocket]:
    from multillm.asgi import application

    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        cookie = await sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation_uuid}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return connected, code, ChatSocket(communicator)


def text_of(frames: list[dict[str, Any]], message_id: int) -> str:
    """Merge delta frames by offset, as the page's script does."""
    text = ""
    for frame in frames:
        if frame.get("type") == "delta" and frame["message"] == message_id:
            assert frame["offset"] <= len(text), f"gap before offset {frame['offset']}"
            text = text[: frame["offset"]] + frame["text"] if frame["offset"] + len(frame["text"]) > len(text) else text
    return text
