"""Text that people and programs send us, checked once, in the services every entry point calls.

Pages, websocket frames, API bodies, imported files and admin forms all end in a service;
the services clean their strings here, so a check cannot be forgotten at one entry point.

What the checks guard against:
- NUL, which PostgreSQL cannot store in text or JSON (a save fails deep inside a request);
- lone surrogates (halves of UTF-16 pairs that a JSON `\\ud800` escape can carry), which
  cannot be encoded as UTF-8 for the database;
- other control characters, which mean nothing in text and can hide or fake content
  (terminal escapes in logs, bidirectional overrides that reverse a title on screen);
- sizes: every text has a limit, and the message says what it is.
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls, and DEL; tab, newline and carriage return are text.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# In a one-line label, line breaks and tabs become spaces, and the bidirectional embeddings,
# overrides and isolates go: they can make a title read backwards or hide what follows it.
_LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029\x85]")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class UserTextError(ValueError):
    """Text that cannot be taken as it is: `code` for scripts, `detail` for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def text_storable(value: str) -> str:
    """Text with no limit on its size (a model's answer, an upstream's error), made storable:
    control characters other than tab and line breaks removed, lone surrogates replaced."""
    if _SURROGATES.search(value):
        value = _SURROGATES.sub(REPLACEMENT, value)
    return _CONTROLS.sub("", value)


def text_clean(value: Any, *, label: str, max_chars: int, required: bool = False) -> str:
    """Multi-line text (a message, a prompt): control characters other than tab and line
    breaks removed, lone surrogates replaced by U+FFFD; then at most `max_chars` characters,
    and not blank when `required`. Leading and trailing space is the caller's to keep or trim.

    `label` names the text in messages, capitalised: "The message", "The system prompt".
    """
    if not isinstance(value, str):
        raise UserTextError("not_text", f"{label} must be text.")
    # The length is checked first too: cleaning a huge string is work a refusal saves.
    if len(value) > max_chars * 2:
        raise UserTextError("too_long", _too_long(label, len(value), max_chars))
    value = text_storable(value)
    if len(value) > max_chars:
        raise UserTextError("too_long", _too_long(label, len(value), max_chars))
    if required and not value.strip():
        raise UserTextError("empty", f"{label} is empty.")
    return value


def line_clean(value: Any, *, label: str, max_chars: int, required: bool = True) -> str:
    """A one-line label (a title, a name): like `text_clean`, and also line breaks and tabs as
    spaces, bidirectional controls removed, runs of white space made one, trimmed."""
    if not isinstance(value, str):
        raise UserTextError("not_text", f"{label} must be text.")
    if len(value) > max_chars * 4:
        raise UserTextError("too_long", _too_long(label, len(value), max_chars))
    value = _BIDI_CONTROLS.sub("", text_storable(_LINE_BREAKS.sub(" ", value)))
    value = " ".join(value.split())
    if len(value) > max_chars:
        raise UserTextError("too_long", _too_long(label, len(value), max_chars))
    if required and not value:
        raise UserTextError("empty", f"{label} cannot be empty.")
    return value


def json_clean(value: Any) -> Any:
    """A JSON value (lists, objects, strings, numbers) with every string, keys included,
    cleaned as `text_clean` does: PostgreSQL's jsonb refuses `\\u0000` too."""
    if isinstance(value, str):
        return text_storable(value)
    if isinstance(value, list):
        return [json_clean(item) for item in value]
    if isinstance(value, dict):
        return {text_storable(str(key)): json_clean(item) for key, item in value.items()}
    return value


def json_unstorable(value: Any) -> bool:
    """Whether a JSON value holds a string (or key) the database cannot store as it is."""
    if isinstance(value, str):
        return "\x00" in value or _SURROGATES.search(value) is not None
    if isinstance(value, list):
        return any(json_unstorable(item) for item in value)
    if isinstance(value, dict):
        return any(json_unstorable(key) or json_unstorable(item) for key, item in value.items())
    return False


def validate_storable_json(value: Any) -> None:
    """A model field validator (admin forms): refuse JSON holding NUL or lone surrogates."""
    from django.core.exceptions import ValidationError

    if json_unstorable(value):
        raise ValidationError("This value holds a NUL character or an unpaired surrogate, which cannot be stored.")


def utf8_decode(raw: bytes, *, label: str) -> str:
    """Bytes that must be UTF-8 text (a byte order mark is allowed and dropped)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserTextError("not_utf8", f"{label} is not UTF-8 text (a bad byte at position {exc.start:,}).") from None


def _too_long(label: str, length: int, limit: int) -> str:
    return f"{label} has {length:,} characters; the limit is {limit:,}."
