"""Conversations as files: export as Markdown (the branch shown) or JSON (everything), and
import the JSON back as a new conversation of the importer.

The JSON holds the whole tree of turns with ids local to the file (1, 2, ... in the order
the messages were written), so exporting an imported conversation gives the same file
again, apart from the dates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.presets import MAX_TOKENS_RANGE, SYSTEM_PROMPT_MAX_CHARS, TEMPERATURE_RANGE
from chat.rendering import markdown_to_safe_html
from chat.services import TITLE_MAX_LENGTH
from chat.tree import active_path, error_without_model
from models_registry.models import LLMModel
from multillm.user_text import UserTextError, json_clean, line_clean, text_clean, utf8_decode

FORMAT = "multi-llm-chat/conversation"
VERSION = 1
IMPORT_MAX_BYTES = 10 * 1024 * 1024
IMPORT_MAX_MESSAGES = 10_000
MESSAGE_MAX_CHARS = 1_000_000
MAX_COLUMNS = 16
MAX_CITATIONS = 200

CONVERSATION_FIELDS = {"title", "created_at", "system_prompt", "temperature", "max_tokens", "selected_models", "blind"}
MESSAGE_FIELDS = {
    "id",
    "parent",
    "column",
    "is_current",
    "chosen_reply",
    "role",
    "content",
    "model",
    "status",
    "error_code",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "first_token_ms",
    "latency_ms",
    "citations",
    "created_at",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def conversation_export_data(*, conversation: Conversation) -> dict[str, Any]:
    """The conversation and its whole tree of messages, with ids local to the export."""
    messages = list(conversation.messages.exclude(role=Message.Role.SYSTEM).order_by("id"))
    local = {m.pk: index for index, m in enumerate(messages, start=1)}
    secret = _blind_prompt_ids(conversation)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _iso(timezone.now()),
        "conversation": {
            "title": conversation.title,
            "created_at": _iso(conversation.created_at),
            "system_prompt": conversation.system_prompt,
            "temperature": conversation.temperature,
            "max_tokens": conversation.max_tokens,
            "selected_models": list(conversation.selected_models or []),
            "blind": conversation.blind,
        },
        "messages": [
            {
                "id": local[m.pk],
                "parent": local.get(m.parent_id) if m.parent_id else None,
                "column": m.column,
                "is_current": m.is_current,
                "chosen_reply": local.get(m.chosen_reply_id) if m.chosen_reply_id else None,
                "role": m.role,
                "content": m.content,
                "model": None if m.parent_id in secret else (m.model_label or None),
                "status": m.status,
                "error_code": m.error_code,
                "error": error_without_model(m) if m.parent_id in secret else m.error,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "first_token_ms": m.first_token_ms,
                "latency_ms": m.latency_ms,
                "citations": m.citations or [],
                "created_at": _iso(m.created_at),
            }
            for m in messages
        ],
    }


def conversation_export_json(*, conversation: Conversation) -> str:
    return json.dumps(conversation_export_data(conversation=conversation), ensure_ascii=False, indent=2)


def _blind_prompt_ids(conversation: Conversation) -> set[int]:
    """Blind prompts not voted on yet: an export keeps their answers' models secret too."""
    blind = conversation.messages.filter(role=Message.Role.USER, blind=True, vote__isnull=True)
    return set(blind.values_list("id", flat=True))


def _answer_heading(message: Message, *, hidden: bool = False) -> str:
    details = []
    if message.completion_tokens:
        details.append(f"{message.completion_tokens} tokens")
    if message.first_token_ms is not None:
        details.append(f"first token {message.first_token_ms} ms")
    if message.latency_ms is not None:
        details.append(f"{message.latency_ms / 1000:.1f} s")
    if message.status != Message.Status.COMPLETE:
        details.append(message.get_status_display().lower())
    name = "A hidden model (blind, not voted on yet)" if hidden else (message.model_label or "Assistant")
    return f"### {name}" + (f" ({' · '.join(details)})" if details else "")


