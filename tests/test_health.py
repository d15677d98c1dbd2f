"""Liveness and readiness, without a login: database, channel layer, Qdrant and every provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from models_registry.models import Provider
from tests.fakes.ollama import FakeOllama
from tests.fakes.qdrant import FakeQdrant


@pytest.fixture
def qdrant(settings) -> Iterator[FakeQdrant]:
    server = FakeQdrant().start()
    settings.QDRANT_ENDPOINT = server.url
    yield server
    server.stop()


def refused_url() -> str:
    server = FakeOllama().start()
    url = server.url
    server.stop()
    return url


def test_healthz_answers_without_login() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_checks_database_channel_layer_and_embedded_store() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok", "qdrant": "ok"},
    }


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_redis_is_unreachable(settings) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]}}
    }

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["channel_layer"].startswith("error")


@pytest.mark.django_db(transaction=True)
def test_readyz_asks_the_qdrant_server_with_its_key(qdrant, settings) -> None:
    settings.QDRANT_API_KEY = "qdrant-key"

    response = Client().get("/readyz")

    assert response.status_code == 200 and response.json()["checks"]["qdrant"] == "ok"
    assert qdrant.api_keys == ["qdrant-key"]


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_qdrant_is_not_ready_or_unreachable(qdrant, settings) -> None:
    qdrant.status = 503
    not_ready = Client().get("/readyz")
    settings.QDRANT_ENDPOINT = refused_url()
    unreachable = Client().get("/readyz")

    assert not_ready.status_code == 503 and not_ready.json()["checks"]["qdrant"] == "error: RuntimeError"
    assert unreachable.status_code == 503 and unreachable.json()["checks"]["qdrant"] == "error: ConnectError"


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_each_provider_and_a_down_one_degrades_without_503(fake_ollama) -> None:
    Provider.objects.create(name="ollama", kind=Provider.Kind.OLLAMA, base_url=fake_ollama.url)
    Provider.objects.create(name="gpu2", kind=Provider.Kind.OLLAMA, base_url=refused_url())
    Provider.objects.create(name="off", kind=Provider.Kind.OLLAMA, base_url=refused_url(), enabled=False)

    response = Client().get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["provider:ollama"] == "ok" and body["checks"]["provider:gpu2"] == "error: unreachable"
    assert "provider:off" not in body["checks"]


@pytest.mark.django_db(transaction=True)
def test_readyz_counts_the_hosts_of_a_multi_host_provider(fake_ollama) -> None:
    Provider.objects.create(
        name="ollama", kind=Provider.Kind.OLLAMA, base_url=fake_ollama.url, extra_base_urls=refused_url()
    )

    body = Client().get("/readyz").json()

    assert body["status"] == "ok" and body["checks"]["provider:ollama"] == "ok (1 of 2 hosts)"


@pytest.mark.django_db(transaction=True)
def test_readyz_says_when_azure_refuses_the_key(fake_openai) -> None:
    Provider.objects.create(
        name="azure", kind=Provider.Kind.AZURE_OPENAI, base_url=fake_openai.url, api_key="wrong",
        api_version="2024-10-21", deployments="gpt-4o-mini",
    )  # fmt: skip
    fake_openai.api_key = "right"

    body = Client().get("/readyz").json()

    assert body["status"] == "degraded" and body["checks"]["provider:azure"] == "error: unauthorized"


@pytest.mark.django_db(transaction=True)
def test_probes_skip_the_host_check_and_the_https_redirect(settings) -> None:
    """Docker and Container Apps probe by IP over plain HTTP; the app still refuses that host elsewhere."""
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="10.0.3.7:8000")

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/accounts/login/").status_code == 400
    assert Client(HTTP_HOST="chat.example.com").get("/accounts/login/").status_code == 301
