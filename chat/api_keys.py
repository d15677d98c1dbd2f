"""API keys: made here, shown once, stored as a SHA-256 (the keys are random, so a fast hash is enough)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from chat.models import ApiKey
from multillm.user_text import line_clean

KEY_PREFIX = "mlc-"
NAME_MAX_LENGTH = 100
# last_used_at is written at most this often per key, so the API's hot path rarely writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """A new key for `user`; returns the row and the key itself, which is never stored."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    name = line_clean(name[: NAME_MAX_LENGTH * 4], label="A key's name", max_chars=NAME_MAX_LENGTH * 4, required=False)
    key = ApiKey.objects.create(user=user, name=name[:NAME_MAX_LENGTH] or "API key", prefix=raw_key[:12],
                                key_hash=_hash(raw_key))  # fmt: skip
    return key, raw_key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key with this value and its active user, or None."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 100:
        return None
    key = ApiKey.objects.select_related("user").filter(key_hash=_hash(raw_key), revoked_at__isnull=True).first()
    if key is None or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_get_for_user(*, user: User, key_uuid: uuid.UUID | str) -> ApiKey:
    try:
        return ApiKey.objects.get(uuid=key_uuid, user_id=user.pk)
    except (ApiKey.DoesNotExist, ValidationError, ValueError, TypeError):  # a malformed id is no id
        raise Http404("No such API key.") from None


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
