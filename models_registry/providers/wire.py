"""Incremental decoders for the two streaming wire formats: Server-Sent Events (OpenAI) and
newline-delimited JSON (Ollama).

They take the body as it arrives, in pieces of any size, and return every complete event in
a piece at once, so a provider hands on one chunk of text per network read instead of one per
token. Splitting is done with bytes methods (C speed); what is left in Python is one
`json.loads` per event. Through the official clients' typed objects each token cost 20 to
400 µs, more than it took the upstream to write it (bench/relay.py, bench/wire.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A line this long without an end is not a chat stream: refuse it rather than buffer without end.
MAX_PENDING_BYTES = 8 * 1024 * 1024


class WireError(ValueError):
    """The body is not the format it claims to be (providers report it as a malformed answer)."""


@dataclass(frozen=True)
class SSEEvent:
    event: str  # "" for the default event type
    data: str


class SSEDecoder:
    """Server-Sent Events per the WHATWG spec's field rules, for the `data:` JSON streams of
    chat APIs: lines end with LF, CRLF or CR; an event ends at a blank line; `data` lines
    join with LF; comments and unknown fields are skipped."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[SSEEvent]:
        buffer = self._pending + data
        # A CR at the very end may be the first half of a CRLF: decide once the next byte is here.
        held = b"\r" if buffer.endswith(b"\r") else b""
        if held:
            buffer = buffer[:-1]
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *blocks, rest = buffer.split(b"\n\n")
        self._pending = rest + held
        if len(self._pending) > MAX_PENDING_BYTES:
            raise WireError(f"an event longer than {MAX_PENDING_BYTES} bytes")
        events = []
        for block in blocks:
            event = self._event(block)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Events left at the end of the body (a last event without its blank line)."""
        rest, self._pending = self._pending, b""
        return self.feed(rest + b"\n\n") if rest.strip() else []

    @staticmethod
    def _event(block: bytes) -> SSEEvent | None:
        if block.startswith(b"data: ") and b"\n" not in block:  # the usual event: one data line
            return SSEEvent("", block[6:].decode("utf-8", "replace"))
        name, data = "", []
        for line in block.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"data":
                data.append(value.decode("utf-8", "replace"))
            elif field == b"event":
                name = value.decode("utf-8", "replace")
        if not data:
            return None  # the spec dispatches no event without data
        return SSEEvent(name, "\n".join(data))


class NDJSONDecoder:
    """One JSON object per line; blank lines are skipped."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[Any]:
        *lines, self._pending = (self._pending + data).split(b"\n")
        if len(self._pending) > MAX_PENDING_BYTES:
            raise WireError(f"a line longer than {MAX_PENDING_BYTES} bytes")
        return [_json(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        rest, self._pending = self._pending, b""
        return [_json(rest)] if rest.strip() else []


def _json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        raise WireError(f"not JSON: {text[:100]!r}") from None


def sse_json(event: SSEEvent) -> Any:
    return _json(event.data)
