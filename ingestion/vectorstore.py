"""The vector store: a Qdrant server (QDRANT_ENDPOINT) through qdrant-client or, when unset, an
embedded Qdrant Edge store under `VAR_DIR/qdrant-edge`. One collection per embedding model,
named `<QDRANT_COLLECTION>-<model>-<dims>` (on the server a collection; embedded, a shard
directory of that name).

Point ids are derived from (content hash, chunk index, embedding model), so re-running an
ingestion after a crash overwrites the same points instead of adding copies. Every point's
payload holds its document id, the key every search filters on: documents are shared between
users (the same bytes are embedded once), and a user's searches name only the documents
attached to their own conversations.

The embedded store is Qdrant Edge rather than qdrant-client's local mode: at 100,000 points a
filtered search takes well under a millisecond in Edge (a payload index, native code), against
about 0.8 s in local mode, which keeps every point in Python and scans them all
(`bench/ingest.py`, table 3). An embedded store can be opened by one process only: the web
process owns it, and a lock file makes a second opener fail with a clear error.
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from django.conf import settings

logger = logging.getLogger(__name__)

POINT_NAMESPACE = uuid.UUID("5b0f7a52-3c4e-4f0e-9d43-6a1c8f0e2b71")
UPSERT_BATCH = 256
EDGE_DIRECTORY = "qdrant-edge"
LEGACY_COPIED = ".copied-from-local-mode"


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


def _points(
    *, model_id: str, document_id: int, content_hash: str, count: int, start_index: int
) -> list[tuple[str, dict[str, int]]]:
    return [
        (
            point_id(content_hash=content_hash, chunk_index=start_index + i, model_id=model_id),
            {"document_id": document_id, "chunk_index": start_index + i},
        )
        for i in range(count)
    ]


class VectorStore:
    """What ingestion and retrieval need from a store; two implementations below."""

    def upsert(
        self, *, model_id: str, document_id: int, content_hash: str, vectors: list[list[float]], start_index: int = 0
    ) -> None:
        """Store vectors for chunks start_index.. of a document; returns once they are searchable."""
        raise NotImplementedError

    def search(
        self, *, model_id: str, dimensions: int, vector: list[float], document_ids: list[int], limit: int
    ) -> list[VectorHit]:
        """The nearest chunks among the given documents' only."""
        raise NotImplementedError

    def delete_document(self, *, document_id: int) -> None:
        """Remove a document's vectors from every collection."""
        raise NotImplementedError

    def count(self, *, model_id: str, dimensions: int, document_id: int | None = None) -> int:
        """Points in the model's collection (of one document when given)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise when the store cannot serve searches now (for /readyz)."""
        raise NotImplementedError


_T = TypeVar("_T")


