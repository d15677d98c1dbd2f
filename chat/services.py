"""Writes for conversations: creating, renaming, pinning and deleting them, attaching
sources to them, and saving an API exchange as one. The writes on their messages are in
`chat.exchanges`; model settings and presets in `chat.presets`."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from chat import realtime
from chat.models import Conversation, Message
from chat.rendering import markdown_to_safe_html
from ingestion.models import Source
from ingestion.services import SourceError, source_create_from_upload, source_create_from_url, source_url_clean
from models_registry.models import LLMModel
from models_registry.providers.base import ChatMessage
from multillm.user_text import UserTextError, json_clean, line_clean, text_storable

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
TITLE_MAX_LENGTH = 200
MAX_SOURCES_PER_CONVERSATION = 20


class ChatError(Exception):
    """A request the user can correct: `code` for the script, `detail` for the person."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def conversation_create(*, owner: User) -> Conversation:
    return Conversation.objects.create(owner=owner)


def title_from_message(content: str) -> str:
    """The first line of the first message, cut at a word boundary."""
    line = next((part for part in content.splitlines() if part.strip()), "")
    line = line_clean(line, label="A title", max_chars=len(line) or 1, required=False) or "New chat"
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return (cut or line[:TITLE_LENGTH]).rstrip(" ,.;:") + "…"


def api_exchange_save(
    *,
    user: User,
    model: LLMModel,
    messages: list[ChatMessage],
    answer: str,
    status: str,
    error: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    first_token_ms: int | None = None,
    latency_ms: int | None = None,
    citations: list[dict[str, Any]] | None = None,
) -> Conversation:
    """Save an API exchange as a conversation of its own, so it shows in the web app.

    System messages become the conversation's system prompt; the other messages become
    its turns (an assistant message answers the user message before it).
    """
    messages = [{"role": m["role"], "content": text_storable(m["content"])} for m in messages]
    answer, error = text_storable(answer), text_storable(error)
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "API request")
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=user, title=title_from_message(first_user), model=model, system_prompt=system
        )
        prompt: Message | None = None
        for m in messages:
            if m["role"] == "user":
                prompt = Message.objects.create(
                    conversation=conversation, role=Message.Role.USER, content=m["content"], parent=prompt
                )
            elif m["role"] == "assistant":
                Message.objects.create(
                    conversation=conversation, role=Message.Role.ASSISTANT, content=m["content"], parent=prompt
                )
        Message.objects.create(
            conversation=conversation,
            parent=prompt,
            role=Message.Role.ASSISTANT,
            content=answer,
            content_html=markdown_to_safe_html(answer) if answer else "",
            model=model,
            model_label=model.model_id,
            status=status,
            error=error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            first_token_ms=first_token_ms,
            latency_ms=latency_ms,
            citations=json_clean(citations or []),
        )
    return conversation


# Conversation management: rename, pin, delete. None of these moves the conversation in the
# sidebar (only new messages do), so they leave `updated_at` alone.


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    try:
        title = line_clean(title, label="A title", max_chars=TITLE_MAX_LENGTH)
    except UserTextError as exc:
        code = {"empty": "empty_title", "too_long": "title_too_long"}.get(exc.code, "bad_title")
        raise ChatError(code, "A title cannot be empty." if exc.code == "empty" else exc.detail) from None
    Conversation.objects.filter(pk=conversation.pk).update(title=title)
    conversation.title = title
    return conversation


def conversation_set_pinned(*, conversation: Conversation, pinned: bool) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(pinned=pinned)
    conversation.pinned = pinned
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete the conversation with its messages and attached sources (documents stay: others
    may use them). Answers still being written are stopped, wherever they run."""
    streaming = conversation.messages.filter(status=Message.Status.STREAMING).exists()
    conversation_uuid = conversation.uuid
    conversation.delete()
    logger.info("conversation %s deleted by its owner", conversation_uuid)
    if streaming:
        transaction.on_commit(lambda: realtime.generations_stop_from_sync(conversation_uuid=conversation_uuid))


def conversation_sources_delete(*, conversation: Conversation) -> int:
    """Delete the sources attached to this conversation and to no other (their documents stay).
    Runs before any deletion of a conversation, the page's, the admin's or a user's."""
    only_here = Source.objects.filter(conversations=conversation).exclude(
        conversations__in=Conversation.objects.exclude(pk=conversation.pk)
    )
    deleted, _ = Source.objects.filter(pk__in=list(only_here.values_list("pk", flat=True))).delete()
    return deleted


# Sources attached to a conversation: its answers are grounded in them.


def _room_for_a_source(conversation: Conversation) -> None:
    if conversation.sources.count() >= MAX_SOURCES_PER_CONVERSATION:
        raise SourceError("too_many_sources", f"A conversation holds at most {MAX_SOURCES_PER_CONVERSATION} sources.")


def conversation_source_attach_url(*, owner: User, conversation: Conversation, url: str) -> Source:
    """Attach a web address; the same address attached before (and not failed) is that source again."""
    url = source_url_clean(url)
    with transaction.atomic():
        _room_for_a_source(conversation)
        existing = conversation.sources.filter(url=url).exclude(status=Source.Status.FAILED).first()
        if existing is not None:
            return existing
        source = source_create_from_url(owner=owner, url=url)
        conversation.sources.add(source)
    return source


def conversation_source_attach_file(*, owner: User, conversation: Conversation, upload: UploadedFile) -> Source:
    with transaction.atomic():
        _room_for_a_source(conversation)
        source = source_create_from_upload(owner=owner, upload=upload)
        conversation.sources.add(source)
    return source


def conversation_source_detach(*, source: Source) -> None:
    """Remove a source from its conversation: the user's source goes, its document stays for
    others who use it."""
    source.delete()
