"""Writes on a conversation's tree of messages: a new exchange (a prompt and its streaming
answers), edits, regenerations, the version shown, "continue with this", votes, and how
each answer ends."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message, Vote
from chat.rendering import markdown_to_safe_html
from chat.services import ChatError, title_from_message
from chat.tree import TREE_FIELDS, active_path
from models_registry.models import LLMModel
from multillm.user_text import UserTextError, json_clean, text_clean, text_storable

logger = logging.getLogger(__name__)

MAX_SIDE_BY_SIDE = 4
# A streaming answer whose row has not been touched for this long lost its server.
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Exchange:
    """A prompt and the streaming answers (one per model, by column) just saved for it."""

    user_message: Message
    assistant_messages: list[Message]
    conversation: Conversation
    title_changed: bool

    @property
    def assistant_message(self) -> Message:
        return self.assistant_messages[0]


def _check_content(content: str) -> str:
    try:
        return text_clean(
            content, label="The message", max_chars=settings.CHAT_MAX_MESSAGE_CHARS, required=True
        ).strip()
    except UserTextError as exc:
        raise ChatError(exc.code, "Write a message first." if exc.code == "empty" else exc.detail) from None


def _check_models(models: list[LLMModel]) -> None:
    if not models:
        raise ChatError("bad_frame", "Pick a model.")
    if len(models) > MAX_SIDE_BY_SIDE:
        raise ChatError("too_many_models", f"Pick at most {MAX_SIDE_BY_SIDE} models to compare side by side.")
    if len({m.pk for m in models}) != len(models):
        raise ChatError("duplicate_model", "Each model can be picked only once.")


def _lock(conversation: Conversation) -> Conversation:
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    generations_reap_stale(conversation=locked)
    return locked


def _refuse_if_busy(conversation: Conversation) -> None:
    if conversation.messages.filter(status=Message.Status.STREAMING).exists():
        raise ChatError("busy", "An answer is still being written. Wait for it or press Stop.")


def _lock_idle(conversation: Conversation) -> Conversation:
    """The conversation locked, once no answer is being written in it (else ChatError "busy").
    One read of its streaming answers serves both the stale ones' reaping and the check."""
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    streaming = list(locked.messages.filter(status=Message.Status.STREAMING).only("id", "content", "updated_at"))
    stale = [m for m in streaming if m.updated_at < timezone.now() - STALE_AFTER]
    _reap(locked, stale)
    if len(stale) < len(streaming):
        raise ChatError("busy", "An answer is still being written. Wait for it or press Stop.")
    return locked


def _answers_create(*, conversation: Conversation, prompt: Message, models: list[LLMModel]) -> list[Message]:
    """One streaming answer per model, in columns 0..n-1 (shuffled when the prompt is blind,
    so the column gives no hint of the model)."""
    ordered = list(models)
    if prompt.blind:
        random.shuffle(ordered)
    return [
        Message.objects.create(
            conversation=conversation,
            parent=prompt,
            column=column,
            role=Message.Role.ASSISTANT,
            model=model,
            model_label=model.model_id,
            status=Message.Status.STREAMING,
        )
        for column, model in enumerate(ordered)
    ]


def _remember_models(conversation: Conversation, models: list[LLMModel], blind: bool) -> None:
    conversation.model = models[0]
    conversation.selected_models = [m.model_id for m in models]
    conversation.blind = blind and len(models) > 1


def exchange_start(
    *, conversation: Conversation, content: str, models: list[LLMModel], blind: bool = False
) -> Exchange:
    """Save the user's message and an empty, streaming answer per model, in one transaction.

    All rows are committed before any model is called, so a crash during generation
    never loses what the user wrote. The composer's choice (models, blind) is remembered.
    """
    content = _check_content(content)
    _check_models(models)
    with transaction.atomic():
        locked = _lock_idle(conversation)
        path = active_path(locked.messages.only(*TREE_FIELDS))
        title_changed = not path
        user_message = Message.objects.create(
            conversation=locked,
            role=Message.Role.USER,
            content=content,
            parent_id=path[-1].prompt.pk if path else None,
            blind=blind and len(models) > 1,
        )
        answers = _answers_create(conversation=locked, prompt=user_message, models=models)
        _remember_models(locked, models, blind)
        if title_changed:
            locked.title = title_from_message(content)
        locked.save(update_fields=["model", "selected_models", "blind", "title", "updated_at"])
    return Exchange(user_message, answers, locked, title_changed)


