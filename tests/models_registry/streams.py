"""Helpers shared by the provider tests."""

from __future__ import annotations

import pytest

from models_registry.providers.base import ChatMessage, ChatOptions, ChatProvider, ProviderError

HELLO: list[ChatMessage] = [{"role": "user", "content": "hello there"}]


async def text_until_failure(provider: ChatProvider, model: str) -> tuple[str, ProviderError]:
    """The text a streamed answer to HELLO gave before it failed, and how it failed."""
    received = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in provider.stream_chat(model=model, messages=HELLO, options=ChatOptions()):
            received.append(chunk.text)
    return "".join(received), caught.value
