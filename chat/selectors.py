"""Reads for chat. Every user-owned object is loaded through a `*_get_for_user` helper."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.models import Conversation, Message, Preset

SIDEBAR_PAGE = 50
PINNED_LIMIT = 50
SEARCH_LIMIT = 30
# The text search configuration of the GIN indexes made by migration 0005_preset.
SEARCH_CONFIG = "english"
USAGE_DAYS = 30


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


def sidebar_for_user(*, user: AbstractBaseUser, page: int = 1) -> Sidebar:
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


@dataclass
class SearchHit:
    conversation: Conversation
    title_html: SafeString
    snippet_html: SafeString


def _highlighted(text: str, start: str, stop: str) -> SafeString:
    """`text` escaped, with the parts between the `start` and `stop` markers in <mark>.

    The markers are random per search, so text that users or models wrote cannot
    produce a tag: everything but our own <mark> pairs is escaped.
    """
    html = str(escape(text)).replace(start, "<mark>").replace(stop, "</mark>")
    return mark_safe(html)  # noqa: S308 (escaped above; only our markers become tags)


def _markers() -> tuple[str, str]:
    """Random start and stop markers for one search: letters and digits, so escaping keeps them."""
    token = secrets.token_hex(8)
    return f"mkstart{token}", f"mkstop{token}"


def _search_terms(query: str) -> list[str]:
    """At most 10 words of at most 100 characters (longer words are not indexed anyway)."""
    return [word[:100] for word in re.findall(r"\w+", query[:1000])][:10]


def conversations_search(*, user: AbstractBaseUser, query: str, limit: int = SEARCH_LIMIT) -> list[SearchHit]:
    """The user's conversations where every word of `query` is in the title or a message,
    newest first, with the matches highlighted. Postgres: full-text search (stemmed words,
    the last one also as a prefix, for search as you type) on GIN indexes. Elsewhere:
    case-insensitive LIKE."""
    terms = _search_terms(query)
    if not terms:
        return []
    if connection.vendor == "postgresql":
        return _search_postgres(user=user, terms=terms, limit=limit)
    return _search_fallback(user=user, terms=terms, limit=limit)


def _search_postgres(*, user: AbstractBaseUser, terms: list[str], limit: int) -> list[SearchHit]:
    from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVector

    # Only word characters reach the raw queries: nothing in them can be tsquery syntax.
    words = [*terms[:-1], f"{terms[-1]}:*"]
    with connection.cursor() as cursor:  # stop words ("the", "and") would match nothing: leave them out
        cursor.execute(
            "SELECT word FROM unnest(%s::text[]) AS word WHERE numnode(to_tsquery(%s::regconfig, word)) > 0",
            [words, SEARCH_CONFIG],
        )
        words = [row[0] for row in cursor.fetchall()]
    if not words:
        return []
    title_vector = SearchVector("title", config=SEARCH_CONFIG)
    content_vector = SearchVector("content", config=SEARCH_CONFIG)
    every_word = Q()
    for word in words:  # each word in the title or in any message of the conversation
        word_query = SearchQuery(word, search_type="raw", config=SEARCH_CONFIG)
        every_word &= Q(title_vector=word_query) | Exists(
            Message.objects.annotate(vector=content_vector).filter(vector=word_query, conversation_id=OuterRef("pk"))
        )
    tsquery = SearchQuery(" | ".join(words), search_type="raw", config=SEARCH_CONFIG)
    matching_messages = Message.objects.annotate(vector=content_vector).filter(vector=tsquery)
    conversations = list(
        Conversation.objects.filter(owner_id=user.pk)
        .annotate(title_vector=title_vector)
        .filter(every_word)
        .only("uuid", "title", "pinned", "updated_at")
        .order_by("-updated_at")[:limit]
    )
    if not conversations:
        return []
    start, stop = _markers()
    options = {"start_sel": start, "stop_sel": stop, "max_words": 18, "min_words": 6, "max_fragments": 2}
    # One matching message per conversation (its first), then headlines for those rows only.
    # `conversation_id + 0` keeps the planner on the GIN index: with the plain column it
    # would read every message of these conversations and compute their vectors.
    first_ids = (
        matching_messages.alias(in_conversation=F("conversation_id") + 0)
        .filter(in_conversation__in=[c.pk for c in conversations])
        .order_by("conversation_id", "id")
        .distinct("conversation_id")
        .values("id")
    )
    snippets = dict(
        Message.objects.filter(id__in=first_ids)
        .annotate(headline=SearchHeadline("content", tsquery, config=SEARCH_CONFIG, **options))
        .values_list("conversation_id", "headline")
    )
    titles = dict(
        Conversation.objects.filter(id__in=[c.pk for c in conversations])
        .annotate(headline=SearchHeadline("title", tsquery, config=SEARCH_CONFIG, highlight_all=True, **options))
        .values_list("id", "headline")
    )
    return [
        SearchHit(
            conversation,
            _highlighted(titles.get(conversation.pk, conversation.title), start, stop),
            _highlighted(snippets.get(conversation.pk, ""), start, stop),
        )
        for conversation in conversations
    ]


def _snippet(text: str, terms: list[str], start: str, stop: str, width: int = 60) -> str:
    """Around the first match of any term, with every match between markers."""
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    first = pattern.search(text)
    if first is None:
        return ""
    left, right = max(0, first.start() - width), min(len(text), first.end() + width)
    piece = text[left:right]
    piece = pattern.sub(lambda m: f"{start}{m.group(0)}{stop}", piece)
    return ("…" if left else "") + piece + ("…" if right < len(text) else "")


def _search_fallback(*, user: AbstractBaseUser, terms: list[str], limit: int) -> list[SearchHit]:
    condition = Q()
    for term in terms:
        condition &= Q(title__icontains=term) | Exists(
            Message.objects.filter(conversation_id=OuterRef("pk"), content__icontains=term)
        )
    conversations = list(
        Conversation.objects.filter(owner_id=user.pk)
        .filter(condition)
        .only("uuid", "title", "pinned", "updated_at")
        .order_by("-updated_at")[:limit]
    )
    any_term = Q()
    for term in terms:
        any_term |= Q(content__icontains=term)
    first: dict[int, str] = {}
    for conversation_id, content in (
        Message.objects.filter(any_term, conversation_id__in=[c.pk for c in conversations])
        .order_by("id")
        .values_list("conversation_id", "content")
    ):
        first.setdefault(conversation_id, content)
    start, stop = _markers()
    return [
        SearchHit(
            conversation,
            _highlighted(
                _snippet(conversation.title, terms, start, stop, width=200) or conversation.title, start, stop
            ),
            _highlighted(_snippet(first.get(conversation.pk, ""), terms, start, stop), start, stop),
        )
        for conversation in conversations
    ]


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


def presets_for_user(*, user: AbstractBaseUser) -> QuerySet[Preset]:
    """The user's own presets and those shared with everyone."""
    return Preset.objects.filter(Q(owner_id=user.pk) | Q(shared=True)).order_by("name", "id")


