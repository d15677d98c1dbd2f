"""Liveness and readiness endpoints for load balancers and orchestrators.

`/healthz`: the process serves requests. `/readyz`: the dependencies a request needs answer:
the database, the channel layer (Redis in production), the Qdrant server, and each enabled
model provider (each host of a multi-host one). A failed database, channel layer or Qdrant
makes the instance unready (503); a failed provider only makes it `degraded` (200), because
every replica shares the provider: taking them all out of the load balancer would turn one
model's outage into the whole app's.

Probes come from orchestrators by IP address and over plain HTTP (Docker's HEALTHCHECK, Azure
Container Apps' probes, a Prometheus scrape): `ProbeMiddleware` answers them before the
ALLOWED_HOSTS check and the HTTPS redirect, which would otherwise turn them into 400 or 301.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from models_registry.models import Provider
from models_registry.providers import ProviderError, provider_clients
from multillm.middleware import HybridMiddleware

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_vector_store() -> None:
    from ingestion.vectorstore import vector_store

    vector_store().check()


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    # The default prefix: channels_redis reads every specific channel of a process through one
    # loop keyed by it, and a channel of another prefix waits behind an open socket's reads.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("the channel layer returned a different message")
    # The pub/sub layer keeps a channel subscribed until a receive on it is cancelled: end it,
    # or every check would leave a subscription behind.
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def _check_qdrant() -> None:
    """Qdrant's own readiness endpoint."""
    headers = {"api-key": settings.QDRANT_API_KEY} if settings.QDRANT_API_KEY else {}
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT, trust_env=False) as client:
        response = await client.get(f"{settings.QDRANT_ENDPOINT}/readyz", headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"Qdrant answered HTTP {response.status_code}")


def _enabled_providers() -> list[Provider]:
    return list(Provider.objects.filter(enabled=True).order_by("name"))


async def _provider_status(provider: Provider) -> str:
    """`ok`, `error: <code>`, or for several hosts `ok (n of m hosts)` when some are down."""
    try:
        hosts = provider_clients(provider)
    except ProviderError as exc:
        return f"error: {exc.code}"
    outcomes = await asyncio.gather(*(_run(host.ping) for host in hosts))
    failures = [outcome for outcome in outcomes if outcome != "ok"]
    if not failures:
        return "ok"
    for host, outcome in zip(hosts, outcomes, strict=True):
        if outcome != "ok":
            logger.warning("readiness: provider %s at %s: %s", provider.name, host.base_url, outcome)
    if len(failures) < len(hosts):
        return f"ok ({len(hosts) - len(failures)} of {len(hosts)} hosts)"
    return failures[0]


async def _run(check: Callable[[], Awaitable[Any]]) -> str:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT)
    except ProviderError as exc:
        return f"error: {exc.code}"
    except Exception as exc:  # any failure is reported, never raised
        return f"error: {type(exc).__name__}"
    return "ok"


@login_not_required
@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    """200 with `ok` or `degraded` (a provider failed), else 503 naming the failures."""
    core: dict[str, Callable[[], Awaitable[Any]]] = {
        "database": database_sync_to_async(_check_database),
        "channel_layer": _check_channel_layer,
        # The server's own readiness endpoint, or the embedded store opened in this process.
        "qdrant": _check_qdrant
        if settings.QDRANT_ENDPOINT
        else sync_to_async(_check_vector_store, thread_sensitive=False),
    }
    names = list(core)
    outcomes = await asyncio.gather(*(_run(check) for check in core.values()))
    results = dict(zip(names, outcomes, strict=True))
    for name, outcome in results.items():
        if outcome.startswith("error"):
            logger.warning("readiness check %s failed: %s", name, outcome)
    ready = all(not outcome.startswith("error") for outcome in results.values())

    providers: list[Provider] = []
    if results["database"] == "ok":
        providers = await database_sync_to_async(_enabled_providers)()
    statuses = await asyncio.gather(*(_provider_status(provider) for provider in providers))
    provider_results = {f"provider:{p.name}": status for p, status in zip(providers, statuses, strict=True)}
    degraded = any(status.startswith("error") for status in statuses)

    status = "unavailable" if not ready else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": results | provider_results}, status=200 if ready else 503)


def _probe_views() -> dict[str, Callable[..., Any]]:
    from multillm.observability import metrics

    return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}


class ProbeMiddleware(HybridMiddleware):
    """Answers /healthz, /readyz and /metrics first: no Host check, no HTTPS redirect, no request log.

    None of these reads the Host header or sets a cookie, so skipping the host check opens nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.views = _probe_views()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        view = self.views.get(request.path_info)
        if view is None:
            return self.get_response(request)
        return async_to_sync(view)(request) if iscoroutinefunction(view) else view(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info)
        if view is None:
            return await self.get_response(request)
        if iscoroutinefunction(view):
            return await view(request)
        return await sync_to_async(view)(request)