def _message_in(conversation: Conversation, message_id: int, role: str) -> Message:
    try:
        return conversation.messages.select_for_update().get(pk=message_id, role=role)
    except Message.DoesNotExist:
        raise ChatError("not_found", "That message is not in this conversation.") from None


def _make_current(message: Message) -> None:
    """Show `message` instead of its sibling versions (same parent, role and column)."""
    Message.objects.filter(
        conversation_id=message.conversation_id, parent_id=message.parent_id, role=message.role, column=message.column
    ).exclude(pk=message.pk).update(is_current=False)
    if not message.is_current:
        message.is_current = True
        message.save(update_fields=["is_current"])


def answer_regenerate(*, conversation: Conversation, message_id: int) -> Message:
    """A new version of an answer, by the same model in the same column, shown in its place.

    Other columns may still be streaming; only this column must have finished.
    """
    with transaction.atomic():
        locked = _lock(conversation)
        old = _message_in(locked, message_id, Message.Role.ASSISTANT)
        if old.parent_id is None:
            raise ChatError("not_found", "That answer has no prompt to answer again.")
        if old.model is None:
            raise ChatError("model_unavailable", "The model of this answer no longer exists.")
        if locked.messages.filter(
            parent_id=old.parent_id, column=old.column, role=old.role, status=Message.Status.STREAMING
        ).exists():
            raise ChatError("busy", "This answer is still being written. Wait for it or press Stop.")
        new = Message.objects.create(
            conversation=locked,
            parent_id=old.parent_id,
            column=old.column,
            role=Message.Role.ASSISTANT,
            model=old.model,
            model_label=old.model.model_id,
            status=Message.Status.STREAMING,
        )
        _make_current(new)
        prompt = Message.objects.get(pk=old.parent_id)
        if prompt.chosen_reply_id is not None and prompt.chosen_reply_id == old.pk:
            prompt.chosen_reply = new
            prompt.save(update_fields=["chosen_reply"])
        locked.save(update_fields=["updated_at"])
    return new


def prompt_edit(
    *, conversation: Conversation, message_id: int, content: str, models: list[LLMModel], blind: bool = False
) -> Exchange:
    """An edited prompt: a new version beside the old one (same parent), which becomes the
    shown branch, with new answers from `models`. The old branch is kept."""
    content = _check_content(content)
    _check_models(models)
    with transaction.atomic():
        locked = _lock(conversation)
        old = _message_in(locked, message_id, Message.Role.USER)
        _refuse_if_busy(locked)
        user_message = Message.objects.create(
            conversation=locked,
            role=Message.Role.USER,
            content=content,
            parent_id=old.parent_id,
            blind=blind and len(models) > 1,
        )
        _make_current(user_message)
        answers = _answers_create(conversation=locked, prompt=user_message, models=models)
        _remember_models(locked, models, blind)
        locked.save(update_fields=["model", "selected_models", "blind", "updated_at"])
    return Exchange(user_message, answers, locked, False)


def version_show(*, conversation: Conversation, message_id: int) -> Message:
    """Show this version of a prompt or an answer; the branch below follows its own current choices."""
    with transaction.atomic():
        locked = _lock(conversation)
        try:
            message = locked.messages.select_for_update().get(pk=message_id)
        except Message.DoesNotExist:
            raise ChatError("not_found", "That message is not in this conversation.") from None
        _make_current(message)
    return message


