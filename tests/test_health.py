"""Liveness and readiness, without a login."""

from __future__ import annotations

import pytest
from django.test import Client


def test_healthz_answers_without_login() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_checks_database_and_channel_layer() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok", "vector_store": "ok"},
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
def test_readyz_is_503_when_the_vector_store_server_is_unreachable(settings) -> None:
    from ingestion.vectorstore import vector_store

    vector_store().close()  # the embedded store reopens from disk after the test
    vector_store.cache_clear()
    settings.QDRANT_ENDPOINT = "http://127.0.0.1:9"
    try:
        response = Client().get("/readyz")
    finally:
        vector_store.cache_clear()

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["vector_store"].startswith("error") and checks["database"] == checks["channel_layer"] == "ok"
