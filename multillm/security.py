"""The Content-Security-Policy header (Django 5.2 has none built in).

Scripts and styles only from our own origin: no inline script, no inline style, no eval. The
chat page's websocket is allowed to the same host (`connect-src`: 'self' plus the ws/wss form,
which older browsers do not derive from 'self'). Images from our origin and `data:` URLs only,
so model output can never make the browser call another origin.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from multillm.middleware import HybridMiddleware

HEADER = "Content-Security-Policy"


def content_security_policy(request: HttpRequest) -> str:
    connect = ["'self'"]
    try:
        host = request.get_host()  # validated against ALLOWED_HOSTS: no characters that end a directive
    except DisallowedHost:
        host = ""
    if host:
        connect.append(f"{'wss' if request.is_secure() else 'ws'}://{host}")
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": " ".join(connect),
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    if settings.CSP_REPORT_URI:
        directives["report-uri"] = settings.CSP_REPORT_URI
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware(HybridMiddleware):
    """Adds the header to every response that has none; sync or async, whichever the chain is."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        return self._add_header(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._add_header(request, await self.get_response(request))

    @staticmethod
    def _add_header(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if settings.CSP_ENABLED and HEADER not in response:
            response[HEADER] = content_security_policy(request)
        return response
