"""Operations: one log line per request and per generation, JSON logs, Prometheus metrics.

* `RequestLogMiddleware` logs every HTTP request (method, route, status, latency, user) on the
  `multillm.requests` logger and counts it in the metrics.
* `generation_observed` is called once at the end of every chat answer (chat/generation.py), and
  `generation_recorded` at the end of every API completion (chat/api.py): each logs the outcome on
  `multillm.generations` (user, model, tokens, time to first token, latency, status) and counts it.
* `multillm.logs.JsonFormatter` writes one JSON object per line (LOG_FORMAT=json), with the
  fields above as keys (they travel in the record's `fields`).
* `metrics` serves `/metrics` in Prometheus' text format when METRICS_ENABLED is on (bearer
  METRICS_TOKEN if set). Counters are per process; the ingestion queue depth and the sources by
  status are read from Redis and the database at each scrape, so every replica reports them.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from multillm.middleware import HybridMiddleware

if TYPE_CHECKING:
    from chat.models import Message

request_logger = logging.getLogger("multillm.requests")
generation_logger = logging.getLogger("multillm.generations")
logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter("multillm_http_requests", "HTTP requests served, by route and status.", ["view", "status"])
HTTP_LATENCY = Histogram(
    "multillm_http_request_duration_seconds", "Time to the response's headers.", ["view"], buckets=LATENCY_BUCKETS
)
GENERATIONS = Counter("multillm_generations", "Answers finished, by model and status.", ["model", "status"])
GENERATION_TOKENS = Counter("multillm_generation_tokens", "Tokens of finished answers.", ["model", "kind"])
FIRST_TOKEN = Histogram(
    "multillm_generation_first_token_seconds", "Time from the start of an answer to its first token.", ["model"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
GENERATION_LATENCY = Histogram(
    "multillm_generation_duration_seconds", "Time from the start to the end of an answer.", ["model"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip


def _user_label(request: HttpRequest) -> str:
    """The user's name if something already loaded the user; never a database query of its own."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is None or not user.is_authenticated:
        return "-"
    return user.get_username()


class RequestLogMiddleware(HybridMiddleware):
    """One line per request. Natively sync and async (no thread hop under ASGI). The latency is
    to the response's headers: a streamed body (the API's SSE) goes on after it."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        started = time.monotonic()
        response = self.get_response(request)
        self._log(request, response, time.monotonic() - started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = await self.get_response(request)
        self._log(request, response, time.monotonic() - started)
        return response

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or "unmatched"
        HTTP_REQUESTS.labels(view=view, status=str(response.status_code)).inc()
        HTTP_LATENCY.labels(view=view).observe(seconds)
        fields = {
            "event": "request",
            "method": request.method,
            "path": request.path,
            "view": view,
            "status": response.status_code,
            "latency_ms": round(seconds * 1000),
            "user": _user_label(request),
        }
        request_logger.info(_as_text(fields), extra={"fields": fields})


async def generation_observed(*, message: Message) -> None:
    """Log and count an answer of the chat, once it is saved. Never raises."""
    try:
        from chat.models import Conversation

        # Not the async ORM (`afirst`): it borrows a pooled connection on the caller's thread and
        # never hands it back, and on a socket's thread that held it for as long as the socket
        # stayed open, until the pool ran dry and every socket's next answer waited for ever.
        username = await database_sync_to_async(
            Conversation.objects.filter(pk=message.conversation_id).values_list("owner__username", flat=True).first
        )()
        generation_recorded(
            via="chat",
            message_id=message.pk,
            user=username or "-",
            model=message.model_label or "unknown",
            status=message.status,
            prompt_tokens=message.prompt_tokens,
            completion_tokens=message.completion_tokens,
            first_token_ms=message.first_token_ms,
            latency_ms=message.latency_ms,
            error_code=message.error_code,
        )
    except Exception:
        logger.exception("could not record generation %s", message.pk)


def generation_recorded(
    *,
    via: str,
    user: str,
    model: str,
    status: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    first_token_ms: int | None,
    latency_ms: int | None,
    error_code: str = "",
    message_id: int | None = None,
) -> None:
    """The generation line and metrics, for the chat (`via="chat"`) and the API (`via="api"`). Never raises."""
    try:
        fields = {
            "event": "generation",
            "via": via,
            "message": message_id,
            "user": user,
            "model": model,
            "status": status,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "first_token_ms": first_token_ms,
            "latency_ms": latency_ms,
            "error_code": error_code,
        }
        generation_logger.info(_as_text(fields), extra={"fields": fields})
        GENERATIONS.labels(model=model, status=status).inc()
        for kind, count in (("prompt", prompt_tokens), ("completion", completion_tokens)):
            if count:
                GENERATION_TOKENS.labels(model=model, kind=kind).inc(count)
        if first_token_ms is not None:
            FIRST_TOKEN.labels(model=model).observe(first_token_ms / 1000)
        if latency_ms is not None:
            GENERATION_LATENCY.labels(model=model).observe(latency_ms / 1000)
    except Exception:
        logger.exception("could not record a generation of %s", model)


def _as_text(fields: dict[str, Any]) -> str:
    """`event key=value ...`: readable in plain logs; JSON logs carry the fields as keys."""
    pairs = " ".join(
        f"{key}={'-' if value in (None, '') else value}" for key, value in fields.items() if key != "event"
    )
    return f"{fields['event']} {pairs}"


class IngestionCollector(Collector):
    """Read at each scrape: tasks waiting in the Celery queue, and sources by status."""

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "multillm_ingestion_queue_depth", "Tasks waiting in the Celery queue (-1: Redis unreachable)."
        )
        sources = GaugeMetricFamily(
            "multillm_ingestion_sources", "Sources by status; `failed` counts ingestion failures.", labels=["status"]
        )
        return depth, sources

    def describe(self) -> Any:
        """The names alone, so that registering reads neither Redis nor the database."""
        return list(self._families())

    def collect(self) -> Any:
        depth, sources = self._families()
        depth.add_metric([], _queue_depth())
        for status, count in _sources_by_status().items():
            sources.add_metric([status], count)
        return [depth, sources]


def _queue_depth() -> int:
    if not settings.REDIS_URL:
        return 0  # tasks run in-process: nothing waits
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        return int(client.llen(settings.CELERY_TASK_DEFAULT_QUEUE))
    except redis.RedisError as exc:
        logger.warning("metrics: could not read the Celery queue length: %s", exc)
        return -1
    finally:
        client.close()


def _sources_by_status() -> dict[str, int]:
    from django.db.models import Count

    from ingestion.models import Source

    counts = {status: 0 for status in Source.Status.values}
    for row in Source.objects.values("status").annotate(count=Count("pk")):
        counts[row["status"]] = row["count"]
    return counts


REGISTRY.register(IngestionCollector())


@login_not_required
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format; 404 unless METRICS_ENABLED, 401 without the bearer METRICS_TOKEN if one is set."""
    if not settings.METRICS_ENABLED:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    if settings.METRICS_TOKEN:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.METRICS_TOKEN.encode()):
            return HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
