"""Reads for chat's pages: a user's conversation (404 for anyone else), the sidebar, and the
sources attached to a conversation. The message tree is read in `chat.tree`, search in
`chat.search`, usage in `chat.usage`, presets in `chat.presets`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from chat.models import Conversation
from ingestion.models import Source

SIDEBAR_PAGE = 50
PINNED_LIMIT = 50


def conversation_get_for_user(*, user: User | AnonymousUser, conversation_uuid: uuid.UUID | str) -> Conversation:
    """The user's conversation, or Http404 (for other users' conversations too)."""
    if not user.is_authenticated:
        raise Http404("No such conversation.")
    try:
        return Conversation.objects.get(uuid=conversation_uuid, owner_id=user.pk)
    except (Conversation.DoesNotExist, ValidationError, ValueError, TypeError):  # a malformed id is no id
        raise Http404("No such conversation.") from None


@dataclass
class SidebarGroup:
    key: str
    label: str
    conversations: list[Conversation] = field(default_factory=list)


@dataclass
class Sidebar:
    """One page of the sidebar: pinned conversations (on the first page), then the others
    newest first, grouped by date; `next_page` is None on the last page."""

    pinned: list[Conversation]
    groups: list[SidebarGroup]
    next_page: int | None


def date_group(day: date, today: date) -> tuple[str, str]:
    """The sidebar group of a conversation last active on `day`: a key and its label."""
    age = (today - day).days
    if age <= 0:
        return "today", "Today"
    if age == 1:
        return "yesterday", "Yesterday"
    if age <= 7:
        return "week", "Previous 7 days"
    if age <= 30:
        return "month", "Previous 30 days"
    return f"{day:%Y-%m}", f"{day:%B %Y}"


def group_by_date(conversations: Iterable[Conversation], *, today: date) -> list[SidebarGroup]:
    groups: list[SidebarGroup] = []
    for conversation in conversations:
        key, label = date_group(timezone.localtime(conversation.updated_at).date(), today)
        if not groups or groups[-1].key != key:
            groups.append(SidebarGroup(key, label))
        groups[-1].conversations.append(conversation)
    return groups


def sidebar_for_user(*, user: User, page: int = 1) -> Sidebar:
    """Two queries whatever the number of conversations: the pinned ones (first page only)
    and one page of the others."""
    page = max(page, 1)
    fields = ("uuid", "title", "pinned", "updated_at")
    mine = Conversation.objects.filter(owner_id=user.pk).only(*fields)
    pinned = list(mine.filter(pinned=True).order_by("-updated_at")[:PINNED_LIMIT]) if page == 1 else []
    start = (page - 1) * SIDEBAR_PAGE
    rows = list(mine.filter(pinned=False).order_by("-updated_at", "-id")[start : start + SIDEBAR_PAGE + 1])
    more = len(rows) > SIDEBAR_PAGE
    return Sidebar(
        pinned=pinned,
        groups=group_by_date(rows[:SIDEBAR_PAGE], today=timezone.localdate()),
        next_page=page + 1 if more else None,
    )


def sources_for_conversation(*, conversation_id: int) -> QuerySet[Source]:
    """The sources attached to a conversation, oldest first."""
    return Source.objects.filter(conversations__id=conversation_id).select_related("document").order_by("created_at")
