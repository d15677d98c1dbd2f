"""A fake OpenAI server on 127.0.0.1 that speaks the real OpenAI HTTP protocol, Azure's paths too.

Routes: `GET /v1/models` (Azure: `GET /openai/models`); `POST /v1/chat/completions` and `POST /v1/embeddings` with
`Authorization: Bearer`; Azure's `POST /openai/deployments/{name}/chat/completions` and
`.../embeddings` with an `api-key` header and an `api-version` query parameter, the
deployment name standing for the model. Chat answers stream as server-sent events
(chunked, `data: {chat.completion.chunk}` lines, the usage chunk when asked for, then
`data: [DONE]`), or as one chat.completion object with `stream: false`. Switches on the
instance shape its behaviour for a test: a key to require, a slow first token, a delay
between tokens, a dropped connection or a garbage line after N tokens, an HTTP status
for the first N chat requests, and which models exist.

Run it alone with `python -m tests.fakes.openai --port 8001` to try the app by hand.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import struct
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.ollama import echo_reply, split_tokens
from tests.fakes.server import FakeHandler, FakeServer

DEFAULT_MODELS = ["gpt-4o-mini", "llama-3.1-8b-instruct", "text-embedding-3-small"]
CREATED = 1_767_225_600  # 2026-01-01, the `created` of every fake model
AZURE_PATH = re.compile(r"^/openai/deployments/(?P<name>[^/]+)/(?P<endpoint>chat/completions|embeddings)$")
STATUS_MESSAGES = {
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


class FakeOpenAI(FakeServer):
    thread_name = "fake-openai"

    def __init__(self) -> None:
        self.models: list[str] = list(DEFAULT_MODELS)
        self.api_key: str | None = None  # None: any key, or none, is accepted
        self.reply: Callable[[list[dict[str, Any]]], str] = echo_reply
        self.first_token_delay = 0.0
        self.token_delay = 0.0
        self.drop_after: int | None = None
        self.garbage_after: int | None = None
        self.error_after: int | None = None  # an in-stream error event after this many tokens
        self.status: int | None = None
        self.retry_after: str | None = None
        self.fail_times: int | None = None  # None: every chat request gets `status`
        self.send_usage = True
        self.reverse_embeddings = False
        self.chat_requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_paths: list[str] = []
        self.streams_closed_by_client = 0
        self._failures_sent = 0
        # A stream left over from the previous test (a slow first token the client gave up
        # on) must not count against the next one.
        self._generation = 0

    def handler_class(self) -> type[_Handler]:
        return _Handler

    def reset(self) -> None:
        self.models = list(DEFAULT_MODELS)
        self.api_key = None
        self.reply = echo_reply
        self.first_token_delay = self.token_delay = 0.0
        self.drop_after = self.garbage_after = self.error_after = None
        self.status = self.retry_after = self.fail_times = None
        self.send_usage = True
        self.reverse_embeddings = False
        self.chat_requests.clear()
        self.request_headers.clear()
        self.request_paths.clear()
        self.streams_closed_by_client = 0
        self._failures_sent = 0
        self._generation += 1

    def _take_failure(self) -> int | None:
        """The status the next chat request must fail with, if any."""
        if self.status is None:
            return None
        if self.fail_times is not None:
            if self._failures_sent >= self.fail_times:
                return None
            self._failures_sent += 1
        return self.status


def _error(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class _Handler(FakeHandler):
    server_fake: FakeOpenAI

    def _record(self) -> None:
        self.server_fake.request_headers.append({name.lower(): value for name, value in self.headers.items()})
        self.server_fake.request_paths.append(self.path)

    def _authorized(self, *, azure: bool) -> bool:
        """Answer 401 and say False unless the request carries the expected key the right way."""
        expected = self.server_fake.api_key
        if expected is None:
            return True
        if azure:
            given = self.headers.get("api-key", "")
        else:
            scheme, _, given = self.headers.get("Authorization", "").partition(" ")
            given = given if scheme == "Bearer" else ""
        if given == expected:
            return True
        # Quoting the key back, as OpenAI does, lets the tests prove the client never repeats it.
        message = f"Incorrect API key provided: {given}." if given else "You didn't provide an API key."
        self._json(401, _error(message, code="invalid_api_key"))
        return False

    def do_GET(self) -> None:
        self._record()
        if urlsplit(self.path).path == "/v1/models":
            if not self._authorized(azure=False):
                return
            models = [
                {"id": name, "object": "model", "created": CREATED, "owned_by": "fake"}
                for name in self.server_fake.models
            ]
            return self._json(200, {"object": "list", "data": models})
        if urlsplit(self.path).path == "/openai/models":  # Azure's data-plane model list
            if not self._authorized(azure=True):
                return
            models = [{"id": name, "object": "model", "created_at": CREATED} for name in self.server_fake.models]
            return self._json(200, {"object": "list", "data": models})
        self._json(404, _error(f"Unknown request URL: GET {self.path}.", code="unknown_url"))

    def do_POST(self) -> None:
        self._record()
        body = self._body()
        parts = urlsplit(self.path)
        azure = AZURE_PATH.match(parts.path)
        if azure:
            if not parse_qs(parts.query).get("api-version"):
                return self._json(400, _error("Missing required query parameter: api-version.", code="BadRequest"))
            model, endpoint = unquote(azure["name"]), azure["endpoint"]
        elif parts.path in ("/v1/chat/completions", "/v1/embeddings"):
            model, endpoint = body.get("model", ""), parts.path.removeprefix("/v1/")
        else:
            return self._json(404, _error(f"Unknown request URL: POST {self.path}.", code="unknown_url"))
        if endpoint == "chat/completions":
            self.server_fake.chat_requests.append(body)
        if not self._authorized(azure=azure is not None):
            return
        if endpoint == "chat/completions" and (status := self.server_fake._take_failure()) is not None:
            return self._failure(status)
        if model not in self.server_fake.models:
            noun = "API deployment" if azure else "model"
            return self._json(
                404,
                _error(f"The {noun} `{model}` does not exist or you do not have access to it.", code="model_not_found"),
            )
        if endpoint == "embeddings":
            return self._embeddings(model, body)
        self._chat(model, body)

    def _failure(self, status: int) -> None:
        message, type_, code = STATUS_MESSAGES.get(
            status, (f"fake upstream error {status}", "invalid_request_error", None)
        )
        retry_after = self.server_fake.retry_after
        headers = {"Retry-After": retry_after} if status == 429 and retry_after is not None else None
        self._json(status, _error(message, type_, code), headers)

    def _embeddings(self, model: str, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": index, "embedding": _vector_base64(text) if as_base64 else _vector(text)}
            for index, text in enumerate(texts)
        ]
        if self.server_fake.reverse_embeddings:
            data.reverse()
        tokens = sum(len(split_tokens(text)) for text in texts)
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _chat(self, model: str, body: dict[str, Any]) -> None:
        fake = self.server_fake
        messages = body.get("messages", [])
        tokens = split_tokens(fake.reply(messages))
        prompt_tokens = sum(len(split_tokens(m.get("content") or "")) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        generation = fake._generation
        if not body.get("stream"):
            time.sleep(fake.first_token_delay)
            message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
            completion = {
                "id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            }  # fmt: skip
            return self._json(200, completion)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {
                "id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_fake", "choices": choices,
            }  # fmt: skip
            if include_usage:
                payload["usage"] = None
            payload.update(extra)
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        def delta(content: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}]

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.flush()
            time.sleep(fake.first_token_delay)
            self._chunk(chunk(delta({"role": "assistant", "content": "", "refusal": None})))
            for index, token in enumerate(tokens):
                if fake.drop_after is not None and index >= fake.drop_after:
                    self._drop()
                    return
                if fake.error_after is not None and index >= fake.error_after:
                    # What OpenAI sends when the model fails mid-answer: an `error` object, then the end.
                    error = _error("The model overloaded mid-answer.", "server_error")
                    self._chunk(b"data: " + json.dumps(error).encode() + b"\n\n")
                    self._chunk(b"")
                    return
                if fake.garbage_after is not None and index >= fake.garbage_after:
                    self._chunk(b"data: this is not json\n\n")
                    self._chunk(b"")
                    return
                if index and fake.token_delay:
                    time.sleep(fake.token_delay)
                self._chunk(chunk(delta({"content": token})))
            self._chunk(chunk(delta({}, finish_reason="stop")))
            if include_usage and fake.send_usage:
                self._chunk(chunk([], usage=usage))
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            if generation == fake._generation:
                fake.streams_closed_by_client += 1
            self.close_connection = True


def _vector(text: str, dimensions: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [byte / 255 for byte in digest[:dimensions]]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [v / norm for v in raw]


def _vector_base64(text: str) -> str:
    """The vector as little-endian float32s in base64, the official client's default request."""
    vector = _vector(text)
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--token-delay", type=float, default=0.03)
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    args = parser.parse_args()
    server = FakeOpenAI()
    server.token_delay = args.token_delay
    server.api_key = args.api_key
    server.start(port=args.port)
    print(f"fake OpenAI on {server.url} (OpenAI base URL {server.url}/v1, Azure endpoint {server.url})")
    threading.Event().wait()