def _citation_line(citation: dict[str, Any]) -> str:
    label = str(citation.get("title") or citation.get("url") or citation.get("file_name") or "Source")
    url = str(citation.get("url") or "")
    text = f"[{label}](<{url}>)" if url.startswith(("http://", "https://")) else label
    if citation.get("page"):
        text += f", page {citation['page']}"
    rows = citation.get("rows")
    if isinstance(rows, list) and len(rows) == 2:
        text += f", rows {rows[0]}–{rows[1]}"
    return f"{citation.get('number', '-')}. {text}"


def conversation_export_markdown(*, conversation: Conversation) -> str:
    """The branch the conversation shows, as a Markdown document."""
    secret = _blind_prompt_ids(conversation)
    lines = [
        f"# {conversation.title}",
        "",
        f"*Exported from Multi-LLM Chat on {timezone.now():%Y-%m-%d %H:%M %Z}.*",
        "",
    ]
    settings = []
    if conversation.temperature is not None:
        settings.append(f"temperature {conversation.temperature:g}")
    if conversation.max_tokens is not None:
        settings.append(f"max tokens {conversation.max_tokens}")
    if settings:
        lines += [f"Settings: {', '.join(settings)}.", ""]
    if conversation.system_prompt:
        lines += ["**System prompt:**", "", *[f"> {line}" for line in conversation.system_prompt.splitlines()], ""]
    for turn in active_path(conversation.messages.exclude(role=Message.Role.SYSTEM)):
        lines += ["---", "", "### You", "", turn.prompt.content, ""]
        for reply in turn.replies:
            hidden = reply.parent_id in secret
            lines += [_answer_heading(reply, hidden=hidden), "", reply.content or "*(no answer)*", ""]
            if reply.error:
                lines += [f"> Error: {error_without_model(reply) if hidden else reply.error}", ""]
            if reply.citations:
                lines += ["Sources:", "", *[_citation_line(c) for c in reply.citations], ""]
    return "\n".join(lines).rstrip() + "\n"