def preset_get_for_user(*, user: AbstractBaseUser | AnonymousUser, preset_uuid: uuid.UUID | str) -> Preset:
    """A preset the user may apply (their own or a shared one), or Http404."""
    if not user.is_authenticated:
        raise Http404("No such preset.")
    try:
        return presets_for_user(user=user).get(uuid=preset_uuid)  # type: ignore[arg-type]
    except (Preset.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404("No such preset.") from None


@dataclass(frozen=True)
class UsageRow:
    day: date | None
    username: str
    model: str
    answers: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_since(days: int = USAGE_DAYS) -> datetime:
    return timezone.now() - timedelta(days=days)


def usage_for_user(*, user: AbstractBaseUser, days: int = USAGE_DAYS) -> list[UsageRow]:
    """Tokens per model per day of the user's answers, as the providers counted them; newest day first."""
    rows = (
        Message.objects.filter(
            conversation__owner_id=user.pk, role=Message.Role.ASSISTANT, created_at__gte=usage_since(days)
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "model_label")
        .annotate(answers=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .order_by("-day", "model_label")
    )
    username = user.get_username()
    return [
        UsageRow(r["day"], username, r["model_label"], r["answers"], r["prompt"] or 0, r["completion"] or 0)
        for r in rows
    ]


def usage_for_everyone(*, days: int = USAGE_DAYS) -> list[UsageRow]:
    """Tokens per user and model over the last `days` days (for staff), heaviest first."""
    rows = (
        Message.objects.filter(role=Message.Role.ASSISTANT, created_at__gte=usage_since(days))
        .values("conversation__owner__username", "model_label")
        .annotate(answers=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .order_by("conversation__owner__username", "model_label")
    )
    result = [
        UsageRow(
            None,
            r["conversation__owner__username"],
            r["model_label"],
            r["answers"],
            r["prompt"] or 0,
            r["completion"] or 0,
        )
        for r in rows
    ]
    return result
