"""The OpenAI-compatible API, used through the official `openai` client against Daphne."""

from __future__ import annotations

import io
import re
import time
import uuid

import httpx
import openai
import pytest
from django.core.management import call_command
from django.test import Client

from chat.api_keys import api_key_create
from chat.models import ApiKey, Conversation, Message, UserLimits
from ingestion.models import Source
from models_registry.models import LLMModel
from models_registry.services import provider_sync_models

pytestmark = pytest.mark.django_db(transaction=True)

LLAMA = "ollama/llama3.2:1b"


@pytest.fixture
def key(alice, ollama_provider) -> str:
    return api_key_create(user=alice, name="tests")[1]


def client_for(app_server: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app_server}/api/v1", api_key=api_key, max_retries=0, timeout=20)


def test_models_lists_what_the_user_may_use(app_server, key) -> None:
    ids = [model.id for model in client_for(app_server, key).models.list()]

    assert ids == ["ollama/llama3.2:1b", "ollama/qwen2.5:0.5b"]


def test_chat_completion_answers_in_openai_shape_and_is_stored(app_server, key, alice, fake_ollama) -> None:
    answer = client_for(app_server, key).chat.completions.create(
        model=LLAMA,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello API"}],
        temperature=0.5,
        max_tokens=20,
        stop=["\n\n"],
    )

    assert answer.choices[0].message.content == "You said: Hello API"
    assert answer.choices[0].finish_reason == "stop" and answer.model == LLAMA
    assert answer.usage.completion_tokens == 4 and answer.usage.total_tokens > 4
    assert fake_ollama.chat_requests[-1]["options"] == {"temperature": 0.5, "num_predict": 20, "stop": ["\n\n"],
                                                         "num_ctx": 2048}  # fmt: skip
    time.sleep(0.3)
    conversation = Conversation.objects.get(owner=alice)
    assert conversation.title == "Hello API"
    assert conversation.system_prompt == "Be brief."
    prompt, answer_row = conversation.messages.order_by("id")
    assert (prompt.role, prompt.content, prompt.parent_id) == ("user", "Hello API", None)
    assert (answer_row.role, answer_row.content, answer_row.parent_id) == (
        "assistant", "You said: Hello API", prompt.pk,
    )  # fmt: skip
    web = Client()
    web.force_login(alice)
    assert "Hello API" in web.get("/").content.decode()


def test_streaming_relays_chunks_and_the_usage_chunk(app_server, key, fake_ollama) -> None:
    fake_ollama.reply = lambda messages: "one two three four five six"
    # Tokens apart in time go out one by one (tokens that arrive together may share a chunk).
    fake_ollama.token_delay = 0.02

    stream = client_for(app_server, key).chat.completions.create(
        model=LLAMA, messages=[{"role": "user", "content": "count"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four five six"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 6
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_store_false_keeps_no_history(app_server, key, alice) -> None:
    client_for(app_server, key).chat.completions.create(
        model=LLAMA, messages=[{"role": "user", "content": "secret"}], extra_body={"store": False}
    )

    time.sleep(0.3)
    assert not Conversation.objects.filter(owner=alice).exists()


def test_errors_use_openai_statuses(app_server, key, alice, llama, fake_ollama) -> None:
    client = client_for(app_server, key)
    hello = [{"role": "user", "content": "hi"}]

    with pytest.raises(openai.AuthenticationError):
        client_for(app_server, "mlc-wrong").models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="ollama/nope", messages=hello)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=LLAMA, messages=[])
    queued = Source.objects.create(owner=alice, url="https://example.com/later.html")
    with pytest.raises(openai.BadRequestError, match="is queued, not ready"):
        client.chat.completions.create(model=LLAMA, messages=hello, extra_body={"sources": [str(queued.uuid)]})
    with pytest.raises(openai.NotFoundError, match="No source with the id"):
        client.chat.completions.create(model=LLAMA, messages=hello, extra_body={"sources": [str(uuid.uuid4())]})
    llama.groups.create(name="research")
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=LLAMA, messages=hello)
    llama.groups.clear()
    fake_ollama.chat_status = 500
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=LLAMA, messages=hello)
    assert caught.value.status_code == 502 and "HTTP 500" in caught.value.message


def test_requests_over_the_limit_get_429_with_retry_after(app_server, key, alice) -> None:
    UserLimits.objects.create(user=alice, requests_per_minute=2)
    client = client_for(app_server, key)
    hello = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model=LLAMA, messages=hello)
    client.chat.completions.create(model=LLAMA, messages=hello)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=LLAMA, messages=hello)

    retry_after = int(caught.value.response.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and "2 requests a minute" in caught.value.message


def test_prompt_over_the_size_limit_is_refused(app_server, key, alice) -> None:
    UserLimits.objects.create(user=alice, max_prompt_chars=10)

    with pytest.raises(openai.BadRequestError, match="your limit is 10"):
        client_for(app_server, key).chat.completions.create(
            model=LLAMA, messages=[{"role": "user", "content": "far too long a prompt"}]
        )


def test_daily_tokens_run_out(app_server, key, alice) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=5)
    client = client_for(app_server, key)
    client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "use some tokens"}])

    with pytest.raises(openai.RateLimitError, match="tokens for today"):
        client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "more"}])


