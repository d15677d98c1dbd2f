"""Services failing under a running app (Daphne, real websockets): PostgreSQL and Redis
restarted (the next request and frame succeed, nothing hangs), the vector store down (chat
answers without the sources and says so).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import websockets

from tests.faults.conftest import FaultApp, fault_app

LLAMA = "ollama/llama3.2:1b"


async def chat_socket(app: FaultApp):
    return await websockets.connect(
        app.url.replace("http://", "ws://") + f"/ws/chat/{app.conversation}/",
        origin=app.url,
        additional_headers={"Cookie": f"sessionid={app.session}"},
        open_timeout=10,
    )


async def ask(socket, content: str, timeout: float = 20) -> dict:
    """Send a message and return the `message.done` frame (or the first error before it)."""
    await socket.send(json.dumps({"type": "send", "content": content, "models": [LLAMA]}))
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await socket.recv())
            if frame["type"] == "message.done" or (frame["type"] == "error" and frame["message"] is None):
                return frame


async def test_postgres_restarted_while_users_chat(throwaway_postgres, fake_ollama, tmp_path, settings) -> None:
    with fault_app(tmp_path, database_url=throwaway_postgres.url, redis_url=settings.REDIS_URL,
                   ollama_url=fake_ollama.url) as app:  # fmt: skip
        socket = await chat_socket(app)
        assert (await ask(socket, "before"))["status"] == "complete"
        assert app.get(f"/c/{app.conversation}/")[0] == 200
        assert app.get("/readyz")[0] == 200, app.get("/readyz")

        await asyncio.to_thread(throwaway_postgres.restart)

        # The open socket's next frame works: its stale connection is replaced, not reused.
        done = await ask(socket, "after the restart")
        assert done["type"] == "message.done" and done["status"] == "complete", done
        status, body = app.get(f"/c/{app.conversation}/")
        assert status == 200 and b"after the restart" in body
        ready = app.get("/readyz")
        assert ready[0] == 200, ready
        await socket.close()

        # A new socket too, and the history is whole.
        socket = await chat_socket(app)
        await socket.send(json.dumps({"type": "sync", "after": 0}))
        contents = []
        async with asyncio.timeout(10):
            while len(contents) < 4:
                frame = json.loads(await socket.recv())
                if frame["type"] == "message.created":
                    contents.append(frame["message"]["content"])
        assert contents == ["before", "You said: before", "after the restart", "You said: after the restart"]
        await socket.close()


async def test_redis_restarted_nothing_hangs_and_sockets_reconnect(
    throwaway_postgres, throwaway_redis, fake_ollama, tmp_path
) -> None:
    with fault_app(tmp_path, database_url=throwaway_postgres.url, redis_url=throwaway_redis.url,
                   ollama_url=fake_ollama.url) as app:  # fmt: skip
        socket = await chat_socket(app)
        assert (await ask(socket, "before redis restarts"))["status"] == "complete"

        throwaway_redis.stop()
        started = time.monotonic()
        status, body = await asyncio.to_thread(app.get, "/readyz")
        assert status == 503 and b"channel" in body.lower(), body
        assert time.monotonic() - started < 10, "readiness must answer, not hang, while Redis is down"
        assert (await asyncio.to_thread(app.get, f"/c/{app.conversation}/"))[0] == 200, "pages do not need Redis"
        # The open socket either answers or closes; it never hangs.
        try:
            outcome = await ask(socket, "while redis is down", timeout=30)
            assert outcome["type"] in {"message.done", "error"}
        except websockets.ConnectionClosed:
            pass

        throwaway_redis.start()
        deadline = time.monotonic() + 30
        while (await asyncio.to_thread(app.get, "/readyz"))[0] != 200:
            assert time.monotonic() < deadline, "the app did not recover after Redis came back"
            await asyncio.sleep(0.5)
        # What the page does: reconnect with backoff (0.5 s doubling) and ask again. A first
        # attempt may meet a pooled connection from before the restart and fail (HTTP 500).
        failures = []
        for attempt in range(6):
            try:
                fresh = await chat_socket(app)
                done = await ask(fresh, "after redis is back")
                break
            except (websockets.ConnectionClosed, websockets.InvalidHandshake, OSError, TimeoutError) as exc:
                failures.append(repr(exc))
                await asyncio.sleep(0.5 * 2**attempt)
        else:
            raise AssertionError(f"no websocket worked after Redis came back: {failures}")
        assert len(failures) <= 2, failures
        assert done["type"] == "message.done" and done["status"] == "complete", done
        await fresh.close()
        await socket.close()


# A ready source whose chunks are in the database; its vectors would be in the Qdrant server.
READY_SOURCE = """
from ingestion.models import Chunk, Document, Source
document = Document.objects.create(content_hash="f" * 64, kind="text", title="Harbour notes", status="ready",
                                   chunk_count=1, embedding_model="all-MiniLM-L6-v2")
Chunk.objects.create(document=document, index=0, text="The harbour budget for 2025 is 4.2 million.")
conversation.sources.add(Source.objects.create(owner=user, url="https://example.com/notes", document=document,
                                               status="ready"))
"""


async def test_vector_store_down_chat_still_answers_and_says_so(throwaway_postgres, fake_ollama, tmp_path) -> None:
    with socket.socket() as probe:  # a port where no Qdrant answers
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with fault_app(tmp_path, database_url=throwaway_postgres.url, redis_url="", ollama_url=fake_ollama.url,
                   extra_env={"QDRANT_ENDPOINT": f"http://127.0.0.1:{dead}"}, setup=READY_SOURCE) as app:  # fmt: skip
        socket_ = await chat_socket(app)
        started = time.monotonic()
        done = await ask(socket_, "What is the harbour budget?", timeout=40)
        await socket_.close()

    assert done["type"] == "message.done" and done["status"] == "complete", done
    assert "could not be searched" in done["error"] and done["citations"] == []
    assert time.monotonic() - started < 30
    request = fake_ollama.chat_requests[-1]
    assert all(m["role"] != "system" for m in request["messages"]), "no passages were given"
    assert request["messages"][-1]["content"] == "What is the harbour budget?"
