"""Reads of the model registry, with the rules for who may use which model."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from models_registry.models import LLMModel


def models_usable_by(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[LLMModel]:
    """Models the user may pick: enabled by an admin and seen at the last sync."""
    if not user.is_authenticated:
        return LLMModel.objects.none()
    return LLMModel.objects.filter(enabled=True, available=True).select_related("provider")


def model_get_usable(*, user: AbstractBaseUser | AnonymousUser, model_id: str) -> LLMModel | None:
    """The model named `<provider>/<name>` if the user may use it now, else None."""
    provider_name, sep, name = model_id.partition("/")
    if not sep or not name:
        return None
    return models_usable_by(user=user).filter(provider__name=provider_name, name=name).first()
