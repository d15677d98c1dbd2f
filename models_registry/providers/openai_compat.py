"""OpenAI-compatible servers and Azure OpenAI, through the official async `openai` client.

The client's own retries are off (`max_retries=0`): we retry here, and only before the
first token, because a retry after text has reached the user would repeat it.
"""

from __future__ import annotations

import abc
import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import httpx2
import openai
from django.conf import settings

from models_registry.providers.base import ChatChunk, ChatMessage, ChatOptions, ChatProvider, ModelInfo, ProviderError
from models_registry.providers.ollama import _tls_context
from models_registry.providers.wire import SSEDecoder, SSEEvent, WireError, sse_json

# Waits before the 2nd and 3rd attempts are RETRY_BASE_DELAY and twice that.
RETRY_BASE_DELAY = 0.5
RETRIES = 2
# A server's Retry-After is honoured up to this many seconds; a longer wait is the caller's call.
RETRY_AFTER_CAP = 10.0

T = TypeVar("T")

# Streaming clients by event loop (an HTTP connection belongs to one), then by provider settings.
_STREAMING_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], openai.AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def _capabilities(name: str) -> list[str]:
    return ["embedding"] if "embed" in name.lower() else ["chat"]


def _context_length(entry: Any) -> int | None:
    """llama.cpp's server reports its window as `meta.n_ctx`; OpenAI itself says nothing."""
    meta = (entry.model_extra or {}).get("meta") or {}
    value = meta.get("n_ctx") if isinstance(meta, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else None


def _retry_after(response: httpx2.Response) -> float | None:
    """The Retry-After header in seconds; the HTTP-date form is rare from these APIs and ignored."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _retry_delay(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when another attempt would not help.

    A read timeout is not retried: it has already cost PROVIDER_READ_TIMEOUT, and a model
    that is too slow once is slow again.
    """
    if attempt >= RETRIES:
        return None
    backoff = RETRY_BASE_DELAY * 2**attempt
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429 or exc.status_code >= 500:
            hint = _retry_after(exc.response)
            return min(hint, RETRY_AFTER_CAP) if hint is not None else backoff
        return None
    if isinstance(exc, openai.APITimeoutError):
        return backoff if isinstance(exc.__cause__, httpx2.ConnectTimeout | httpx2.PoolTimeout) else None
    if isinstance(exc, openai.APIConnectionError):
        return backoff
    return None


@dataclass
class _StreamState:
    done: bool = False  # [DONE] was read
    finished: bool = False  # a choice had its finish_reason
    usage: dict[str, Any] | None = None


def _error_message(part: dict[str, Any]) -> str:
    """The message of an error event, as the client reads it."""
    error = part.get("error")
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    return message if isinstance(message, str) and message else "An error occurred during streaming"


class _OpenAIProtocolProvider(ChatProvider):
    """What both clients share: the OpenAI wire protocol, its errors and our retry policy."""

    label = "OpenAI-compatible server"
    model_noun = "model"

    @abc.abstractmethod
    def _client(self) -> openai.AsyncOpenAI:
        """A client for one call, closed after it: cheap, since the TLS context is shared."""

    def _timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(
            connect=settings.PROVIDER_CONNECT_TIMEOUT,
            read=settings.PROVIDER_READ_TIMEOUT,
            write=settings.PROVIDER_CONNECT_TIMEOUT,
            pool=settings.PROVIDER_CONNECT_TIMEOUT,
        )

    def _http_client(self, timeout: httpx2.Timeout) -> httpx2.AsyncClient:
        return openai.DefaultAsyncHttpxClient(verify=_tls_context(), timeout=timeout)

    @property
    def _where(self) -> str:
        return f"{self.label} at {self.base_url}"

    async def stream_chat(
        self, *, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatChunk, None]:
        params: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if options.temperature is not None:
            params["temperature"] = options.temperature
        if options.max_tokens is not None:
            params["max_tokens"] = options.max_tokens
        if options.stop:
            params["stop"] = list(options.stop)
        attempt = 0
        while True:
            started = False
            try:
                async with aclosing(self._stream_once(params)) as chunks:
                    async for chunk in chunks:
                        started = True
                        yield chunk
                return
            except Exception as exc:
                delay = None if started else _retry_delay(exc, attempt)
                if delay is None:
                    self._raise(exc, model=model)
            await asyncio.sleep(delay)
            attempt += 1

    def _shared_client(self) -> openai.AsyncOpenAI:
        """This provider's client for the running event loop, kept for later answers: building one
        takes 0.5 to 10 ms, and its kept-alive connection saves a TCP (and TLS) handshake each time."""
        clients = _STREAMING_CLIENTS.setdefault(asyncio.get_running_loop(), {})
        timeouts = (settings.PROVIDER_CONNECT_TIMEOUT, settings.PROVIDER_READ_TIMEOUT)
        key = (type(self), self.base_url, self.api_key, self.api_version, timeouts)
        client = clients.get(key)
        if client is None:
            client = clients[key] = self._client()
        return client

    async def _stream_once(self, params: dict[str, Any]) -> AsyncGenerator[ChatChunk, None]:
        """One request: a chunk of text per network read, then the `done` chunk with the usage.

        The client builds and sends the request and turns an HTTP error status into its
        exceptions; the body is decoded here (`wire.SSEDecoder`), all the events of a read at
        once: the client's own event iterator cost about 20 µs a token, more than the upstream
        took to write it, and capped the relay well below the upstream's rate.
        """
        state = _StreamState()
        decoder = SSEDecoder()
        async with self._shared_client().chat.completions.with_streaming_response.create(**params) as response:
            try:
                async for data in response.iter_bytes():
                    if not state.done:  # after [DONE], read on to the end: the connection serves the next answer
                        if text := self._text_of(decoder.feed(data), state):
                            yield ChatChunk(text=text)
                if not state.done and (text := self._text_of(decoder.close(), state)):
                    yield ChatChunk(text=text)
            except (httpx2.TimeoutException, httpx2.TransportError) as exc:
                # What the client's own iterator raises, so that one translation serves both.
                request = response.http_response.request
                if isinstance(exc, httpx2.TimeoutException):
                    raise openai.APITimeoutError(request=request) from exc
                raise openai.APIConnectionError(request=request) from exc
        if not state.finished and state.usage is None:
            raise ProviderError(f"{self._where} ended the answer before it was complete.", code="interrupted")
        usage = state.usage or {}
        yield ChatChunk(
            done=True, prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens")
        )

    def _text_of(self, events: list[SSEEvent], state: _StreamState) -> str:
        """The answer's text in these events; notes the end, the finish reason and the usage."""
        pieces: list[str] = []
        for event in events:
            if event.data.startswith("[DONE]"):
                state.done = True
                break
            part = sse_json(event)
            if not isinstance(part, dict) or not isinstance(part.get("choices") or [], list):
                raise WireError("an event that is not a chat completion chunk")
            if event.event == "error" or part.get("error"):
                message = self._redact(_error_message(part))
                raise ProviderError(f"{self._where} reported an error: {message}", code="interrupted")
            # The usage chunk has no choices; some servers also put usage on every chunk.
            state.usage = part.get("usage") or state.usage
            for choice in part.get("choices") or ():
                if content := (choice.get("delta") or {}).get("content"):
                    pieces.append(content)
                state.finished = state.finished or bool(choice.get("finish_reason"))
        return "".join(pieces)

    async def embed_batch(self, *, model: str, texts: list[str]) -> list[list[float]]:
        # "float": the client asks for base64 by default, which many compatible servers do not speak.
        response = await self._call(
            lambda client: client.embeddings.create(model=model, input=texts, encoding_format="float"), model=model
        )
        return [list(item.embedding) for item in sorted(response.data, key=lambda item: item.index)]

    async def _call(self, request: Callable[[openai.AsyncOpenAI], Awaitable[T]], *, model: str | None) -> T:
        """One request with the retry policy: nothing has reached the user, so every attempt is safe."""
        attempt = 0
        while True:
            try:
                async with self._client() as client:
                    return await request(client)
            except Exception as exc:
                delay = _retry_delay(exc, attempt)
                if delay is None:
                    self._raise(exc, model=model)
            await asyncio.sleep(delay)
            attempt += 1

    def _raise(self, exc: Exception, *, model: str | None) -> NoReturn:
        error = self._translate(exc, model=model)
        if error is exc:
            raise error
        if isinstance(exc, openai.APIStatusError):
            # Its text is the server's, and servers quote the key back ("Incorrect API key provided: ...").
            raise error from None
        raise error from exc

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    def _translate(self, exc: Exception, *, model: str | None) -> ProviderError:
        where = self._where
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            return self._translate_status(exc, model=model)
        if isinstance(exc, openai.APITimeoutError):
            if isinstance(exc.__cause__, httpx2.ConnectTimeout | httpx2.PoolTimeout):
                return ProviderError(f"Connecting to {where} timed out.", code="timeout")
            return ProviderError(
                f"{where} sent nothing for {settings.PROVIDER_READ_TIMEOUT:g} seconds.", code="timeout"
            )
        if isinstance(exc, openai.APIConnectionError):
            if isinstance(exc.__cause__, httpx2.ConnectError):
                return ProviderError(
                    f"Cannot connect to {where}. Is it running, and is the URL right?", code="unreachable"
                )
            return ProviderError(f"{where} dropped the connection during the answer.", code="interrupted")
        if isinstance(exc, openai.APIResponseValidationError | ValueError):  # bad JSON in an event, too
            return ProviderError(f"{where} sent a malformed answer.", code="malformed")
        if isinstance(exc, openai.APIError):
            # An error event inside a stream that had started.
            return ProviderError(f"{where} reported an error: {self._redact(exc.message)}", code="interrupted")
        return ProviderError(f"Talking to {where} failed unexpectedly: {type(exc).__name__}", code="upstream_error")

    def _translate_status(self, exc: openai.APIStatusError, *, model: str | None) -> ProviderError:
        where, status = self._where, exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = self._redact(str(body.get("message") or exc.response.reason_phrase or "no details"))
        if status in (401, 403):
            return ProviderError(
                f"{where} refused the request (HTTP {status}): check the API key configured for it.",
                permanent=True,
                code="unauthorized",
            )
        if status == 404 and model is not None:
            return ProviderError(
                f"{where} has no {self.model_noun} named {model!r} (HTTP 404). Pick one it has, or check the URL.",
                permanent=True,
                code="model_not_found",
            )
        if status == 429:
            retry_after = _retry_after(exc.response)
            wait = f", retry after {retry_after:g} seconds" if retry_after is not None else ""
            return ProviderError(
                f"{where} is rate limiting requests (HTTP 429{wait}): {detail}",
                code="rate_limited",
                retry_after=retry_after,
            )
        return ProviderError(f"{where} answered with HTTP {status}: {detail}", permanent=status < 500)


class OpenAICompatibleProvider(_OpenAIProtocolProvider):
    """OpenAI itself, or any server speaking its API under `/v1` (vLLM, llama.cpp, LM Studio, LiteLLM...)."""

    def _client(self) -> openai.AsyncOpenAI:
        base = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        timeout = self._timeout()
        return openai.AsyncOpenAI(
            base_url=base,
            # Local servers take no key, but the client refuses to start without one.
            api_key=self.api_key or "not-needed",
            max_retries=0,
            timeout=timeout,
            http_client=self._http_client(timeout),
        )

    async def list_models(self) -> list[ModelInfo]:
        page = await self._call(lambda client: client.models.list(), model=None)
        return [
            ModelInfo(name=entry.id, capabilities=_capabilities(entry.id), context_length=_context_length(entry))
            for entry in page.data
        ]


class AzureOpenAIProvider(_OpenAIProtocolProvider):
    """Azure OpenAI: `base_url` is the resource endpoint and a model is one of `deployments`."""

    label = "Azure OpenAI"
    model_noun = "deployment"

    def _client(self) -> openai.AsyncAzureOpenAI:
        if not self.api_key:
            raise ProviderError(
                f"{self._where} needs an API key; none is configured.", permanent=True, code="unauthorized"
            )
        if not self.api_version:
            raise ProviderError(
                f"{self._where} needs an API version (such as 2024-10-21); none is configured.", permanent=True
            )
        timeout = self._timeout()
        return openai.AsyncAzureOpenAI(
            azure_endpoint=self.base_url,
            api_key=self.api_key,
            api_version=self.api_version,
            max_retries=0,
            timeout=timeout,
            http_client=self._http_client(timeout),
        )

    async def list_models(self) -> list[ModelInfo]:
        # Listing deployments takes the Azure management API, not the data-plane key.
        return [ModelInfo(name=name, capabilities=_capabilities(name)) for name in self.deployments]

    async def ping(self) -> None:
        """The data plane's model list: proves the endpoint answers and takes the key (401 otherwise).
        A 404 still means the resource answered (some API versions do not serve the list)."""
        try:
            async with self._client() as client:
                await client.models.list()
        except openai.NotFoundError:
            return
        except Exception as exc:
            self._raise(exc, model=None)
