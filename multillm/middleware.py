"""Middleware that runs natively in sync and async chains, and WhiteNoise made so.

`HybridMiddleware` is the base of our own middleware: under ASGI a sync-only middleware makes
Django run the request behind a hop into a new thread and back.

WhiteNoise's own middleware is synchronous only. First in Django's chain, it made Django run
every request (middleware and view) behind a hop into a new thread and back to the event loop:
about a millisecond before the first byte of every API answer, and one more thread per request.
This one answers static files as WhiteNoise does and hands every other request on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class HybridMiddleware:
    """Sync and async capable: `self.async_mode` says which chain this instance is in, and an
    async instance is marked as a coroutine function so Django awaits it without a thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        raise NotImplementedError("a middleware answers the request or hands it on")


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any, settings: Any = settings) -> None:
        super().__init__(get_response, settings=settings)
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:  # DEBUG: looks on disk
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
