"""Ollama, through the official async client (`/api/chat`, `/api/tags`, `/api/show`, `/api/embed`)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import ollama
from django.conf import settings
from ollama._types import ChatRequest

from models_registry.providers.base import ChatChunk, ChatMessage, ChatOptions, ChatProvider, ModelInfo, ProviderError
from models_registry.providers.wire import NDJSONDecoder, WireError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullProgress:
    """One line of `/api/pull`: a status, and for layer downloads the bytes done of total."""

    status: str
    digest: str = ""
    total: int | None = None
    completed: int | None = None


MIN_CONTEXT = 2048
# A cautious characters-per-token figure: real tokenizers give 3.5 to 4 for English.
CHARS_PER_TOKEN = 3
DEFAULT_ANSWER_TOKENS = 1024


def context_window(messages: list[ChatMessage], options: ChatOptions) -> int:
    """The `num_ctx` for a request: room for the prompt and the answer, rounded up to a
    power of two (so Ollama can reuse a loaded model), at least MIN_CONTEXT, at most the
    model's own context length."""
    prompt_tokens = sum(len(message["content"]) for message in messages) // CHARS_PER_TOKEN + 4 * len(messages)
    needed = max(MIN_CONTEXT, prompt_tokens + (options.max_tokens or DEFAULT_ANSWER_TOKENS))
    window = 1 << (needed - 1).bit_length()
    return min(window, options.context_length) if options.context_length else window


