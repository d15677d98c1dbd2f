"""A provider with several hosts (scale out): requests are spread across the healthy hosts, a
host that is down is skipped, and failover happens only before the first token."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import Client

from models_registry.models import LLMModel, Provider
from models_registry.providers import HostPool, provider_client
from models_registry.providers.base import ChatOptions, ProviderError
from models_registry.providers.pool import host_is_down, hosts_reset
from models_registry.services import provider_sync_models, providers_configure_from_env
from tests.conftest import make_conversation, make_user, open_socket, text_of
from tests.fakes.ollama import FakeOllama

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(autouse=True)
def fresh_host_state() -> Iterator[None]:
    hosts_reset()
    yield
    hosts_reset()


@pytest.fixture
def second_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama().start()
    yield server
    server.stop()


@pytest.fixture
def down_url() -> Iterator[str]:
    """The address of an Ollama host that has gone away: its port refuses connections."""
    server = FakeOllama().start()
    url = server.url
    server.stop()
    yield url


def pool_provider(*urls: str) -> Provider:
    return Provider(name="ollama", kind=Provider.Kind.OLLAMA, base_url=urls[0], extra_base_urls="\n".join(urls[1:]))


async def answer(client, model: str = "llama3.2:1b") -> str:
    chunks = [c async for c in client.stream_chat(model=model, messages=HELLO, options=ChatOptions())]
    assert chunks[-1].done
    return "".join(chunk.text for chunk in chunks)


def test_one_url_gives_a_plain_client_and_several_give_a_pool(fake_ollama, second_ollama) -> None:
    assert not isinstance(provider_client(pool_provider(fake_ollama.url)), HostPool)

    pool = provider_client(pool_provider(fake_ollama.url, second_ollama.url + "/"))

    assert isinstance(pool, HostPool)
    assert [host.base_url for host in pool.hosts] == [fake_ollama.url, second_ollama.url]


async def test_requests_are_spread_across_healthy_hosts(fake_ollama, second_ollama) -> None:
    client = provider_client(pool_provider(fake_ollama.url, second_ollama.url))

    for _ in range(6):
        assert await answer(client) == "You said: hello there"

    assert len(fake_ollama.chat_requests) == 3 and len(second_ollama.chat_requests) == 3


async def test_concurrent_requests_go_to_the_least_busy_host(fake_ollama, second_ollama) -> None:
    fake_ollama.token_delay = second_ollama.token_delay = 0.05
    client = provider_client(pool_provider(fake_ollama.url, second_ollama.url))

    answers = await asyncio.gather(*(answer(client) for _ in range(4)))

    assert answers == ["You said: hello there"] * 4
    assert len(fake_ollama.chat_requests) == 2 and len(second_ollama.chat_requests) == 2


async def test_a_host_that_is_down_is_skipped_and_avoided_afterwards(fake_ollama, down_url) -> None:
    client = provider_client(pool_provider(down_url, fake_ollama.url))

    answers = [await answer(client) for _ in range(4)]

    assert answers == ["You said: hello there"] * 4
    assert len(fake_ollama.chat_requests) == 4
    assert host_is_down(down_url) and not host_is_down(fake_ollama.url)


async def test_a_host_back_after_its_cooldown_gets_requests_again(fake_ollama, second_ollama, settings) -> None:
    settings.PROVIDER_HOST_COOLDOWN = 0.2
    second_ollama.chat_status = 500
    client = provider_client(pool_provider(fake_ollama.url, second_ollama.url))
    for _ in range(2):
        await answer(client)
    assert host_is_down(second_ollama.url) and len(fake_ollama.chat_requests) == 2

    second_ollama.chat_status = None
    await asyncio.sleep(0.3)
    for _ in range(2):
        await answer(client)

    assert not host_is_down(second_ollama.url)
    assert len(fake_ollama.chat_requests) == 3 and len(second_ollama.chat_requests) == 2  # one 500, one answer


async def test_no_failover_after_the_first_token(fake_ollama, second_ollama) -> None:
    fake_ollama.reply = second_ollama.reply = lambda messages: "one two three four five six"
    fake_ollama.drop_after = second_ollama.drop_after = 2
    client = provider_client(pool_provider(fake_ollama.url, second_ollama.url))
    received = []

    with pytest.raises(ProviderError) as caught:
        async for chunk in client.stream_chat(model="llama3.2:1b", messages=HELLO, options=ChatOptions()):
            received.append(chunk.text)

    assert caught.value.code == "interrupted"
    assert "".join(received) == "one two", "the text already sent is not repeated by another host"
    assert len(fake_ollama.chat_requests) + len(second_ollama.chat_requests) == 1


async def test_when_every_host_is_down_the_error_says_so(down_url) -> None:
    other = FakeOllama().start()
    other_url = other.url
    other.stop()
    client = provider_client(pool_provider(down_url, other_url))

    with pytest.raises(ProviderError) as caught:
        await answer(client)

    assert caught.value.code == "unreachable"
    assert caught.value.message.startswith("All 2 hosts failed.") and "Is Ollama running?" in caught.value.message


async def test_a_bad_key_is_not_retried_on_other_hosts(fake_ollama, second_ollama) -> None:
    fake_ollama.chat_status = second_ollama.chat_status = 401
    client = provider_client(pool_provider(fake_ollama.url, second_ollama.url))

    with pytest.raises(ProviderError) as caught:
        await answer(client)

    assert caught.value.code == "unauthorized"
    assert len(fake_ollama.chat_requests) + len(second_ollama.chat_requests) == 1


@pytest.mark.django_db
def test_sync_and_pull_use_every_host(fake_ollama, second_ollama, down_url) -> None:
    provider = Provider.objects.create(
        name="ollama", kind=Provider.Kind.OLLAMA, base_url=down_url, extra_base_urls=f"{fake_ollama.url}\n"
    )
    result = provider_sync_models(provider=provider)
    assert not result.error and result.added == 2

    provider.extra_base_urls = f"{fake_ollama.url}\n{second_ollama.url}"
    provider.base_url = fake_ollama.url
    provider.save()
    out = io.StringIO()
    call_command("pull_model", "tinyllama:1.1b", stdout=out)

    assert f"pulling into {fake_ollama.url}" in out.getvalue() and f"pulling into {second_ollama.url}" in out.getvalue()
    assert "tinyllama:1.1b" in fake_ollama.models and "tinyllama:1.1b" in second_ollama.models
    assert LLMModel.objects.get(name="tinyllama:1.1b").available


@pytest.mark.django_db
def test_comma_separated_ollama_base_url_makes_one_provider_with_several_hosts(settings) -> None:
    settings.OLLAMA_BASE_URL = "http://gpu-1:11434,http://gpu-2:11434,http://gpu-3:11434"

    providers_configure_from_env()

    provider = Provider.objects.get(name="ollama")
    assert provider.base_urls == ("http://gpu-1:11434", "http://gpu-2:11434", "http://gpu-3:11434")


@pytest.mark.django_db
def test_admin_saves_extra_hosts_and_refuses_a_bad_one(fake_ollama, second_ollama) -> None:
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    form = {"name": "gpus", "kind": "ollama", "base_url": fake_ollama.url, "enabled": "on", "api_version": "",
            "deployments": "", "api_key": ""}  # fmt: skip

    bad = client.post("/admin/models_registry/provider/add/", {**form, "extra_base_urls": "not a url"})
    assert bad.status_code == 200 and "Not an http(s) URL: not a url" in bad.content.decode()

    good = client.post("/admin/models_registry/provider/add/", {**form, "extra_base_urls": f"\n{second_ollama.url}\n"})
    assert good.status_code == 302
    provider = Provider.objects.get(name="gpus")
    assert provider.base_urls == (fake_ollama.url, second_ollama.url)
    listing = client.get("/admin/models_registry/provider/").content.decode()
    assert '<td class="field-host_count">2</td>' in listing


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_chat_answers_through_the_live_host_when_the_first_is_down(fake_ollama, down_url) -> None:
    alice = await sync_to_async(make_user)("alice")
    provider = await Provider.objects.acreate(
        name="ollama", kind=Provider.Kind.OLLAMA, base_url=down_url, extra_base_urls=fake_ollama.url
    )
    await sync_to_async(provider_sync_models)(provider=provider)
    conversation = await sync_to_async(make_conversation)(alice)
    connected, _, ws = await open_socket(conversation.uuid, user=alice)
    assert connected

    await ws.send({"type": "send", "content": "Anyone there?", "models": ["ollama/llama3.2:1b"]})
    frames = await ws.receive_until(lambda frame: frame["type"] == "message.done")

    assert frames[-1]["status"] == "complete"
    assert text_of(frames, frames[-1]["message"]) == "You said: Anyone there?"
    assert len(fake_ollama.chat_requests) == 1
    await ws.close()
