"""The vector store: a Qdrant server (QDRANT_ENDPOINT) or, when unset, an embedded one under
`var/qdrant`. One collection per embedding model, named `<QDRANT_COLLECTION>-<model>-<dims>`.

Point ids are derived from (content hash, chunk index, embedding model), so re-running an
ingestion after a crash overwrites the same points instead of adding copies. An embedded
store can be opened by one process only: the web process owns it.
"""

from __future__ import annotations

import atexit
import functools
import logging
import re
import threading
import uuid
from dataclasses import dataclass

from django.conf import settings
from qdrant_client import QdrantClient, models

logger = logging.getLogger(__name__)

POINT_NAMESPACE = uuid.UUID("5b0f7a52-3c4e-4f0e-9d43-6a1c8f0e2b71")
UPSERT_BATCH = 256


class VectorStoreUnavailable(Exception):
    """The store cannot be reached (server down, or the embedded store is held by another process)."""


@dataclass(frozen=True)
class VectorHit:
    document_id: int
    chunk_index: int
    score: float


def point_id(*, content_hash: str, chunk_index: int, model_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{content_hash}:{chunk_index}:{model_id}"))


def collection_name(model_id: str, dimensions: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")
    return f"{settings.QDRANT_COLLECTION}-{slug}-{dimensions}"


class VectorStore:
    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self._known: set[str] = set()
        # The embedded store is not safe to use from two threads at once (ingestion and a
        # chat's retrieval): every call goes through this lock.
        self._lock = threading.RLock()

    def ensure_collection(self, model_id: str, dimensions: int) -> str:
        name = collection_name(model_id, dimensions)
        if name in self._known:
            return name
        with self._lock:
            if not self.client.collection_exists(name):
                self.client.create_collection(
                    name, vectors_config=models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
                )
            if settings.QDRANT_ENDPOINT:  # the embedded store has no payload indexes
                # Every search filters by document: index it (the key that splits tenants' data).
                self.client.create_payload_index(
                    name,
                    "document_id",
                    field_schema=models.IntegerIndexParams(
                        type=models.IntegerIndexType.INTEGER, lookup=True, range=False
                    ),
                )
            self._known.add(name)
        return name

    def upsert(
        self, *, model_id: str, document_id: int, content_hash: str, vectors: list[list[float]], start_index: int = 0
    ) -> None:
        """Store vectors for chunks start_index.. of a document; waits until they are searchable."""
        if not vectors:
            return
        name = self.ensure_collection(model_id, len(vectors[0]))
        points = [
            models.PointStruct(
                id=point_id(content_hash=content_hash, chunk_index=start_index + i, model_id=model_id),
                vector=vector,
                payload={"document_id": document_id, "chunk_index": start_index + i},
            )
            for i, vector in enumerate(vectors)
        ]
        for offset in range(0, len(points), UPSERT_BATCH):
            with self._lock:
                self.client.upsert(name, points=points[offset : offset + UPSERT_BATCH], wait=True)

    def search(
        self, *, model_id: str, dimensions: int, vector: list[float], document_ids: list[int], limit: int
    ) -> list[VectorHit]:
        if not document_ids:
            return []
        name = self.ensure_collection(model_id, dimensions)
        condition = models.FieldCondition(key="document_id", match=models.MatchAny(any=document_ids))
        with self._lock:
            result = self.client.query_points(
                name, query=vector, query_filter=models.Filter(must=[condition]), limit=limit, with_payload=True
            )
        return [
            VectorHit(document_id=p.payload["document_id"], chunk_index=p.payload["chunk_index"], score=p.score)
            for p in result.points
            if p.payload
        ]

    def delete_document(self, *, document_id: int) -> None:
        condition = models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))
        with self._lock:
            for name in [c.name for c in self.client.get_collections().collections]:
                if name.startswith(f"{settings.QDRANT_COLLECTION}-"):
                    self.client.delete(name, points_selector=models.Filter(must=[condition]), wait=True)

    def count(self, *, model_id: str, dimensions: int, document_id: int) -> int:
        name = self.ensure_collection(model_id, dimensions)
        condition = models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))
        with self._lock:
            return self.client.count(name, count_filter=models.Filter(must=[condition]), exact=True).count


@functools.cache
def vector_store() -> VectorStore:
    """The process's store. The embedded one is opened on first use and kept open."""
    try:
        if settings.QDRANT_ENDPOINT:
            client = QdrantClient(url=settings.QDRANT_ENDPOINT, api_key=settings.QDRANT_API_KEY or None, timeout=10)
        else:
            path = settings.VAR_DIR / "qdrant"
            path.mkdir(parents=True, exist_ok=True)
            client = QdrantClient(path=str(path))
    except Exception as exc:  # qdrant-client raises several types; all mean the same to us
        raise VectorStoreUnavailable(f"The vector store cannot be opened: {exc}") from exc
    # Close before the interpreter tears modules down (the embedded store flushes on close).
    atexit.register(client.close)
    return VectorStore(client)
