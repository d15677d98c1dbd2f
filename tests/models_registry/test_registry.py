"""The registry: what sync records, who may use which model, and enabling by default."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from models_registry.models import LLMModel, Provider
from models_registry.selectors import model_get_usable, models_usable_by
from models_registry.services import provider_sync_models
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_sync_records_context_length_and_capabilities_from_show(ollama_provider, fake_ollama) -> None:
    llama = LLMModel.objects.get(name="llama3.2:1b")
    qwen = LLMModel.objects.get(name="qwen2.5:0.5b")

    assert llama.context_length == 131072 and qwen.context_length == 32768
    assert llama.capabilities == ["chat"]
    assert llama.modified_at is not None and llama.size_bytes == 1_321_098_329


def test_embedding_models_are_recorded_as_such_and_not_offered_for_chat(ollama_provider, fake_ollama, alice) -> None:
    fake_ollama.models["all-minilm:22m"] = {
        "family": "bert", "parameter_size": "23M", "quantization_level": "F16", "size": 45_960_996,
        "context_length": 256, "capabilities": ["embedding"],
    }  # fmt: skip
    provider_sync_models(provider=ollama_provider)

    minilm = LLMModel.objects.get(name="all-minilm:22m")
    assert minilm.capabilities == ["embedding"]
    assert minilm not in models_usable_by(user=alice)
    assert list(models_usable_by(user=alice, capability="embedding")) == [minilm]


def test_new_models_can_arrive_disabled(fake_ollama, settings) -> None:
    settings.MODELS_ENABLED_BY_DEFAULT = False
    provider = Provider.objects.create(name="ollama", kind="ollama", base_url=fake_ollama.url)

    provider_sync_models(provider=provider)

    assert not LLMModel.objects.filter(enabled=True).exists()


def test_group_restricted_model_is_only_for_its_groups(llama, alice, bob) -> None:
    research = Group.objects.create(name="research")
    llama.groups.add(research)
    bob.groups.add(research)
    boss = make_user("boss", is_superuser=True)

    assert model_get_usable(user=alice, model_id="ollama/llama3.2:1b") is None
    assert model_get_usable(user=bob, model_id="ollama/llama3.2:1b") == llama
    assert model_get_usable(user=boss, model_id="ollama/llama3.2:1b") == llama
    assert "ollama/qwen2.5:0.5b" in [m.model_id for m in models_usable_by(user=alice)]


def test_picker_hides_models_of_other_groups(llama, alice) -> None:
    llama.groups.add(Group.objects.create(name="research"))
    client = Client()
    client.force_login(alice)

    page = client.get("/").content.decode()

    assert "ollama/llama3.2:1b" not in page and 'value="ollama/qwen2.5:0.5b"' in page


def test_disabled_provider_offers_nothing(ollama_provider, alice) -> None:
    Provider.objects.filter(pk=ollama_provider.pk).update(enabled=False)

    assert not models_usable_by(user=alice).exists()


def test_default_chat_model_is_offered_first(ollama_provider, alice) -> None:
    LLMModel.objects.filter(name="qwen2.5:0.5b").update(is_default_chat=True)

    assert models_usable_by(user=alice).first().name == "qwen2.5:0.5b"


def test_periodic_sync_task_is_scheduled_and_syncs(fake_ollama, settings) -> None:
    from models_registry.tasks import models_sync
    from multillm.celery import app

    settings.OLLAMA_BASE_URL = fake_ollama.url
    schedule = app.conf.beat_schedule["sync-models"]
    assert schedule["task"] == models_sync.name and schedule["schedule"] == settings.MODELS_SYNC_INTERVAL

    models_sync()

    assert LLMModel.objects.filter(provider__name="ollama", available=True).count() == 2
