"""Reads for chat. Every user-owned object is loaded through a `*_get_for_user` helper."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.expressions import Combinable
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.models import Conversation, Message, Preset, Vote
from chat.ratings import Standing, VoteOutcome, rank_models

SIDEBAR_PAGE = 50
PINNED_LIMIT = 50
SEARCH_LIMIT = 30
# The text search configuration of the GIN indexes made by migration 0005_preset.
SEARCH_CONFIG = "english"
USAGE_DAYS = 30


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


COLUMN_LETTERS = "ABCD"


def error_without_model(message: Message) -> str:
    """The answer's error text with its model's name (which a provider may quote) taken out."""
    error = message.error
    if message.model_label:
        for name in sorted({message.model_label, message.model_label.split("/", 1)[-1]}, key=len, reverse=True):
            error = error.replace(name, "this model")
    return error


@dataclass(frozen=True)
class Shown:
    """A message as the page shows it: its place among its versions and its label."""

    message: Message
    versions: list[int]
    hidden: bool = False
    chosen: bool = False

    @property
    def position(self) -> int:
        return self.versions.index(self.message.pk) + 1 if self.message.pk in self.versions else 1

    @property
    def count(self) -> int:
        return max(len(self.versions), 1)

    @property
    def previous_id(self) -> int | None:
        return self.versions[self.position - 2] if self.position > 1 else None

    @property
    def next_id(self) -> int | None:
        return self.versions[self.position] if self.position < len(self.versions) else None

    @property
    def label(self) -> str:
        if self.message.role == Message.Role.USER:
            return "You"
        if self.hidden:
            return f"Model {COLUMN_LETTERS[self.message.column % len(COLUMN_LETTERS)]}"
        return self.message.model_label or "Assistant"

    @property
    def error(self) -> str:
        return error_without_model(self.message) if self.hidden else self.message.error

    @property
    def tokens_per_second(self) -> float | None:
        m = self.message
        if not m.completion_tokens or m.latency_ms is None:
            return None
        streaming_ms = m.latency_ms - (m.first_token_ms or 0)
        return round(m.completion_tokens * 1000 / streaming_ms, 1) if streaming_ms > 0 else None


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
    # Escaped above: only our own random markers become tags.
    return mark_safe(html)  # noqa: S308  # nosec B308 B703


def _markers() -> tuple[str, str]:
    """Random start and stop markers for one search: letters and digits, so escaping keeps them."""
    token = secrets.token_hex(8)
    return f"mkstart{token}", f"mkstop{token}"


def _search_terms(query: str) -> list[str]:
    """At most 10 words of at most 100 characters (longer words are not indexed anyway)."""
    return [word[:100] for word in re.findall(r"\w+", query[:1000])][:10]


def conversations_search(*, user: User, query: str, limit: int = SEARCH_LIMIT) -> list[SearchHit]:
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


def _search_postgres(*, user: User, terms: list[str], limit: int) -> list[SearchHit]:
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
    every_word: Q | Combinable = Q()
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
    options: dict[str, Any] = {
        "start_sel": start,
        "stop_sel": stop,
        "max_words": 18,
        "min_words": 6,
        "max_fragments": 2,
    }
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


def _search_fallback(*, user: User, terms: list[str], limit: int) -> list[SearchHit]:
    condition: Q | Combinable = Q()
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
    """One prompt on the shown branch and its current answer in each column.

    `prompt_versions` lists the ids of the prompt and its sibling versions (edits), oldest
    first; `reply_versions` does the same for each column's answers (regenerations).
    """

    prompt: Message
    replies: list[Message] = field(default_factory=list)
    prompt_versions: list[int] = field(default_factory=list)
    reply_versions: dict[int, list[int]] = field(default_factory=dict)
    vote: Vote | None = None

    @property
    def hidden(self) -> bool:
        """Blind answers hide their models until the vote."""
        return self.prompt.blind and self.vote is None

    @property
    def side_by_side(self) -> bool:
        return len(self.replies) > 1

    @property
    def shown_prompt(self) -> Shown:
        return Shown(self.prompt, self.prompt_versions)

    @property
    def shown_replies(self) -> list[Shown]:
        return [
            Shown(
                reply,
                self.reply_versions.get(reply.column, [reply.pk]),
                hidden=self.hidden,
                chosen=self.prompt.chosen_reply_id == reply.pk,
            )
            for reply in self.replies
        ]

    @property
    def finished(self) -> bool:
        return all(reply.is_finished for reply in self.replies)

    @property
    def winner_label(self) -> str:
        """After a vote: who won, named."""
        if self.vote is None:
            return ""
        if self.vote.winner_id is None:
            return "a tie"
        winner = next((s for s in self.shown_replies if s.message.pk == self.vote.winner_id), None)
        return winner.label if winner else self.vote.winner_model


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
    siblings = prompts.get(None, [])
    prompt = _current_child(siblings)
    while prompt is not None:
        columns = replies.get(prompt.pk, {})
        path.append(
            Turn(
                prompt,
                [c for col in sorted(columns) if (c := _current_child(columns[col])) is not None],
                prompt_versions=[m.pk for m in siblings],
                reply_versions={col: [m.pk for m in columns[col]] for col in sorted(columns)},
            )
        )
        siblings = prompts.get(prompt.pk, [])
        prompt = _current_child(siblings)
    return path


# The conversation id too: a related manager sets it on every row it loads.
TREE_FIELDS = ("id", "conversation_id", "parent_id", "role", "column", "is_current")
TURNS_PER_PAGE = 50


@dataclass
class TurnPage:
    turns: list[Turn]
    has_older: bool

    @property
    def oldest_prompt_id(self) -> int | None:
        return self.turns[0].prompt.pk if self.turns else None


def conversation_turns(
    *, conversation: Conversation, before: int | None = None, limit: int = TURNS_PER_PAGE
) -> TurnPage:
    """The last `limit` turns of the shown branch (before the prompt `before`, when given),
    with their messages and votes loaded in full: three queries, however long the conversation.
    """
    path = active_path(conversation.messages.only(*TREE_FIELDS))
    end = len(path)
    if before is not None:
        end = next((i for i, turn in enumerate(path) if turn.prompt.pk == before), 0)
    turns = path[max(0, end - limit) : end]
    ids = [m.pk for turn in turns for m in (turn.prompt, *turn.replies)]
    full = {m.pk: m for m in conversation.messages.filter(id__in=ids)} if ids else {}
    votes = {v.prompt_id: v for v in Vote.objects.filter(prompt_id__in=[t.prompt.pk for t in turns])} if ids else {}
    for turn in turns:
        turn.prompt = full[turn.prompt.pk]
        turn.replies = [full[m.pk] for m in turn.replies]
        turn.vote = votes.get(turn.prompt.pk)
    return TurnPage(turns=turns, has_older=end - limit > 0)


def path_message_ids(*, conversation: Conversation) -> set[int]:
    return {
        m.pk for turn in active_path(conversation.messages.only(*TREE_FIELDS)) for m in (turn.prompt, *turn.replies)
    }


def message_model_hidden(message: Message) -> bool:
    """Whether an answer's model is still secret: its prompt is blind and not voted on."""
    if message.role != Message.Role.ASSISTANT or message.parent_id is None:
        return False
    return Message.objects.filter(pk=message.parent_id, blind=True, vote__isnull=True).exists()


