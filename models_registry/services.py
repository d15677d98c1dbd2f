"""Writes to the model registry: providers from the environment, and syncing their models."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from models_registry.models import LLMModel, Provider
from models_registry.providers import ProviderError, provider_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    provider: str
    added: int = 0
    updated: int = 0
    unavailable: int = 0
    error: str = ""


def providers_configure_from_env() -> list[Provider]:
    """Create or update the providers that the environment names (OLLAMA_BASE_URL)."""
    providers = []
    if settings.OLLAMA_BASE_URL:
        provider, _ = Provider.objects.update_or_create(
            name="ollama", defaults={"kind": Provider.Kind.OLLAMA, "base_url": settings.OLLAMA_BASE_URL}
        )
        providers.append(provider)
    return providers


def provider_sync_models(*, provider: Provider) -> SyncResult:
    """Mirror the provider's model list: add new models, refresh known ones, mark missing ones unavailable.

    A provider that cannot be reached changes nothing: its models keep their state
    until a sync succeeds, so a short outage does not hide them.
    """
    try:
        infos = async_to_sync(provider_client(provider).list_models)()
    except ProviderError as exc:
        logger.warning("sync of provider %s failed: %s", provider.name, exc.message)
        return SyncResult(provider=provider.name, error=exc.message)

    now = timezone.now()
    added = updated = 0
    with transaction.atomic():
        seen = set()
        for info in infos:
            seen.add(info.name)
            _, created = LLMModel.objects.update_or_create(
                provider=provider,
                name=info.name,
                defaults={
                    "family": info.family,
                    "parameter_size": info.parameter_size,
                    "quantization": info.quantization,
                    "size_bytes": info.size_bytes,
                    "digest": info.digest,
                    "available": True,
                    "last_seen_at": now,
                },
            )
            if created:
                added += 1
            else:
                updated += 1
        unavailable = (
            LLMModel.objects.filter(provider=provider, available=True).exclude(name__in=seen).update(available=False)
        )
    logger.info(
        "synced provider %s: %d added, %d updated, %d now unavailable", provider.name, added, updated, unavailable
    )
    return SyncResult(provider=provider.name, added=added, updated=updated, unavailable=unavailable)


def models_sync_all() -> list[SyncResult]:
    providers_configure_from_env()
    return [provider_sync_models(provider=provider) for provider in Provider.objects.all()]