def test_client_hanging_up_cancels_the_upstream_request(app_server, key, alice, fake_ollama) -> None:
    fake_ollama.reply = lambda messages: " ".join(f"w{i}" for i in range(400))
    fake_ollama.token_delay = 0.02
    body = {"model": LLAMA, "messages": [{"role": "user", "content": "long"}], "stream": True}

    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST", f"{app_server}/api/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and "w3" in line:
                break
    hung_up = time.monotonic()
    while not fake_ollama.streams_closed_by_client and time.monotonic() - hung_up < 5:
        time.sleep(0.05)

    assert fake_ollama.streams_closed_by_client == 1
    assert time.monotonic() - hung_up < 1.5, "the upstream request must end within a second or so"
    time.sleep(0.5)
    saved = Message.objects.get(role="assistant", conversation__owner=alice)
    assert saved.status == "stopped" and saved.content.startswith("w0 w1 w2 w3")


def test_embeddings_come_back_in_order(app_server, key, ollama_provider, fake_ollama) -> None:
    fake_ollama.models["all-minilm:22m"] = {
        "family": "bert", "parameter_size": "23M", "quantization_level": "F16", "size": 1,
        "context_length": 256, "capabilities": ["embedding"],
    }  # fmt: skip
    provider_sync_models(provider=ollama_provider)

    result = client_for(app_server, key).embeddings.create(model="ollama/all-minilm:22m", input=["a", "b", "a"])

    vectors = [item.embedding for item in result.data]
    assert len(vectors) == 3 and vectors[0] == vectors[2] != vectors[1]
    with pytest.raises(openai.BadRequestError, match="is not an embedding model"):
        client_for(app_server, key).embeddings.create(model=LLAMA, input="not an embedding model")


def test_an_embeddings_input_over_the_size_limit_is_an_invalid_request_like_a_chat_prompt(
    app_server, key, alice, ollama_provider, fake_ollama
) -> None:
    fake_ollama.models["all-minilm:22m"] = {
        "family": "bert", "parameter_size": "23M", "quantization_level": "F16", "size": 1,
        "context_length": 256, "capabilities": ["embedding"],
    }  # fmt: skip
    provider_sync_models(provider=ollama_provider)
    UserLimits.objects.create(user=alice, max_prompt_chars=10)
    client = client_for(app_server, key)

    with pytest.raises(openai.BadRequestError) as embedding:
        client.embeddings.create(model="ollama/all-minilm:22m", input="far too long an input")
    with pytest.raises(openai.BadRequestError) as chat:
        client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "far too long a prompt"}])

    for caught in (embedding.value, chat.value):
        assert (caught.code, caught.type) == ("prompt_too_large", "invalid_request_error")


def test_key_lifecycle_on_the_settings_page(app_server, alice, ollama_provider) -> None:
    web = Client()
    web.force_login(alice)

    page = web.post("/settings/keys/", {"name": "laptop"}).content.decode()
    raw_key = re.search(r'<code id="new-key">(mlc-[\w-]+)</code>', page).group(1)
    assert raw_key not in web.get("/settings/keys/").content.decode(), "a key is shown once"
    assert ApiKey.objects.get(user=alice).key_hash != raw_key
    assert [m.id for m in client_for(app_server, raw_key).models.list()]

    web.post(f"/settings/keys/{ApiKey.objects.get(user=alice).uuid}/revoke/")

    with pytest.raises(openai.AuthenticationError, match="revoked"):
        client_for(app_server, raw_key).models.list()


def test_other_users_cannot_revoke_a_key(alice, bob) -> None:
    api_key, _ = api_key_create(user=alice, name="mine")
    web = Client()
    web.force_login(bob)

    assert web.post(f"/settings/keys/{api_key.uuid}/revoke/").status_code == 404
    api_key.refresh_from_db()
    assert api_key.is_active


def test_create_api_key_command_prints_a_working_key(app_server, alice, ollama_provider) -> None:
    out = io.StringIO()

    call_command("create_api_key", "alice", "--name", "cron", stdout=out)

    raw_key = out.getvalue().strip()
    assert raw_key.startswith("mlc-") and ApiKey.objects.get(user=alice).name == "cron"
    assert client_for(app_server, raw_key).models.list().data


def test_openapi_document_and_docs_page(app_server) -> None:
    spec = httpx.get(f"{app_server}/api/v1/openapi.json").json()

    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {"/models", "/chat/completions", "/embeddings", "/sources"}
    chat = spec["paths"]["/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "messages", "stream", "store", "sources"} <= set(chat["properties"])
    assert spec["servers"][0]["url"].endswith("/api/v1")
    assert "base_url" in httpx.get(f"{app_server}/api/v1/docs").text


def test_disabled_model_disappears_from_the_api(app_server, key, llama) -> None:
    LLMModel.objects.filter(pk=llama.pk).update(enabled=False)

    assert LLAMA not in [m.id for m in client_for(app_server, key).models.list()]
