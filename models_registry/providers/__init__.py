"""Provider clients, one per kind. `provider_client` picks the class for a Provider row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models_registry.providers.base import ChatProvider, ProviderError
from models_registry.providers.ollama import OllamaProvider
from models_registry.providers.openai_compat import AzureOpenAIProvider, OpenAICompatibleProvider

if TYPE_CHECKING:
    from models_registry.models import Provider

PROVIDER_CLASSES: dict[str, type[ChatProvider]] = {
    "ollama": OllamaProvider,
    "azure_openai": AzureOpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
}


def provider_client(provider: Provider) -> ChatProvider:
    try:
        cls = PROVIDER_CLASSES[provider.kind]
    except KeyError:
        raise ProviderError(
            f"Provider {provider.name} has an unknown kind {provider.kind!r}.", permanent=True
        ) from None
    return cls(
        base_url=provider.base_url,
        api_key=provider.api_key,
        api_version=provider.api_version,
        deployments=provider.deployment_names,
    )


__all__ = ["ChatProvider", "ProviderError", "provider_client"]
