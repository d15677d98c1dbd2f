"""Pulling and deleting Ollama models, and the admin pages that manage the registry."""

from __future__ import annotations

import io
import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.test import Client

from models_registry.models import LLMModel, Provider
from tests.conftest import ORIGIN, make_user, session_cookie

SECRET = "sk-very-secret-key-0123456789"


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_pull_model_shows_progress_and_syncs_the_new_model(ollama_provider) -> None:
    out = io.StringIO()

    call_command("pull_model", "tinyllama:1.1b", stdout=out)

    text = out.getvalue()
    assert "pulling manifest" in text and "success" in text
    assert "100.0%" in text and "637.7 MB / 637.7 MB" in text
    assert "Pulled tinyllama:1.1b into ollama" in text
    assert LLMModel.objects.get(name="tinyllama:1.1b").available


@pytest.mark.django_db
def test_pull_of_an_unknown_model_says_so(ollama_provider) -> None:
    with pytest.raises(CommandError, match="found no model named 'no-such-model'"):
        call_command("pull_model", "no-such-model", stdout=io.StringIO())

    assert not LLMModel.objects.filter(name="no-such-model").exists()


@pytest.mark.django_db
def test_pull_that_fails_midway_says_why(ollama_provider, fake_ollama) -> None:
    fake_ollama.pull_fail_after = 4

    with pytest.raises(CommandError, match="max retries exceeded"):
        call_command("pull_model", "tinyllama:1.1b", stdout=io.StringIO())


@pytest.mark.django_db
def test_pull_into_an_unknown_provider_lists_the_known_ones(ollama_provider) -> None:
    with pytest.raises(CommandError, match=r"No provider named 'gpu2'\. Ollama providers: ollama"):
        call_command("pull_model", "tinyllama:1.1b", "--provider", "gpu2")


@pytest.mark.django_db
def test_delete_from_ollama_asks_first_then_deletes(admin_client, ollama_provider, fake_ollama) -> None:
    qwen = LLMModel.objects.get(name="qwen2.5:0.5b")
    url = "/admin/models_registry/llmmodel/"
    form = {"action": "delete_from_ollama", "_selected_action": [qwen.pk]}

    confirm = admin_client.post(url, form)

    assert confirm.status_code == 200 and b"Yes, delete them from Ollama" in confirm.content
    assert fake_ollama.deleted == []

    done = admin_client.post(url, {**form, "confirmed": "yes"}, follow=True)

    assert fake_ollama.deleted == ["qwen2.5:0.5b"]
    assert b"Deleted ollama/qwen2.5:0.5b" in done.content
    qwen.refresh_from_db()
    assert not qwen.available


@pytest.mark.django_db
def test_admin_sees_every_model_and_can_disable_one(admin_client, ollama_provider) -> None:
    page = admin_client.get("/admin/models_registry/llmmodel/").content.decode()
    assert "llama3.2:1b" in page and "qwen2.5:0.5b" in page and "Pull a model" in page

    admin_client.post(
        "/admin/models_registry/llmmodel/",
        {"action": "disable", "_selected_action": [LLMModel.objects.get(name="llama3.2:1b").pk]},
    )

    assert not LLMModel.objects.get(name="llama3.2:1b").enabled


@pytest.mark.django_db
def test_provider_api_key_is_never_shown_and_blank_keeps_it(admin_client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    provider = Provider.objects.create(
        name="vllm", kind="openai_compatible", base_url="http://127.0.0.1:9", api_key=SECRET
    )
    change_url = f"/admin/models_registry/provider/{provider.pk}/change/"

    pages = [admin_client.get(change_url), admin_client.get("/admin/models_registry/provider/")]
    admin_client.post(change_url, {"name": "vllm", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9",
                                   "api_key": "", "api_version": "", "deployments": "", "enabled": "on"})  # fmt: skip
    admin_client.post("/admin/models_registry/provider/", {"action": "sync_models", "_selected_action": [provider.pk]})

    for page in pages:
        assert page.status_code == 200 and SECRET not in page.content.decode()
    provider.refresh_from_db()
    assert provider.api_key == SECRET
    assert SECRET not in caplog.text and SECRET not in repr(provider)


@pytest.mark.django_db
def test_admin_pull_page_needs_staff(alice, admin_client, ollama_provider) -> None:
    user_client = Client()
    user_client.force_login(alice)

    assert user_client.get("/admin/models_registry/llmmodel/pull/").status_code == 302
    page = admin_client.get("/admin/models_registry/llmmodel/pull/")
    assert page.status_code == 200 and b"admin_pull.js" in page.content


async def pull_socket(user) -> tuple[bool, int | None, WebsocketCommunicator]:
    from multillm.asgi import application

    cookie = await sync_to_async(session_cookie)(user)
    communicator = WebsocketCommunicator(
        application, "/ws/admin/pull/", headers=[(b"origin", ORIGIN), (b"cookie", f"sessionid={cookie}".encode())]
    )
    connected, code = await communicator.connect(timeout=5)
    return connected, code, communicator


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_admin_pull_socket_streams_progress_until_done(ollama_provider, fake_ollama) -> None:
    root = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    connected, _, ws = await pull_socket(root)
    assert connected

    await ws.send_to(text_data=json.dumps({"type": "pull", "provider": "ollama", "model": "tinyllama:1.1b"}))
    frames = []
    while not frames or frames[-1]["type"] not in ("pull.done", "error"):
        frames.append(json.loads(await ws.receive_from(timeout=10)))

    assert frames[-1] == {"model": "tinyllama:1.1b", "type": "pull.done"}
    layers = [f for f in frames if f.get("total")]
    assert layers and layers[-1]["completed"] == layers[-1]["total"]
    assert await LLMModel.objects.filter(name="tinyllama:1.1b", available=True).aexists()
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_admin_pull_socket_refuses_non_staff(alice) -> None:
    connected, code, _ = await pull_socket(alice)

    assert not connected and code == 4403
