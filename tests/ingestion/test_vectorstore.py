"""The vector store's contract, for the embedded Qdrant Edge store and for the qdrant-client
store used against a server (here a qdrant-client in local mode, which speaks the same API)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingestion.vectorstore import (
    EdgeVectorStore,
    ServerVectorStore,
    VectorStore,
    VectorStoreUnavailable,
    collection_name,
    edge_store_path,
    vector_store,
)
from tests.conftest import ROOT

MODEL = "test-model"


def open_edge(path: Path) -> VectorStore:
    return EdgeVectorStore(path / "qdrant-edge")


def open_server(path: Path) -> VectorStore:
    from qdrant_client import QdrantClient

    return ServerVectorStore(QdrantClient(path=str(path / "qdrant")))


@pytest.fixture(params=[open_edge, open_server], ids=["edge", "qdrant-client"])
def opener(request: pytest.FixtureRequest) -> Callable[[Path], VectorStore]:
    return request.param


@pytest.fixture
def store(opener: Callable[[Path], VectorStore], tmp_path: Path) -> Iterator[VectorStore]:
    opened = opener(tmp_path)
    yield opened
    opened.close()


def unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


def upsert(store: VectorStore, document_id: int, vectors: list[list[float]], model: str = MODEL) -> None:
    store.upsert(model_id=model, document_id=document_id, content_hash=f"hash-{document_id}", vectors=vectors)


def found(store: VectorStore, vector: list[float], document_ids: list[int], limit: int = 10) -> list[tuple[int, int]]:
    hits = store.search(model_id=MODEL, dimensions=len(vector), vector=vector, document_ids=document_ids, limit=limit)
    return [(hit.document_id, hit.chunk_index) for hit in hits]


def test_search_returns_only_the_named_documents_nearest_first(store: VectorStore) -> None:
    upsert(store, 1, [unit(1, 0, 0), unit(0, 1, 0)])  # alice's document
    upsert(store, 2, [unit(1, 0.01, 0)])  # bob's, nearer to the query than alice's second chunk
    upsert(store, 3, [unit(0, 0, 1)])

    assert found(store, unit(1, 0, 0), [1]) == [(1, 0), (1, 1)]
    assert found(store, unit(1, 0, 0), [2]) == [(2, 0)]
    assert found(store, unit(1, 0.2, 0.1), [1, 3]) == [(1, 0), (1, 1), (3, 0)]
    assert found(store, unit(1, 0, 0), [1, 2], limit=2) == [(1, 0), (2, 0)]
    assert found(store, unit(1, 0, 0), [99]) == []
    assert found(store, unit(1, 0, 0), []) == []


def test_upserting_the_same_chunks_again_adds_nothing(store: VectorStore) -> None:
    upsert(store, 1, [unit(1, 0, 0), unit(0, 1, 0)])
    upsert(store, 1, [unit(1, 0, 0), unit(0, 1, 0)])
    store.upsert(model_id=MODEL, document_id=1, content_hash="hash-1", vectors=[unit(0, 1, 0)], start_index=1)

    assert store.count(model_id=MODEL, dimensions=3, document_id=1) == 2
    assert store.count(model_id=MODEL, dimensions=3) == 2


def test_deleting_a_document_removes_its_vectors_from_every_collection(store: VectorStore) -> None:
    upsert(store, 1, [unit(1, 0, 0), unit(0, 1, 0)])
    upsert(store, 2, [unit(1, 0, 0)])
    upsert(store, 1, [unit(1, 0, 0, 0)], model="other-model")

    store.delete_document(document_id=1)

    assert store.count(model_id=MODEL, dimensions=3, document_id=1) == 0
    assert store.count(model_id="other-model", dimensions=4, document_id=1) == 0
    assert found(store, unit(1, 0, 0), [1, 2]) == [(2, 0)]


def test_each_embedding_model_has_its_own_collection(store: VectorStore, settings) -> None:
    upsert(store, 1, [unit(1, 0, 0)])
    upsert(store, 1, [unit(1, 0, 0, 0)], model="Other/Model:v2")

    assert store.count(model_id=MODEL, dimensions=3) == 1
    assert store.count(model_id="Other/Model:v2", dimensions=4) == 1
    assert collection_name("Other/Model:v2", 4) == f"{settings.QDRANT_COLLECTION}-other-model-v2-4"


def test_vectors_are_kept_across_a_restart(opener: Callable[[Path], VectorStore], tmp_path: Path) -> None:
    first = opener(tmp_path)
    upsert(first, 1, [unit(1, 0, 0), unit(0, 1, 0)])
    first.close()

    again = opener(tmp_path)
    try:
        assert again.count(model_id=MODEL, dimensions=3, document_id=1) == 2
        assert found(again, unit(0, 1, 0), [1]) == [(1, 1), (1, 0)]
    finally:
        again.close()


def test_edge_store_lives_under_var_dir_when_no_server_is_configured(settings) -> None:
    assert not settings.QDRANT_ENDPOINT
    assert isinstance(vector_store(), EdgeVectorStore)
    assert edge_store_path() == Path(settings.VAR_DIR) / "qdrant-edge"


def test_edge_store_opened_elsewhere_is_refused_with_the_reason(tmp_path: Path) -> None:
    first = open_edge(tmp_path)
    try:
        with pytest.raises(VectorStoreUnavailable, match="can be opened by one process only"):
            open_edge(tmp_path)
    finally:
        first.close()
    open_edge(tmp_path).close()  # free again once closed


def test_edge_store_keeps_vectors_written_just_before_the_process_was_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, django
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
        django.setup()
        from pathlib import Path
        from ingestion.vectorstore import EdgeVectorStore
        store = EdgeVectorStore(Path({str(tmp_path / "qdrant-edge")!r}))
        store.upsert(model_id={MODEL!r}, document_id=7, content_hash="h", vectors=[[1.0, 0.0, 0.0]] * 300)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    writer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert writer.returncode == -signal.SIGKILL, writer.stderr.decode()[-2000:]

    store = open_edge(tmp_path)  # the dead process's lock went with it
    try:
        assert store.count(model_id=MODEL, dimensions=3, document_id=7) == 300
    finally:
        store.close()


def test_edge_store_takes_over_the_vectors_of_the_local_mode_store_it_replaced(tmp_path: Path) -> None:
    before = open_server(tmp_path)  # qdrant-client local mode under VAR_DIR/qdrant, as before Qdrant Edge
    upsert(before, 1, [unit(1, 0, 0), unit(0, 1, 0)])
    upsert(before, 2, [unit(0, 0, 1)])
    before.close()

    store = EdgeVectorStore(tmp_path / "qdrant-edge", legacy_path=tmp_path / "qdrant")
    try:
        assert store.count(model_id=MODEL, dimensions=3) == 3
        assert found(store, unit(0, 1, 0), [1]) == [(1, 1), (1, 0)]
        upsert(store, 1, [unit(1, 0, 0), unit(0, 1, 0)])  # the same deterministic ids: nothing added
        assert store.count(model_id=MODEL, dimensions=3) == 3
        store.delete_document(document_id=2)
    finally:
        store.close()

    again = EdgeVectorStore(tmp_path / "qdrant-edge", legacy_path=tmp_path / "qdrant")
    try:
        assert again.count(model_id=MODEL, dimensions=3) == 2, "copied once: the deleted document stays deleted"
    finally:
        again.close()
