"""The OpenAI-compatible HTTP API: `/api/v1/models`, `/api/v1/chat/completions`,
`/api/v1/embeddings`, with a bearer API key that acts as its user.

The views are async: under Daphne a streamed answer is relayed chunk by chunk as the
provider sends it, and a client that hangs up cancels the upstream request (Django
cancels the response's iterator on `http.disconnect`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from chat import services
from chat.api_keys import api_key_authenticate
from chat.models import ApiKey
from chat.openapi import openapi_document
from chat.quotas import QuotaExceeded, QuotaHold, QuotaTicket, quota_hold
from ingestion.models import Source
from ingestion.selectors import (
    Grounding,
    SourceNotReady,
    grounding_for,
    sources_get_ready_for_user,
    sources_of_user,
)
from models_registry.models import LLMModel
from models_registry.providers import ProviderError, provider_client
from models_registry.providers.base import ChatChunk, ChatMessage, ChatOptions
from models_registry.selectors import MODEL_ID_MAX_LENGTH, model_get_usable, models_usable_by
from multillm.observability import generation_recorded
from multillm.user_text import UserTextError, text_clean

logger = logging.getLogger(__name__)

ROLES = {"system", "user", "assistant"}
MAX_SOURCES = 20
STOP_MAX_CHARS = 500
# Provider error code -> HTTP status of our answer.
UPSTREAM_STATUS = {
    "unreachable": 502, "timeout": 504, "unauthorized": 502, "model_not_found": 404, "rate_limited": 429,
    "upstream_error": 502, "interrupted": 502, "malformed": 502,
}  # fmt: skip
# Saves that outlive a cancelled response; referenced so they are not collected.
_BACKGROUND: set[asyncio.Task[Any]] = set()


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, code: str, type: str = "invalid_request_error", param: str | None = None,
        retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.code, self.type, self.param = status, message, code, type, param
        self.retry_after = retry_after

    def response(self) -> JsonResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        response = JsonResponse(body, status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(max(1, round(self.retry_after)))
        return response


def model_in_body(capability: str) -> Any:
    """Marks an API view whose JSON body names a `model` of this capability: `api_view` looks the
    model up in the same database call as the key (one trip before the first token, not two)."""

    def mark(view: Any) -> Any:
        view.model_capability = capability
        return view

    return mark


def api_view(view: Any) -> Any:
    """Bearer-key authentication and OpenAI-shaped errors for an async API view. For a view marked
    with `model_in_body`, `request.api_model` is the usable model the body names, or None."""
    capability: str | None = getattr(view, "model_capability", None)

    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            header = request.headers.get("Authorization", "")
            scheme, _, raw_key = header.partition(" ")
            if scheme.lower() != "bearer" or not raw_key.strip():
                raise ApiError(401, "Send your API key as 'Authorization: Bearer <key>'.", code="missing_api_key",
                               type="authentication_error")  # fmt: skip
            model_id = _requested_model(request) if capability else None

            def authenticate() -> ApiKey | None:
                key = api_key_authenticate(raw_key.strip())
                request.api_model = (  # type: ignore[attr-defined]
                    model_get_usable(user=key.user, model_id=model_id, capability=capability)
                    if key is not None and model_id and capability
                    else None
                )
                return key

            key = await database_sync_to_async(authenticate)()
            if key is None:
                raise ApiError(401, "Incorrect or revoked API key.", code="invalid_api_key",
                               type="authentication_error")  # fmt: skip
            request.user = key.user
            return await view(request, *args, **kwargs)
        except ApiError as exc:
            return exc.response()

    return login_not_required(csrf_exempt(wrapper))


def _requested_model(request: HttpRequest) -> str | None:
    try:
        model = _json_body(request).get("model")
    except ApiError:  # the view answers it, after authentication
        return None
    return model if isinstance(model, str) else None


def _json_body(request: HttpRequest) -> dict[str, Any]:
    parsed: dict[str, Any] | None = getattr(request, "api_json", None)
    if parsed is not None:
        return parsed
    if request.method != "POST":
        raise ApiError(405, "Use POST.", code="method_not_allowed")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_large = ApiError(413, f"The request body is over {limit / 1024 / 1024:g} MB.", code="body_too_large")
    try:
        raw = request.body  # Django refuses a body over the limit (RequestDataTooBig)
    except RequestDataTooBig:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The body must be JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.", code="invalid_json")
    request.api_json = body  # type: ignore[attr-defined]
    return body


async def _usable_model(request: HttpRequest, model_id: Any, capability: str) -> LLMModel:
    if not isinstance(model_id, str) or not model_id:
        raise ApiError(
            400, "`model` is required: a model id from GET /api/v1/models.", code="invalid_model", param="model"
        )
    model: LLMModel | None = getattr(request, "api_model", None)  # looked up with the key
    if model is not None:
        return model
    if len(model_id) > MODEL_ID_MAX_LENGTH or not model_id.isprintable():  # no model has such an id
        raise ApiError(404, "That model does not exist.", code="model_not_found", param="model")
    provider, _, name = model_id.partition("/")
    existing = await database_sync_to_async(
        LLMModel.objects.filter(provider__name=provider, name=name, enabled=True, available=True).first
    )()
    if existing is not None and capability not in existing.capabilities:
        raise ApiError(
            400,
            f"'{model_id}' is not {'an' if capability == 'embedding' else 'a'} {capability} model.",
            code="invalid_model",
            param="model",
        )
    if existing is not None:
        raise ApiError(403, f"You may not use the model '{model_id}'.", code="model_not_allowed", param="model",
                       type="permission_error")  # fmt: skip
    raise ApiError(404, f"The model '{model_id}' does not exist or is not available.", code="model_not_found",
                   param="model")  # fmt: skip


@api_view
async def models_list(request: HttpRequest) -> JsonResponse:
    if request.method != "GET":
        raise ApiError(405, "Use GET.", code="method_not_allowed")

    def listing() -> list[dict[str, Any]]:
        chat = list(models_usable_by(user=request.user))
        embedding = [m for m in models_usable_by(user=request.user, capability="embedding") if m not in chat]
        return [
            {"id": m.model_id, "object": "model", "created": int(m.created_at.timestamp()), "owned_by": m.provider.name,
             "capabilities": m.capabilities, "context_length": m.context_length}
            for m in chat + embedding
        ]  # fmt: skip

    return JsonResponse({"object": "list", "data": await database_sync_to_async(listing)()})


@api_view
async def sources_list(request: HttpRequest) -> JsonResponse:
    """The key's user's sources: their ids are what `sources` of a chat completion takes."""
    if request.method != "GET":
        raise ApiError(405, "Use GET.", code="method_not_allowed")

    def listing() -> list[dict[str, Any]]:
        return [
            {"id": str(s.uuid), "object": "source", "name": s.name, "url": s.url or None,
             "file_name": s.file_name or None, "status": s.status, "error": s.error or None,
             "created": int(s.created_at.timestamp()),
             "conversation": next((str(c.uuid) for c in s.conversations.all()), None)}
            for s in sources_of_user(user=request.user).prefetch_related("conversations")
        ]  # fmt: skip

    return JsonResponse({"object": "list", "data": await database_sync_to_async(listing)()})


@dataclass
class _ChatRequest:
    model: LLMModel
    messages: list[ChatMessage]
    options: ChatOptions
    stream: bool
    include_usage: bool
    store: bool
    sources: list[Source]


def _parse_messages(raw: Any) -> list[ChatMessage]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "`messages` must be a non-empty list.", code="invalid_messages", param="messages")
    messages: list[ChatMessage] = []
    for index, item in enumerate(raw):
        param = f"messages[{index}]"
        if not isinstance(item, dict) or item.get("role") not in ROLES:
            raise ApiError(400, f"{param} needs a role of system, user or assistant.", code="invalid_messages",
                           param=param)  # fmt: skip
        content = item.get("content")
        if isinstance(content, list):  # content parts: text only
            if not all(
                isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
            ):
                raise ApiError(400, f"{param}: only text content parts are supported.", code="invalid_messages",
                               param=param)  # fmt: skip
            content = "".join(p["text"] for p in content)
        try:
            content = text_clean(content, label=f"{param}.content", max_chars=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        except UserTextError as exc:
            raise ApiError(400, exc.detail, code="invalid_messages", param=param) from None
        messages.append({"role": item["role"], "content": content})
    return messages


def _number(body: dict[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float) if kind is float else int)
        or not low <= value <= high
    ):
        raise ApiError(400, f"`{name}` must be a {kind.__name__} from {low:g} to {high:g}.", code="invalid_value",
                       param=name)  # fmt: skip
    return value


async def _parse_chat_request(request: HttpRequest) -> _ChatRequest:
    body = _json_body(request)
    messages = _parse_messages(body.get("messages"))
    if body.get("n", 1) != 1:
        raise ApiError(400, "Only n=1 is supported.", code="unsupported_value", param="n")
    source_ids = body.get("sources") or []
    if (
        not isinstance(source_ids, list)
        or len(source_ids) > MAX_SOURCES
        or not all(isinstance(s, str) for s in source_ids)
    ):
        raise ApiError(400, f"`sources` must be a list of up to {MAX_SOURCES} source ids.", code="invalid_value",
                       param="sources")  # fmt: skip
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop)):
        raise ApiError(400, "`stop` must be a string or a list of up to 4 strings.", code="invalid_value", param="stop")
    try:
        stop = [text_clean(s, label="A stop sequence", max_chars=STOP_MAX_CHARS) for s in stop or ()]
    except UserTextError as exc:
        raise ApiError(400, exc.detail, code="invalid_value", param="stop") from None
    stream = body.get("stream", False)
    store = body.get("store", True)
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(store, bool) or not isinstance(stream_options, dict):
        raise ApiError(400, "`stream` and `store` are booleans; `stream_options` an object.", code="invalid_value")
    model = await _usable_model(request, body.get("model"), "chat")
    options = ChatOptions(
        temperature=_number(body, "temperature", float, 0, 2),
        max_tokens=_number(body, "max_tokens", int, 1, 10**6) or _number(body, "max_completion_tokens", int, 1, 10**6),
        context_length=model.context_length,
        stop=tuple(stop or ()),
    )  # fmt: skip
    sources = await _ready_sources(request, source_ids) if source_ids else []
    return _ChatRequest(model, messages, options, stream, bool(stream_options.get("include_usage")), store, sources)


async def _ready_sources(request: HttpRequest, source_ids: list[str]) -> list[Source]:
    try:
        return await database_sync_to_async(sources_get_ready_for_user)(user=request.user, source_uuids=source_ids)
    except Http404 as exc:
        raise ApiError(404, f"{exc} GET /api/v1/sources lists yours.",
                       code="source_not_found", param="sources") from None  # fmt: skip
    except SourceNotReady as exc:
        raise ApiError(400, f"{exc} Wait until it is ready (GET /api/v1/sources shows its status).",
                       code="source_not_ready", param="sources") from None  # fmt: skip


@dataclass
class _Relay:
    """One exchange with the provider: its text so far, counts and timings, and how it ended."""

    request: _ChatRequest
    user: Any
    ticket: QuotaTicket
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: str = "complete"
    error: ProviderError | None = None
    grounding: Grounding | None = None  # when the request named sources

    def extras(self) -> dict[str, Any]:
        """The fields a request with `sources` adds to the answer: its citations, and a notice
        when the sources could not be used."""
        if self.grounding is None:
            return {}
        return {"citations": self.grounding.citations} | ({"notice": n} if (n := self.grounding.notice) else {})

    def take(self, chunk: ChatChunk) -> None:
        if chunk.text and self.first_token_at is None:
            self.first_token_at = time.monotonic()
        self.text += chunk.text
        if chunk.done:
            self.prompt_tokens, self.completion_tokens = chunk.prompt_tokens, chunk.completion_tokens

    def usage(self) -> dict[str, int]:
        prompt, completion = self.prompt_tokens or 0, self.completion_tokens or 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def close(self) -> None:
        """Save the exchange (if asked) and count its tokens; survives the response's cancellation."""
        await self.ticket.finish(tokens=self.usage()["total_tokens"])
        ms = lambda moment: round((moment - self.started) * 1000) if moment else None  # noqa: E731
        generation_recorded(
            via="api", user=self.user.get_username(), model=self.request.model.model_id, status=self.status,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            first_token_ms=ms(self.first_token_at), latency_ms=ms(time.monotonic()),
            error_code=self.error.code if self.error else "",
        )  # fmt: skip
        if not self.request.store:
            return
        await database_sync_to_async(services.api_exchange_save)(
            user=self.user, model=self.request.model, messages=self.request.messages, answer=self.text,
            status=self.status, error=self.error.message if self.error else "",
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            first_token_ms=ms(self.first_token_at), latency_ms=ms(time.monotonic()),
            citations=self.grounding.citations if self.grounding else None,
        )  # fmt: skip

    def close_in_background(self) -> None:
        task = asyncio.create_task(self.close())
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)


