"""The image's entry points, run outside Docker: `deploy/entrypoint.sh web|worker|beat` start
against the machine's Postgres and Redis and answer the image's health check
(`python -m multillm.probe`), as Docker's HEALTHCHECK and Compose would ask it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from models_registry.models import Provider
from tests.conftest import _database_url, _free_port
from tests.fakes.qdrant import FakeQdrant

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent.parent
ENTRYPOINT = str(ROOT / "deploy/entrypoint.sh")


@pytest.fixture
def qdrant() -> Iterator[FakeQdrant]:
    server = FakeQdrant().start()
    yield server
    server.stop()


@pytest.fixture
def process_env(settings, tmp_path, qdrant, fake_ollama) -> dict[str, str]:
    """What a container gets from Compose: production settings, its own queue and worker name."""
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": "entrypoint-test-secret-key-" + uuid.uuid4().hex,
        "DEBUG": "off",
        "ALLOWED_HOSTS": "chat.example.com",
        "SECURE_PROXY_SSL_HEADER": "on",
        "SECURE_SSL_REDIRECT": "on",
        "VAR_DIR": str(tmp_path / "var"),
        "ENV_FILE_DIR": str(tmp_path),
        "QDRANT_ENDPOINT": qdrant.url,
        "OLLAMA_BASE_URL": fake_ollama.url,
        "LOCAL_MODEL": "off",
        "MIGRATE_ON_START": "off",
        "CHANNEL_LAYER_PREFIX": f"entry{uuid.uuid4().hex[:8]}",
        "CELERY_QUEUE": f"entrypoint-test-{uuid.uuid4().hex}",
        "CELERY_HOSTNAME": f"entrypoint-test-{uuid.uuid4().hex[:8]}@%h",
        "CELERY_CONCURRENCY": "1",
        "PORT": str(_free_port()),
        "LOG_LEVEL": "WARNING",
    }


class Started:
    def __init__(self, role: str, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [ENTRYPOINT, role], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        return self.process.returncode

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


@pytest.fixture
def start(tmp_path) -> Iterator:
    started: list[Started] = []

    def _start(role: str, env: dict[str, str]) -> Started:
        process = Started(role, env, tmp_path / f"{role}.log")
        started.append(process)
        return process

    yield _start
    for process in started:
        process.stop()


def probe(role: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "multillm.probe", role], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def wait_healthy(role: str, env: dict[str, str], process: Started, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        result = probe(role, env)
        if result.returncode == 0:
            return result.stdout
        if process.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{role} never became healthy: {result.stdout}\n--- its output:\n{process.output()}")
        time.sleep(1)


def test_web_starts_and_answers_health_and_readiness_probes_by_ip(process_env, start, fake_ollama) -> None:
    Provider.objects.create(name="ollama", kind=Provider.Kind.OLLAMA, base_url=fake_ollama.url)
    assert probe("web", process_env).returncode == 1, "nothing listens yet: the probe must fail"

    web = start("web", process_env)
    said = wait_healthy("web", process_env, web)

    assert said.strip().endswith("/healthz ok")
    ready = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"http://127.0.0.1:{process_env['PORT']}/readyz", timeout=10
    )
    assert ready.status == 200
    body = ready.read().decode()
    for check in ('"database": "ok"', '"channel_layer": "ok"', '"qdrant": "ok"', '"provider:ollama": "ok"'):
        assert check in body, body
    assert web.stop() == 0, web.output()


def test_worker_starts_and_answers_a_ping_by_its_name(process_env, start) -> None:
    worker = start("worker", process_env)
    said = wait_healthy("worker", process_env, worker)

    assert said.startswith(f"worker {process_env['CELERY_HOSTNAME'].split('@')[0]}@") and said.strip().endswith("ok")
    other = probe("worker", {**process_env, "CELERY_HOSTNAME": "nobody-here@%h"})
    assert other.returncode == 1 and "did not answer a ping" in other.stdout
    assert worker.stop() == 0, worker.output()


def test_beat_starts_answers_its_probe_and_schedules_the_model_sync(process_env, start) -> None:
    env = {**process_env, "MODELS_SYNC_INTERVAL": "1"}
    queue = redis.Redis.from_url(env["REDIS_URL"])
    try:
        beat = start("beat", env)
        said = wait_healthy("beat", env, beat)
        deadline = time.monotonic() + 30
        while queue.llen(env["CELERY_QUEUE"]) == 0:
            assert time.monotonic() < deadline, f"beat sent nothing to the queue:\n{beat.output()}"
            time.sleep(0.5)
        message = queue.lindex(env["CELERY_QUEUE"], 0)
    finally:
        queue.delete(env["CELERY_QUEUE"])
        queue.close()

    assert said.strip() == "broker ok"
    assert b"models_registry.tasks.models_sync" in message
    assert (Path(env["VAR_DIR"]) / "celerybeat-schedule").exists() or list(Path(env["VAR_DIR"]).glob("celerybeat*"))
    beat.stop()
    assert probe("beat", {**env, "REDIS_URL": "redis://127.0.0.1:9/0"}).returncode == 1, "no broker: unhealthy"
