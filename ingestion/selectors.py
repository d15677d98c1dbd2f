"""Reads for sources, and the grounding of an answer in a conversation's sources."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from ingestion.embedder import local_embedder
from ingestion.models import Source
from ingestion.retrieval import context_message, passages_pack, retrieve
from ingestion.vectorstore import VectorStoreUnavailable

logger = logging.getLogger(__name__)

PASSAGES = 8
EXCERPT_CHARS = 600


@dataclass
class Grounding:
    system_message: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    notice: str = ""


def source_get_for_user(*, user: User | AnonymousUser, source_uuid: uuid.UUID | str) -> Source:
    if not user.is_authenticated:
        raise Http404("No such source.")
    try:
        return Source.objects.select_related("document", "conversation").get(uuid=source_uuid, owner_id=user.pk)
    except (Source.DoesNotExist, ValidationError, ValueError, TypeError):  # a malformed id is no id
        raise Http404("No such source.") from None


def sources_for_conversation(*, conversation_id: int) -> QuerySet[Source]:
    return Source.objects.filter(conversation_id=conversation_id).select_related("document", "conversation")


def conversation_grounding(*, conversation_id: int, query: str, budget_tokens: int) -> Grounding:
    """Passages from the conversation's ready sources for `query`, as a system message and citations."""
    sources = [s for s in sources_for_conversation(conversation_id=conversation_id) if s.status == Source.Status.READY]
    if not sources:
        return Grounding()
    by_document = {s.document_id: s for s in sources if s.document_id}
    try:
        passages = retrieve(document_ids=list(by_document), query=query, limit=PASSAGES)
    except VectorStoreUnavailable as exc:
        logger.warning("retrieval skipped: %s", exc)
        return Grounding(notice="The attached sources could not be searched just now; this answer does not use them.")
    embedder = local_embedder()
    packed = passages_pack(passages, budget_tokens=budget_tokens, count_tokens=embedder.count_tokens)
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
