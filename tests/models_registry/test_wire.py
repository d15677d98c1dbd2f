"""The streaming decoders: the same events whatever sizes the body arrives in."""

from __future__ import annotations

import json

import pytest

from models_registry.providers import wire
from models_registry.providers.wire import NDJSONDecoder, SSEDecoder, SSEEvent

OPENAI_BODY = (
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"lo \\u00e9t\xc3\xa9"}}]}\n\n'
    b": a comment, skipped\n\n"
    b'event: error\ndata: {"error": {"message": "boom"}}\n\n'
    b"data: first line\ndata: second line\n\n"
    b"id: 7\nretry: 100\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("", '{"choices":[{"delta":{"content":"Hel"}}]}'),
    SSEEvent("", '{"choices":[{"delta":{"content":"lo \\u00e9t\u00e9"}}]}'),
    SSEEvent("error", '{"error": {"message": "boom"}}'),
    SSEEvent("", "first line\nsecond line"),
    SSEEvent("", "[DONE]"),
]


def sse_in_pieces(body: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(body), size):
        events += decoder.feed(body[start : start + size])
    return events + decoder.close()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_sse_events_are_the_same_whatever_the_read_sizes(size: int) -> None:
    assert sse_in_pieces(OPENAI_BODY, size) == EXPECTED


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 2, 5, 10_000])
def test_sse_lines_may_end_with_crlf_or_cr(ending: bytes, size: int) -> None:
    assert sse_in_pieces(OPENAI_BODY.replace(b"\n", ending), size) == EXPECTED


def test_sse_a_crlf_split_between_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\n\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("", "a"), SSEEvent("", "b")]


def test_sse_a_last_event_without_its_blank_line_comes_out_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [SSEEvent("", "a")]
    assert decoder.close() == [SSEEvent("", "b")]
    assert decoder.close() == []


def test_sse_field_without_space_and_events_without_data() -> None:
    assert sse_in_pieces(b"data:x\n\nevent: ping\n\n:keepalive\n\n", 3) == [SSEEvent("", "x")]


def test_an_endless_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_PENDING_BYTES", 100)
    with pytest.raises(wire.WireError):
        SSEDecoder().feed(b"data: " + b"x" * 200)
    with pytest.raises(wire.WireError):
        NDJSONDecoder().feed(b"x" * 200)


OLLAMA_LINES = [
    {"message": {"role": "assistant", "content": "Hel"}, "done": False},
    {"message": {"role": "assistant", "content": "lo é"}, "done": False},
    {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2},
]


@pytest.mark.parametrize("size", [1, 4, 9, 10_000])
def test_ndjson_lines_are_the_same_whatever_the_read_sizes(size: int) -> None:
    body = b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in OLLAMA_LINES) + b"\n"
    decoder = NDJSONDecoder()
    parts = []
    for start in range(0, len(body), size):
        parts += decoder.feed(body[start : start + size])
    assert parts + decoder.close() == OLLAMA_LINES


def test_ndjson_a_last_line_without_newline_comes_out_at_close() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert decoder.feed(b": 2}") == []
    assert decoder.close() == [{"b": 2}]


def test_ndjson_garbage_is_a_wire_error_that_quotes_it() -> None:
    with pytest.raises(wire.WireError, match="not JSON: 'this is not json'"):
        NDJSONDecoder().feed(b"this is not json\n")
