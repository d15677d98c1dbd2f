"""The one interface every provider client implements, and its one error type."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypedDict


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatOptions:
    temperature: float | None = None
    max_tokens: int | None = None
    context_length: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatChunk:
    """A piece of a streamed answer. The last chunk carries the usage counts, if known."""

    text: str = ""
    done: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def __post_init__(self) -> None:
        # PostgreSQL text cannot hold NUL: a model that writes one must not make the save fail.
        if "\x00" in self.text:
            object.__setattr__(self, "text", self.text.replace("\x00", ""))


@dataclass(frozen=True)
class ModelInfo:
    name: str
    context_length: int | None = None
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    size_bytes: int | None = None
    digest: str = ""
    modified_at: datetime | None = None
    # "chat" and/or "embedding"
    capabilities: list[str] = field(default_factory=lambda: ["chat"])


class ProviderError(Exception):
    """Anything that went wrong talking to a provider, said so that a user can act on it.

    `permanent` errors (bad key, unknown model) will fail again if retried; the others
    (connection refused, timeout, 5xx) may pass later. `code` is one of: unreachable,
    timeout, unauthorized, model_not_found, rate_limited, upstream_error, interrupted,
    malformed. `retry_after` is the provider's own hint in seconds (429), if it gave one.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, code: str = "upstream_error", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after


class ChatProvider(abc.ABC):
    """A client for one provider. Subclasses translate every failure into ProviderError."""

    def __init__(
        self, *, base_url: str, api_key: str = "", api_version: str = "", deployments: tuple[str, ...] = ()
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_version = api_version
        self.deployments = deployments

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @abc.abstractmethod
    def stream_chat(
        self, *, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatChunk, None]:
        """Yield the answer as it is generated; the last chunk has `done=True`.

        A stream that ends without its final chunk raises ProviderError(code="interrupted").
        """

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The models the provider can serve now."""

    @abc.abstractmethod
    async def embed_batch(self, *, model: str, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""

    async def ping(self) -> None:
        """Raise ProviderError unless the provider answers now (readiness checks). Subclasses
        override it with their cheapest request."""
        await self.list_models()
