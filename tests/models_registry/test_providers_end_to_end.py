"""Every provider kind, configured as an admin or the environment would, answering in the chat."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from models_registry.models import LLMModel, Provider
from models_registry.services import models_sync_all, provider_sync_models
from tests.conftest import make_conversation, open_socket, text_of

KEY = "azure-secret-key-42"


@pytest.mark.django_db
def test_azure_from_the_environment_gives_one_model_per_deployment(fake_openai, settings) -> None:
    settings.AZURE_OPENAI_ENDPOINT = fake_openai.url
    settings.AZURE_OPENAI_API_VERSION = "2024-10-21"
    settings.MODEL_DEPLOYMENT_NAME = "gpt-4o-mini, text-embedding-3-small"
    settings.OPENAI_API_KEY = KEY
    settings.OLLAMA_BASE_URL = ""

    results = models_sync_all()

    azure = Provider.objects.get(name="azure")
    assert (azure.kind, azure.api_key, azure.api_version) == ("azure_openai", KEY, "2024-10-21")
    assert [r.error for r in results] == [""]
    models = {m.name: m.capabilities for m in LLMModel.objects.filter(provider=azure)}
    assert models == {"gpt-4o-mini": ["chat"], "text-embedding-3-small": ["embedding"]}


@pytest.mark.django_db
def test_openai_compatible_server_lists_its_models(fake_openai) -> None:
    provider = Provider.objects.create(name="vllm", kind="openai_compatible", base_url=fake_openai.url)

    result = provider_sync_models(provider=provider)

    assert result.added == 3
    assert LLMModel.objects.get(provider=provider, name="gpt-4o-mini").model_id == "vllm/gpt-4o-mini"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
@pytest.mark.parametrize("kind", ["azure_openai", "openai_compatible"])
async def test_chat_streams_from_openai_protocol_providers(alice, fake_openai, kind) -> None:
    fake_openai.api_key = KEY
    fake_openai.token_delay = 0.002
    provider = await Provider.objects.acreate(
        name="cloud", kind=kind, base_url=fake_openai.url, api_key=KEY, api_version="2024-10-21",
        deployments="gpt-4o-mini",
    )  # fmt: skip
    await sync_to_async(provider_sync_models)(provider=provider)
    conversation = await sync_to_async(make_conversation)(alice)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "Hello cloud", "models": ["cloud/gpt-4o-mini"]})
    frames = await ws.receive_until(lambda f: f["type"] == "message.done")

    done = frames[-1]
    assert done["status"] == "complete" and text_of(frames, done["message"]) == "You said: Hello cloud"
    assert done["usage"]["completion_tokens"] and done["usage"]["prompt_tokens"]
    saved = await Message.objects.aget(pk=done["message"])
    assert saved.completion_tokens == done["usage"]["completion_tokens"]
    expected_path = (
        "/openai/deployments/gpt-4o-mini/chat/completions" if kind == "azure_openai" else "/v1/chat/completions"
    )
    assert fake_openai.request_paths[-1].startswith(expected_path)
    await ws.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_bad_key_is_an_error_the_user_can_act_on_and_never_shows_the_key(alice, fake_openai) -> None:
    fake_openai.api_key = "the-right-key"
    provider = await Provider.objects.acreate(
        name="cloud", kind="openai_compatible", base_url=fake_openai.url, api_key=KEY
    )
    await LLMModel.objects.acreate(provider=provider, name="gpt-4o-mini")
    conversation = await sync_to_async(make_conversation)(alice)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "hi", "models": ["cloud/gpt-4o-mini"]})
    frames = await ws.receive_until(lambda f: f["type"] == "message.done")

    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "unauthorized" and "API key" in error["detail"]
    assert all(KEY not in str(frame) for frame in frames)
    await ws.close()