def messages_for_conversation(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return conversation.messages.filter(id__gt=after_id).order_by("id")


def message_as_frame(message: Message, *, hide_model: bool = False) -> dict[str, object]:
    """The message as the websocket and the page's script see it.

    With `hide_model` (a blind answer before the vote) nothing names the model: not the
    label, and not an error text that would quote it.
    """
    error = error_without_model(message) if hide_model else message.error
    return {
        "id": message.pk,
        "parent": message.parent_id,
        "column": message.column,
        "role": message.role,
        "content": message.content,
        "html": message.content_html,
        "status": message.status,
        "model": "" if hide_model else message.model_label,
        "blind": hide_model,
        "is_current": message.is_current,
        "error": error,
        "usage": {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens},
        "first_token_ms": message.first_token_ms,
        "latency_ms": message.latency_ms,
        "citations": message.citations,
    }


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


def usage_for_user(*, user: User, days: int = USAGE_DAYS) -> list[UsageRow]:
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


def model_leaderboard(*, user: User) -> list[Standing]:
    """Every vote of the organisation, ranked (see chat.ratings); a user sees the rows of the
    models they may use (admins see all), rated against every model."""
    from models_registry.selectors import models_usable_by

    outcomes = [
        VoteOutcome(contenders=list(contenders), winner=winner)
        for contenders, winner in Vote.objects.order_by("created_at", "id").values_list("contenders", "winner_model")
    ]
    standings = rank_models(outcomes)
    if getattr(user, "is_staff", False):
        return standings
    usable = {m.model_id for m in models_usable_by(user=user)}
    return [s for s in standings if s.model in usable]
