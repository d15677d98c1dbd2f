"""Provider clients, one per kind. `provider_client` picks the class for a Provider row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models_registry.providers.base import ChatProvider, ProviderError
from models_registry.providers.ollama import OllamaProvider
from models_registry.providers.openai_compat import AzureOpenAIProvider, OpenAICompatibleProvider
from models_registry.providers.pool import HostPool

if TYPE_CHECKING:
    from models_registry.models import Provider

PROVIDER_CLASSES: dict[str, type[ChatProvider]] = {
    "ollama": OllamaProvider,
    "azure_openai": AzureOpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
}


def provider_clients(provider: Provider) -> list[ChatProvider]:
    """One client per host of the provider, `base_url` first."""
    try:
        cls = PROVIDER_CLASSES[provider.kind]
    except KeyError:
        raise ProviderError(
            f"Provider {provider.name} has an unknown kind {provider.kind!r}.", permanent=True
        ) from None
    return [
        cls(base_url=url, api_key=provider.api_key, api_version=provider.api_version,
            deployments=provider.deployment_names)
        for url in provider.base_urls
    ]  # fmt: skip


def provider_client(provider: Provider) -> ChatProvider:
    """The provider's client; for several hosts, a HostPool that spreads requests and skips failed hosts."""
    clients = provider_clients(provider)
    return clients[0] if len(clients) == 1 else HostPool(clients)


__all__ = ["ChatProvider", "HostPool", "ProviderError", "provider_client", "provider_clients"]
