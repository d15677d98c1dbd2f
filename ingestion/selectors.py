"""Reads for sources, and the grounding of an answer in a set of sources."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from ingestion.embedder import local_embedder
from ingestion.models import Source
from ingestion.retrieval import context_message, passages_pack, retrieve
from ingestion.vectorstore import VectorStoreUnavailable

if TYPE_CHECKING:
    from models_registry.providers.base import ChatMessage

logger = logging.getLogger(__name__)

PASSAGES = 8
EXCERPT_CHARS = 600
# Tokens kept free for the answer when sizing the passages of sources.
ANSWER_RESERVE = 1024
DEFAULT_CONTEXT = 4096
UNSEARCHABLE = "The attached sources could not be searched just now; this answer does not use them."


@dataclass
class Grounding:
    system_message: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    notice: str = ""


def source_get_for_user(*, user: User | AnonymousUser, source_uuid: uuid.UUID | str) -> Source:
    if not user.is_authenticated:
        raise Http404("No such source.")
    try:
        return Source.objects.select_related("document").get(uuid=source_uuid, owner_id=user.pk)
    except (Source.DoesNotExist, ValidationError, ValueError, TypeError):  # a malformed id is no id
        raise Http404("No such source.") from None


class SourceNotReady(Exception):
    def __init__(self, source: Source) -> None:
        super().__init__(
            f"The source '{source.uuid}' ({source.name}) is {source.get_status_display().lower()}, not ready."
        )
        self.source = source


def sources_get_ready_for_user(*, user: User | AnonymousUser, source_uuids: list[str]) -> list[Source]:
    """The user's sources with these ids, in that order: Http404 naming the first id that is
    not one of the user's sources, SourceNotReady for one that is not ready."""
    ids = [_uuid_or_none(value) for value in source_uuids]
    found: dict[uuid.UUID | None, Source] = {}
    if user.is_authenticated:
        owned = Source.objects.filter(owner_id=user.pk, uuid__in=[i for i in ids if i]).select_related("document")
        found = {source.uuid: source for source in owned}
    sources = []
    for value, source_uuid in zip(source_uuids, ids, strict=True):
        source = found.get(source_uuid)
        if source is None:
            raise Http404(f"No source with the id '{value}'.")
        if source.status != Source.Status.READY or source.document_id is None:
            raise SourceNotReady(source)
        sources.append(source)
    return sources


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def sources_of_user(*, user: User | AnonymousUser) -> QuerySet[Source]:
    """The user's sources, newest first."""
    if not user.is_authenticated:
        return Source.objects.none()
    return Source.objects.filter(owner_id=user.pk).select_related("document").order_by("-created_at")


def grounding_for(*, sources: list[Source], history: list[ChatMessage], context_length: int | None) -> Grounding:
    """Passages of the ready `sources` for the last user message of `history`, as a system
    message and citations, sized to leave room in the model's window for the history and the
    answer. Never raises: when the sources cannot be searched, a notice says so."""
    try:
        return _grounding(sources, history, context_length)
    except VectorStoreUnavailable as exc:
        logger.warning("retrieval skipped: %s", exc)
    except Exception:  # retrieval must never stop the answer
        logger.exception("retrieval failed")
    return Grounding(notice=UNSEARCHABLE)


def _grounding(sources: list[Source], history: list[ChatMessage], context_length: int | None) -> Grounding:
    sources = [s for s in sources if s.status == Source.Status.READY and s.document_id]
    if not sources:
        return Grounding()
    query = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
    used = sum(len(m["content"]) for m in history) // 3
    budget = (context_length or DEFAULT_CONTEXT) - used - ANSWER_RESERVE
    if budget <= 0:
        return Grounding(notice="The conversation fills the model's window: this answer does not use the sources.")
    by_document = {s.document_id: s for s in sources if s.document_id is not None}
    passages = retrieve(document_ids=list(by_document), query=query, limit=PASSAGES)
    embedder = local_embedder()
    packed = passages_pack(passages, budget_tokens=budget, count_tokens=embedder.count_tokens)
    numbered, citations = [], []
    for number, passage in enumerate(packed, start=1):
        source = by_document[passage.document_id]
        label = source.name.replace('"', "'")
        numbered.append((number, label, passage))
        citations.append({
            "number": number, "source": str(source.uuid), "title": source.name, "url": source.url,
            "file_name": source.file_name, "page": passage.page,
            "rows": [passage.row_start, passage.row_end] if passage.row_start else None,
            "heading": " › ".join(passage.heading_path), "excerpt": passage.text[:EXCERPT_CHARS],
            "score": passage.score, "scores": passage.sources,
        })  # fmt: skip
    return Grounding(system_message=context_message(numbered) if numbered else "", citations=citations)
