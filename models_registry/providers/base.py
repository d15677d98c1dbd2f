"""The one interface every provider client implements, and its one error type."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, TypedDict


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatOptions:
    temperature: float | None = None
    max_tokens: int | None = None
    context_length: int | None = None


@dataclass(frozen=True)
class ChatChunk:
    """A piece of a streamed answer. The last chunk carries the usage counts, if known."""

    text: str = ""
    done: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    context_length: int | None = None
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    size_bytes: int | None = None
    digest: str = ""
    capabilities: list[str] = field(default_factory=list)


class ProviderError(Exception):
    """Anything that went wrong talking to a provider, said so that a user can act on it.

    `permanent` errors (bad key, unknown model) will fail again if retried; the others
    (connection refused, timeout, 5xx) may pass later.
    """

    def __init__(self, message: str, *, permanent: bool = False, code: str = "provider_error") -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code


class ChatProvider(abc.ABC):
    """A client for one provider. Subclasses translate every failure into ProviderError."""

    def __init__(self, *, base_url: str) -> None:
        self.base_url = base_url

    @abc.abstractmethod
    def stream_chat(self, *, model: str, messages: list[ChatMessage], options: ChatOptions) -> AsyncIterator[ChatChunk]:
        """Yield the answer as it is generated; the last chunk has `done=True`.

        A stream that ends without its final chunk raises ProviderError(code="interrupted").
        """

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The models the provider can serve now."""

    @abc.abstractmethod
    async def embed_batch(self, *, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
