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
from django.contrib.auth import middleware as django_auth
from django.contrib.messages import middleware as django_messages
from django.contrib.sessions import middleware as django_sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking as django_clickjacking
from django.middleware import common as django_common
from django.middleware import csrf as django_csrf
from django.middleware import security as django_security
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


# --- Django's own middleware, without a thread hop per hook ---------------------------------
#
# Under ASGI, Django runs every `process_request`, `process_view` and `process_response` of a
# MiddlewareMixin middleware in a thread and back, in case it does I/O: 15 hops for our chain,
# about 4 ms before any view ran, and the answer's first token waited for them. Most hooks do
# no I/O (they read headers and cookies, set lazy objects, add headers), so these subclasses
# run them on the event loop, and go to a thread only for the cases that can touch the
# database or disk, each named below. In a sync chain (tests' Client, WSGI) they are Django's.


class _InlineHooks:
    """Runs `process_request` and `process_response` on the event loop; a subclass whose hook may
    do I/O in some cases overrides `_needs_thread_for_response` to say when."""

    get_response: Callable[[HttpRequest], Any]

    async def __acall__(self, request: HttpRequest) -> Any:
        if not self._hooks_inline():
            return await super().__acall__(request)  # type: ignore[misc]  # Django's: every hook in a thread
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self._needs_thread_for_response(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response

    def _needs_thread_for_response(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return False

    def _hooks_inline(self) -> bool:
        return True


class SecurityMiddleware(_InlineHooks, django_security.SecurityMiddleware):
    """Headers and an HTTPS redirect only."""


class CommonMiddleware(_InlineHooks, django_common.CommonMiddleware):
    """User-agent refusal, APPEND_SLASH (a URL lookup) and Content-Length only."""


class XFrameOptionsMiddleware(_InlineHooks, django_clickjacking.XFrameOptionsMiddleware):
    """A header only."""


class SessionMiddleware(_InlineHooks, django_sessions.SessionMiddleware):
    """The session is loaded lazily (by whoever reads it); saving it is the one database write,
    and it goes to a thread."""

    def _needs_thread_for_response(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        session = getattr(request, "session", None)
        if session is None:
            return False
        return bool(session.modified or settings.SESSION_SAVE_EVERY_REQUEST) and not session.is_empty()


class AuthenticationMiddleware(_InlineHooks, django_auth.AuthenticationMiddleware):
    """Sets `request.user` and `request.auser`, both lazy."""


class MessageMiddleware(_InlineHooks, django_messages.MessageMiddleware):
    """Messages that were added or read are stored back, which may write the session: a thread then."""

    def _needs_thread_for_response(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and bool(storage.used or storage.added_new)


class CsrfViewMiddleware(_InlineHooks, django_csrf.CsrfViewMiddleware):
    """The token lives in a cookie (CSRF_USE_SESSIONS is off). Checking an unsafe request reads
    the form, which may parse an upload to disk: that check goes to a thread."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        if self.async_mode and self._hooks_inline():
            self.process_view = self._aprocess_view  # type: ignore[method-assign,assignment]

    def _hooks_inline(self) -> bool:
        return not settings.CSRF_USE_SESSIONS  # a token kept in the session is a database read

    async def _aprocess_view(self, request: HttpRequest, callback: Any, args: Any, kwargs: Any) -> Any:
        check = super().process_view
        if getattr(callback, "csrf_exempt", False) or request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return check(request, callback, args, kwargs)
        return await sync_to_async(check, thread_sensitive=True)(request, callback, args, kwargs)


class LoginRequiredMiddleware(django_auth.LoginRequiredMiddleware):
    """Looks at the view first: a public view (the API, probes, login) loads no session or user.
    Otherwise the user is loaded asynchronously and kept for the view's `request.user`."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        if self.async_mode:
            self.process_view = self._aprocess_view  # type: ignore[method-assign,assignment]

    async def _aprocess_view(self, request: HttpRequest, view_func: Any, args: Any, kwargs: Any) -> Any:
        if not getattr(view_func, "login_required", True):
            return None
        user = await request.auser()
        request._cached_user = user  # type: ignore[attr-defined]  # what `request.user` would load again
        if user.is_authenticated:
            return None
        return self.handle_no_permission(request, view_func)