def _server_call(method: Callable[..., _T]) -> Callable[..., _T]:
    """A Qdrant server that cannot be reached or answers with an error is VectorStoreUnavailable:
    ingestion retries it with backoff and chat answers without sources, instead of crashing."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> _T:
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            return method(*args, **kwargs)
        except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
            raise VectorStoreUnavailable(
                f"The vector store at {settings.QDRANT_ENDPOINT} is unavailable: {exc}"
            ) from exc

    return call


class ServerVectorStore(VectorStore):
    """A Qdrant server through qdrant-client (any QdrantClient speaks the same API)."""

    def __init__(self, client: Any) -> None:
        from qdrant_client import models

        self.client = client
        self.models = models
        self._known: set[str] = set()
        self._lock = threading.RLock()

    def _document_filter(self, document_ids: list[int]) -> Any:
        models = self.models
        if len(document_ids) == 1:
            match: Any = models.MatchValue(value=document_ids[0])
        else:
            match = models.MatchAny(any=document_ids)
        return models.Filter(must=[models.FieldCondition(key="document_id", match=match)])

    @_server_call
    def ensure_collection(self, model_id: str, dimensions: int) -> str:
        models = self.models
        name = collection_name(model_id, dimensions)
        if name in self._known:
            return name
        with self._lock:
            if not self.client.collection_exists(name):
                self.client.create_collection(
                    name, vectors_config=models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
                )
            # Every search filters by document: index it (the key that splits tenants' data).
            self.client.create_payload_index(
                name,
                "document_id",
                field_schema=models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=False),
            )
            self._known.add(name)
        return name

    @_server_call
    def upsert(
        self, *, model_id: str, document_id: int, content_hash: str, vectors: list[list[float]], start_index: int = 0
    ) -> None:
        if not vectors:
            return
        name = self.ensure_collection(model_id, len(vectors[0]))
        ids = _points(model_id=model_id, document_id=document_id, content_hash=content_hash, count=len(vectors),
                      start_index=start_index)  # fmt: skip
        points = [
            self.models.PointStruct(id=pid, vector=vector, payload=payload)
            for (pid, payload), vector in zip(ids, vectors, strict=True)
        ]
        for offset in range(0, len(points), UPSERT_BATCH):
            with self._lock:
                self.client.upsert(name, points=points[offset : offset + UPSERT_BATCH], wait=True)

    @_server_call
    def search(
        self, *, model_id: str, dimensions: int, vector: list[float], document_ids: list[int], limit: int
    ) -> list[VectorHit]:
        if not document_ids:
            return []
        name = self.ensure_collection(model_id, dimensions)
        with self._lock:
            result = self.client.query_points(
                name, query=vector, query_filter=self._document_filter(document_ids), limit=limit, with_payload=True
            )
        return [
            VectorHit(document_id=p.payload["document_id"], chunk_index=p.payload["chunk_index"], score=p.score)
            for p in result.points
            if p.payload
        ]

    @_server_call
    def delete_document(self, *, document_id: int) -> None:
        with self._lock:
            for name in [c.name for c in self.client.get_collections().collections]:
                if name.startswith(f"{settings.QDRANT_COLLECTION}-"):
                    self.client.delete(name, points_selector=self._document_filter([document_id]), wait=True)

    @_server_call
    @_server_call
    def count(self, *, model_id: str, dimensions: int, document_id: int | None = None) -> int:
        name = self.ensure_collection(model_id, dimensions)
        condition = self._document_filter([document_id]) if document_id is not None else None
        with self._lock:
            return self.client.count(name, count_filter=condition, exact=True).count

    def close(self) -> None:
        self.client.close()

    def check(self) -> None:
        self.client.get_collections()


class EdgeVectorStore(VectorStore):
    """Qdrant Edge shards under `root`, one per collection, owned by this process.

    Edge writes go to a write-ahead log before `update` returns, so points survive a crash
    (even SIGKILL) and are searchable at once. Searches filter through an integer index on
    document_id; no HNSW graph is built, as a filtered search scores only the few thousand
    points of the attached documents.
    """

    def __init__(self, root: Path, *, legacy_path: Path | None = None) -> None:
        """`legacy_path`: a qdrant-client local-mode store whose collections are copied into new shards."""
        import qdrant_edge

        self.qe = qdrant_edge
        self.root = root
        self.legacy_path = legacy_path
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = self._acquire(root / ".lock")
        self._shards: dict[str, Any] = {}
        self._lock = threading.RLock()

    @staticmethod
    def _acquire(path: Path) -> IO[str]:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise VectorStoreUnavailable(
                f"The embedded vector store under {path.parent} is open in {holder}; it can be opened by one "
                "process only (set QDRANT_ENDPOINT to share a Qdrant server)."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        return handle

    def _filter(self, document_ids: list[int]) -> Any:
        qe = self.qe
        match = qe.MatchValue(document_ids[0]) if len(document_ids) == 1 else qe.MatchAny(any=document_ids)
        return qe.Filter(must=[qe.FieldCondition(key="document_id", match=match)])

    def _shard(self, name: str, dimensions: int | None) -> Any | None:
        """The open shard of a collection; created when `dimensions` is given, else None if missing."""
        qe = self.qe
        with self._lock:
            if self._lock_file is None:
                raise VectorStoreUnavailable("The embedded vector store is closed.")
            shard = self._shards.get(name)
            if shard is not None:
                return shard
            path = self.root / name
            try:
                if dimensions is None and self._legacy_collection(name) is not None:
                    dimensions = int(name.rsplit("-", 1)[1])  # collection names end with the dimensions
                if (path / "edge_config.json").exists():
                    shard = qe.EdgeShard.load(str(path))
                elif dimensions is None:
                    return None
                else:
                    config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dimensions, distance=qe.Distance.Cosine))
                    shard = qe.EdgeShard.create(str(path), config)
                self._import_legacy(name, shard)
                if "document_id" not in shard.info().payload_schema:
                    index = qe.IntegerIndexParams(lookup=True, range=False)
                    shard.update(qe.UpdateOperation.create_field_index("document_id", index))
            except Exception as exc:  # qdrant-edge raises plain Exception with the engine's message
                raise VectorStoreUnavailable(f"The embedded vector store {path} cannot be opened: {exc}") from exc
            self._shards[name] = shard
            return shard

    def _import_legacy(self, name: str, shard: Any) -> None:
        """Copy a collection of the store this app used before Qdrant Edge (qdrant-client local
        mode under VAR_DIR/qdrant), so documents ingested then keep their vectors."""
        done = self.root / name / LEGACY_COPIED
        if self._legacy_collection(name) is None or done.exists():
            return
        from qdrant_client import QdrantClient

        qe = self.qe
        client = QdrantClient(path=str(self.legacy_path))
        copied, offset = 0, None
        try:
            while True:
                records, offset = client.scroll(name, limit=UPSERT_BATCH, offset=offset, with_vectors=True,
                                                with_payload=True)  # fmt: skip
                points = [qe.Point(str(r.id), list(r.vector), dict(r.payload or {})) for r in records]  # type: ignore[arg-type]
                if points:
                    shard.update(qe.UpdateOperation.upsert_points(points))
                copied += len(points)
                if offset is None:
                    break
        finally:
            client.close()
        shard.flush()
        done.touch()  # only now: a copy cut short by a crash runs again (upserts of the same ids)
        logger.info("copied %s vectors of %s from the local-mode store %s", copied, name, self.legacy_path)

    def _legacy_collection(self, name: str) -> Path | None:
        if self.legacy_path is None:
            return None
        path = self.legacy_path / "collection" / name
        return path if path.is_dir() else None

    def _collections(self) -> list[str]:
        prefix = f"{settings.QDRANT_COLLECTION}-"
        roots = [self.root, *([self.legacy_path / "collection"] if self.legacy_path else [])]
        return sorted(
            {
                p.name
                for root in roots
                if root.is_dir()
                for p in root.iterdir()
                if p.is_dir() and p.name.startswith(prefix)
            }
        )

    def upsert(
        self, *, model_id: str, document_id: int, content_hash: str, vectors: list[list[float]], start_index: int = 0
    ) -> None:
        if not vectors:
            return
        qe = self.qe
        shard = self._shard(collection_name(model_id, len(vectors[0])), len(vectors[0]))
        ids = _points(model_id=model_id, document_id=document_id, content_hash=content_hash, count=len(vectors),
                      start_index=start_index)  # fmt: skip
        if shard is None:  # _shard creates a missing collection when given its dimensions
            raise RuntimeError(f"the shard of {model_id} could not be created")
        points = [qe.Point(pid, vector, payload) for (pid, payload), vector in zip(ids, vectors, strict=True)]
        for offset in range(0, len(points), UPSERT_BATCH):
            with self._lock:
                shard.update(qe.UpdateOperation.upsert_points(points[offset : offset + UPSERT_BATCH]))

    def search(
        self, *, model_id: str, dimensions: int, vector: list[float], document_ids: list[int], limit: int
    ) -> list[VectorHit]:
        if not document_ids:
            return []
        qe = self.qe
        shard = self._shard(collection_name(model_id, dimensions), None)
        if shard is None:
            return []
        request = qe.QueryRequest(
            query=qe.Query.Nearest(vector), filter=self._filter(document_ids), limit=limit, with_payload=True
        )
        with self._lock:
            found = shard.query(request)
        return [
            VectorHit(document_id=p.payload["document_id"], chunk_index=p.payload["chunk_index"], score=p.score)
            for p in found
            if p.payload
        ]

    def delete_document(self, *, document_id: int) -> None:
        qe = self.qe
        for name in self._collections():
            shard = self._shard(name, None)
            if shard is not None:
                with self._lock:
                    shard.update(qe.UpdateOperation.delete_points_by_filter(self._filter([document_id])))

    def count(self, *, model_id: str, dimensions: int, document_id: int | None = None) -> int:
        qe = self.qe
        shard = self._shard(collection_name(model_id, dimensions), None)
        if shard is None:
            return 0
        request = qe.CountRequest(exact=True, filter=self._filter([document_id]) if document_id is not None else None)
        with self._lock:
            return shard.count(request)

    def check(self) -> None:
        if self._lock_file is None or not self.root.is_dir():
            raise VectorStoreUnavailable(f"The embedded vector store under {self.root} is closed or gone.")

    def close(self) -> None:
        """Flush and close every shard, then let another process open the store."""
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None


def edge_store_path() -> Path:
    return Path(settings.VAR_DIR) / EDGE_DIRECTORY


_OPENING = threading.Lock()


def vector_store() -> VectorStore:
    """The process's store. The embedded one is opened on first use and kept open."""
    # Two threads' first calls at once (a chat's retrieval and an ingestion) must not both open
    # the embedded store: the second opener's lock fails, even in the same process.
    with _OPENING:
        return _vector_store()


@functools.cache
def _vector_store() -> VectorStore:
    store: VectorStore
    if settings.QDRANT_ENDPOINT:
        from qdrant_client import QdrantClient

        try:
            client = QdrantClient(url=settings.QDRANT_ENDPOINT, api_key=settings.QDRANT_API_KEY or None, timeout=10)
        except Exception as exc:  # qdrant-client raises several types; all mean the same to us
            raise VectorStoreUnavailable(f"The vector store cannot be opened: {exc}") from exc
        store = ServerVectorStore(client)
    else:
        store = EdgeVectorStore(edge_store_path(), legacy_path=Path(settings.VAR_DIR) / "qdrant")
    # Close before the interpreter tears modules down (the embedded store flushes on close).
    atexit.register(store.close)
    return store
