"""An ASGI guard that refuses request bodies over `REQUEST_MAX_BYTES` before Django reads them.

Django's ASGI handler spools every body to a temporary file before any view runs, so a
size check in a view comes too late to save the disk. This wrapper looks at
Content-Length first and counts the bytes of bodies sent without one (chunked), and
answers 413 in the shape the caller expects: OpenAI's error object under `/api/`, the
pages' `{"error": {"code", "detail"}}` elsewhere.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


class _BodyTooLarge(Exception):
    pass


def too_large_body(path: str, limit: int) -> bytes:
    message = f"The request body is over the limit of {limit // (1024 * 1024)} MB."
    if path.startswith("/api/"):
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": "body_too_large"}
    else:
        error = {"code": "too_large", "detail": message}
    return json.dumps({"error": error}).encode()


class RequestBodyLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = settings.REQUEST_MAX_BYTES
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > limit):
            await self._refuse(scope, send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if started:  # the app answered before reading it all; nothing more to say
                return
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Any, limit: int) -> None:
        logger.info("refused a request body over %s bytes for %s", limit, scope.get("path"))
        body = too_large_body(scope.get("path", ""), limit)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
