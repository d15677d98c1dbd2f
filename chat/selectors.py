"""Reads for chat. Every user-owned object is loaded through a `*_get_for_user` helper."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
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
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404("No such conversation.") from None


def conversations_for_sidebar(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(owner_id=user.pk)
        .order_by("-updated_at")
        .only("uuid", "title", "updated_at")[:SIDEBAR_LIMIT]
    )


@dataclass
class Turn:
    """One prompt on the shown branch and its current answer in each column."""

    prompt: Message
    replies: list[Message] = field(default_factory=list)


def _current_child(children: list[Message]) -> Message | None:
    return next((m for m in reversed(children) if m.is_current), children[-1] if children else None)


def active_path(messages: Iterable[Message]) -> list[Turn]:
    """The branch the conversation shows, from the conversation's messages (one query's rows).

    From the current first prompt, follow each prompt's current next prompt; for each
    prompt take the current version of the answer in every column.
    """
    prompts: dict[int | None, list[Message]] = {}
    replies: dict[int, dict[int, list[Message]]] = {}
    for message in sorted(messages, key=lambda m: m.pk):
        if message.role == Message.Role.USER:
            prompts.setdefault(message.parent_id, []).append(message)
        elif message.role == Message.Role.ASSISTANT and message.parent_id is not None:
            replies.setdefault(message.parent_id, {}).setdefault(message.column, []).append(message)
    path: list[Turn] = []
    prompt = _current_child(prompts.get(None, []))
    while prompt is not None:
        columns = replies.get(prompt.pk, {})
        path.append(Turn(prompt, [c for col in sorted(columns) if (c := _current_child(columns[col])) is not None]))
        prompt = _current_child(prompts.get(prompt.pk, []))
    return path


def messages_for_conversation(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return conversation.messages.filter(id__gt=after_id).order_by("id")


def message_as_frame(message: Message) -> dict[str, object]:
    """The message as the websocket and the page's script see it."""
    return {
        "id": message.pk,
        "parent": message.parent_id,
        "column": message.column,
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
