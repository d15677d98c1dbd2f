"""Writes for chat: conversations, the messages of an exchange, and their outcome."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message, Preset, Vote
from chat.rendering import markdown_to_safe_html
from chat.selectors import TREE_FIELDS, active_path
from models_registry.models import LLMModel
from models_registry.providers.base import ChatMessage

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
TITLE_MAX_LENGTH = 200
TEMPERATURE_RANGE = (0.0, 2.0)
MAX_TOKENS_RANGE = (1, 131_072)
SYSTEM_PROMPT_MAX_CHARS = 20_000
PRESET_NAME_MAX_LENGTH = 100
# A streaming answer whose row has not been touched for this long lost its server.
STALE_AFTER = timedelta(seconds=60)


class ChatError(Exception):
    """A request the user can correct: `code` for the script, `detail` for the person."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


MAX_SIDE_BY_SIDE = 4


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


def conversation_create(*, owner: User) -> Conversation:
    return Conversation.objects.create(owner=owner)


def title_from_message(content: str) -> str:
    """The first line of the first message, cut at a word boundary."""
    line = next((part.strip() for part in content.splitlines() if part.strip()), "New chat")
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return (cut or line[:TITLE_LENGTH]).rstrip(" ,.;:") + "…"


def _check_content(content: str) -> str:
    content = content.strip()
    if not content:
        raise ChatError("empty", "Write a message first.")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ChatError(
            "too_long",
            f"The message has {len(content):,} characters; the limit is {settings.CHAT_MAX_MESSAGE_CHARS:,}.",
        )
    return content


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


def _reply_for(prompt: Message, answers: list[Message], answer: Message) -> Message | None:
    """Which earlier answer to `prompt` the model writing `answer` sees as history.

    The answer the user picked ("continue with this") wins; otherwise the model's own
    answer (each model gets its own side of a side-by-side history), then the answer in
    the same column, then the first column's.
    """
    shown = [m for m in answers if m.is_current and m.content]
    if prompt.chosen_reply_id is not None:
        chosen = next((m for m in answers if m.pk == prompt.chosen_reply_id and m.content), None)
        if chosen is not None:
            return chosen
    for same in (
        lambda m: answer.model_id is not None and m.model_id == answer.model_id,
        lambda m: m.column == answer.column,
        lambda m: True,
    ):
        found = next((m for m in shown if same(m)), None)
        if found is not None:
            return found
    return None


def history_for_generation(*, assistant_message: Message) -> list[ChatMessage]:
    """The branch up to this answer as its model should see it: the conversation's system
    prompt, then each earlier prompt with one answer, ending with the prompt being answered.

    The branch is the answer's ancestry (not whatever the page shows now), so an answer
    being regenerated or written beside others sees the history it was asked with.
    Failed answers with no text are left out; a partial answer counts as what was said.
    """
    conversation = assistant_message.conversation
    rows = list(conversation.messages.exclude(role=Message.Role.SYSTEM).order_by("id"))
    by_id = {m.pk: m for m in rows}
    answers: dict[int, list[Message]] = {}
    for m in rows:
        if m.role == Message.Role.ASSISTANT and m.parent_id is not None:
            answers.setdefault(m.parent_id, []).append(m)
    prompts: list[Message] = []
    prompt = by_id.get(assistant_message.parent_id) if assistant_message.parent_id else None
    while prompt is not None:
        prompts.append(prompt)
        prompt = by_id.get(prompt.parent_id) if prompt.parent_id else None
    prompts.reverse()
    history: list[ChatMessage] = []
    if conversation.system_prompt.strip():
        history.append({"role": "system", "content": conversation.system_prompt.strip()})
    for index, prompt in enumerate(prompts):
        history.append({"role": "user", "content": prompt.content})
        if index < len(prompts) - 1:
            reply = _reply_for(prompt, answers.get(prompt.pk, []), assistant_message)
            if reply is not None:
                history.append({"role": "assistant", "content": reply.content})
    return history


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
            citations=citations or [],
        )
    return conversation


# Conversation management: rename, pin, delete, settings. None of these moves the
# conversation in the sidebar (only new messages do), so they leave `updated_at` alone.


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = " ".join(title.split())
    if not title:
        raise ChatError("empty_title", "A title cannot be empty.")
    if len(title) > TITLE_MAX_LENGTH:
        raise ChatError("title_too_long", f"A title has at most {TITLE_MAX_LENGTH} characters.")
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
        transaction.on_commit(lambda: _generations_stop(conversation_uuid=conversation_uuid))


