"""The Ollama client against a fake server that speaks Ollama's wire protocol."""

from __future__ import annotations

import socket

import pytest

from models_registry.providers.base import ChatChunk, ChatOptions, ProviderError
from models_registry.providers.ollama import OllamaProvider, context_window
from tests.fakes.ollama import FakeOllama
from tests.models_registry.streams import HELLO, text_until_failure


async def collect(provider: OllamaProvider, model: str = "llama3.2:1b", **options) -> list[ChatChunk]:
    return [chunk async for chunk in provider.stream_chat(model=model, messages=HELLO, options=ChatOptions(**options))]


async def test_stream_yields_the_answer_and_final_usage(fake_ollama: FakeOllama) -> None:
    chunks = await collect(OllamaProvider(base_url=fake_ollama.url))

    assert "".join(chunk.text for chunk in chunks) == "You said: hello there"
    assert len(chunks) > 3, "the answer arrives in pieces"
    assert chunks[-1].done and chunks[-1].completion_tokens == 4 and chunks[-1].prompt_tokens == 2
    assert not any(chunk.done for chunk in chunks[:-1])


async def test_options_are_sent_with_a_window_that_fits_the_prompt(fake_ollama: FakeOllama) -> None:
    await collect(OllamaProvider(base_url=fake_ollama.url), context_length=8192, temperature=0.2, max_tokens=50)

    options = fake_ollama.chat_requests[-1]["options"]
    assert options == {"num_ctx": 2048, "temperature": 0.2, "num_predict": 50}
    assert fake_ollama.chat_requests[-1]["stream"] is True


@pytest.mark.parametrize(
    ("prompt_chars", "context_length", "num_ctx"),
    [(100, 131072, 2048), (9_000, 131072, 4096), (30_000, 131072, 16384), (30_000, 8192, 8192)],
)
def test_context_window_grows_with_the_prompt_up_to_the_models_length(prompt_chars, context_length, num_ctx) -> None:
    messages = [{"role": "user", "content": "x" * prompt_chars}]

    assert context_window(messages, ChatOptions(context_length=context_length)) == num_ctx


async def test_unknown_model_is_a_permanent_error_that_names_it(fake_ollama: FakeOllama) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(OllamaProvider(base_url=fake_ollama.url), model="nope:7b")

    assert caught.value.permanent and caught.value.code == "model_not_found"
    assert "nope:7b" in caught.value.message and "ollama pull" in caught.value.message


async def test_connection_refused_says_ollama_is_unreachable() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderError) as caught:
        await collect(OllamaProvider(base_url=f"http://127.0.0.1:{port}"))

    assert caught.value.code == "unreachable" and not caught.value.permanent
    assert f"127.0.0.1:{port}" in caught.value.message


async def test_server_error_status_is_reported(fake_ollama: FakeOllama) -> None:
    fake_ollama.chat_status = 500
    with pytest.raises(ProviderError) as caught:
        await collect(OllamaProvider(base_url=fake_ollama.url))

    assert caught.value.code == "upstream_error" and "500" in caught.value.message


async def test_slow_first_token_times_out(fake_ollama: FakeOllama, settings) -> None:
    settings.PROVIDER_READ_TIMEOUT = 0.3
    fake_ollama.first_token_delay = 1.0
    with pytest.raises(ProviderError) as caught:
        await collect(OllamaProvider(base_url=fake_ollama.url))

    assert caught.value.code == "timeout" and "0.3 seconds" in caught.value.message


async def test_dropped_stream_raises_interrupted_after_the_text_so_far(fake_ollama: FakeOllama) -> None:
    fake_ollama.drop_after = 2
    text, error = await text_until_failure(OllamaProvider(base_url=fake_ollama.url), "llama3.2:1b")

    assert error.code == "interrupted"
    assert text == "You said:"


async def test_garbage_line_is_a_malformed_answer(fake_ollama: FakeOllama) -> None:
    fake_ollama.garbage_after = 1
    with pytest.raises(ProviderError) as caught:
        await collect(OllamaProvider(base_url=fake_ollama.url))

    assert caught.value.code == "malformed"


async def test_list_models_reads_tags(fake_ollama: FakeOllama) -> None:
    models = {info.name: info for info in await OllamaProvider(base_url=fake_ollama.url).list_models()}

    assert set(models) == {"llama3.2:1b", "qwen2.5:0.5b"}
    assert models["llama3.2:1b"].family == "llama"
    assert models["llama3.2:1b"].parameter_size == "1.2B"
    assert models["qwen2.5:0.5b"].quantization == "Q4_K_M"
    assert models["qwen2.5:0.5b"].size_bytes == 397_821_319


async def test_embed_batch_returns_one_vector_per_text(fake_ollama: FakeOllama) -> None:
    vectors = await OllamaProvider(base_url=fake_ollama.url).embed_batch(model="llama3.2:1b", texts=["a", "b", "a"])

    assert len(vectors) == 3 and vectors[0] == vectors[2] and vectors[0] != vectors[1]


async def test_error_line_mid_stream_is_interrupted_with_ollamas_reason(fake_ollama: FakeOllama) -> None:
    fake_ollama.error_after = 2
    text, error = await text_until_failure(OllamaProvider(base_url=fake_ollama.url), "llama3.2:1b")

    assert error.code == "interrupted"
    assert "the model runner stopped unexpectedly" in error.message
    assert text == "You said:"
