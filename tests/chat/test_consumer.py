"""The chat websocket through the real ASGI app, the Redis channel layer and Postgres."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session

from chat import generation
from chat.models import Conversation, Message
from models_registry.models import LLMModel, Provider
from tests.conftest import make_conversation, open_socket, text_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]

LLAMA = "ollama/llama3.2:1b"


def is_done(frame: dict) -> bool:
    return frame["type"] == "message.done"


async def finish_generations() -> None:
    """Let every answer started by the test end before the event loop closes."""
    tasks = [task for task in generation._RUNNING.values()]
    if tasks:
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=15)


@pytest.fixture
async def conversation(alice, llama) -> Conversation:
    return await sync_to_async(make_conversation)(alice)


def long_reply(count: int = 200) -> str:
    return " ".join(f"word{i}" for i in range(count))


async def test_answer_streams_over_the_socket_and_is_saved(alice, conversation, fake_ollama) -> None:
    connected, _, ws = await open_socket(conversation.uuid, user=alice)
    assert connected

    await ws.send({"type": "send", "content": "What is the capital of France?", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    created = [f["message"] for f in frames if f["type"] == "message.created"]
    assert [m["role"] for m in created] == ["user", "assistant"]
    assert created[0]["content"] == "What is the capital of France?"
    assistant_id = created[1]["id"]
    assert created[1]["status"] == "streaming" and created[1]["model"] == LLAMA
    # A prompt comes rendered with its whole turn, its streaming answer inside (chat/_turn.html).
    assert created[0]["html"].startswith(f'<div class="turn" data-prompt-id="{created[0]["id"]}"')
    assert f'data-message-id="{assistant_id}" data-status="streaming"' in created[0]["html"]
    assert text_of(frames, assistant_id) == "You said: What is the capital of France?"
    title = next(f for f in frames if f["type"] == "conversation.updated")
    assert title["conversation"]["title"] == "What is the capital of France?"
    done = frames[-1]
    assert done["status"] == "complete" and done["message"] == assistant_id
    assert done["usage"] == {"prompt_tokens": 6, "completion_tokens": 8}
    # The answer as the page renders it (chat/_message.html), with the markdown inside.
    assert done["html"].startswith(
        f'<article class="message assistant status-complete" data-message-id="{assistant_id}"'
    )
    assert '<div class="content markdown"><p>You said:' in done["html"] and done["citations"] == []

    saved = await Message.objects.aget(pk=assistant_id)
    assert saved.content == "You said: What is the capital of France?"
    assert saved.status == Message.Status.COMPLETE
    assert (saved.prompt_tokens, saved.completion_tokens) == (6, 8)
    assert saved.latency_ms is not None and saved.first_token_ms is not None
    assert saved.first_token_ms <= saved.latency_ms
    assert await Message.objects.filter(conversation=conversation, role="user").acount() == 1
    await ws.close()


async def test_first_delta_goes_out_at_once_and_later_ones_are_coalesced(alice, conversation, fake_ollama) -> None:
    fake_ollama.reply = lambda messages: long_reply(400)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "count", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    deltas = [f for f in frames if f["type"] == "delta"]
    assistant_id = deltas[0]["message"]
    assert deltas[0]["text"] == "word0", "the first token is sent on its own, without waiting"
    assert text_of(frames, assistant_id) == long_reply(400)
    assert len(deltas) < 100, f"{len(deltas)} delta frames for 400 tokens: not coalesced"
    await ws.close()


async def test_earlier_turns_go_to_the_model(alice, conversation, fake_ollama) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "first question", "models": [LLAMA]})
    await ws.receive_until(is_done)
    await ws.send({"type": "send", "content": "second question", "models": [LLAMA]})
    await ws.receive_until(is_done)
    await finish_generations()

    assert fake_ollama.chat_requests[-1]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "You said: first question"},
        {"role": "user", "content": "second question"},
    ]
    await ws.close()


async def test_ollama_gets_a_context_window_within_the_models_length(alice, conversation, fake_ollama, llama) -> None:
    llama.context_length = 4096
    await llama.asave()
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hi", "models": [LLAMA]})
    await ws.receive_until(is_done)
    await finish_generations()

    assert fake_ollama.chat_requests[-1]["options"]["num_ctx"] == 2048, "a short chat needs no more"
    await ws.close()


async def test_stop_cancels_the_answer_and_keeps_the_partial_text(alice, conversation, fake_ollama) -> None:
    fake_ollama.reply = lambda messages: long_reply(300)
    fake_ollama.token_delay = 0.02
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "go on", "models": [LLAMA]})
    await ws.receive_until(lambda f: f["type"] == "delta")
    await ws.send({"type": "stop"})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    done = frames[-1]
    assert done["status"] == "stopped"
    saved = await Message.objects.aget(pk=done["message"])
    assert saved.status == Message.Status.STOPPED
    assert saved.content and long_reply(300).startswith(saved.content)
    assert len(saved.content) < len(long_reply(300))
    for _ in range(50):  # the fake notices the closed connection at its next write
        if fake_ollama.streams_closed_by_client:
            break
        await asyncio.sleep(0.05)
    assert fake_ollama.streams_closed_by_client == 1, "stopping must close the upstream request"
    await ws.close()


async def test_answer_survives_every_socket_closing_and_a_new_one_sees_all_of_it(
    alice, conversation, fake_ollama
) -> None:
    reply = long_reply(120)
    fake_ollama.reply = lambda messages: reply
    fake_ollama.token_delay = 0.01
    _, _, first = await open_socket(conversation.uuid, user=alice)
    await first.send({"type": "send", "content": "tell me", "models": [LLAMA]})
    frames = await first.receive_until(lambda f: f["type"] == "delta" and f["offset"] > 0)
    assistant_id = frames[-1]["message"]
    await first.close()
    await asyncio.sleep(0.2)  # the answer goes on with nobody watching

    _, _, second = await open_socket(conversation.uuid, user=alice)
    await second.send({"type": "sync", "after": 0})
    frames = await second.receive_until(is_done)
    await finish_generations()

    created = [f["message"] for f in frames if f["type"] == "message.created"]
    assert [m["id"] for m in created][-1] == assistant_id
    # Live deltas may reach the new socket before the snapshot it asked for (it joined the group
    # on connect); they leave a gap, which the page answers with a sync. From the snapshot on,
    # nothing may be missing or repeated.
    start = next(i for i, f in enumerate(frames) if f["type"] == "delta" and f["offset"] == 0)
    assert len(frames[start]["text"]) > 0
    assert text_of(frames[start:], assistant_id) == reply, "no text may be missing or repeated"
    assert frames[-1]["status"] == "complete"
    assert (await Message.objects.aget(pk=assistant_id)).content == reply
    await second.close()


async def test_sync_refreshes_an_answer_that_finished_before_the_socket_opened(alice, conversation, llama) -> None:
    answer = await Message.objects.acreate(
        conversation=conversation, role="assistant", content="done", status="complete", model=llama
    )
    other = await sync_to_async(make_conversation)(alice)
    foreign = await Message.objects.acreate(conversation=other, role="assistant", content="elsewhere")
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "sync", "after": answer.pk, "refresh": [answer.pk, foreign.pk]})
    frame = await ws.receive()

    assert frame["type"] == "message.created"
    assert frame["message"]["id"] == answer.pk and frame["message"]["status"] == "complete"
    assert await ws.communicator.receive_nothing(timeout=0.3), "messages of other conversations are never sent"
    await ws.close()


async def test_second_tab_sees_the_same_stream(alice, conversation, fake_ollama) -> None:
    fake_ollama.token_delay = 0.005
    _, _, tab_one = await open_socket(conversation.uuid, user=alice)
    _, _, tab_two = await open_socket(conversation.uuid, user=alice)

    await tab_one.send({"type": "send", "content": "both tabs", "models": [LLAMA]})
    one = await tab_one.receive_until(is_done)
    two = await tab_two.receive_until(is_done)
    await finish_generations()

    assistant_id = one[-1]["message"]
    assert text_of(two, assistant_id) == text_of(one, assistant_id) == "You said: both tabs"
    await tab_one.close()
    await tab_two.close()


@pytest.mark.parametrize(
    ("switch", "status", "code"),
    [
        ({"drop_after": 3}, "interrupted", "interrupted"),
        ({"first_token_delay": 1.0}, "error", "timeout"),
        ({"chat_status": 500}, "error", "upstream_error"),
        ({"garbage_after": 2}, "interrupted", "malformed"),
    ],
)
async def test_upstream_failures_end_with_a_status_and_keep_partial_text(
    alice, conversation, fake_ollama, settings, switch, status, code
) -> None:
    settings.PROVIDER_READ_TIMEOUT = 0.3
    for name, value in switch.items():
        setattr(fake_ollama, name, value)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "this will fail somehow", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == code and error["detail"]
    saved = await Message.objects.aget(pk=frames[-1]["message"])
    assert saved.status == status and frames[-1]["status"] == status
    assert saved.error == error["detail"]
    if status == "interrupted":
        assert saved.content and "You said: this will fail somehow".startswith(saved.content)

    fake_ollama.reset()  # Ollama is back: the next message works
    await ws.send({"type": "send", "content": "again", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()
    assert frames[-1]["status"] == "complete"
    assert text_of(frames, frames[-1]["message"]) == "You said: again"
    await ws.close()


async def test_unknown_model_at_ollama_is_an_error_naming_it(alice, conversation, fake_ollama) -> None:
    del fake_ollama.models["llama3.2:1b"]  # removed from Ollama after the last sync
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hi", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "model_not_found" and "llama3.2:1b" in error["detail"]
    assert frames[-1]["status"] == "error"
    await ws.close()


async def test_ollama_down_is_a_clear_error(alice, conversation, ollama_provider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await Provider.objects.filter(pk=ollama_provider.pk).aupdate(base_url=f"http://127.0.0.1:{port}")
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "anyone there?", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "unreachable" and "Is Ollama running?" in error["detail"]
    user_message = await Message.objects.aget(conversation=conversation, role="user")
    assert user_message.content == "anyone there?", "the user's message is kept"
    await ws.close()


async def test_send_while_an_answer_streams_is_refused(alice, conversation, fake_ollama) -> None:
    fake_ollama.reply = lambda messages: long_reply(100)
    fake_ollama.token_delay = 0.01
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "one", "models": [LLAMA]})
    await ws.receive_until(lambda f: f["type"] == "delta")
    await ws.send({"type": "send", "content": "two", "models": [LLAMA]})
    frames = await ws.receive_until(lambda f: f["type"] == "error")
    await ws.receive_until(is_done)
    await finish_generations()

    assert frames[-1]["code"] == "busy" and frames[-1]["message"] is None
    assert await Message.objects.filter(conversation=conversation, role="user").acount() == 1
    await ws.close()


async def test_unauthenticated_socket_is_refused(conversation) -> None:
    connected, code, _ = await open_socket(conversation.uuid, user=None)

    assert not connected and code == 4401


async def test_other_users_conversation_cannot_be_joined(bob, conversation) -> None:
    connected, code, _ = await open_socket(conversation.uuid, user=bob)

    assert not connected and code == 4404


@pytest.mark.parametrize("origin", [b"http://evil.example", None])
async def test_foreign_or_missing_origin_is_refused(alice, conversation, origin) -> None:
    connected, _, _ = await open_socket(conversation.uuid, user=alice, origin=origin)

    assert not connected


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "send", "content": 42, "models": [LLAMA]}, "bad_frame"),
        ({"type": "send", "content": "hi", "models": "ollama/llama3.2:1b"}, "bad_frame"),
        ({"type": "send", "content": "   ", "models": [LLAMA]}, "empty"),
        ({"type": "send", "content": "x" * 40_000, "models": [LLAMA]}, "too_long"),
        ({"type": "send", "content": "hi", "models": ["ollama/not-installed"]}, "model_unavailable"),
        ({"type": "send", "content": "hi", "models": [LLAMA, LLAMA]}, "duplicate_model"),
        ({"type": "send", "content": "hi", "models": [f"ollama/m{i}" for i in range(5)]}, "too_many_models"),
        ({"type": "sync", "after": "x"}, "bad_frame"),
        ({"type": "send", "content": "y" * 200_000, "models": [LLAMA]}, "too_large"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(
    alice, conversation, fake_ollama, frame, code
) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    error = await ws.receive()

    assert error["type"] == "error" and error["code"] == code and error["detail"]
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    await ws.send({"type": "send", "content": "still here?", "models": [LLAMA]})
    frames = await ws.receive_until(is_done)
    await finish_generations()
    assert frames[-1]["status"] == "complete"
    await ws.close()


async def test_disabled_model_is_refused(alice, conversation, llama) -> None:
    await LLMModel.objects.filter(pk=llama.pk).aupdate(enabled=False)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hi", "models": [LLAMA]})
    error = await ws.receive()

    assert error["code"] == "model_unavailable"
    await ws.close()


async def test_frames_after_logout_are_refused(alice, conversation, fake_ollama) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await Session.objects.all().adelete()  # logged out in another tab

    await ws.send({"type": "send", "content": "hi", "models": [LLAMA]})
    error = await ws.receive()
    closed = await ws.communicator.receive_output(timeout=2)

    assert error["code"] == "unauthenticated"
    assert closed == {"type": "websocket.close", "code": 4401}
    assert await Message.objects.filter(conversation=conversation).acount() == 0


async def test_group_restricted_model_is_refused_on_the_socket(alice, conversation, llama) -> None:
    from django.contrib.auth.models import Group

    research = await Group.objects.acreate(name="research")
    await llama.groups.aadd(research)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hi", "models": [LLAMA]})
    error = await ws.receive()

    assert error["code"] == "model_unavailable"
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    await ws.close()


async def test_chat_over_the_request_limit_says_when_to_retry(alice, conversation, fake_ollama) -> None:
    from chat.models import UserLimits

    await UserLimits.objects.acreate(user=alice, requests_per_minute=1)
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await ws.send({"type": "send", "content": "one", "models": [LLAMA]})
    await ws.receive_until(is_done)
    await finish_generations()

    await ws.send({"type": "send", "content": "two", "models": [LLAMA]})
    error = await ws.receive()

    assert error["code"] == "rate_limited" and "1 request a minute" in error["detail"]
    assert await Message.objects.filter(conversation=conversation, role="user").acount() == 1
    await ws.close()


async def test_answers_count_against_the_daily_tokens(alice, conversation, fake_ollama) -> None:
    from chat.models import UserLimits

    await UserLimits.objects.acreate(user=alice, tokens_per_day=3)
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await ws.send({"type": "send", "content": "one", "models": [LLAMA]})
    await ws.receive_until(is_done)
    await finish_generations()

    await ws.send({"type": "send", "content": "two", "models": [LLAMA]})
    error = await ws.receive()

    assert error["code"] == "token_quota_exceeded"
    await ws.close()


async def test_more_open_sockets_than_pooled_connections_all_get_answers(alice, llama, fake_ollama) -> None:
    """Each open socket has a thread of its own. A database connection left on such a thread (the
    async ORM's did, after every answer) is lost to the pool while the socket stays open: with
    more sockets than connections, answers stopped for good once the pool ran dry."""
    from django.conf import settings

    pool_size = settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {}).get("max_size", 4)
    sockets = []
    try:
        for index in range(pool_size + 3):
            conversation = await sync_to_async(make_conversation)(alice)
            connected, _, ws = await open_socket(conversation.uuid, user=alice)
            assert connected, f"socket {index + 1} could not connect: the pool had no connection for it"
            sockets.append(ws)
            await ws.send({"type": "send", "content": f"question {index}", "models": [LLAMA]})
            frames = await ws.receive_until(is_done, timeout=10)
            assert frames[-1]["status"] == "complete", f"answer {index + 1}: {frames[-1]}"
        await finish_generations()
        assert await Message.objects.filter(role="assistant", status="complete").acount() == pool_size + 3
    finally:
        for ws in sockets:
            await ws.close()


async def held_tickets(user) -> int:
    """The user's running answers as the quota counters see them (Redis, as in production)."""
    import redis.asyncio as redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return int(await client.get(f"{settings.CHANNEL_LAYER_PREFIX}:quota:{user.pk}:concurrent") or 0)
    finally:
        await client.aclose()


async def test_an_edit_holding_nul_is_saved_clean_and_never_locks_the_user_out(
    alice, conversation, fake_ollama
) -> None:
    """Once, an `edit` with NUL raised a database error in the consumer and kept the user's
    ticket: with a limit of one answer at once, every later message was refused for 15 minutes."""
    from chat.models import UserLimits

    await UserLimits.objects.acreate(user=alice, concurrent_generations=1)
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await ws.send({"type": "send", "content": "first", "models": [LLAMA]})
    prompt = (await ws.receive_until(lambda f: f["type"] == "message.created"))[-1]["message"]
    await ws.receive_until(is_done)
    await finish_generations()

    await ws.send({"type": "edit", "message": prompt["id"], "content": "fi\x00rst\x00", "models": [LLAMA]})
    frames = await ws.receive_until(lambda f: is_done(f) or f["type"] == "error")
    await finish_generations()

    assert is_done(frames[-1]) and frames[-1]["status"] == "complete", frames[-1]
    edited = [f["message"] for f in frames if f["type"] == "message.created" and f["message"]["role"] == "user"]
    assert edited[0]["content"] == "first" and edited[0]["id"] != prompt["id"]
    assert await held_tickets(alice) == 0
    await ws.send({"type": "send", "content": "and now?", "models": [LLAMA]})
    assert is_done((await ws.receive_until(lambda f: is_done(f) or f["type"] == "error"))[-1])
    await finish_generations()
    await ws.close()


async def test_a_send_that_fails_unexpectedly_gives_its_ticket_back(alice, conversation, fake_ollama) -> None:
    """The conversation is deleted in another tab while this one is open: the send fails inside
    the service with an error no handler expects. The socket says so, and the ticket is back."""
    from chat.models import UserLimits

    await UserLimits.objects.acreate(user=alice, concurrent_generations=1)
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await Conversation.objects.filter(pk=conversation.pk).adelete()

    await ws.send({"type": "send", "content": "hello?", "models": [LLAMA]})
    error = await ws.receive()

    assert (error["type"], error["code"]) == ("error", "not_found")
    assert (await ws.communicator.receive_output(timeout=5))["code"] == 4404
    assert await held_tickets(alice) == 0


async def test_every_client_frame_of_the_protocol_has_a_handler(alice, conversation) -> None:
    from chat.consumers import ChatConsumer
    from chat.realtime import CLIENT_FRAME_TYPES

    consumer = ChatConsumer()
    assert set(consumer._handlers()) == CLIENT_FRAME_TYPES
