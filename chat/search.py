"""Search over a user's conversations: every word in the title or in a message, highlighted.

PostgreSQL: full-text search (stemmed words, the last one also as a prefix, for search as you
type) on the GIN indexes of migration 0005_preset. Elsewhere (SQLite under `make run`):
case-insensitive LIKE.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.expressions import Combinable
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.models import Conversation, Message

SEARCH_LIMIT = 30
# The text search configuration of the GIN indexes made by migration 0005_preset.
SEARCH_CONFIG = "english"


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
