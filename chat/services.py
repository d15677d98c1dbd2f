"""Writes for chat: conversations, the messages of an exchange, and their outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.rendering import markdown_to_safe_html
from models_registry.models import LLMModel
from models_registry.providers.base import ChatMessage

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
# A streaming answer whose row has not been touched for this long lost its server.
STALE_AFTER = timedelta(seconds=60)


class ChatError(Exception):
    """A request the user can correct: `code` for the script, `detail` for the person."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Exchange:
    user_message: Message
    assistant_message: Message
    conversation: Conversation
    title_changed: bool


def conversation_create(*, owner: AbstractBaseUser) -> Conversation:
    return Conversation.objects.create(owner=owner)


def title_from_message(content: str) -> str:
    """The first line of the first message, cut at a word boundary."""
    line = next((part.strip() for part in content.splitlines() if part.strip()), "New chat")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return (cut or line[:TITLE_LENGTH]).rstrip(" ,.;:") + "…"


def exchange_start(*, conversation: Conversation, content: str, model: LLMModel) -> Exchange:
    """Save the user's message and an empty, streaming assistant message, in one transaction.

    Both rows are committed before any model is called, so a crash during generation
    never loses what the user wrote.
    """
    content = content.strip()
    if not content:
        raise ChatError("empty", "Write a message first.")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ChatError(
            "too_long",
            f"The message has {len(content):,} characters; the limit is {settings.CHAT_MAX_MESSAGE_CHARS:,}.",
        )
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        generations_reap_stale(conversation=locked)
        if locked.messages.filter(status=Message.Status.STREAMING).exists():
            raise ChatError("busy", "An answer is still being written. Wait for it or press Stop.")
        title_changed = not locked.messages.exists()
        user_message = Message.objects.create(conversation=locked, role=Message.Role.USER, content=content)
        assistant_message = Message.objects.create(
            conversation=locked,
            role=Message.Role.ASSISTANT,
            model=model,
            model_label=model.model_id,
            status=Message.Status.STREAMING,
        )
        locked.model = model
        if title_changed:
            locked.title = title_from_message(content)
        locked.save(update_fields=["model", "title", "updated_at"])
    return Exchange(user_message, assistant_message, locked, title_changed)


def history_for_generation(*, assistant_message: Message) -> list[ChatMessage]:
    """Earlier turns as the model should see them, ending with the user's new message.

    Failed answers with no text are left out; a partial answer counts as what was said.
    """
    earlier = (
        Message.objects.filter(conversation_id=assistant_message.conversation_id, id__lt=assistant_message.pk)
        .exclude(content="")
        .order_by("id")
        .values_list("role", "content")
    )
    return [{"role": role, "content": content} for role, content in earlier]  # type: ignore[typeddict-item]


def message_checkpoint(*, message_id: int, content: str) -> None:
    """Save a streaming answer's text so far (and mark the generation as alive)."""
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        content=content, updated_at=timezone.now()
    )


def message_finish(
    *,
    message_id: int,
    content: str,
    status: str,
    error_code: str = "",
    error: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    first_token_ms: int | None = None,
    latency_ms: int | None = None,
    citations: list[dict[str, object]] | None = None,
) -> Message:
    message = Message.objects.get(pk=message_id)
    message.citations = citations or []
    message.content = content
    message.content_html = markdown_to_safe_html(content) if content else ""
    message.status = status
    message.error_code = error_code
    message.error = error
    message.prompt_tokens = prompt_tokens
    message.completion_tokens = completion_tokens
    message.first_token_ms = first_token_ms
    message.latency_ms = latency_ms
    message.save()
    Conversation.objects.filter(pk=message.conversation_id).update(updated_at=timezone.now())
    return message


def generations_reap_stale(*, conversation: Conversation) -> int:
    """Mark answers whose server died mid-stream as interrupted, keeping their text."""
    stale = conversation.messages.filter(status=Message.Status.STREAMING, updated_at__lt=timezone.now() - STALE_AFTER)
    count = 0
    for message in stale:
        message_finish(
            message_id=message.pk,
            content=message.content,
            status=Message.Status.INTERRUPTED,
            error_code="server_restarted",
            error="The server stopped while writing this answer.",
        )
        count += 1
    if count:
        logger.warning("marked %d stale answers in conversation %s as interrupted", count, conversation.uuid)
    return count


def api_exchange_save(
    *,
    user: AbstractBaseUser,
    model: LLMModel,
    messages: list[ChatMessage],
    answer: str,
    status: str,
    error: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    first_token_ms: int | None = None,
    latency_ms: int | None = None,
) -> Conversation:
    """Save an API exchange as a conversation of its own, so it shows in the web app."""
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "API request")
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=user, title=title_from_message(first_user), model=model)
        Message.objects.bulk_create(
            [Message(conversation=conversation, role=m["role"], content=m["content"]) for m in messages]
        )
        Message.objects.create(
            conversation=conversation,
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
        )
    return conversation
