"""Hostile websocket clients: floods of frames and oversized frames.

(No session, foreign or missing Origin, other users' conversations and frames after a
logout are covered in tests/chat/test_consumer.py and test_isolation.py.)
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat.models import Message
from tests.conftest import make_conversation, open_socket, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


@pytest.fixture
async def conversation(alice, llama):
    return await sync_to_async(make_conversation)(alice)


async def frames_until_quiet(ws, quiet: float = 0.5) -> list[dict]:
    frames = []
    while not await ws.communicator.receive_nothing(timeout=quiet):
        output = await ws.communicator.receive_output()
        if output["type"] == "websocket.close":
            frames.append({"type": "closed", "code": output.get("code")})
            break
        frames.append(json.loads(output["text"]))
    return frames


async def test_a_burst_over_the_frame_budget_is_dropped_with_one_clear_error(alice, conversation, settings) -> None:
    settings.CHAT_SOCKET_FRAMES_PER_SECOND = 5
    settings.CHAT_SOCKET_FRAME_BURST = 10
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    for _ in range(30):
        await ws.send({"type": "dance"})  # each one the consumer reads gets an `unknown_type` error
    frames = await frames_until_quiet(ws)

    codes = [frame.get("code") for frame in frames]
    assert codes.count("unknown_type") == 10, codes
    assert codes.count("too_many_frames") == 1, codes
    flood = next(frame for frame in frames if frame.get("code") == "too_many_frames")
    assert "at most 5 a second" in flood["detail"]

    await asyncio.sleep(0.5)  # the budget refills
    await ws.send({"type": "dance"})
    assert (await ws.receive())["code"] == "unknown_type"
    await ws.close()


async def test_a_socket_that_keeps_flooding_is_closed(alice, conversation, settings, fake_ollama) -> None:
    settings.CHAT_SOCKET_FRAMES_PER_SECOND = 5
    settings.CHAT_SOCKET_FRAME_BURST = 10
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    started = time.monotonic()
    for _ in range(200):
        await ws.send({"type": "send", "content": "spam", "models": ["ollama/llama3.2:1b"]})
    frames = await frames_until_quiet(ws, quiet=2)
    elapsed = time.monotonic() - started

    assert frames[-1] == {"type": "closed", "code": 4429}, frames[-3:]
    assert 1 <= sum(1 for frame in frames if frame.get("code") == "too_many_frames") <= 3  # once a second
    # Only the frames within the budget were read: the burst and what refilled meanwhile.
    read = await Message.objects.filter(conversation=conversation, role="user").acount()
    assert 1 <= read <= 10 + 5 * elapsed, (read, elapsed)


async def test_an_oversized_frame_closes_the_socket_at_the_server(app_server, alice, conversation) -> None:
    """Daphne (autobahn) drops a socket whose frame is over 1 MiB before the consumer reads it
    (failing by drop: no close frame, so the client sees 1006)."""
    cookie = await sync_to_async(session_cookie)(alice)
    url = app_server.replace("http://", "ws://") + f"/ws/chat/{conversation.uuid}/"
    async with websockets.connect(
        url, origin=app_server, additional_headers={"Cookie": f"sessionid={cookie}"}, max_size=None
    ) as socket:
        await socket.send(json.dumps({"type": "send", "content": "x" * (2 * 1024 * 1024), "models": []}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=10)

    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    assert await Message.objects.filter(conversation=conversation).acount() == 0


async def test_a_large_frame_under_the_transport_limit_gets_a_too_large_error(app_server, alice, conversation) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    url = app_server.replace("http://", "ws://") + f"/ws/chat/{conversation.uuid}/"
    async with websockets.connect(url, origin=app_server, additional_headers={"Cookie": f"sessionid={cookie}"}) as ws:
        await ws.send(json.dumps({"type": "send", "content": "y" * 500_000, "models": ["ollama/llama3.2:1b"]}))
        error = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))

        assert error["type"] == "error" and error["code"] == "too_large"
        await ws.send(json.dumps({"type": "dance"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["code"] == "unknown_type"


async def test_nul_characters_in_a_message_or_an_answer_do_not_break_the_save(alice, conversation, fake_ollama) -> None:
    """PostgreSQL text cannot hold NUL: found by fuzzing the API (a 500); the socket had the same flaw."""
    fake_ollama.reply = lambda messages: "an\x00swer"
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hel\x00lo", "models": ["ollama/llama3.2:1b\x00"]})
    assert (await ws.receive())["code"] == "model_unavailable"
    await ws.send({"type": "send", "content": "hel\x00lo", "models": ["ollama/llama3.2:1b"]})
    frames = await ws.receive_until(lambda frame: frame["type"] == "message.done")

    assert frames[-1]["status"] == "complete"
    contents = [m.content async for m in Message.objects.filter(conversation=conversation).order_by("id")]
    assert contents == ["hello", "answer"]
    await ws.close()
