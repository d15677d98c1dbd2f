"""Shared fixtures: the fake Ollama server, users alice and bob, and websocket helpers.

The tests run against the machine's real Postgres (DATABASE_URL) and Redis (REDIS_URL);
the README's test command sets both.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test import Client

from chat.models import Conversation
from models_registry.models import LLMModel, Provider
from models_registry.services import provider_sync_models
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.fakes.web import FakeWeb

ORIGIN = b"http://testserver"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clear_quota_counters(settings: Any) -> Iterator[None]:
    """Quota counters in Redis, and cached limits, are keyed by user id, and ids repeat between tests."""
    import redis

    from chat.quotas import _limits_cache

    _limits_cache.clear()
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(f"{settings.CHANNEL_LAYER_PREFIX}:quota:*"))
        if keys:
            client.delete(*keys)
        client.close()
    yield


@pytest.fixture(autouse=True)
def drain_in_process_ingestion() -> Iterator[None]:
    """Let sources queued in this process finish before the test's data is flushed: an
    ingestion thread still writing would deadlock with the flush of a transactional test."""
    yield
    from ingestion.services import _IN_PROCESS

    _IN_PROCESS.submit(lambda: None).result(timeout=120)


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


@pytest.fixture(scope="session")
def web_server() -> Iterator[FakeWeb]:
    server = FakeWeb().start()
    yield server
    server.stop()


@pytest.fixture
def web(web_server: FakeWeb, settings: Any) -> Iterator[FakeWeb]:
    """A local web server with documents good and bad, reachable through the fetcher's allowlist."""
    settings.FETCH_ALLOWLIST = ["127.0.0.1"]
    settings.FETCH_READ_TIMEOUT = 1.0
    web_server.reset()
    yield web_server


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


# A real Daphne serving the app (HTTP and websockets) on 127.0.0.1, in a subprocess on the
# test database: tests that use it write with `transactional_db` (committed, so visible).


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    config = connection.settings_dict
    if config["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("browser tests need DATABASE_URL to point at PostgreSQL (see the README's test command)")
    password = f":{config['PASSWORD']}" if config["PASSWORD"] else ""
    return f"postgres://{config['USER']}{password}@{config['HOST']}:{config['PORT'] or 5432}/{config['NAME']}"


@pytest.fixture(scope="session")
def app_server(django_db_setup: None, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """The app under Daphne on a free port; yields its base URL."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    var_dir = tmp_path_factory.mktemp("var")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VAR_DIR": str(var_dir),
        "DEBUG": "off",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "FETCH_ALLOWLIST": "127.0.0.1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    port = _free_port()
    log = open(var_dir / "daphne.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "multillm.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"Daphne did not start:\n{(var_dir / 'daphne.log').read_text()}")
            time.sleep(0.2)
    yield base_url
    server.terminate()
    server.wait(timeout=10)
    log.close()
    with django_db_blocker.unblock():
        _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end(timeout: float = 10) -> None:
    """Postgres ends a dead client's session a moment later; the test database can only
    be dropped once it has."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