# Streaming clients by event loop (an HTTP connection belongs to one), then by server and timeouts.
_STREAMING_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], ollama.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
# One connection per answer running at once; this many kept open between answers.
STREAMING_CONNECTIONS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one takes ~15 ms, more than a local first token."""
    return httpx.create_ssl_context()


class OllamaProvider(ChatProvider):
    def _client(self, **options: Any) -> ollama.AsyncClient:
        timeout = httpx.Timeout(
            connect=settings.PROVIDER_CONNECT_TIMEOUT,
            read=settings.PROVIDER_READ_TIMEOUT,
            write=settings.PROVIDER_CONNECT_TIMEOUT,
            pool=settings.PROVIDER_CONNECT_TIMEOUT,
        )
        return ollama.AsyncClient(host=self.base_url, timeout=timeout, verify=_tls_context(), **options)

    def _shared_client(self) -> ollama.AsyncClient:
        """The client for answers on the running event loop, kept: its connections are reused, so an
        answer needs no new TCP (and TLS) connection, and a burst of answers no burst of them."""
        clients = _STREAMING_CLIENTS.setdefault(asyncio.get_running_loop(), {})
        key = (self.base_url, settings.PROVIDER_CONNECT_TIMEOUT, settings.PROVIDER_READ_TIMEOUT)
        if key not in clients:
            clients[key] = self._client(limits=STREAMING_CONNECTIONS)
        return clients[key]

    async def stream_chat(
        self, *, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatChunk, None]:
        request_options: dict[str, Any] = {}
        if options.temperature is not None:
            request_options["temperature"] = options.temperature
        if options.max_tokens is not None:
            request_options["num_predict"] = options.max_tokens
        if options.stop:
            request_options["stop"] = list(options.stop)
        if options.context_length:
            # Ollama's default window is small and it drops the start of a longer prompt
            # silently; the model's whole window would reserve memory that most chats never use.
            request_options["num_ctx"] = context_window(messages, options)
        # The request body is the official client's own (`ChatRequest`), sent on its HTTP client;
        # the NDJSON answer is decoded here, every line of a network read at once: the client's
        # typed object per line cost more than the upstream took to write it (see wire.py).
        body = ChatRequest(
            model=model,
            messages=list(messages),
            stream=True,
            options=request_options or None,
        ).model_dump(exclude_none=True)
        decoder = NDJSONDecoder()
        try:
            # Leaving the block (the answer is done, failed or cancelled) ends the request.
            async with self._shared_client()._client.stream("POST", "/api/chat", json=body) as response:
                if response.is_error:
                    await response.aread()
                    raise ollama.ResponseError(response.text, response.status_code)
                async for data in response.aiter_bytes():
                    if chunk := self._chunk_of(decoder.feed(data)):
                        yield chunk
                        if chunk.done:
                            return
                if chunk := self._chunk_of(decoder.close()):
                    yield chunk
                    if chunk.done:
                        return
        except Exception as exc:
            raise self._translate(exc, model=model) from exc
        raise ProviderError(f"Ollama at {self.base_url} ended the answer before it was complete.", code="interrupted")

    @staticmethod
    def _chunk_of(parts: list[Any]) -> ChatChunk | None:
        """The text of these lines as one chunk, up to and with the `done` line (then `done` with
        its counts); None when they hold no text and no end."""
        pieces: list[str] = []
        for part in parts:
            if not isinstance(part, dict):
                raise WireError("a line that is not a JSON object")
            if error := part.get("error"):
                raise ollama.ResponseError(str(error))  # status -1: an error inside a stream that had started
            if content := (part.get("message") or {}).get("content"):
                pieces.append(content)
            if part.get("done"):
                return ChatChunk(text="".join(pieces), done=True, prompt_tokens=part.get("prompt_eval_count"),
                                 completion_tokens=part.get("eval_count"))  # fmt: skip
        return ChatChunk(text="".join(pieces)) if pieces else None

    async def list_models(self) -> list[ModelInfo]:
        """`/api/tags`, then `/api/show` for each model's context length and capabilities."""
        client = self._client()
        try:
            async with client:
                listing = await client.list()
                shows = [await self._show(client, entry.model or "") for entry in listing.models]
        except Exception as exc:
            raise self._translate(exc, model=None) from exc
        models = []
        for entry, (context_length, capabilities) in zip(listing.models, shows, strict=True):
            details = entry.details
            models.append(
                ModelInfo(
                    name=entry.model or "",
                    family=(details.family if details else "") or "",
                    parameter_size=(details.parameter_size if details else "") or "",
                    quantization=(details.quantization_level if details else "") or "",
                    size_bytes=entry.size,
                    digest=entry.digest or "",
                    modified_at=entry.modified_at,
                    context_length=context_length,
                    capabilities=capabilities,
                )
            )
        return models

    async def ping(self) -> None:
        """`/api/tags` alone: one cheap request, unlike a full listing that describes every model."""
        client = self._client()
        try:
            async with client:
                await client.list()
        except Exception as exc:
            raise self._translate(exc, model=None) from exc

    async def _show(self, client: ollama.AsyncClient, name: str) -> tuple[int | None, list[str]]:
        """Context length and capabilities of one model; unknown when `/api/show` fails for it."""
        try:
            shown = await client.show(name)
        except ollama.ResponseError as exc:
            logger.warning("Ollama could not describe %s: %s", name, exc.error)
            return None, ["chat"]
        context_length = next(
            (int(v) for k, v in (shown.modelinfo or {}).items() if k.endswith(".context_length") and v), None
        )
        found = set(shown.capabilities or ["completion"])
        capabilities = [name for name, key in (("chat", "completion"), ("embedding", "embedding")) if key in found]
        return context_length, capabilities or ["chat"]

    async def pull(self, *, name: str) -> AsyncIterator[PullProgress]:
        """Pull a model into Ollama, yielding its streamed progress (`/api/pull`)."""
        client = self._client()
        try:
            async with client:
                async for part in await client.pull(name, stream=True):
                    yield PullProgress(
                        status=part.status or "", digest=part.digest or "", total=part.total, completed=part.completed
                    )
        except ollama.ResponseError as exc:
            if exc.status_code in (-1, 404, 500) and ("not found" in exc.error or "manifest" in exc.error):
                raise ProviderError(
                    f"Ollama at {self.base_url} found no model named {name!r} in its library: {exc.error}",
                    permanent=True,
                    code="model_not_found",
                ) from exc
            raise self._translate(exc, model=name) from exc
        except Exception as exc:
            raise self._translate(exc, model=name) from exc

    async def delete(self, *, name: str) -> None:
        """Remove a model from Ollama's disk (`/api/delete`)."""
        client = self._client()
        try:
            async with client:
                await client.delete(name)
        except Exception as exc:
            raise self._translate(exc, model=name) from exc

    async def embed_batch(self, *, model: str, texts: list[str]) -> list[list[float]]:
        client = self._client()
        try:
            async with client:
                response = await client.embed(model=model, input=texts)
        except Exception as exc:
            raise self._translate(exc, model=model) from exc
        return [list(vector) for vector in response.embeddings]

    def _translate(self, exc: Exception, *, model: str | None) -> ProviderError:
        where = f"Ollama at {self.base_url}"
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code
            if status == 404:
                return ProviderError(
                    f"{where} has no model named {model!r}. Pull it (ollama pull {model}) or pick another model.",
                    permanent=True,
                    code="model_not_found",
                )
            if status in (401, 403):
                return ProviderError(
                    f"{where} refused the request ({status}): check its API key.", permanent=True, code="unauthorized"
                )
            if status == -1:
                # An error line inside a stream that had started.
                return ProviderError(f"{where} reported an error: {exc.error}", code="interrupted")
            return ProviderError(f"{where} answered with HTTP {status}: {exc.error}", code="upstream_error")
        if isinstance(exc, (httpx.ConnectError, ConnectionError)):
            return ProviderError(f"Cannot connect to {where}. Is Ollama running?", code="unreachable")
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return ProviderError(f"Connecting to {where} timed out.", code="timeout")
        if isinstance(exc, httpx.ReadTimeout):
            seconds = settings.PROVIDER_READ_TIMEOUT
            return ProviderError(f"{where} sent nothing for {seconds:g} seconds.", code="timeout")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return ProviderError(f"{where} dropped the connection during the answer.", code="interrupted")
        if isinstance(exc, (json.JSONDecodeError, ValueError)):
            return ProviderError(f"{where} sent a malformed answer.", code="malformed")
        if isinstance(exc, httpx.HTTPError):
            return ProviderError(f"Talking to {where} failed: {exc}", code="upstream_error")
        return ProviderError(f"Talking to {where} failed unexpectedly: {type(exc).__name__}", code="upstream_error")
