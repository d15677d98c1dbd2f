"""Model settings (system prompt, temperature, max tokens) of a conversation, and presets:
settings saved under a name, a user's own or shared with everyone by staff."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404

from chat.models import Conversation, Preset
from chat.services import ChatError
from multillm.user_text import UserTextError, line_clean, text_clean

TEMPERATURE_RANGE = (0.0, 2.0)
MAX_TOKENS_RANGE = (1, 131_072)
SYSTEM_PROMPT_MAX_CHARS = 20_000
PRESET_NAME_MAX_LENGTH = 100


def presets_for_user(*, user: User) -> QuerySet[Preset]:
    """The user's own presets and those shared with everyone."""
    return Preset.objects.filter(Q(owner_id=user.pk) | Q(shared=True)).order_by("name", "id")


def preset_get_for_user(*, user: User | AnonymousUser, preset_uuid: uuid.UUID | str) -> Preset:
    """A preset the user may apply (their own or a shared one), or Http404."""
    if not user.is_authenticated:
        raise Http404("No such preset.")
    try:
        return presets_for_user(user=user).get(uuid=preset_uuid)
    except (Preset.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404("No such preset.") from None


@dataclass(frozen=True)
class ModelSettings:
    system_prompt: str
    temperature: float | None
    max_tokens: int | None


def model_settings_parse(*, system_prompt: str, temperature: str | None, max_tokens: str | None) -> ModelSettings:
    """Settings typed into a form: blank temperature or max tokens mean the model's own default."""
    try:
        system_prompt = text_clean(
            system_prompt or "", label="The system prompt", max_chars=SYSTEM_PROMPT_MAX_CHARS
        ).strip()
    except UserTextError as exc:
        raise ChatError(f"system_prompt_{exc.code}", exc.detail) from None
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
    """Takes effect from the next answer; earlier answers keep what they were written with.
    `model_settings` come from `model_settings_parse` (or a preset, checked when it was saved)."""
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
    try:
        name = line_clean(name, label="A preset name", max_chars=PRESET_NAME_MAX_LENGTH)
    except UserTextError as exc:
        if exc.code == "empty":
            raise ChatError("empty_name", "Give the preset a name.") from None
        raise ChatError(f"name_{exc.code}", exc.detail) from None
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
