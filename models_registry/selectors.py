"""Reads of the model registry, with the rules for who may use which model."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from models_registry.models import LLMModel

MODEL_ID_MAX_LENGTH = 500


def models_usable_by(*, user: User | AnonymousUser, capability: str = "chat") -> QuerySet[LLMModel]:
    """Models the user may use: enabled, seen at the last sync, of an enabled provider, and
    either open to everyone (no groups) or to one of the user's groups. Superusers see all."""
    if not user.is_authenticated:
        return LLMModel.objects.none()
    models = LLMModel.objects.filter(enabled=True, available=True, provider__enabled=True).select_related("provider")
    models = models.filter(supports_embedding=True) if capability == "embedding" else models.filter(supports_chat=True)
    if not getattr(user, "is_superuser", False):
        allowed = LLMModel.objects.filter(Q(groups__isnull=True) | Q(groups__user=user)).values("pk")
        models = models.filter(pk__in=allowed)
    return models.order_by("-is_default_chat", "provider__name", "name")


def model_get_usable(*, user: User | AnonymousUser, model_id: str, capability: str = "chat") -> LLMModel | None:
    """The model named `<provider>/<name>` if the user may use it now, else None."""
    provider_name, sep, name = model_id.partition("/")
    # A control character or a lone surrogate is in no model's id, and PostgreSQL could not
    # even be asked about one.
    if not sep or not name or len(model_id) > MODEL_ID_MAX_LENGTH or not model_id.isprintable():
        return None
    return models_usable_by(user=user, capability=capability).filter(provider__name=provider_name, name=name).first()
