"""Ollama, through the official async client (`/api/chat`, `/api/tags`, `/api/show`, `/api/embed`)."""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
from django.conf import settings

from models_registry.providers.base import ChatChunk, ChatMessage, ChatOptions, ChatProvider, ModelInfo, ProviderError


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one takes ~15 ms, more than a local first token."""
    return httpx.create_ssl_context()


class OllamaProvider(ChatProvider):
    def _client(self) -> ollama.AsyncClient:
        timeout = httpx.Timeout(
            connect=settings.PROVIDER_CONNECT_TIMEOUT,
            read=settings.PROVIDER_READ_TIMEOUT,
            write=settings.PROVIDER_CONNECT_TIMEOUT,
            pool=settings.PROVIDER_CONNECT_TIMEOUT,
        )
        return ollama.AsyncClient(host=self.base_url, timeout=timeout, verify=_tls_context())

    async def stream_chat(
        self, *, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[ChatChunk]:
        request_options: dict[str, Any] = {}
        if options.temperature is not None:
            request_options["temperature"] = options.temperature
        if options.max_tokens is not None:
            request_options["num_predict"] = options.max_tokens
        if options.context_length:
            # Ollama's default window is small and it truncates the prompt silently.
            request_options["num_ctx"] = options.context_length
        client = self._client()
        try:
            async with client:
                stream = await client.chat(model=model, messages=messages, stream=True, options=request_options)
                async for part in stream:
                    if part.done:
                        yield ChatChunk(
                            text=part.message.content or "",
                            done=True,
                            prompt_tokens=part.prompt_eval_count,
                            completion_tokens=part.eval_count,
                        )
                        return
                    yield ChatChunk(text=part.message.content or "")
        except Exception as exc:
            raise self._translate(exc, model=model) from exc
        raise ProviderError(f"Ollama at {self.base_url} ended the answer before it was complete.", code="interrupted")

    async def list_models(self) -> list[ModelInfo]:
        client = self._client()
        try:
            async with client:
                listing = await client.list()
        except Exception as exc:
            raise self._translate(exc, model=None) from exc
        models = []
        for entry in listing.models:
            details = entry.details
            models.append(
                ModelInfo(
                    name=entry.model or "",
                    family=(details.family if details else "") or "",
                    parameter_size=(details.parameter_size if details else "") or "",
                    quantization=(details.quantization_level if details else "") or "",
                    size_bytes=entry.size,
                    digest=entry.digest or "",
                )
            )
        return models

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
            return ProviderError(f"{where} sent nothing for {settings.PROVIDER_READ_TIMEOUT:g} seconds.", code="timeout")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return ProviderError(f"{where} dropped the connection during the answer.", code="interrupted")
        if isinstance(exc, (json.JSONDecodeError, ValueError)):
            return ProviderError(f"{where} sent a malformed answer.", code="malformed")
        if isinstance(exc, httpx.HTTPError):
            return ProviderError(f"Talking to {where} failed: {exc}", code="upstream_error")
        return ProviderError(f"Talking to {where} failed unexpectedly: {type(exc).__name__}", code="upstream_error")
