"""A fake Ollama server on 127.0.0.1 that speaks Ollama's real HTTP protocol.

Routes: `GET /api/tags`, `POST /api/show`, `POST /api/chat` (NDJSON, chunked, ending
with the `done` line and its counts, or one JSON object with `stream: false`),
`POST /api/embed`. Switches on the instance shape its behaviour for a test: a slow
first token, a delay between tokens, a dropped connection after N tokens, an HTTP
error status, a garbage line, and which models exist.

Run it alone with `python -m tests.fakes.ollama --port 11434` to try the app by hand.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeHandler, FakeServer

DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "llama3.2:1b": {"family": "llama", "parameter_size": "1.2B", "quantization_level": "Q8_0",
                    "size": 1_321_098_329, "context_length": 131072},
    "qwen2.5:0.5b": {"family": "qwen2", "parameter_size": "494.03M", "quantization_level": "Q4_K_M",
                     "size": 397_821_319, "context_length": 32768},
}  # fmt: skip


# Models that `/api/pull` can fetch, with their size in bytes.
LIBRARY: dict[str, int] = {"tinyllama:1.1b": 637_700_138, "all-minilm:22m": 45_960_996}


def echo_reply(messages: list[dict[str, Any]]) -> str:
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return f"You said: {last}"


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces that join back to the text exactly."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FakeOllama(FakeServer):
    thread_name = "fake-ollama"

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = copy.deepcopy(DEFAULT_MODELS)
        self.reply: Callable[[list[dict[str, Any]]], str] = echo_reply
        self.first_token_delay = 0.0
        self.token_delay = 0.0
        self.drop_after: int | None = None
        self.chat_status: int | None = None
        self.garbage_after: int | None = None
        self.error_after: int | None = None  # an in-stream error event after this many tokens
        self.chat_requests: list[dict[str, Any]] = []
        self.streams_closed_by_client = 0
        self.pull_fail_after: int | None = None
        self.pull_delay = 0.0
        self.deleted: list[str] = []
        # Streams left over from an earlier test (a slow first token the client gave up
        # on) must not count against the next one.
        self._generation = 0

    def handler_class(self) -> type[_Handler]:
        return _Handler

    def reset(self) -> None:
        self.models = copy.deepcopy(DEFAULT_MODELS)
        self.reply = echo_reply
        self.first_token_delay = self.token_delay = 0.0
        self.drop_after = self.chat_status = self.garbage_after = self.error_after = None
        self.chat_requests.clear()
        self.streams_closed_by_client = 0
        self.pull_fail_after = None
        self.pull_delay = 0.0
        self.deleted.clear()
        self._generation += 1


class _Handler(FakeHandler):
    server_fake: FakeOllama

    def _not_found(self, model: str) -> None:
        self._json(404, {"error": f'model "{model}" not found, try pulling it first'})

    def do_GET(self) -> None:
        if self.path == "/api/tags":
            fake = self.server_fake
            self._json(200, {"models": [_tag(name, info) for name, info in fake.models.items()]})
        elif self.path in ("/", "/api/version"):
            self._json(200, {"version": "0.12.0"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        fake = self.server_fake
        body = self._body()
        if self.path == "/api/show":
            name = body.get("model") or body.get("name", "")
            if name not in fake.models:
                return self._not_found(name)
            info = fake.models[name]
            return self._json(
                200,
                {
                    "details": _tag(name, info)["details"],
                    "model_info": {f"{info['family']}.context_length": info["context_length"]},
                    "capabilities": info.get("capabilities", ["completion"]),
                },
            )
        if self.path == "/api/embed":
            name = body.get("model", "")
            if name not in fake.models:
                return self._not_found(name)
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            return self._json(200, {"model": name, "embeddings": [_vector(text) for text in texts]})
        if self.path == "/api/chat":
            return self._chat(body)
        if self.path == "/api/pull":
            return self._pull(body.get("model") or body.get("name", ""))
        self._json(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        fake = self.server_fake
        body = self._body()
        name = body.get("model") or body.get("name", "")
        if self.path != "/api/delete" or name not in fake.models:
            return self._json(404, {"error": f"model '{name}' not found"})
        del fake.models[name]
        fake.deleted.append(name)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _pull(self, name: str) -> None:
        """Stream `/api/pull` progress: manifest, two layers in steps, verify, write, success."""
        fake = self.server_fake
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        if name not in LIBRARY:
            lines.append({"error": "pull model manifest: file does not exist"})
        else:
            size = LIBRARY[name]
            layers = [
                (hashlib.sha256(f"{name}{i}".encode()).hexdigest(), part) for i, part in enumerate((size - 500, 500))
            ]
            for digest, total in layers:
                for step in range(5):
                    completed = total * step // 4
                    lines.append({"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": total,
                                  "completed": completed})  # fmt: skip
            lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        for index, line in enumerate(lines):
            if fake.pull_fail_after is not None and index >= fake.pull_fail_after:
                line = {"error": "max retries exceeded: connection reset by peer"}
            self._chunk(json.dumps(line).encode() + b"\n")
            if "error" in line:
                break
            time.sleep(fake.pull_delay)
        else:
            fake.models[name] = {"family": "llama", "parameter_size": "1.1B", "quantization_level": "Q4_0",
                                 "size": LIBRARY[name], "context_length": 2048,
                                 "capabilities": ["embedding"] if "minilm" in name else ["completion"]}  # fmt: skip
        self._chunk(b"")

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server_fake
        fake.chat_requests.append(body)
        model = body.get("model", "")
        if fake.chat_status is not None:
            return self._json(fake.chat_status, {"error": f"fake upstream error {fake.chat_status}"})
        if model not in fake.models:
            return self._not_found(model)
        tokens = split_tokens(fake.reply(body.get("messages", [])))
        prompt_tokens = sum(len(split_tokens(m.get("content", ""))) for m in body.get("messages", []))
        final = {
            "model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
            "done": True, "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 1000,
            "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 1000,
            "eval_count": len(tokens), "eval_duration": 1000,
        }  # fmt: skip
        if body.get("stream") is False:
            time.sleep(fake.first_token_delay)
            final["message"]["content"] = "".join(tokens)
            return self._json(200, final)
        generation = fake._generation
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wfile.flush()
            time.sleep(fake.first_token_delay)
            for index, token in enumerate(tokens):
                if fake.drop_after is not None and index >= fake.drop_after:
                    self._drop()
                    return
                if fake.error_after is not None and index >= fake.error_after:
                    # Ollama reports a failure inside a stream as a line with only `error`.
                    self._chunk(json.dumps({"error": "the model runner stopped unexpectedly"}).encode() + b"\n")
                    self._chunk(b"")
                    return
                if fake.garbage_after is not None and index >= fake.garbage_after:
                    self._chunk(b"this is not json\n")
                    self._chunk(b"")
                    return
                if index and fake.token_delay:
                    time.sleep(fake.token_delay)
                line = {
                    "model": model,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": token},
                    "done": False,
                }
                self._chunk(json.dumps(line).encode() + b"\n")
            self._chunk(json.dumps(final).encode() + b"\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            if generation == fake._generation:
                fake.streams_closed_by_client += 1
            self.close_connection = True


def _tag(name: str, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-11-01T10:00:00Z",
        "size": info["size"],
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": info["family"],
            "families": [info["family"]],
            "parameter_size": info["parameter_size"],
            "quantization_level": info["quantization_level"],
        },
    }


def _vector(text: str, dimensions: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [byte / 255 for byte in digest[:dimensions]]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [v / norm for v in raw]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--token-delay", type=float, default=0.03)
    args = parser.parse_args()
    server = FakeOllama()
    server.token_delay = args.token_delay
    server.start(port=args.port)
    print(f"fake Ollama on {server.url}")  # a developer tool, not app code
    threading.Event().wait()
