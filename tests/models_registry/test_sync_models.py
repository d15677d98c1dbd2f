"""`manage.py sync_models`: the registry mirrors what Ollama has."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from models_registry.models import LLMModel, Provider

pytestmark = pytest.mark.django_db


def sync(**options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_models", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_sync_creates_the_provider_from_the_environment_and_adds_models(fake_ollama, settings) -> None:
    settings.OLLAMA_BASE_URL = fake_ollama.url

    out, _ = sync()

    provider = Provider.objects.get(name="ollama")
    assert provider.base_url == fake_ollama.url and provider.kind == "ollama"
    assert "2 added" in out
    llama = LLMModel.objects.get(name="llama3.2:1b")
    assert llama.model_id == "ollama/llama3.2:1b"
    assert (llama.family, llama.parameter_size, llama.quantization) == ("llama", "1.2B", "Q8_0")
    assert llama.available and llama.enabled and llama.last_seen_at is not None


def test_a_model_that_disappears_is_marked_unavailable_not_deleted(fake_ollama, settings) -> None:
    settings.OLLAMA_BASE_URL = fake_ollama.url
    sync()
    del fake_ollama.models["qwen2.5:0.5b"]
    fake_ollama.models["mistral:7b"] = dict(fake_ollama.models["llama3.2:1b"], family="mistral")

    out, _ = sync()

    assert "1 added, 1 updated, 1 marked unavailable" in out
    assert LLMModel.objects.get(name="qwen2.5:0.5b").available is False
    assert LLMModel.objects.get(name="mistral:7b").available is True


def test_admin_choices_survive_a_sync(fake_ollama, settings) -> None:
    settings.OLLAMA_BASE_URL = fake_ollama.url
    sync()
    LLMModel.objects.filter(name="llama3.2:1b").update(enabled=False, display_name="Llama (small)")

    sync()

    llama = LLMModel.objects.get(name="llama3.2:1b")
    assert llama.enabled is False and llama.display_name == "Llama (small)"


def test_unreachable_ollama_changes_nothing_and_says_why(fake_ollama, settings) -> None:
    settings.OLLAMA_BASE_URL = fake_ollama.url
    sync()
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:9"

    _, err = sync()

    assert "Cannot connect to Ollama at http://127.0.0.1:9" in err
    assert LLMModel.objects.filter(available=True).count() == 2


def test_strict_sync_fails_when_ollama_is_unreachable(settings) -> None:
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:9"

    with pytest.raises(SystemExit):
        sync(strict=True)