def _upstream_error(exc: ProviderError) -> ApiError:
    return ApiError(UPSTREAM_STATUS.get(exc.code, 502), exc.message, code=exc.code, type="upstream_error",
                    retry_after=exc.retry_after if exc.code == "rate_limited" else None)  # fmt: skip


def _user_id(request: HttpRequest) -> int:
    """The id of the key's user (the API's views run only after the key was checked)."""
    user_id = request.user.pk
    if user_id is None:
        raise ApiError(401, "Missing API key.", code="invalid_api_key", type="invalid_request_error")
    return int(user_id)


def _quota_error(exc: QuotaExceeded) -> ApiError:
    if exc.code == "prompt_too_large":
        return ApiError(400, exc.detail, code=exc.code)
    return ApiError(429, exc.detail, code=exc.code, type="rate_limit_error", retry_after=exc.retry_after)


@api_view
@model_in_body("chat")
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    parsed = await _parse_chat_request(request)
    prompt_chars = sum(len(m["content"]) for m in parsed.messages)
    try:
        async with quota_hold(user_id=_user_id(request), prompt_chars=prompt_chars) as hold:
            return await _complete(request, parsed, hold)
    except QuotaExceeded as exc:
        raise _quota_error(exc) from None


async def _complete(
    request: HttpRequest, parsed: _ChatRequest, hold: QuotaHold
) -> HttpResponse | StreamingHttpResponse:
    """The answer, with the ticket in `hold`: the relay finishes it with the tokens used; a
    stream takes it along (handed over), and any failure before gives it back."""
    relay = _Relay(request=parsed, user=request.user, ticket=hold.tickets[0])
    messages = parsed.messages
    if parsed.sources:
        relay.grounding = await database_sync_to_async(grounding_for)(
            sources=parsed.sources, history=parsed.messages, context_length=parsed.model.context_length
        )
        if relay.grounding.system_message:
            messages = [{"role": "system", "content": relay.grounding.system_message}, *messages]
    chunks = provider_client(parsed.model.provider).stream_chat(
        model=parsed.model.name, messages=messages, options=parsed.options
    )
    # Wait for the first chunk before answering, so an upstream failure gets its own status.
    try:
        first = await anext(chunks)
    except (ProviderError, StopAsyncIteration) as exc:
        relay.status = "error"
        relay.error = exc if isinstance(exc, ProviderError) else ProviderError("The model sent nothing.")
        await relay.close()
        raise _upstream_error(relay.error) from None
    relay.take(first)
    if parsed.stream:
        response = StreamingHttpResponse(_sse(relay, first, chunks), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        hold.hand_over()  # the stream closes the relay, however it ends
        return response
    try:
        async for chunk in chunks:
            relay.take(chunk)
    except ProviderError as exc:
        relay.status, relay.error = ("interrupted" if relay.text else "error"), exc
        await relay.close()
        raise _upstream_error(exc) from None
    await relay.close()
    return JsonResponse({
        "id": relay.completion_id, "object": "chat.completion", "created": relay.created,
        "model": parsed.model.model_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": relay.text}, "finish_reason": "stop"}],
        "usage": relay.usage(), **relay.extras(),
    })  # fmt: skip


def _event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


async def _batched(chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[list[ChatChunk]]:
    """The provider's chunks in batches: each holds every chunk that arrived while the last was sent.

    A chunk that arrives alone goes out alone and at once; a burst goes out as one event and one
    write instead of one per token, which is what capped the relay rate. A reader task pulls from
    the provider meanwhile; closing this generator cancels it, which closes the upstream request.
    """
    queue: asyncio.Queue[ChatChunk | Exception | None] = asyncio.Queue()

    async def read() -> None:
        try:
            async for chunk in chunks:
                queue.put_nowait(chunk)
        except Exception as exc:  # raised to the reader of the batches, in order
            queue.put_nowait(exc)
        else:
            queue.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            end = batch[-1]  # the end of the stream or an error can only come last
            pieces = [item for item in batch if isinstance(item, ChatChunk)]
            if pieces:
                yield pieces
            if end is None:
                return
            if isinstance(end, Exception):
                raise end
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _sse(relay: _Relay, first: ChatChunk, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[bytes]:
    model_id = relay.request.model.model_id

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _event({"id": relay.completion_id, "object": "chat.completion.chunk", "created": relay.created,
                       "model": model_id, "choices": [choice], **extra})  # fmt: skip

    batches = _batched(chunks)

    async def upstream_close() -> None:
        await batches.aclose()  # type: ignore[attr-defined]
        await chunks.aclose()  # type: ignore[attr-defined]

    closed = False
    try:
        yield chunk({"role": "assistant", "content": first.text}, **relay.extras())  # citations come first
        if not first.done:
            async for batch in batches:
                for piece in batch:
                    relay.take(piece)
                if text := "".join(piece.text for piece in batch):
                    yield chunk({"content": text})
        yield chunk({}, "stop")
        if relay.request.include_usage:
            yield _event({"id": relay.completion_id, "object": "chat.completion.chunk", "created": relay.created,
                          "model": model_id, "choices": [], "usage": relay.usage()})  # fmt: skip
    except ProviderError as exc:
        relay.status, relay.error = "interrupted", exc
        yield _event({"error": {"message": exc.message, "type": "upstream_error", "param": None, "code": exc.code}})
        await upstream_close()
        await relay.close()
        closed = True
    except asyncio.CancelledError:
        relay.status = "stopped"  # the client hung up
        raise
    else:
        # Saved before [DONE]: a client that has read the whole stream finds it in the history.
        await upstream_close()
        await relay.close()
        closed = True
    finally:
        if not closed:
            await upstream_close()
            relay.close_in_background()
    yield _event("[DONE]")


@api_view
@model_in_body("embedding")
async def embeddings(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if (
        not isinstance(texts, list)
        or not texts
        or not all(isinstance(t, str) and t for t in texts)
        or len(texts) > 2048
    ):
        raise ApiError(400, "`input` must be a non-empty string or a list of up to 2048 non-empty strings.",
                       code="invalid_value", param="input")  # fmt: skip
    model = await _usable_model(request, body.get("model"), "embedding")
    tokens = sum(len(t) for t in texts) // 4 + len(texts)  # providers do not all report it
    try:
        async with quota_hold(user_id=_user_id(request), prompt_chars=sum(len(t) for t in texts)) as hold:
            try:
                vectors = await provider_client(model.provider).embed_batch(model=model.name, texts=texts)
            except ProviderError as exc:
                raise _upstream_error(exc) from None
            await hold.hand_over()[0].finish(tokens=tokens)
    except QuotaExceeded as exc:
        raise _quota_error(exc) from None
    return JsonResponse({
        "object": "list", "model": model.model_id,
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })  # fmt: skip


@login_not_required
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document(base_url=request.build_absolute_uri("/api/v1")))


@login_not_required
def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/api_docs.html", {"base_url": request.build_absolute_uri("/api/v1")})
