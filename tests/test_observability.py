"""Operations: a log line per request and per generation, JSON logs, and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from chat import generation
from ingestion.models import Source
from tests.conftest import make_conversation, make_user, open_socket

ROOT = Path(__file__).resolve().parent.parent


class Records(logging.Handler):
    """Records of one logger, caught on the logger itself: importing the ASGI app re-runs the
    logging configuration, which drops handlers put on the root logger (pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def fields(self) -> list[dict]:
        return [record.fields for record in self.records]


@pytest.fixture
def request_log() -> Iterator[Records]:
    yield from _caught("multillm.requests")


@pytest.fixture
def generation_log() -> Iterator[Records]:
    yield from _caught("multillm.generations")


def _caught(name: str) -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple], float]:
    """The /metrics samples as {(name, sorted labels): value}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.mark.django_db
def test_each_request_is_logged_once_with_user_status_and_latency(request_log) -> None:
    alice = make_user("alice")
    client = Client()
    client.force_login(alice)

    client.get("/")
    Client().get("/no/such/page/")

    home, missing = request_log.fields
    assert home["method"] == "GET" and home["path"] == "/" and home["status"] == 200
    assert home["user"] == "alice" and home["view"] == "chat:home" and home["latency_ms"] >= 0
    assert missing["status"] in (302, 404) and missing["user"] == "-"
    line = request_log.records[0].getMessage()
    assert line.startswith("request method=GET path=/ view=chat:home status=200 latency_ms=") and "user=alice" in line


def test_probes_are_not_logged(request_log) -> None:
    Client().get("/healthz")

    assert request_log.records == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_generation_is_logged_and_counted_with_user_model_tokens_and_timings(
    generation_log, fake_ollama, llama, settings
) -> None:
    settings.METRICS_ENABLED = True
    before = await sync_to_async(scrape)(Client())
    alice = await sync_to_async(make_user)("alice")
    conversation = await sync_to_async(make_conversation)(alice)
    connected, _, ws = await open_socket(conversation.uuid, user=alice)
    assert connected

    await ws.send({"type": "send", "content": "Hello there", "models": ["ollama/llama3.2:1b"]})
    await ws.receive_until(lambda frame: frame["type"] == "message.done")
    for task in list(generation._RUNNING.values()):
        await task
    await ws.close()

    [line] = generation_log.fields
    assert line["user"] == "alice" and line["model"] == "ollama/llama3.2:1b" and line["status"] == "complete"
    assert (line["prompt_tokens"], line["completion_tokens"]) == (2, 4)
    assert 0 <= line["first_token_ms"] <= line["latency_ms"]
    after = await sync_to_async(scrape)(Client())
    model = ("model", "ollama/llama3.2:1b")

    def grew(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(sorted(labels)))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("multillm_generations_total", model, ("status", "complete")) == 1
    assert grew("multillm_generation_tokens_total", model, ("kind", "prompt")) == 2
    assert grew("multillm_generation_tokens_total", model, ("kind", "completion")) == 4
    assert grew("multillm_generation_first_token_seconds_count", model) == 1
    assert grew("multillm_generation_duration_seconds_count", model) == 1


def test_json_log_format_writes_one_object_per_line(tmp_path) -> None:
    """The settings' JSON formatter, in a fresh process, on a real request line."""
    env = {
        "PATH": os.environ["PATH"], "ENV_FILE_DIR": str(tmp_path), "VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "on", "LOG_FORMAT": "json",
    }  # fmt: skip
    code = (
        "import django, os, logging; os.environ['DJANGO_SETTINGS_MODULE'] = 'multillm.settings'; django.setup(); "
        "fields = {'event': 'request', 'status': 200, 'user': 'alice'}; "
        "logging.getLogger('multillm.requests').info('request status=200 user=alice', extra={'fields': fields})"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert entry["logger"] == "multillm.requests" and entry["level"] == "INFO"
    assert entry["status"] == 200 and entry["user"] == "alice" and entry["event"] == "request"
    assert entry["message"] == "request status=200 user=alice" and entry["time"].endswith("+00:00")


def test_metrics_are_off_unless_enabled(settings) -> None:
    settings.METRICS_ENABLED = False

    assert Client().get("/metrics").status_code == 404


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(settings) -> None:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = "scrape-me"

    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(Client(), HTTP_AUTHORIZATION="Bearer scrape-me")


@pytest.mark.django_db
def test_metrics_count_requests_and_report_the_queue_and_failed_sources(settings) -> None:
    settings.METRICS_ENABLED = True
    settings.CELERY_TASK_DEFAULT_QUEUE = f"metrics-test-{uuid.uuid4().hex}"
    alice = make_user("alice")
    Source.objects.create(owner=alice, url="https://example.com/a", status=Source.Status.FAILED, error="boom")
    Source.objects.create(owner=alice, url="https://example.com/b", status=Source.Status.READY)
    queue = redis.Redis.from_url(settings.REDIS_URL)
    queue.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, b"task-1", b"task-2", b"task-3")
    client = Client()
    before = scrape(client)
    try:
        client.get("/accounts/login/")
        client.get("/accounts/login/")
        samples = scrape(client)
    finally:
        queue.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
        queue.close()

    key = ("multillm_http_requests_total", (("status", "200"), ("view", "login")))
    assert samples[key] - before.get(key, 0) == 2
    assert samples[("multillm_http_request_duration_seconds_count", (("view", "login"),))] >= 2
    assert samples[("multillm_ingestion_queue_depth", ())] == 3
    assert samples[("multillm_ingestion_sources", (("status", "failed"),))] == 1
    assert samples[("multillm_ingestion_sources", (("status", "ready"),))] == 1


@pytest.mark.django_db
def test_queue_depth_is_minus_one_when_redis_is_unreachable(settings) -> None:
    settings.METRICS_ENABLED = True
    settings.REDIS_URL = "redis://127.0.0.1:9/0"

    assert scrape(Client())[("multillm_ingestion_queue_depth", ())] == -1


@pytest.mark.django_db(transaction=True)
def test_an_api_completion_is_logged_as_a_generation_via_the_api(generation_log, llama) -> None:
    from chat.api_keys import api_key_create

    alice = make_user("alice")
    key = api_key_create(user=alice, name="tests")[1]

    response = Client().post(
        "/api/v1/chat/completions",
        data=json.dumps({"model": "ollama/llama3.2:1b", "messages": [{"role": "user", "content": "Hi API"}]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 200, response.content
    [line] = generation_log.fields
    assert line["via"] == "api" and line["user"] == "alice" and line["model"] == "ollama/llama3.2:1b"
    assert line["status"] == "complete" and line["completion_tokens"] == 4 and line["message"] is None
    assert key not in json.dumps(line), "the key never reaches the logs"
