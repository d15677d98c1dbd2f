"""Side by side over the real websocket: parallel answers, versions, branches, picks and blind votes."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message, UserLimits, Vote
from chat.tree import path_message_ids
from models_registry.models import Provider
from models_registry.services import provider_sync_models
from tests.chat.test_consumer import finish_generations, is_done
from tests.conftest import make_conversation, open_socket, text_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]

LLAMA = "ollama/llama3.2:1b"
QWEN = "ollama/qwen2.5:0.5b"
GPT = "cloud/gpt-4o-mini"


@pytest.fixture
async def conversation(alice, llama) -> Conversation:
    return await sync_to_async(make_conversation)(alice)


@pytest.fixture
async def cloud(db, fake_openai) -> Provider:
    provider = await Provider.objects.acreate(name="cloud", kind="openai_compatible", base_url=fake_openai.url)
    await sync_to_async(provider_sync_models)(provider=provider)
    return provider


def done_count(n: int):
    seen: set[int] = set()

    def predicate(frame: dict) -> bool:
        if frame["type"] == "message.done":
            seen.add(frame["message"])
        return len(seen) >= n

    return predicate


async def send_and_finish(ws, frame: dict, answers: int) -> list[dict]:
    await ws.send(frame)
    frames = await ws.receive_until(done_count(answers), timeout=15)
    await finish_generations()
    return frames


def created(frames: list[dict], role: str | None = None) -> list[dict]:
    return [f["message"] for f in frames if f["type"] == "message.created" and role in (None, f["message"]["role"])]


async def test_one_prompt_fans_out_to_two_models_in_columns(alice, conversation, fake_ollama) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    frames = await send_and_finish(ws, {"type": "send", "content": "Compare", "models": [LLAMA, QWEN]}, 2)

    [prompt] = created(frames, "user")
    answers = created(frames, "assistant")
    assert [(a["column"], a["model"], a["parent"]) for a in answers] == [
        (0, LLAMA, prompt["id"]),
        (1, QWEN, prompt["id"]),
    ]
    done = {f["message"]: f for f in frames if f["type"] == "message.done"}
    for a in answers:
        assert done[a["id"]]["content"] == "You said: Compare"
        assert "You said: Compare".startswith(text_of(frames, a["id"])) and text_of(frames, a["id"])
    assert all(d["status"] == "complete" and d["usage"]["completion_tokens"] == 3 for d in done.values())
    assert all(d["first_token_ms"] is not None and d["latency_ms"] is not None for d in done.values())
    assert [m["model"] for m in fake_ollama.chat_requests] == ["llama3.2:1b", "qwen2.5:0.5b"] or sorted(
        m["model"] for m in fake_ollama.chat_requests
    ) == ["llama3.2:1b", "qwen2.5:0.5b"]
    saved = await sync_to_async(lambda: Conversation.objects.get(pk=conversation.pk).selected_models)()
    assert saved == [LLAMA, QWEN]
    await ws.close()


async def test_a_slow_and_a_failing_model_never_hold_up_the_other(
    alice, conversation, fake_ollama, fake_openai, cloud
) -> None:
    fake_openai.first_token_delay = 1.5  # the cloud model is slow
    del fake_ollama.models["qwen2.5:0.5b"]  # and qwen is gone from Ollama
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "race", "models": [GPT, LLAMA, QWEN]})
    frames = await ws.receive_until(done_count(3), timeout=15)
    await finish_generations()

    answers = {a["model"]: a["id"] for a in created(frames, "assistant")}
    order = [f["message"] for f in frames if f["type"] == "message.done"]
    assert order[-1] == answers[GPT], "the slow model finishes last"
    first_gpt_delta = next(i for i, f in enumerate(frames) if f["type"] == "delta" and f["message"] == answers[GPT])
    llama_done = next(i for i, f in enumerate(frames) if f["type"] == "message.done" and f["message"] == answers[LLAMA])
    assert llama_done < first_gpt_delta, "llama's whole answer arrived before the slow model's first token"
    error = next(f for f in frames if f["type"] == "error")
    assert error["message"] == answers[QWEN] and error["code"] == "model_not_found"
    statuses = {m.model_label: m.status for m in await sync_to_async(list)(Message.objects.filter(role="assistant"))}
    assert statuses == {GPT: "complete", LLAMA: "complete", QWEN: "error"}
    assert next(f for f in frames if f["type"] == "message.done" and f["message"] == answers[GPT])["content"] == (
        "You said: race"
    )
    await ws.close()


async def test_a_turn_that_would_exceed_the_concurrency_limit_is_refused_whole(
    alice, conversation, fake_ollama
) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_generations=1)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "two at once", "models": [LLAMA, QWEN]})
    error = await ws.receive()

    assert error["code"] == "too_many_generations" and "asks 2 models at once" in error["detail"]
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    frames = await send_and_finish(ws, {"type": "send", "content": "one", "models": [LLAMA]}, 1)
    assert frames[-1]["status"] == "complete", "the refused turn released its slots"
    await ws.close()


async def test_continue_with_this_sends_later_turns_to_that_model_with_its_answer(
    alice, conversation, fake_ollama
) -> None:
    fake_ollama.reply = lambda messages: f"answer to {messages[-1]['content']} ({len(messages)})"
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    frames = await send_and_finish(ws, {"type": "send", "content": "q1", "models": [LLAMA, QWEN]}, 2)
    [prompt] = created(frames, "user")
    qwen_answer = next(a for a in created(frames, "assistant") if a["model"] == QWEN)

    await ws.send({"type": "choose", "prompt": prompt["id"], "message": qwen_answer["id"]})
    chosen = await ws.receive_until(lambda f: f["type"] == "path.changed")

    models_frame = next(f for f in chosen if f["type"] == "conversation.models")
    assert models_frame["selected_models"] == [QWEN]
    fake_ollama.chat_requests.clear()
    await send_and_finish(ws, {"type": "send", "content": "q2", "models": models_frame["selected_models"]}, 1)
    [request] = fake_ollama.chat_requests
    assert request["model"] == "qwen2.5:0.5b"
    assert request["messages"][1] == {"role": "assistant", "content": "answer to q1 (1)"}
    await ws.close()


async def test_regenerate_makes_a_new_current_version_and_switch_goes_back(alice, conversation, fake_ollama) -> None:
    replies = iter(["first try", "second try"])
    fake_ollama.reply = lambda messages: next(replies)
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    frames = await send_and_finish(ws, {"type": "send", "content": "q", "models": [LLAMA]}, 1)
    [first] = created(frames, "assistant")

    await ws.send({"type": "regenerate", "message": first["id"]})
    frames = await ws.receive_until(is_done)
    await finish_generations()

    [second] = created(frames)
    assert (second["parent"], second["column"], second["model"]) == (first["parent"], 0, LLAMA)
    assert frames[-1]["content"] == "second try"
    assert any(f["type"] == "path.changed" for f in frames)
    assert await sync_to_async(path_message_ids)(conversation=conversation) == {first["parent"], second["id"]}

    await ws.send({"type": "switch", "message": first["id"]})
    await ws.receive_until(lambda f: f["type"] == "path.changed")

    assert await sync_to_async(path_message_ids)(conversation=conversation) == {first["parent"], first["id"]}
    await ws.close()


async def test_edit_branches_and_the_old_branch_is_kept(alice, conversation, fake_ollama) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    one = await send_and_finish(ws, {"type": "send", "content": "q1", "models": [LLAMA]}, 1)
    two = await send_and_finish(ws, {"type": "send", "content": "q2", "models": [LLAMA]}, 1)
    [q1] = created(one, "user")

    frames = await send_and_finish(
        ws, {"type": "edit", "message": q1["id"], "content": "q1 edited", "models": [LLAMA, QWEN]}, 2
    )

    [edited] = created(frames, "user")
    assert edited["parent"] is None and edited["content"] == "q1 edited"
    assert len(created(frames, "assistant")) == 2
    assert fake_ollama.chat_requests[-1]["messages"] == [{"role": "user", "content": "q1 edited"}]
    shown = await sync_to_async(path_message_ids)(conversation=conversation)
    assert edited["id"] in shown and q1["id"] not in shown

    await ws.send({"type": "switch", "message": q1["id"]})
    await ws.receive_until(lambda f: f["type"] == "path.changed")

    old_branch = {m["id"] for m in created(one) + created(two)}
    assert await sync_to_async(path_message_ids)(conversation=conversation) == old_branch
    await ws.close()


async def test_blind_answers_hide_their_models_until_the_vote(alice, conversation, fake_ollama) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "who are you?", "models": [LLAMA, QWEN], "blind": True})
    frames = await ws.receive_until(done_count(2))
    await finish_generations()

    raw = json.dumps([f for f in frames if f["type"] != "conversation.models"])
    assert "llama" not in raw and "qwen" not in raw, "no frame about the answers may name a model"
    answers = created(frames, "assistant")
    assert all(a["blind"] and a["model"] == "" for a in answers)
    prompt = created(frames, "user")[0]["id"]
    # A second tab, or a reload, learns nothing more.
    _, _, other = await open_socket(conversation.uuid, user=alice)
    await other.send({"type": "sync", "after": 0})
    synced = [await other.receive() for _ in range(3)]
    assert "llama" not in json.dumps(synced) and "qwen" not in json.dumps(synced)

    winner = answers[1]["id"]
    await ws.send({"type": "vote", "prompt": prompt, "winner": winner})
    recorded = (await ws.receive_until(lambda f: f["type"] == "vote.recorded"))[-1]

    assert recorded["winner"] == winner and sorted(recorded["models"]) == [LLAMA, QWEN]
    vote = await Vote.objects.aget(prompt_id=prompt)
    assert vote.owner_id == alice.pk and vote.winner_id == winner
    await other.send({"type": "sync", "after": 0})
    ids = {a["id"] for a in answers}
    synced = await other.receive_until(lambda f: f["type"] == "message.created" and f["message"]["id"] == max(ids))
    revealed = [f["message"] for f in synced if f["type"] == "message.created" and f["message"]["id"] in ids]
    assert {m["model"] for m in revealed} == {LLAMA, QWEN}

    await ws.send({"type": "vote", "prompt": prompt, "winner": None})
    again = await ws.receive_until(lambda f: f["type"] == "error")
    assert again[-1]["code"] == "already_voted"
    await ws.close()
    await other.close()


async def test_a_blind_failure_does_not_name_the_model(alice, conversation, fake_ollama) -> None:
    del fake_ollama.models["qwen2.5:0.5b"]
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hi", "models": [LLAMA, QWEN], "blind": True})
    frames = await ws.receive_until(done_count(2))
    await finish_generations()

    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "model_not_found" and "qwen" not in error["detail"]
    assert "this model" in error["detail"]
    await ws.close()


async def test_nobody_acts_on_another_users_messages(alice, bob, conversation, fake_ollama) -> None:
    _, _, mine = await open_socket(conversation.uuid, user=alice)
    frames = await send_and_finish(mine, {"type": "send", "content": "private", "models": [LLAMA, QWEN]}, 2)
    prompt = created(frames, "user")[0]["id"]
    answer = created(frames, "assistant")[0]["id"]
    await mine.close()
    connected, code, _ = await open_socket(conversation.uuid, user=bob)
    assert not connected and code == 4404
    bobs = await sync_to_async(make_conversation)(bob)
    _, _, ws = await open_socket(bobs.uuid, user=bob)

    for frame in (
        {"type": "regenerate", "message": answer},
        {"type": "switch", "message": answer},
        {"type": "edit", "message": prompt, "content": "mine now", "models": [LLAMA]},
        {"type": "choose", "prompt": prompt, "message": answer},
        {"type": "vote", "prompt": prompt, "winner": answer},
    ):
        await ws.send(frame)
        error = await ws.receive()
        assert error["type"] == "error" and error["code"] == "not_found", frame
        assert "private" not in json.dumps(error)

    assert await Message.objects.filter(conversation=conversation).acount() == 3
    assert await Message.objects.filter(conversation=bobs).acount() == 0
    assert await Vote.objects.acount() == 0
    await ws.close()


async def test_regenerating_with_a_model_no_longer_offered_is_refused(alice, conversation, fake_ollama, llama) -> None:
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    frames = await send_and_finish(ws, {"type": "send", "content": "q", "models": [LLAMA]}, 1)
    await type(llama).objects.filter(pk=llama.pk).aupdate(enabled=False)

    await ws.send({"type": "regenerate", "message": created(frames, "assistant")[0]["id"]})
    error = await ws.receive()

    assert error["code"] == "model_unavailable" and error["detail"]
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    await ws.close()


async def test_stopping_one_column_lets_the_other_finish(alice, conversation, fake_ollama) -> None:
    fake_ollama.reply = lambda messages: " ".join(f"w{i}" for i in range(150))
    fake_ollama.token_delay = 0.01
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await ws.send({"type": "send", "content": "both", "models": [LLAMA, QWEN]})
    frames = await ws.receive_until(lambda f: f["type"] == "delta")
    first, second = created(frames, "assistant")

    await ws.send({"type": "stop", "message": first["id"]})
    frames = await ws.receive_until(done_count(2), timeout=15)
    await finish_generations()

    statuses = {f["message"]: f["status"] for f in frames if f["type"] == "message.done"}
    assert statuses == {first["id"]: "stopped", second["id"]: "complete"}
    await ws.close()


async def test_one_column_is_regenerated_while_another_still_streams(
    alice, conversation, fake_ollama, fake_openai, cloud
) -> None:
    fake_openai.first_token_delay = 1.5
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    await ws.send({"type": "send", "content": "q", "models": [LLAMA, GPT]})
    frames = await ws.receive_until(is_done)
    [fast] = [f["message"] for f in frames if f["type"] == "message.done"]

    await ws.send({"type": "regenerate", "message": fast})
    frames = await ws.receive_until(done_count(2), timeout=15)
    await finish_generations()

    again = [m for m in created(frames) if m["model"] == LLAMA]
    assert again and again[0]["column"] == 0 and again[0]["id"] != fast
    assert not [f for f in frames if f["type"] == "error"], "the other column streaming is no reason to refuse"
    assert {f["message"] for f in frames if f["type"] == "message.done"} >= {again[0]["id"]}
    await ws.close()