def reply_choose(*, conversation: Conversation, prompt_id: int, message_id: int | None) -> Conversation:
    """ "Continue with this": later turns go to this answer's model only, with this answer as
    history. With no message, "continue with all": every model of the turn again."""
    with transaction.atomic():
        locked = _lock(conversation)
        prompt = _message_in(locked, prompt_id, Message.Role.USER)
        replies = list(prompt.children.filter(role=Message.Role.ASSISTANT, is_current=True).order_by("column"))
        if prompt.blind and not Vote.objects.filter(prompt=prompt).exists():
            raise ChatError("vote_first", "Vote first: picking an answer would show which model wrote it.")
        chosen: Message | None = None
        if message_id is not None:
            chosen = next((m for m in replies if m.pk == message_id), None)
            if chosen is None:
                raise ChatError("not_found", "That answer is not one of the shown answers to this prompt.")
        prompt.chosen_reply = chosen
        prompt.save(update_fields=["chosen_reply"])
        labels = [m.model_label for m in ([chosen] if chosen else replies) if m.model_label]
        if labels:
            locked.selected_models = list(dict.fromkeys(labels))
            locked.blind = locked.blind and len(locked.selected_models) > 1
        locked.save(update_fields=["selected_models", "blind", "updated_at"])
    return locked


def vote_cast(*, owner: User, conversation: Conversation, prompt_id: int, winner_id: int | None) -> Vote:
    """Record which side-by-side answer to a prompt was best (None: a tie). One vote per prompt."""
    with transaction.atomic():
        locked = _lock(conversation)
        if locked.owner_id != owner.pk:
            raise ChatError("not_found", "That message is not in this conversation.")
        prompt = _message_in(locked, prompt_id, Message.Role.USER)
        replies = list(prompt.children.filter(role=Message.Role.ASSISTANT, is_current=True).order_by("column"))
        if len(replies) < 2:
            raise ChatError("not_comparable", "Votes compare two or more answers to one prompt.")
        if any(m.status == Message.Status.STREAMING for m in replies):
            raise ChatError("busy", "Wait for every answer to finish before voting.")
        winner: Message | None = None
        if winner_id is not None:
            winner = next((m for m in replies if m.pk == winner_id), None)
            if winner is None:
                raise ChatError("not_found", "That answer is not one of the shown answers to this prompt.")
        if Vote.objects.filter(prompt=prompt).exists():
            raise ChatError("already_voted", "You have already voted on these answers.")
        return Vote.objects.create(
            owner=owner,
            prompt=prompt,
            winner=winner,
            contenders=[m.model_label for m in replies],
            winner_model=winner.model_label if winner else "",
        )


def message_checkpoint(*, message_id: int, content: str) -> None:
    """Save a streaming answer's text so far (and mark the generation as alive)."""
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        content=text_storable(content), updated_at=timezone.now()
    )


# What the end of an answer writes: only these, so a change made meanwhile to the row's place
# in the tree (`is_current` by a version switch, say) is never overwritten with an old value.
FINISH_FIELDS = [
    "content", "content_html", "status", "error_code", "error", "prompt_tokens", "completion_tokens",
    "first_token_ms", "latency_ms", "citations", "updated_at",
]  # fmt: skip


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
    """Save how an answer ended. The text comes from a model: it is made storable, not refused."""
    message = Message.objects.get(pk=message_id)
    content = text_storable(content)
    message.citations = json_clean(citations or [])
    message.content = content
    message.content_html = markdown_to_safe_html(content) if content else ""
    message.status = status
    message.error_code = error_code
    message.error = text_storable(error)
    message.prompt_tokens = prompt_tokens
    message.completion_tokens = completion_tokens
    message.first_token_ms = first_token_ms
    message.latency_ms = latency_ms
    message.save(update_fields=FINISH_FIELDS)
    Conversation.objects.filter(pk=message.conversation_id).update(updated_at=timezone.now())
    return message


def generations_reap_stale(*, conversation: Conversation) -> int:
    """Mark answers whose server died mid-stream as interrupted, keeping their text."""
    stale = conversation.messages.filter(status=Message.Status.STREAMING, updated_at__lt=timezone.now() - STALE_AFTER)
    return _reap(conversation, list(stale))


def _reap(conversation: Conversation, stale: list[Message]) -> int:
    for message in stale:
        message_finish(
            message_id=message.pk,
            content=message.content,
            status=Message.Status.INTERRUPTED,
            error_code="server_restarted",
            error="The server stopped while writing this answer.",
        )
    if stale:
        logger.warning("marked %d stale answers in conversation %s as interrupted", len(stale), conversation.uuid)
    return len(stale)
