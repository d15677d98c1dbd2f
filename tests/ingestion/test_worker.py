"""The ingestion task on a real Celery worker with the real Redis broker, including a
worker killed with SIGKILL in the middle of a task.

The worker owns the embedded vector store while it runs (QDRANT_EMBEDDED_WORKER); this
process opens the store only after the last worker has stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from ingestion.models import Chunk, Document, Source
from ingestion.tasks import ingest_source
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def worker_env(var_dir: Path, queue: str) -> dict[str, str]:
    config = connection.settings_dict
    database = f"postgres://{config['USER']}@{config['HOST']}:{config['PORT'] or 5432}/{config['NAME']}"
    return {
        **os.environ, "DATABASE_URL": database, "VAR_DIR": str(var_dir), "QDRANT_EMBEDDED_WORKER": "on",
        "FETCH_ALLOWLIST": "127.0.0.1", "FETCH_READ_TIMEOUT": "10", "CELERY_VISIBILITY_TIMEOUT": "2",
        "CELERY_QUEUE": queue, "LOG_LEVEL": "INFO",
    }  # fmt: skip


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "multillm", "worker", "-P", "solo", "-Q", env["CELERY_QUEUE"],
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status(source: Source) -> str:
    return Source.objects.values_list("status", flat=True).get(pk=source.pk)


def stop(worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=20)


def vectors_of(var_dir: Path, document: Document) -> int:
    from ingestion.embedder import local_embedder
    from ingestion.vectorstore import EdgeVectorStore

    embedder = local_embedder()
    store = EdgeVectorStore(var_dir / "qdrant-edge")
    try:
        return store.count(model_id=embedder.model_id, dimensions=embedder.dimensions, document_id=document.pk)
    finally:
        store.close()


def test_a_worker_killed_mid_task_gets_the_task_again_and_it_ends_as_if_run_once(alice, web, tmp_path) -> None:
    web.slow_seconds = 3  # /slow answers after 3 s: time to kill the worker while it fetches
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = worker_env(tmp_path, queue)
    log = tmp_path / "worker.log"
    source = Source.objects.create(owner=alice, url=web.url("/slow"))

    first = start_worker(env, log)
    try:
        ingest_source.apply_async((source.pk,), queue=queue)
        wait_for(lambda: status(source) == "fetching", 30, "the first worker to start the task")
        wait_for(lambda: web.hits["/slow"] == 1, 30, "the first worker's request to reach the server")
        stop(first, signal.SIGKILL)
        assert status(source) == "fetching", "the task was killed before it could finish"

        second = start_worker(env, log)
        try:
            wait_for(lambda: status(source) in ("ready", "failed"), 60, "the task to be delivered again")
        finally:
            stop(second)
    finally:
        stop(first, signal.SIGKILL)

    source.refresh_from_db()
    assert source.status == "ready", f"{source.error}\n{log.read_text()[-3000:]}"
    assert Document.objects.count() == 1
    assert web.hits["/slow"] == 2, "fetched once by each worker"
    document = source.document
    assert vectors_of(tmp_path, document) == document.chunk_count == Chunk.objects.filter(document=document).count()


def test_a_worker_without_a_vector_store_server_refuses_to_start(tmp_path) -> None:
    env = {**worker_env(tmp_path, "unused"), "QDRANT_EMBEDDED_WORKER": "off", "QDRANT_ENDPOINT": ""}
    log = tmp_path / "worker.log"

    worker = start_worker(env, log)
    try:
        worker.wait(timeout=60)
    finally:
        stop(worker, signal.SIGKILL)

    assert worker.returncode != 0
    assert "A separate Celery worker needs QDRANT_ENDPOINT" in log.read_text()
