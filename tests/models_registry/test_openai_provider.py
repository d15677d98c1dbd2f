"""The OpenAI-compatible and Azure OpenAI clients against a fake server that speaks OpenAI's wire protocol."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import traceback
from typing import Any

import pytest

from models_registry.providers import openai_compat
from models_registry.providers.base import ChatChunk, ChatOptions, ChatProvider, ProviderError
from models_registry.providers.openai_compat import AzureOpenAIProvider, OpenAICompatibleProvider
from tests.fakes.openai import FakeOpenAI
from tests.models_registry.streams import HELLO, text_until_failure

KEY = "sk-test-4f9a1c0d2b7e"
API_VERSION = "2024-10-21"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_compat, "RETRY_BASE_DELAY", 0.01)


def openai_provider(fake: FakeOpenAI, **extra: Any) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(base_url=fake.url, **extra)


def azure_provider(fake: FakeOpenAI, **extra: Any) -> AzureOpenAIProvider:
    """An Azure provider, with the fake set up as its resource: two deployments and a key."""
    fake.api_key = KEY
    defaults = {"api_key": KEY, "api_version": API_VERSION, "deployments": ("chat-prod", "embed-small")}
    fake.models = ["chat-prod", "embed-small"]
    return AzureOpenAIProvider(base_url=fake.url, **{**defaults, **extra})


async def collect(provider: ChatProvider, model: str = "gpt-4o-mini", **options: Any) -> list[ChatChunk]:
    return [chunk async for chunk in provider.stream_chat(model=model, messages=HELLO, options=ChatOptions(**options))]


async def failure(provider: ChatProvider, model: str = "gpt-4o-mini") -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(provider, model=model)
    return caught.value


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_stream_yields_the_answer_and_final_usage(fake_openai: FakeOpenAI) -> None:
    chunks = await collect(openai_provider(fake_openai))

    assert "".join(chunk.text for chunk in chunks) == "You said: hello there"
    assert len(chunks) > 3, "the answer arrives in pieces"
    assert chunks[-1].done and chunks[-1].prompt_tokens == 2 and chunks[-1].completion_tokens == 4
    assert not any(chunk.done for chunk in chunks[:-1])
    assert fake_openai.request_paths == ["/v1/chat/completions"]


async def test_options_are_forwarded_and_usage_is_requested(fake_openai: FakeOpenAI) -> None:
    await collect(openai_provider(fake_openai), temperature=0.2, max_tokens=50)

    request = fake_openai.chat_requests[-1]
    assert request["model"] == "gpt-4o-mini" and request["messages"] == HELLO
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert request["temperature"] == 0.2 and request["max_tokens"] == 50


async def test_unset_options_are_left_to_the_server(fake_openai: FakeOpenAI) -> None:
    await collect(openai_provider(fake_openai))

    assert "temperature" not in fake_openai.chat_requests[-1]
    assert "max_tokens" not in fake_openai.chat_requests[-1]


async def test_a_server_without_usage_ends_with_unknown_counts(fake_openai: FakeOpenAI) -> None:
    fake_openai.send_usage = False
    chunks = await collect(openai_provider(fake_openai))

    assert "".join(chunk.text for chunk in chunks) == "You said: hello there"
    assert chunks[-1] == ChatChunk(done=True, prompt_tokens=None, completion_tokens=None)


async def test_base_url_that_ends_in_v1_is_used_as_is(fake_openai: FakeOpenAI) -> None:
    await collect(OpenAICompatibleProvider(base_url=f"{fake_openai.url}/v1/"))

    assert fake_openai.request_paths == ["/v1/chat/completions"]


async def test_key_is_sent_as_a_bearer_token(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = KEY
    await collect(openai_provider(fake_openai, api_key=KEY))

    assert fake_openai.request_headers[-1]["authorization"] == f"Bearer {KEY}"


async def test_no_key_sends_a_placeholder_that_keyless_servers_ignore(fake_openai: FakeOpenAI) -> None:
    await collect(openai_provider(fake_openai))

    assert fake_openai.request_headers[-1]["authorization"] == "Bearer not-needed"


async def test_azure_streams_from_the_deployment_with_api_version_and_key_header(fake_openai: FakeOpenAI) -> None:
    chunks = await collect(azure_provider(fake_openai), model="chat-prod", temperature=0.5)

    assert "".join(chunk.text for chunk in chunks) == "You said: hello there"
    assert chunks[-1].done and chunks[-1].completion_tokens == 4
    assert fake_openai.request_paths == [f"/openai/deployments/chat-prod/chat/completions?api-version={API_VERSION}"]
    headers = fake_openai.request_headers[-1]
    assert headers["api-key"] == KEY and "authorization" not in headers
    assert fake_openai.chat_requests[-1]["temperature"] == 0.5


async def test_azure_without_api_version_or_key_fails_before_any_request(fake_openai: FakeOpenAI) -> None:
    no_version = await failure(azure_provider(fake_openai, api_version=""), model="chat-prod")
    no_key = await failure(azure_provider(fake_openai, api_key=""), model="chat-prod")

    assert no_version.permanent and "API version" in no_version.message
    assert no_key.permanent and no_key.code == "unauthorized"
    assert fake_openai.request_paths == []


async def test_list_models_reads_v1_models(fake_openai: FakeOpenAI) -> None:
    models = {info.name: info for info in await openai_provider(fake_openai).list_models()}

    assert set(models) == {"gpt-4o-mini", "llama-3.1-8b-instruct", "text-embedding-3-small"}
    assert models["gpt-4o-mini"].capabilities == ["chat"]
    assert models["text-embedding-3-small"].capabilities == ["embedding"]


async def test_azure_list_models_are_the_configured_deployments(fake_openai: FakeOpenAI) -> None:
    models = await azure_provider(fake_openai).list_models()

    assert [(info.name, info.capabilities) for info in models] == [
        ("chat-prod", ["chat"]),
        ("embed-small", ["embedding"]),
    ]
    assert fake_openai.request_paths == [], "Azure's data plane cannot list deployments"


async def test_embed_batch_returns_vectors_in_input_order(fake_openai: FakeOpenAI) -> None:
    fake_openai.reverse_embeddings = True  # the index, not the position, says which text a vector is for
    provider = openai_provider(fake_openai)
    vectors = await provider.embed_batch(model="text-embedding-3-small", texts=["a", "b", "a"])
    (single,) = await provider.embed_batch(model="text-embedding-3-small", texts=["b"])

    assert len(vectors) == 3 and vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert vectors[1] == single
    assert fake_openai.request_paths[-1] == "/v1/embeddings"


async def test_azure_embed_batch_uses_the_deployment(fake_openai: FakeOpenAI) -> None:
    provider = azure_provider(fake_openai)
    vectors = await provider.embed_batch(model="embed-small", texts=["a", "b"])
    openai_vectors = await openai_provider(fake_openai, api_key=KEY).embed_batch(model="embed-small", texts=["a", "b"])

    assert vectors == openai_vectors and vectors[0] != vectors[1]
    assert fake_openai.request_paths[0] == f"/openai/deployments/embed-small/embeddings?api-version={API_VERSION}"


async def test_connection_refused_is_unreachable() -> None:
    port = unused_port()
    error = await failure(OpenAICompatibleProvider(base_url=f"http://127.0.0.1:{port}"))

    assert error.code == "unreachable" and not error.permanent
    assert f"127.0.0.1:{port}" in error.message


async def test_slow_first_token_times_out_without_a_retry(fake_openai: FakeOpenAI, settings) -> None:
    settings.PROVIDER_READ_TIMEOUT = 0.3
    fake_openai.first_token_delay = 1.0
    error = await failure(openai_provider(fake_openai))

    assert error.code == "timeout" and "0.3 seconds" in error.message
    assert len(fake_openai.chat_requests) == 1


async def test_wrong_key_is_unauthorized_and_never_repeated(fake_openai: FakeOpenAI, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.api_key = "sk-the-right-one"
    provider = openai_provider(fake_openai, api_key=KEY)
    error = await failure(provider)

    assert error.code == "unauthorized" and error.permanent
    assert "API key" in error.message and fake_openai.url in error.message
    assert len(fake_openai.chat_requests) == 1, "a refused key is not retried"
    told = [error.message, repr(error), repr(provider), "".join(traceback.format_exception(error)), caplog.text]
    assert all(KEY not in text for text in told)
    assert KEY in str(fake_openai.request_headers), "the key was sent, so the fake could have leaked it"


async def test_wrong_azure_key_is_unauthorized(fake_openai: FakeOpenAI) -> None:
    error = await failure(azure_provider(fake_openai, api_key="wrong-key"), model="chat-prod")

    assert error.code == "unauthorized" and "wrong-key" not in error.message


async def test_unknown_model_is_a_permanent_error_that_names_it(fake_openai: FakeOpenAI) -> None:
    error = await failure(openai_provider(fake_openai), model="gpt-9")

    assert error.code == "model_not_found" and error.permanent
    assert "gpt-9" in error.message
    assert len(fake_openai.chat_requests) == 1


async def test_unknown_azure_deployment_names_the_deployment(fake_openai: FakeOpenAI) -> None:
    error = await failure(azure_provider(fake_openai), model="gone")

    assert error.code == "model_not_found" and "deployment named 'gone'" in error.message


async def test_rate_limit_is_retried_after_the_servers_delay(fake_openai: FakeOpenAI) -> None:
    fake_openai.status, fake_openai.fail_times, fake_openai.retry_after = 429, 1, "0.3"
    started = time.monotonic()
    chunks = await collect(openai_provider(fake_openai))

    assert "".join(chunk.text for chunk in chunks) == "You said: hello there"
    assert len(fake_openai.chat_requests) == 2
    assert time.monotonic() - started >= 0.3


async def test_retry_after_is_capped(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_compat, "RETRY_AFTER_CAP", 0.05)
    fake_openai.status, fake_openai.fail_times, fake_openai.retry_after = 429, 1, "3600"
    chunks = await asyncio.wait_for(collect(openai_provider(fake_openai)), timeout=5)

    assert chunks[-1].done


async def test_rate_limit_that_persists_says_when_to_come_back(fake_openai: FakeOpenAI) -> None:
    fake_openai.status, fake_openai.retry_after = 429, "0.05"
    error = await failure(openai_provider(fake_openai))

    assert error.code == "rate_limited" and not error.permanent and error.retry_after == 0.05
    assert len(fake_openai.chat_requests) == 3, "the first try and two retries"


async def test_server_error_is_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.status, fake_openai.fail_times = 500, 2
    chunks = await collect(openai_provider(fake_openai))

    assert chunks[-1].done and len(fake_openai.chat_requests) == 3


async def test_server_error_that_persists_is_reported(fake_openai: FakeOpenAI) -> None:
    fake_openai.status = 503
    error = await failure(openai_provider(fake_openai))

    assert error.code == "upstream_error" and not error.permanent
    assert "503" in error.message and "overloaded" in error.message
    assert len(fake_openai.chat_requests) == 3


async def test_other_client_error_is_permanent_with_the_servers_message(fake_openai: FakeOpenAI) -> None:
    fake_openai.status = 400
    error = await failure(openai_provider(fake_openai))

    assert error.code == "upstream_error" and error.permanent
    assert "fake upstream error 400" in error.message
    assert len(fake_openai.chat_requests) == 1


async def test_dropped_stream_is_interrupted_after_the_text_so_far_and_not_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.drop_after = 2
    text, error = await text_until_failure(openai_provider(fake_openai), "gpt-4o-mini")

    assert error.code == "interrupted"
    assert text == "You said:"
    assert len(fake_openai.chat_requests) == 1, "a retry would repeat text the user has seen"


async def test_drop_before_the_first_token_is_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.drop_after = 0
    error = await failure(openai_provider(fake_openai))

    assert error.code == "interrupted"
    assert len(fake_openai.chat_requests) == 3


async def test_garbage_line_is_a_malformed_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.garbage_after = 1
    error = await failure(openai_provider(fake_openai))

    assert error.code == "malformed"


async def test_stopping_early_closes_the_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply = lambda messages: " ".join(["word"] * 200)
    fake_openai.token_delay = 0.01
    stream = openai_provider(fake_openai).stream_chat(model="gpt-4o-mini", messages=HELLO, options=ChatOptions())
    first = await anext(stream)
    await stream.aclose()

    assert first.text == "word"
    for _ in range(100):
        if fake_openai.streams_closed_by_client:
            break
        await asyncio.sleep(0.02)
    assert fake_openai.streams_closed_by_client == 1


async def test_error_event_mid_stream_is_interrupted_with_the_servers_message(fake_openai: FakeOpenAI) -> None:
    fake_openai.error_after = 2
    text, error = await text_until_failure(openai_provider(fake_openai), "gpt-4o-mini")

    assert error.code == "interrupted"
    assert "The model overloaded mid-answer." in error.message
    assert text == "You said:"
    assert len(fake_openai.chat_requests) == 1, "a retry would repeat text the user has seen"
