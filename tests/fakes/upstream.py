"""A fake LLM server for load: one asyncio process speaking OpenAI's SSE and Ollama's NDJSON
chat protocols, every answer a fixed number of tokens on a fixed schedule.

The thread-per-request fakes (`tests/fakes/ollama.py`, `tests/fakes/openai.py`) suit the
tests but not load: socketserver's listen backlog of 5 resets part of a burst of 200
connections, and 200 threads sleeping between tokens drift well off a 20 ms schedule.
Here each stream is a coroutine, token k leaves at `start + k * interval` (an absolute
schedule, so nothing accumulates), and the moment every token was written is recorded on
`time.monotonic()`, which is the same clock in every process on the machine: a benchmark
can tell the upstream's own lateness from its relay's.

Models are named `relay-<interval>ms` (`relay-0ms`, `relay-20ms`), one per interval given, and
with `--long-tokens N` also `relay-0ms-long`, N tokens at zero interval. Every answer is
`answer_tokens(count)`: "t000", " t001", " t002"... Streams are recorded
under the content of the request's last user message, so give each request its own.

Routes: OpenAI `GET /v1/models`, `POST /v1/chat/completions` (SSE with `stream`, the
usage chunk when `stream_options.include_usage`, then `data: [DONE]`; else one object);
Ollama `GET /api/version`, `GET /api/tags`, `POST /api/show`, `POST /api/chat` (NDJSON
ending with the `done` line and its counts, or one object with `stream: false`); and for
the benchmark `GET /_bench/streams` (what was sent, per stream) and `POST /_bench/reset`.

    python -m tests.fakes.upstream --port 0 --tokens 200 --intervals 0,20

prints `listening on http://127.0.0.1:PORT` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

CREATED = 1_767_225_600  # 2026-01-01, the `created` of every model
CONTEXT_LENGTH = 8192
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def answer_tokens(count: int) -> list[str]:
    """The pieces of every answer; they join to words separated by single spaces."""
    return [f"{' ' if index else ''}t{index:03d}" for index in range(count)]


def model_name(interval_ms: float) -> str:
    return f"relay-{interval_ms:g}ms"


LONG_MODEL = "relay-0ms-long"  # `--long-tokens` tokens at zero interval: a stream that spans many reads


@dataclass
class StreamRecord:
    """One streamed answer as the fake sent it, on `time.monotonic()`."""

    protocol: str
    started: float
    emitted: list[float] = field(default_factory=list)
    finished: bool = False


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


class FakeUpstream:
    def __init__(self, *, tokens: int = 200, intervals_ms: Sequence[float] = (0, 20), long_tokens: int = 0) -> None:
        self.intervals = {model_name(ms): ms / 1000 for ms in intervals_ms}
        self.answers = {name: answer_tokens(tokens) for name in self.intervals}  # model -> its answer's tokens
        if long_tokens:
            self.intervals[LONG_MODEL] = 0.0
            self.answers[LONG_MODEL] = answer_tokens(long_tokens)
        self.streams: dict[str, StreamRecord] = {}
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeUpstream:
        # A burst of 200 connections must not overflow the accept queue (asyncio's default is 100).
        self._server = await asyncio.start_server(self._connection, host, port, backlog=2048, limit=1 << 20)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await _read_request(reader)) is not None:
                if not await self._route(request, writer) or not request.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that hangs up mid-answer is normal (stop, cancel, timeout)
        finally:
            writer.close()

    async def _route(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        route = (request.method, request.path.split("?", 1)[0])
        if route == ("GET", "/v1/models"):
            models = [
                {"id": name, "object": "model", "created": CREATED, "owned_by": "fake"} for name in self.intervals
            ]
            return await _send_json(writer, 200, {"object": "list", "data": models})
        if route == ("POST", "/v1/chat/completions"):
            return await self._openai_chat(request.json(), writer)
        if route in (("GET", "/"), ("GET", "/api/version")):
            return await _send_json(writer, 200, {"version": "0.12.0"})
        if route == ("GET", "/api/tags"):
            return await _send_json(writer, 200, {"models": [_tag(name) for name in self.intervals]})
        if route == ("POST", "/api/show"):
            body = request.json()
            name = body.get("model") or body.get("name", "")
            if name not in self.intervals:
                return await _send_json(writer, 404, {"error": f"model '{name}' not found"})
            return await _send_json(writer, 200, _show(name))
        if route == ("POST", "/api/chat"):
            return await self._ollama_chat(request.json(), writer)
        if route == ("GET", "/_bench/streams"):
            streams = {key: record.__dict__ for key, record in self.streams.items()}
            return await _send_json(writer, 200, {"streams": streams})
        if route == ("POST", "/_bench/reset"):
            self.streams.clear()
            return await _send_json(writer, 200, {"streams": {}})
        return await _send_json(writer, 404, {"error": f"Unknown request URL: {request.method} {request.path}."})

    def _stream_key(self, messages: Any) -> str:
        users = [m.get("content") for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1]) if users else ""

    def _prompt_tokens(self, messages: Any) -> int:
        return sum(len(str(m.get("content") or "").split()) for m in messages or [] if isinstance(m, dict))

    async def _emit(
        self, writer: asyncio.StreamWriter, record: StreamRecord, interval: float, tokens: list[str], frame: Any
    ) -> None:
        """Write every token on the schedule, recording when each went out."""
        for index, token in enumerate(tokens):
            if interval:
                delay = record.started + index * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            writer.write(_chunk(frame(token)))
            record.emitted.append(time.monotonic())
            await writer.drain()

    async def _openai_chat(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        model = body.get("model", "")
        if model not in self.intervals:
            error = {"message": f"The model `{model}` does not exist or you do not have access to it.",
                     "type": "invalid_request_error", "param": None, "code": "model_not_found"}  # fmt: skip
            return await _send_json(writer, 404, {"error": error})
        interval, tokens = self.intervals[model], self.answers[model]
        messages = body.get("messages")
        prompt_tokens = self._prompt_tokens(messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
                 "total_tokens": prompt_tokens + len(tokens)}  # fmt: skip
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not body.get("stream"):
            await asyncio.sleep(interval * (len(tokens) - 1))
            message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
            return await _send_json(writer, 200, {
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            })  # fmt: skip
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": created,
                                       "model": model, "system_fingerprint": "fp_fake", "choices": choices}  # fmt: skip
            if include_usage:
                payload["usage"] = None
            payload.update(extra)
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        def delta(content: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}]

        writer.write(_stream_head("text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"}))
        writer.write(_chunk(event(delta({"role": "assistant", "content": "", "refusal": None}))))
        record = self.streams[self._stream_key(messages)] = StreamRecord("openai", time.monotonic())
        await self._emit(writer, record, interval, tokens, lambda token: event(delta({"content": token})))
        writer.write(_chunk(event(delta({}, finish_reason="stop"))))
        if include_usage:
            writer.write(_chunk(event([], usage=usage)))
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        record.finished = True
        return True

    async def _ollama_chat(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        model = body.get("model", "")
        if model not in self.intervals:
            return await _send_json(writer, 404, {"error": f'model "{model}" not found, try pulling it first'})
        interval, tokens = self.intervals[model], self.answers[model]
        messages = body.get("messages")
        final = {
            "model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
            "done_reason": "stop", "done": True, "total_duration": 1_000_000, "load_duration": 1000,
            "prompt_eval_count": self._prompt_tokens(messages), "prompt_eval_duration": 1000,
            "eval_count": len(tokens), "eval_duration": 1000,
        }  # fmt: skip
        if body.get("stream") is False:
            await asyncio.sleep(interval * (len(tokens) - 1))
            final["message"]["content"] = "".join(tokens)  # type: ignore[index]
            return await _send_json(writer, 200, final)

        def line(token: str) -> bytes:
            piece = {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": token},
                     "done": False}  # fmt: skip
            return json.dumps(piece).encode() + b"\n"

        writer.write(_stream_head("application/x-ndjson"))
        record = self.streams[self._stream_key(messages)] = StreamRecord("ollama", time.monotonic())
        await self._emit(writer, record, interval, tokens, line)
        final["created_at"] = _now()
        writer.write(_chunk(json.dumps(final).encode() + b"\n") + b"0\r\n\r\n")
        await writer.drain()
        record.finished = True
        return True


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed a kept-alive connection
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers = {}
    for header in lines:
        if ":" in header:
            name, value = header.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return _Request(method, path, headers, body)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _stream_head(content_type: str, extra: dict[str, str] | None = None) -> bytes:
    return _head(200, {"Content-Type": content_type, **(extra or {}), "Transfer-Encoding": "chunked"})


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _send_json(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> bool:
    data = json.dumps(payload).encode()
    writer.write(_head(status, {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data))}))
    writer.write(data)
    await writer.drain()
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _tag(name: str) -> dict[str, Any]:
    return {
        "name": name, "model": name, "modified_at": "2026-11-01T10:00:00Z", "size": 1_321_098_329,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "1.2B", "quantization_level": "Q8_0"},
    }  # fmt: skip


def _show(name: str) -> dict[str, Any]:
    return {
        "modified_at": "2026-11-01T10:00:00Z",
        "details": _tag(name)["details"],
        "model_info": {"general.architecture": "llama", "llama.context_length": CONTEXT_LENGTH},
        "capabilities": ["completion"],
    }


async def _serve(args: argparse.Namespace) -> None:
    intervals = [float(value) for value in args.intervals.split(",") if value.strip()]
    fake = await FakeUpstream(tokens=args.tokens, intervals_ms=intervals, long_tokens=args.long_tokens).start(
        port=args.port
    )
    print(f"listening on {fake.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--intervals", default="0,20", help="milliseconds between tokens, one model each")
    parser.add_argument("--long-tokens", type=int, default=0, help=f"tokens of {LONG_MODEL} (0: no such model)")
    asyncio.run(_serve(parser.parse_args()))