class ConversationImportError(Exception):
    """A file that cannot be imported; `detail` says what is wrong and where."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class _Row:
    local_id: int
    parent: int | None
    chosen_reply: int | None
    fields: dict[str, Any]


def _fail(where: str, what: str) -> ConversationImportError:
    return ConversationImportError(f"{where}: {what}")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_count(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < 0 or value > 2**31 - 1:
        raise _fail(where, "must be empty (null) or a whole number of at least 0.")
    return value


def _text(where: str, value: Any, limit: int, *, optional: bool = True) -> str:
    if value is None and optional:
        return ""
    try:
        return text_clean(value, label=where, max_chars=limit)
    except UserTextError as exc:
        raise _fail(
            where, "must be text." if exc.code == "not_text" else f"is longer than {limit:,} characters."
        ) from None


def _line(where: str, value: Any, limit: int) -> str:
    if value is None:
        return ""
    try:
        return line_clean(value, label=where, max_chars=limit, required=False)
    except UserTextError as exc:
        raise _fail(
            where, "must be text." if exc.code == "not_text" else f"is longer than {limit:,} characters."
        ) from None


def _check_keys(where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(where, f"has fields this format does not know: {', '.join(unknown)}.")


def _parse_conversation(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail("conversation", "must be an object.")
    _check_keys("conversation", data, CONVERSATION_FIELDS)
    title = _line("conversation.title", data.get("title"), TITLE_MAX_LENGTH) or "Imported chat"
    temperature = data.get("temperature")
    low, high = TEMPERATURE_RANGE
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or not low <= temperature <= high
    ):
        raise _fail("conversation.temperature", f"must be empty (null) or a number from {low:g} to {high:g}.")
    max_tokens = data.get("max_tokens")
    if max_tokens is not None and (
        not _is_int(max_tokens) or not MAX_TOKENS_RANGE[0] <= max_tokens <= MAX_TOKENS_RANGE[1]
    ):
        raise _fail(
            "conversation.max_tokens",
            f"must be empty (null) or a whole number from {MAX_TOKENS_RANGE[0]} to {MAX_TOKENS_RANGE[1]:,}.",
        )
    selected = data.get("selected_models", [])
    if not isinstance(selected, list) or len(selected) > 16 or not all(isinstance(m, str) for m in selected):
        raise _fail("conversation.selected_models", "must be a list of model ids (text), at most 16.")
    selected = [_line(f"conversation.selected_models[{i}]", m, 300) for i, m in enumerate(selected)]
    blind = data.get("blind", False)
    if not isinstance(blind, bool):
        raise _fail("conversation.blind", "must be true or false.")
    return {
        "title": title,
        "system_prompt": _text("conversation.system_prompt", data.get("system_prompt"), SYSTEM_PROMPT_MAX_CHARS),
        "temperature": float(temperature) if temperature is not None else None,
        "max_tokens": max_tokens,
        "selected_models": selected,
        "blind": blind,
    }


def _parse_message(index: int, data: Any, seen: dict[int, str]) -> _Row:
    where = f"messages[{index}]"
    if not isinstance(data, dict):
        raise _fail(where, "must be an object.")
    _check_keys(where, data, MESSAGE_FIELDS)
    local_id = data.get("id")
    if not _is_int(local_id) or local_id < 1:
        raise _fail(f"{where}.id", "must be a whole number of at least 1.")
    if local_id in seen:
        raise _fail(f"{where}.id", f"{local_id} is used by an earlier message too.")
    role = data.get("role")
    if role not in (Message.Role.USER, Message.Role.ASSISTANT):
        raise _fail(f"{where}.role", 'must be "user" or "assistant".')
    parent = data.get("parent")
    if parent is not None and (not _is_int(parent) or seen.get(parent) != Message.Role.USER):
        raise _fail(f"{where}.parent", f"{parent!r} is not the id of an earlier user message.")
    column = data.get("column", 0)
    if not _is_int(column) or not 0 <= column < MAX_COLUMNS:
        raise _fail(f"{where}.column", f"must be a whole number from 0 to {MAX_COLUMNS - 1}.")
    is_current = data.get("is_current", True)
    if not isinstance(is_current, bool):
        raise _fail(f"{where}.is_current", "must be true or false.")
    chosen = data.get("chosen_reply")
    if chosen is not None and (role != Message.Role.USER or not _is_int(chosen)):
        raise _fail(f"{where}.chosen_reply", "must be empty (null), or on a user message the id of one of its answers.")
    status = data.get("status", Message.Status.COMPLETE)
    if status not in Message.Status.values:
        raise _fail(f"{where}.status", f"must be one of {', '.join(Message.Status.values)}.")
    if status == Message.Status.STREAMING:
        status = Message.Status.INTERRUPTED  # nothing is writing it any more
    citations = data.get("citations", [])
    if (
        not isinstance(citations, list)
        or len(citations) > MAX_CITATIONS
        or not all(isinstance(c, dict) for c in citations)
    ):
        raise _fail(f"{where}.citations", f"must be a list of at most {MAX_CITATIONS} objects.")
    if len(json.dumps(citations)) > MESSAGE_MAX_CHARS:
        raise _fail(f"{where}.citations", "are too large.")
    seen[local_id] = role
    content = _text(f"{where}.content", data.get("content"), MESSAGE_MAX_CHARS)
    return _Row(
        local_id=local_id,
        parent=parent,
        chosen_reply=chosen,
        fields={
            "role": role,
            "column": column,
            "is_current": is_current,
            "content": content,
            "model_label": _line(f"{where}.model", data.get("model"), 300),
            "status": status,
            "error_code": _line(f"{where}.error_code", data.get("error_code"), 50),
            "error": _text(f"{where}.error", data.get("error"), 10_000),
            "prompt_tokens": _optional_count(f"{where}.prompt_tokens", data.get("prompt_tokens")),
            "completion_tokens": _optional_count(f"{where}.completion_tokens", data.get("completion_tokens")),
            "first_token_ms": _optional_count(f"{where}.first_token_ms", data.get("first_token_ms")),
            "latency_ms": _optional_count(f"{where}.latency_ms", data.get("latency_ms")),
            "citations": json_clean(citations),
        },
    )


def conversation_import_parse(raw: bytes) -> tuple[dict[str, Any], list[_Row]]:
    """Check a file completely before anything is saved; ConversationImportError says what is wrong."""
    if len(raw) > IMPORT_MAX_BYTES:
        raise ConversationImportError(f"The file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        data = json.loads(utf8_decode(raw, label="The file"))
    except UserTextError as exc:
        raise ConversationImportError(f"{exc.detail} Choose a JSON file exported from Multi-LLM Chat.") from None
    except RecursionError:
        raise ConversationImportError("The file nests its values too deeply to be an export of this app.") from None
    except json.JSONDecodeError as exc:
        raise ConversationImportError(
            f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConversationImportError(
            f'This is not a Multi-LLM Chat conversation export (its "format" must be "{FORMAT}").'
        )
    if data.get("version") != VERSION:
        raise ConversationImportError(
            f"This export has version {data.get('version')!r}; this app reads version {VERSION}."
        )
    _check_keys("the file", data, {"format", "version", "exported_at", "conversation", "messages"})
    conversation = _parse_conversation(data.get("conversation"))
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise _fail("messages", "must be a list.")
    if len(messages) > IMPORT_MAX_MESSAGES:
        raise _fail("messages", f"has {len(messages):,} messages; at most {IMPORT_MAX_MESSAGES:,} can be imported.")
    seen: dict[int, str] = {}
    rows = [_parse_message(index, item, seen) for index, item in enumerate(messages)]
    parents = {row.local_id: row.parent for row in rows}
    for index, row in enumerate(rows):
        if row.chosen_reply is not None and (
            seen.get(row.chosen_reply) != Message.Role.ASSISTANT or parents.get(row.chosen_reply) != row.local_id
        ):
            raise _fail(f"messages[{index}].chosen_reply", f"{row.chosen_reply} is not an answer to this message.")
    return conversation, rows


def conversation_import(*, owner: User, raw: bytes) -> Conversation:
    """A new conversation of `owner` from an exported JSON file, or ConversationImportError with nothing saved."""
    fields, rows = conversation_import_parse(raw)
    labels = {row.fields["model_label"] for row in rows if row.fields["model_label"]}
    models: dict[str, LLMModel] = {}
    for model in LLMModel.objects.select_related("provider").filter(
        name__in={label.partition("/")[2] for label in labels}
    ):
        if model.model_id in labels:
            models[model.model_id] = model
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=owner, **fields)
        created: dict[int, Message] = {}
        for row in rows:
            content = row.fields["content"]
            message = Message(
                conversation=conversation,
                parent=created[row.parent] if row.parent is not None else None,
                model=models.get(row.fields["model_label"]),
                content_html=markdown_to_safe_html(content)
                if content and row.fields["role"] == Message.Role.ASSISTANT
                else "",
                **row.fields,
            )
            message.save()
            created[row.local_id] = message
        for row in rows:
            if row.chosen_reply is not None:
                Message.objects.filter(pk=created[row.local_id].pk).update(chosen_reply=created[row.chosen_reply])
        last_model = next((m.model for m in reversed(created.values()) if m.model_id), None)
        if last_model is not None:
            conversation.model = last_model
            Conversation.objects.filter(pk=conversation.pk).update(model=last_model)
    return conversation
