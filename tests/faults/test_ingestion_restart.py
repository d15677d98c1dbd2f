"""PostgreSQL restarted while a real Celery worker ingests a source (issue 8, faults).

The worker and its database are the throwaway cluster of `tests/faults/conftest.py` (the
shared PostgreSQL is never touched); the broker is the test Redis, on a queue of its own.
The task caught by the restart must end (ready, or failed with a reason), never stay in a
working state, and the next task must succeed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from ingestion.tasks import ingest_source
from tests.conftest import ROOT

WORKING = ("queued", "fetching", "extracting", "embedding")

SETUP = """
import json
from django.contrib.auth.models import User
from ingestion.models import Source
user = User.objects.create_user("dora", password="dora-password-123")
caught = Source.objects.create(owner=user, url=SLOW)
after = Source.objects.create(owner=user, url=AFTER)
print(json.dumps([caught.pk, after.pk]))
"""


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, timeout=300,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        pytest.fail(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _source(database_url: str, pk: int) -> tuple[str, str]:
    """The source's status and error, read on a fresh connection (the server may be restarting)."""
    try:
        with psycopg.connect(database_url.replace("postgres://", "postgresql://"), connect_timeout=3) as conn:
            row = conn.execute("SELECT status, error FROM ingestion_source WHERE id = %s", [pk]).fetchone()
    except psycopg.OperationalError:
        return ("unreachable", "")
    assert row is not None
    return (row[0], row[1])


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-4000:]}")


def test_postgres_restarted_during_an_ingestion_task_then_the_next_task_succeeds(
    throwaway_postgres, web, tmp_path, settings
) -> None:  # fmt: skip
    web.slow_seconds = 4  # /slow answers after 4 s: the restart happens while the worker fetches
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "DATABASE_URL": throwaway_postgres.url, "REDIS_URL": settings.REDIS_URL,
        "VAR_DIR": str(tmp_path), "DEBUG": "off", "SECRET_KEY": "fault-tests-only", "LOCAL_MODEL": "off",
        "QDRANT_EMBEDDED_WORKER": "on", "QDRANT_ENDPOINT": "", "FETCH_ALLOWLIST": "127.0.0.1",
        "FETCH_READ_TIMEOUT": "10", "CELERY_QUEUE": queue, "LOG_LEVEL": "INFO",
    }  # fmt: skip
    _manage(env, "migrate", "--noinput", "-v0")
    script = SETUP.replace("SLOW", repr(web.url("/slow"))).replace("AFTER", repr(web.url("/notes.md")))
    caught, after = json.loads(_manage(env, "shell", "-c", script).strip().splitlines()[-1])
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "multillm", "worker", "-P", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        ingest_source.apply_async((caught,), queue=queue)
        _wait(lambda: web.hits["/slow"] == 1, 60, "the worker to fetch the slow page", log)
        assert _source(throwaway_postgres.url, caught)[0] == "fetching"

        throwaway_postgres.restart()

        # The interrupted task ends: ready (its stale connection replaced) or failed with a reason.
        _wait(lambda: _source(throwaway_postgres.url, caught)[0] not in (*WORKING, "unreachable"), 60,
              "the interrupted task to end", log)  # fmt: skip
        status, error = _source(throwaway_postgres.url, caught)
        assert status == "ready" or (status == "failed" and error.strip()), (status, error, log.read_text()[-3000:])

        # The next task on the same worker succeeds.
        ingest_source.apply_async((after,), queue=queue)
        _wait(lambda: _source(throwaway_postgres.url, after)[0] not in WORKING, 60, "the next task", log)
        assert _source(throwaway_postgres.url, after) == ("ready", ""), log.read_text()[-3000:]
        assert worker.poll() is None, "the worker is still running"
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