def _generations_stop(*, conversation_uuid: object) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from chat.generation import control_group

    try:
        async_to_sync(get_channel_layer().group_send)(control_group(conversation_uuid), {"type": "generation.stop"})
    except Exception:  # the conversation is gone either way; its answers end at their next save
        logger.warning("could not stop the answers of deleted conversation %s", conversation_uuid, exc_info=True)


@dataclass(frozen=True)
class ModelSettings:
    system_prompt: str
    temperature: float | None
    max_tokens: int | None


def model_settings_parse(*, system_prompt: str, temperature: str | None, max_tokens: str | None) -> ModelSettings:
    """Settings typed into a form: blank temperature or max tokens mean the model's own default."""
    system_prompt = (system_prompt or "").strip()
    if len(system_prompt) > SYSTEM_PROMPT_MAX_CHARS:
        raise ChatError(
            "system_prompt_too_long", f"The system prompt has at most {SYSTEM_PROMPT_MAX_CHARS:,} characters."
        )
    low, high = TEMPERATURE_RANGE
    parsed_temperature: float | None = None
    if temperature is not None and temperature.strip():
        try:
            parsed_temperature = float(temperature.strip().replace(",", "."))
        except ValueError:
            raise ChatError("bad_temperature", f"Temperature must be a number from {low:g} to {high:g}.") from None
        if not low <= parsed_temperature <= high:  # NaN fails this too
            raise ChatError("bad_temperature", f"Temperature must be a number from {low:g} to {high:g}.")
    low_tokens, high_tokens = MAX_TOKENS_RANGE
    parsed_max_tokens: int | None = None
    if max_tokens is not None and max_tokens.strip():
        try:
            parsed_max_tokens = int(max_tokens.strip())
        except ValueError:
            raise ChatError(
                "bad_max_tokens", f"Max tokens must be a whole number from {low_tokens} to {high_tokens:,}."
            ) from None
        if not low_tokens <= parsed_max_tokens <= high_tokens:
            raise ChatError(
                "bad_max_tokens", f"Max tokens must be a whole number from {low_tokens} to {high_tokens:,}."
            )
    return ModelSettings(system_prompt, parsed_temperature, parsed_max_tokens)


def conversation_settings_update(*, conversation: Conversation, model_settings: ModelSettings) -> Conversation:
    """Takes effect from the next answer; earlier answers keep what they were written with."""
    conversation.system_prompt = model_settings.system_prompt
    conversation.temperature = model_settings.temperature
    conversation.max_tokens = model_settings.max_tokens
    Conversation.objects.filter(pk=conversation.pk).update(
        system_prompt=conversation.system_prompt,
        temperature=conversation.temperature,
        max_tokens=conversation.max_tokens,
    )
    return conversation


def preset_create(*, owner: User, name: str, model_settings: ModelSettings, shared: bool = False) -> Preset:
    """Save settings under a name; saving an existing name of the owner replaces it.
    Only staff may share a preset with everyone."""
    name = " ".join(name.split())
    if not name:
        raise ChatError("empty_name", "Give the preset a name.")
    if len(name) > PRESET_NAME_MAX_LENGTH:
        raise ChatError("name_too_long", f"A preset name has at most {PRESET_NAME_MAX_LENGTH} characters.")
    if shared and not owner.is_staff:
        raise ChatError("not_allowed", "Only administrators can share presets with everyone.")
    preset, _ = Preset.objects.update_or_create(
        owner=owner,
        name=name,
        defaults={
            "system_prompt": model_settings.system_prompt,
            "temperature": model_settings.temperature,
            "max_tokens": model_settings.max_tokens,
            "shared": shared,
        },
    )
    return preset


def preset_apply(*, conversation: Conversation, preset: Preset) -> Conversation:
    return conversation_settings_update(
        conversation=conversation,
        model_settings=ModelSettings(preset.system_prompt, preset.temperature, preset.max_tokens),
    )


def preset_delete(*, preset: Preset, user: User) -> None:
    """Owners delete their presets; a shared preset of someone else is only deleted by staff."""
    if preset.owner_id != user.pk and not user.is_staff:
        raise ChatError("not_allowed", "This preset is shared by an administrator; only they can delete it.")
    preset.delete()
