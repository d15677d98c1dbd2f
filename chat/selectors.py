"""Reads for chat. Every user-owned object is loaded through a `*_get_for_user` helper."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from chat.models import Conversation, Message

SIDEBAR_LIMIT = 100


def conversation_get_for_user(
    *, user: AbstractBaseUser | AnonymousUser, conversation_uuid: uuid.UUID | str
) -> Conversation:
    """The user's conversation, or Http404 (for other users' conversations too)."""
    if not user.is_authenticated:
        raise Http404("No such conversation.")
    try:
        return Conversation.objects.get(uuid=conversation_uuid, owner_id=user.pk)
    except (Conversation.DoesNotExist, ValidationError, ValueError, TypeError):  # a malformed id is no id
        raise Http404("No such conversation.") from None


def conversations_for_sidebar(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(owner_id=user.pk)
        .order_by("-updated_at")
        .only("uuid", "title", "updated_at")[:SIDEBAR_LIMIT]
    )


def messages_for_conversation(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return conversation.messages.filter(id__gt=after_id).order_by("id")


def message_as_frame(message: Message) -> dict[str, object]:
    """The message as the websocket and the page's script see it."""
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "html": message.content_html,
        "status": message.status,
        "model": message.model_label,
        "error": message.error,
        "usage": {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens},
        "first_token_ms": message.first_token_ms,
        "latency_ms": message.latency_ms,
        "citations": message.citations,
    }
