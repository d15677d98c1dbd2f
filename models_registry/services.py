"""Writes to the model registry: providers from the environment, syncing their models,
and pulling or deleting Ollama models."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from models_registry.models import LLMModel, Provider
from models_registry.providers import ProviderError, provider_client, provider_clients
from models_registry.providers.base import ModelInfo
from models_registry.providers.ollama import OllamaProvider, PullProgress

logger = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"


@dataclass(frozen=True)
class SyncResult:
    provider: str
    added: int = 0
    updated: int = 0
    unavailable: int = 0
    error: str = ""


def providers_configure_from_env(*, local_model_url: str | None = None) -> list[Provider]:
    """Create or update the providers that the environment names.

    `OLLAMA_BASE_URL` gives `ollama` (comma-separated URLs: several hosts); `AZURE_OPENAI_ENDPOINT`
    with `MODEL_DEPLOYMENT_NAME` gives `azure`; `local_model_url` (set by the process that runs the built-in model)
    gives `local`. A `local` provider left from an earlier run is disabled when the
    local model does not run now.
    """
    providers = []
    ollama_urls = [url for url in settings.OLLAMA_BASE_URL.split(",") if url]
    if ollama_urls:
        first, *others = ollama_urls
        providers.append(
            _provider_from_env("ollama", kind=Provider.Kind.OLLAMA, base_url=first, extra_base_urls="\n".join(others))
        )
    if settings.AZURE_OPENAI_ENDPOINT and settings.MODEL_DEPLOYMENT_NAME:
        providers.append(
            _provider_from_env(
                "azure",
                kind=Provider.Kind.AZURE_OPENAI,
                base_url=settings.AZURE_OPENAI_ENDPOINT,
                api_key=settings.OPENAI_API_KEY,
                api_version=settings.AZURE_OPENAI_API_VERSION,
                deployments=",".join(n.strip() for n in settings.MODEL_DEPLOYMENT_NAME.split(",") if n.strip()),
            )
        )
    if local_model_url:
        providers.append(
            _provider_from_env(LOCAL_PROVIDER, kind=Provider.Kind.OPENAI_COMPATIBLE, base_url=local_model_url)
        )
    else:
        Provider.objects.filter(name=LOCAL_PROVIDER, managed_by_env=True).update(enabled=False)
    return providers


def _provider_from_env(name: str, **fields: str) -> Provider:
    provider, _ = Provider.objects.update_or_create(
        name=name, defaults={**fields, "enabled": True, "managed_by_env": True}
    )
    return provider


def provider_sync_models(*, provider: Provider) -> SyncResult:
    """Mirror the provider's model list: add new models, refresh known ones, mark missing ones unavailable.

    A provider that cannot be reached changes nothing: its models keep their state
    until a sync succeeds, so a short outage does not hide them.
    """
    try:
        infos = async_to_sync(provider_client(provider).list_models)()
    except ProviderError as exc:
        logger.warning("sync of provider %s failed: %s", provider.name, exc.message)
        Provider.objects.filter(pk=provider.pk).update(last_sync_at=timezone.now(), last_sync_error=exc.message)
        return SyncResult(provider=provider.name, error=exc.message)

    now = timezone.now()
    added = updated = 0
    with transaction.atomic():
        for info in infos:
            model, created = LLMModel.objects.update_or_create(
                provider=provider, name=info.name, defaults={**_model_fields(info), "last_seen_at": now}
            )
            if created:
                added += 1
                if not settings.MODELS_ENABLED_BY_DEFAULT:
                    LLMModel.objects.filter(pk=model.pk).update(enabled=False)
            else:
                updated += 1
        unavailable = (
            LLMModel.objects.filter(provider=provider, available=True)
            .exclude(name__in=[info.name for info in infos])
            .update(available=False)
        )
        Provider.objects.filter(pk=provider.pk).update(last_sync_at=now, last_sync_error="")
    logger.info(
        "synced provider %s: %d added, %d updated, %d now unavailable", provider.name, added, updated, unavailable
    )
    return SyncResult(provider=provider.name, added=added, updated=updated, unavailable=unavailable)


def _model_fields(info: ModelInfo) -> dict[str, object]:
    return {
        "family": info.family,
        "parameter_size": info.parameter_size,
        "quantization": info.quantization,
        "size_bytes": info.size_bytes,
        "digest": info.digest,
        "modified_at": info.modified_at,
        "context_length": info.context_length,
        "supports_chat": "chat" in info.capabilities,
        "supports_embedding": "embedding" in info.capabilities,
        "available": True,
    }


def models_sync_all(*, local_model_url: str | None = None) -> list[SyncResult]:
    providers_configure_from_env(local_model_url=local_model_url)
    return [provider_sync_models(provider=provider) for provider in Provider.objects.filter(enabled=True)]


def _ollama_hosts(provider: Provider) -> list[OllamaProvider]:
    clients = provider_clients(provider)
    if not all(isinstance(client, OllamaProvider) for client in clients):
        raise ProviderError(f"Provider {provider.name} is not an Ollama server: only Ollama pulls and deletes models.")
    return clients  # type: ignore[return-value]


def model_pull(*, provider: Provider, name: str) -> AsyncIterator[PullProgress]:
    """Pull `name` into every Ollama host of the provider, one after the other, yielding their
    progress. Sync the provider afterwards."""
    hosts = _ollama_hosts(provider)
    if len(hosts) == 1:
        return hosts[0].pull(name=name)
    return _pull_into_each(hosts, name)


async def _pull_into_each(hosts: list[OllamaProvider], name: str) -> AsyncIterator[PullProgress]:
    for host in hosts:
        yield PullProgress(status=f"pulling into {host.base_url}")
        async for progress in host.pull(name=name):
            yield progress


def model_delete_from_provider(*, model: LLMModel) -> None:
    """Delete the model from every Ollama host of its provider; the row stays (old messages keep it), unavailable."""
    for host in _ollama_hosts(model.provider):
        async_to_sync(host.delete)(name=model.name)
    LLMModel.objects.filter(pk=model.pk).update(available=False, is_default_chat=False)
    logger.info("deleted model %s from its provider", model.model_id)
