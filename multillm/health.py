"""Liveness and readiness endpoints for load balancers and orchestrators."""

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

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


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("readyz.")
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


@login_not_required
@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    """Every dependency that a request needs answers: 200, else 503 naming the failures."""
    checks = {
        "database": database_sync_to_async(_check_database),
        "channel_layer": _check_channel_layer,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as exc:  # any failure makes the instance unready
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)
